"""Where models live, without importing torch (the audio process asks this too)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..assets import asset_dir


def default_models_dir() -> Path:
    """$NEURORACK_MODELS, the checkout's models/ folder, or the copy installed with the package."""
    return asset_dir("models", "NEURORACK_MODELS")


def model_path(name: str | None) -> Path | None:
    """A model setting as a checkpoint path: a folder name under the models folder, or a path."""
    if not name:
        return None
    candidate = default_models_dir() / name
    return candidate if candidate.exists() else Path(name)


def installed_models() -> list[str]:
    """The model folders under the models folder that hold a checkpoint."""
    root = default_models_dir()
    return sorted(p.name for p in root.iterdir() if (p / "model.pt").is_file()) if root.is_dir() else []


def checkpoint_sha256(path) -> str:
    """The SHA-256 of a checkpoint file: what an export or a built engine records as its source."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
