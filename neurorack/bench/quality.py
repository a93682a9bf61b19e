"""`neurorack bench quality DIR`: analyse each file, render it, and measure the distance.

The distance is model.quality's: auraloss's MultiResolutionSTFTLoss with its defaults, both
signals mono at 22.05 kHz and of the original's length, as the Neurorack prototype was scored.
Silence, scored the same way, is given beside each file for scale.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..model.quality import resynthesis_distance
from .common import environment


def bench_quality(data_dir, model_path=None, limit: int = 0, backend: str = "auto") -> dict:
    from .. import descriptors as D
    from .. import load_model
    from ..fileio import read_audio
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
        score, silence = resynthesis_distance(gen, audio, sr, traj)
        rows.append({"file": path.name, "seconds": round(len(audio) / sr, 2),
                     "mrstft": round(score, 4), "silence_mrstft": round(silence, 4),
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
