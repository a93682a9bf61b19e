"""Plots of descriptor curves (matplotlib, the 'train' extra)."""
from __future__ import annotations

import io

import numpy as np

from . import descriptors as D
from .fileio import atomic_open


def plot_trajectory(traj: D.Trajectory, path, title: str = "", audio=None, sample_rate: int = 48000) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(D.NAMES) + (audio is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 1.1 * rows + 0.6), sharex=True)
    t = np.arange(traj.n_frames) / D.FRAME_RATE
    if audio is not None:
        axes[0].plot(np.arange(len(audio)) / sample_rate, audio, lw=0.4, color="k")
        axes[0].set_ylabel("audio", rotation=0, ha="right")
    for ax, (i, name) in zip(axes[rows - len(D.NAMES):], enumerate(D.NAMES)):
        ax.plot(t, traj.curves[:, i], lw=1.2)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(name, rotation=0, ha="right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
