"""`neurorack bench quality DIR`: analyse each file, render it, and measure the distance.

The distance is auraloss's MultiResolutionSTFTLoss with its defaults, both signals
mono at 22.05 kHz and of the original's length, as the Neurorack prototype was scored.
Silence, scored the same way, is given beside each file for scale.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from .common import environment

EVAL_SR = 22050


def mrstft_distance(reference: np.ndarray, candidate: np.ndarray) -> float:
    import auraloss

    n = len(reference)
    candidate = np.pad(candidate[:n], (0, max(0, n - len(candidate))))
    # auraloss's largest FFT is 2048 with reflect padding: clips shorter than that (a 40 ms hi-hat)
    # get the same silence appended to both signals.
    shortfall = max(0, 2048 - n)
    reference, candidate = np.pad(reference, (0, shortfall)), np.pad(candidate, (0, shortfall))
    loss = auraloss.freq.MultiResolutionSTFTLoss()
    with torch.no_grad():
        return float(loss(torch.from_numpy(candidate.astype(np.float32))[None, None],
                          torch.from_numpy(reference.astype(np.float32))[None, None]))


def bench_quality(data_dir, model_path=None, limit: int = 0, backend: str = "auto") -> dict:
    from .. import descriptors as D
    from .. import load_model
    from ..fileio import read_audio, resample
    from ..errors import NeurorackError
    from ..train.data import scan

    gen = load_model(model_path, backend)
    files = scan(data_dir)
    if limit:
        files = files[:limit]
    rows, skipped = [], []
    for path in files:
        started = time.perf_counter()
        try:
            audio, sr = read_audio(path, D.MAX_SECONDS)
            traj = D.analyze(audio, sr)
        except NeurorackError as exc:  # a silent or broken file in the set: listed, not scored
            skipped.append({"file": path.name, "reason": str(exc)})
            continue
        rendered = gen.render(traj, sample_rate=48000)
        reference = resample(audio, sr, EVAL_SR)
        candidate = resample(rendered, 48000, EVAL_SR)
        rows.append({"file": path.name, "seconds": round(len(audio) / sr, 2),
                     "mrstft": round(mrstft_distance(reference, candidate), 4),
                     "silence_mrstft": round(mrstft_distance(reference, np.zeros_like(reference)), 4),
                     "wall_s": round(time.perf_counter() - started, 2)})
    scores = np.array([r["mrstft"] for r in rows])
    if not rows:
        raise NeurorackError(f"{data_dir}: no file could be analysed")
    summary = {"folder": Path(data_dir).name, "files": len(rows), "skipped": len(skipped), "mrstft_mean": round(float(scores.mean()), 4),
               "mrstft_min": round(float(scores.min()), 4), "mrstft_max": round(float(scores.max()), 4),
               "silence_mrstft_mean": round(float(np.mean([r["silence_mrstft"] for r in rows])), 4),
               "target": "mean <= 1.6 on ../shared/data/neurorack-impacts (prototype: 2.03)"}
    return {"summary": summary, "files": rows, "skipped": skipped, "environment": environment(),
            "model": os.path.relpath(gen.path), "backend": gen.backend.name}
