"""Morphing two impacts: interpolate their descriptor curves aligned at their onsets.

Rendering the interpolated curves gives one hybrid impact (the loudness, brightness and pitch
of the morph are in between), not a crossfade of two renders. Pitch is interpolated as a
normalised MIDI note, loudness in dB: both perceptually even steps.
"""
from __future__ import annotations

import numpy as np

from ..descriptors import INDEX, Trajectory

ONSET_BELOW_PEAK = 0.1875  # 15 dB on the 80 dB loudness scale


def onset_frame(traj: Trajectory) -> int:
    """First frame within 15 dB of the sound's loudest frame."""
    loud = traj.curves[:, INDEX["loudness"]]
    return int(np.argmax(loud >= loud.max() - ONSET_BELOW_PEAK))


def _shift_and_pad(curves: np.ndarray, lead: int, length: int) -> np.ndarray:
    """Prepend `lead` silent frames and append silent frames up to `length`."""
    def silent(frame, n):
        block = np.repeat(frame[None], n, axis=0)
        block[:, INDEX["loudness"]] = 0.0
        block[:, INDEX["percussivity"]] = 0.0
        return block

    out = np.concatenate([silent(curves[0], lead), curves]) if lead else curves
    if len(out) < length:
        out = np.concatenate([out, silent(curves[-1], length - len(out))])
    return out


def align(a: Trajectory, b: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """Both sounds' curves on one time line: onsets on the same frame (the later one), the
    shorter padded with silence to the longer's end."""
    onset_a, onset_b = onset_frame(a), onset_frame(b)
    lead_a, lead_b = max(0, onset_b - onset_a), max(0, onset_a - onset_b)
    length = max(a.n_frames + lead_a, b.n_frames + lead_b)
    return _shift_and_pad(a.curves, lead_a, length), _shift_and_pad(b.curves, lead_b, length)


def morph(a: Trajectory, b: Trajectory, amount: float) -> Trajectory:
    """amount 0 gives a, 1 gives b (both aligned at the later onset); values outside are clamped."""
    amount = float(np.clip(amount if np.isfinite(amount) else 0.0, 0.0, 1.0))
    ca, cb = align(a, b)
    curves = (1.0 - amount) * ca + amount * cb
    timbre = (1.0 - amount) * a.timbre + amount * b.timbre
    return Trajectory(curves.astype(np.float32), timbre.astype(np.float32))
