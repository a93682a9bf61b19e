"""Training data: scan a folder, skip broken files, analyse once and cache, cut segments.

The cache holds, per source file, its 48 kHz mono audio, descriptor curves and
timbre code, keyed by path, size, modification time and the analysis version,
so a changed file is analysed again and an unchanged one never is.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import descriptors as D
from ..errors import NeurorackError
from ..fileio import AUDIO_SUFFIXES, atomic_open, read_audio, resample

SAMPLE_RATE = 48000
ANALYSIS_VERSION = 2  # bump when descriptors.analyze changes


@dataclass
class Example:
    name: str
    audio: np.ndarray  # (n,) float32 at 48 kHz
    curves: np.ndarray  # (T, 7)
    timbre: np.ndarray  # (16,)


def scan(data_dir) -> list[Path]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise NeurorackError(f"no such folder: {data_dir}")
    files = sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                   and not p.name.startswith("."))
    if not files:
        raise NeurorackError(f"{data_dir} holds no WAV, FLAC or AIFF files")
    return files


def cache_key(path: Path) -> str:
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ANALYSIS_VERSION}"
    return hashlib.sha1(ident.encode()).hexdigest()[:20]


def load_example(path: Path, cache_dir: Path) -> Example:
    """Analyse (or read from the cache) one file. Raises NeurorackError for a broken file."""
    cached = cache_dir / f"{cache_key(path)}.npz"
    if cached.exists():
        try:
            with np.load(cached) as z:
                return Example(path.name, z["audio"], z["curves"], z["timbre"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    audio, sr = read_audio(path, D.MAX_SECONDS)
    trajectory = D.analyze(audio, sr)
    audio48 = resample(audio, sr, SAMPLE_RATE)
    with atomic_open(cached, "wb") as f:
        np.savez(f, audio=audio48, curves=trajectory.curves, timbre=trajectory.timbre)
    return Example(path.name, audio48, trajectory.curves, trajectory.timbre)


def load_files(files: list[Path], cache_dir, progress=None) -> tuple[list[Example], list[tuple[Path, str]]]:
    """Files from scan() -> (examples, broken files with their reasons)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    examples, broken = [], []
    for path in files:
        try:
            examples.append(load_example(path, cache_dir))
        except NeurorackError as exc:
            broken.append((path, str(exc)))
        if progress:
            progress()
    return examples, broken


def is_validation(name: str, fraction: float = 0.1) -> bool:
    """A stable split by file name: the same file is always on the same side."""
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def segment(example: Example, start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Curves (frames, 7) and audio (frames * 480,) from descriptor frame `start`, padded with silence."""
    spf = SAMPLE_RATE // D.FRAME_RATE
    curves = example.curves[start:start + frames]
    audio = example.audio[start * spf:(start + frames) * spf]
    if len(curves) < frames:
        pad = np.repeat(curves[-1:], frames - len(curves), axis=0)
        pad[:, D.INDEX["loudness"]] = 0.0
        pad[:, D.INDEX["percussivity"]] = 0.0
        curves = np.concatenate([curves, pad])
    audio = np.pad(audio, (0, frames * spf - len(audio)))
    return curves.astype(np.float32), audio.astype(np.float32)


class SegmentSampler:
    """Random training segments: from the onset most of the time, elsewhere otherwise."""

    def __init__(self, examples: list[Example], frames: int, seed: int = 0):
        self.examples = examples
        self.frames = frames
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int):
        curves, audio, timbre = [], [], []
        for i in self.rng.integers(0, len(self.examples), size):
            ex = self.examples[i]
            longest = max(0, ex.curves.shape[0] - self.frames // 2)
            start = 0 if self.rng.random() < 0.6 or longest == 0 else int(self.rng.integers(0, longest))
            c, a = segment(ex, start, self.frames)
            curves.append(c)
            audio.append(a)
            timbre.append(ex.timbre)
        return np.stack(curves), np.stack(audio), np.stack(timbre)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "neurorack" / "analysis"
