"""Checkpoints: one file holding the model's settings, weights and metadata; written atomically."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..fileio import atomic_open
from .impact_model import ImpactModel, ModelConfig
from .paths import default_models_dir

FORMAT = "neurorack-impact-model"
VERSION = 1
MAX_BYTES = 512 << 20  # the shipped model is a few MB


def save_checkpoint(path, model: ImpactModel, meta: dict | None = None, training: dict | None = None) -> None:
    """Write model settings, weights, metadata and optional training state (optimiser, epoch)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    if training is not None:
        payload["training"] = training
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getbuffer())


def read_checkpoint(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no such checkpoint: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the checkpoint file (model.pt)")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): an interrupted copy?")
    if size > MAX_BYTES:
        raise CheckpointError(f"{path} is {size >> 20} MB; a neurorack model is at most {MAX_BYTES >> 20} MB")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path} is corrupt or not a torch checkpoint ({first[:120]})") from None
    except Exception as exc:  # unpickling errors come in many classes
        raise CheckpointError(f"{path} is corrupt or not a torch checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a neurorack model checkpoint (another architecture or program)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is a checkpoint of format version {payload.get('version')}; "
                              f"this neurorack reads version {VERSION}")
    return payload


def load_checkpoint(path) -> tuple[ImpactModel, dict]:
    """-> (model in eval mode, payload). Raises CheckpointError with a one-line reason."""
    payload = read_checkpoint(path)
    try:
        model = ImpactModel(ModelConfig.from_dict(payload["config"]))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its model settings do not describe this architecture ({exc})") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: weights do not fit this architecture ({first[:160]})") from None
    model.eval()
    return model, payload


def default_checkpoint() -> Path:
    return default_models_dir() / "default" / "model.pt"
