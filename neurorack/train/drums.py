"""Debian's hydrogen-drumkits, sorted by licence into kits we may train on and kits for evaluation only.

Audiophob (CC0) and rumpf_kit_z01_h2 (CC-BY-3.0) may train a shipped model; every other
kit is GPL or CC-BY-SA and is evaluation material only.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import NeurorackError
from ..fileio import AUDIO_SUFFIXES, write_json

PACKAGE = "hydrogen-drumkits"
DRUMKIT_DIR = Path("usr/share/hydrogen/data/drumkits")
TRAINABLE = {
    "Audiophob": "CC0-1.0 (soundcloud.com/audiophobdubstep)",
    "rumpf_kit_z01_h2": "CC-BY-3.0 (Emanuel Rumpf, sf.net/projects/rumpf-kit)",
}


def download_package(work_dir: Path) -> Path:
    """apt-get download the .deb into work_dir; returns its path."""
    if shutil.which("apt-get") is None:
        raise NeurorackError("apt-get is not available: fetch hydrogen-drumkits on a Debian machine")
    result = subprocess.run(["apt-get", "download", PACKAGE], cwd=work_dir, capture_output=True, text=True)
    debs = sorted(work_dir.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        reason = (result.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise NeurorackError(f"apt-get download {PACKAGE} failed: {reason} (try 'apt-get update' first)")
    return debs[-1]


def extract_kits(deb: Path, out_dir: Path) -> dict:
    """Unpack the .deb and copy each kit into out_dir/train/KIT or out_dir/eval/KIT."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(["dpkg", "-x", str(deb), tmp], capture_output=True, text=True)
        if result.returncode != 0:
            raise NeurorackError(f"dpkg -x {deb.name} failed: {result.stderr.strip()[:200]}")
        kits_root = Path(tmp) / DRUMKIT_DIR
        if not kits_root.is_dir():
            raise NeurorackError(f"{deb.name} holds no {DRUMKIT_DIR}")
        summary = {"train": {}, "eval": {}}
        for kit in sorted(p for p in kits_root.iterdir() if p.is_dir()):
            split = "train" if kit.name in TRAINABLE else "eval"
            target = out_dir / split / kit.name
            target.mkdir(parents=True, exist_ok=True)
            count = 0
            for f in sorted(kit.iterdir()):
                if f.suffix.lower() in AUDIO_SUFFIXES or f.name in ("drumkit.xml", "README", "LICENSE"):
                    shutil.copy2(f, target / f.name)
                    count += f.suffix.lower() in AUDIO_SUFFIXES
            summary[split][kit.name] = {"files": count, "license": TRAINABLE.get(kit.name, "GPL or CC-BY-SA: evaluation only")}
    write_json(out_dir / "LICENSES.json", summary)
    return summary


def fetch_drums(out_dir) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        deb = download_package(Path(tmp))
        return extract_kits(deb, Path(out_dir))
