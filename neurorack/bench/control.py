"""`neurorack bench control`: hold each descriptor at five levels over real base trajectories,
render, re-analyse, and check the measured descriptor follows (Spearman rank correlation).
The descriptor held at a level is marked moved (Trajectory.moved), as a CV turning it would be:
where it and a held one cannot both be met, it wins, as in the module.

Measured over the frames where the base is audible (within 40 dB of its peak loudness), so
the silent tail, where shape descriptors are held by definition, does not dilute the answer.
"""
from __future__ import annotations

import os

import numpy as np

from .common import base_trajectories, environment, spearman

LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)
SPEARMAN_TARGET = 0.9
SPAN_TARGET = 0.5


def bench_control(base_paths=(), model_path=None) -> dict:
    from .. import descriptors as D
    from .. import load_model

    gen = load_model(model_path)
    bases = base_trajectories(list(base_paths))
    rows = []
    for name, traj in bases:
        loud = traj.curves[:, D.INDEX["loudness"]]
        audible = loud >= loud.max() - 0.5  # 0.5 of the 80 dB scale = 40 dB
        for d, descriptor in enumerate(D.NAMES):
            moved = D.Trajectory.turned(descriptor)
            measured = []
            for level in LEVELS:
                curves = traj.curves.copy()
                curves[:, d] = level
                audio = gen.render(D.Trajectory(curves, traj.timbre, moved))
                again = D.analyze(audio, 48000).curves
                frames = min(len(again), len(audible))
                measured.append(float(again[:frames][audible[:frames], d].mean()))
            rows.append({"base": name, "descriptor": descriptor, "levels": list(LEVELS),
                         "measured": [round(m, 4) for m in measured], "spearman": round(spearman(LEVELS, measured), 3),
                         "span": round(measured[-1] - measured[0], 4)})
    summary = {}
    for descriptor in D.NAMES:
        mine = [r for r in rows if r["descriptor"] == descriptor]
        rs = [r["spearman"] for r in mine]
        # How far the measured descriptor moves while the setting goes from 0.1 to 0.9 (ideal: 0.8):
        # a rank correlation of 1 with a span of 0.01 would be a control nobody hears.
        spans = [r["span"] for r in mine]
        summary[descriptor] = {"spearman_min": min(rs), "spearman_mean": round(float(np.mean(rs)), 3),
                               "spearman_ok": sum(r >= SPEARMAN_TARGET for r in rs),
                               "span_min": round(min(spans), 4), "span_mean": round(float(np.mean(spans)), 3),
                               "span_ok": sum(s >= SPAN_TARGET for s in spans)}
    summary["bases"] = [n for n, _ in bases]
    summary["target"] = (f"Spearman >= {SPEARMAN_TARGET} and span >= {SPAN_TARGET} for every descriptor on every base "
                         "(span = measured(0.9) - measured(0.1), ideal 0.8); *_ok count the bases that meet it")
    return {"summary": summary, "rows": rows, "environment": environment(), "model": os.path.relpath(gen.path)}
