"""What every benchmark records beside its numbers: the machine, versions, the command."""
from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np


def environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"neurorack": __version__, "python": platform.python_version(), "torch": installed("torch"),
            "onnxruntime": installed("onnxruntime"), "numpy": np.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(["neurorack"] + sys.argv[1:])}


def base_trajectories(paths, count: int = 4):
    """Trajectories from audio or descriptor JSON files; without any, procedural impacts (seed 7)."""
    from .. import descriptors as D
    from ..fileio import read_audio

    if not paths:
        from ..train.procedural import SAMPLE_RATE, impact

        return [(f"procedural-{i}", D.analyze(impact(7, i)[0], SAMPLE_RATE)) for i in range(count)]
    out = []
    for p in paths:
        if str(p).endswith(".json"):
            out.append((os.path.basename(p), D.load_trajectory(p)))
        else:
            audio, sr = read_audio(p, D.MAX_SECONDS)
            out.append((os.path.basename(p), D.analyze(audio, sr)))
    return out


def spearman(x, y) -> float:
    """Rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    r = spearmanr(np.asarray(x), np.asarray(y)).statistic
    return float(r) if np.isfinite(r) else 0.0
