"""`make demo`: render a few impacts from the shipped model, with their descriptor plots.

The trajectories come from the procedural corpus (analysed, so they are real
descriptor curves), and one is morphed by hand to show the controls.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import descriptors as D
from . import load_model
from .fileio import write_wav
from .plots import plot_trajectory
from .train.procedural import SAMPLE_RATE, impact


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out/demo")
    args = parser.parse_args(argv)
    out = Path(args.out)
    gen = load_model()
    print(f"model: {gen.path} ({gen.n_parameters} parameters)")
    for i, label in [(0, "modal"), (2, "boom"), (3, "layered"), (5, "noise-burst")]:
        traj = D.analyze(impact(11, i)[0], SAMPLE_RATE)
        _write(gen, traj, out / f"{i:02d}-{label}")
    traj = D.analyze(impact(11, 2)[0], SAMPLE_RATE)
    bright = traj.curves.copy()
    bright[:, D.INDEX["brightness"]] = 0.85
    bright[:, D.INDEX["noisiness"]] = 0.7
    _write(gen, D.Trajectory(bright, traj.timbre), out / "02-boom-bright-noisy")
    print(f"wrote {out}/")
    return 0


def _write(gen, traj, stem: Path) -> None:
    audio = gen.render(traj)
    write_wav(stem.with_suffix(".wav"), audio, 48000)
    plot_trajectory(traj, stem.with_suffix(".png"), title=stem.name, audio=audio)
    print(f"  {stem.name}.wav  {len(audio) / 48000:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
