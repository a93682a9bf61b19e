"""A sound's curves as six musical handles, and back: attack, decay, pitch drop, noise,
brightness, ring. Editing a handle edits the curves so that measuring them again gives the
handle's new value (to a frame, or to the clipping of a curve at its scale's end); everything
the handle does not name is left as it was. "Vary" moves the handles and the timbre code a
little at random, repeatably (a seed). docs/descriptors.md, "Shaping a sound", says what each
handle measures.

- attack: from the first frame within 30 dB of the peak to the peak (the rise is re-timed);
- decay: from the peak to the first frame 30 dB below it (everything after the peak is re-timed);
- pitch drop: the pitch at the peak minus the pitch where the decay ends, in semitones (a
  glide is added over the decay);
- noise, brightness, ring: the loudness-weighted means of noisiness, brightness and tone_like
  (each curve is moved up or down as a whole).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .. import descriptors as D

WITHIN_DB = 30.0  # attack and decay are timed to and from 30 dB below the peak
_BELOW = WITHIN_DB / 80.0  # the same on the loudness scale
_LOUD, _PITCH = D.INDEX["loudness"], D.INDEX["pitch"]
SEMITONE = 1.0 / 72.0  # on the pitch scale (MIDI 24..96)


@dataclass(frozen=True)
class Handle:
    """How one handle reads, steps and is bounded (the Shape screen and the panel use these)."""

    key: str
    label: str
    low: float
    high: float
    step: float
    geometric: bool = False  # a step multiplies (by 2 ** step) rather than adds

    def stepped(self, value: float, steps: int) -> float:
        value = value * 2.0 ** (self.step * steps) if self.geometric else value + self.step * steps
        return float(min(self.high, max(self.low, value)))

    def shown(self, value: float) -> str:
        if self.key == "attack":
            return f"{value * 1000:.0f} ms"
        if self.key == "decay":
            return f"{value:.2f} s"
        if self.key == "pitch_drop":
            return f"{value:+.1f} st"
        if self.key == "brightness":
            return f"{value / 1000:.1f} kHz" if value >= 1000 else f"{value:.0f} Hz"
        return f"{value * 100:.0f}%"


HANDLES = (
    Handle("attack", "Attack", 0.0, 1.0, 0.01),
    Handle("decay", "Decay", 0.02, 20.0, 0.25, geometric=True),
    Handle("pitch_drop", "Pitch drop", -24.0, 24.0, 1.0),
    Handle("noise", "Noise", 0.0, 1.0, 0.05),
    Handle("brightness", "Brightness", 50.0, 12000.0, 1 / 6, geometric=True),
    Handle("ring", "Ring", 0.0, 1.0, 0.05),
)
BY_KEY = {h.key: h for h in HANDLES}
_MEANS = {"noise": D.INDEX["noisiness"], "brightness": D.INDEX["brightness"], "ring": D.INDEX["tone_like"]}


@dataclass(frozen=True)
class Handles:
    attack: float  # seconds
    decay: float  # seconds
    pitch_drop: float  # semitones (positive: falls)
    noise: float  # 0..1, noisiness
    brightness: float  # Hz, spectral centroid
    ring: float  # 0..1, tone_like

    def get(self, key: str) -> float:
        return getattr(self, key)

    def with_value(self, key: str, value: float) -> "Handles":
        h = BY_KEY[key]
        return replace(self, **{key: float(min(h.high, max(h.low, value)))})


def _landmarks(curves: np.ndarray) -> tuple[int, int, int]:
    """(start of the rise, peak, end of the decay) in frames."""
    loud = curves[:, _LOUD]
    peak = int(np.argmax(loud))
    threshold = loud[peak] - _BELOW
    start = int(np.argmax(loud[:peak + 1] >= threshold))
    below = np.flatnonzero(loud[peak:] < threshold)
    end = peak + int(below[0]) if below.size else len(loud) - 1
    return start, peak, end


def _weights(curves: np.ndarray) -> np.ndarray:
    w = curves[:, _LOUD].astype(np.float64)
    return w if w.sum() > 0 else np.ones_like(w)


def handles(traj: D.Trajectory) -> Handles:
    c = traj.curves
    start, peak, end = _landmarks(c)
    w = _weights(c)
    drop = (float(c[peak, _PITCH]) - float(c[end, _PITCH])) / SEMITONE
    return Handles(
        attack=(peak - start) / D.FRAME_RATE,
        decay=(end - peak) / D.FRAME_RATE,
        pitch_drop=drop,
        noise=float(np.average(c[:, _MEANS["noise"]], weights=w)),
        brightness=float(D.to_physical("brightness", np.average(c[:, _MEANS["brightness"]], weights=w))),
        ring=float(np.average(c[:, _MEANS["ring"]], weights=w)),
    )


def _retime(segment: np.ndarray, frames: int) -> np.ndarray:
    """The segment's curves stretched or squeezed to `frames` frames (linear interpolation)."""
    if frames == len(segment):
        return segment
    old = np.linspace(0.0, 1.0, len(segment))
    new = np.linspace(0.0, 1.0, frames)
    return np.stack([np.interp(new, old, segment[:, i]) for i in range(segment.shape[1])], axis=1)


def _set_attack(c: np.ndarray, seconds: float) -> np.ndarray:
    start, peak, _ = _landmarks(c)
    frames = int(round(seconds * D.FRAME_RATE)) + 1  # the rise, peak included
    if peak == start:  # no rise to stretch: a rise from 30 dB below in dB steps, the rest as at the peak
        rise = np.repeat(c[peak:peak + 1], frames, axis=0)
        rise[:, _LOUD] = np.linspace(c[peak, _LOUD] - _BELOW * 0.999, c[peak, _LOUD], frames)
    else:
        rise = _retime(c[start:peak + 1], frames)
        rise[-1] = c[peak]
        rise[:-1, _LOUD] = np.minimum(rise[:-1, _LOUD], c[peak, _LOUD] - 1e-4)  # the peak stays the peak
    return np.concatenate([c[:start], rise, c[peak + 1:]])


def _set_decay(c: np.ndarray, seconds: float) -> np.ndarray:
    _, peak, end = _landmarks(c)
    old = max(1, end - peak)
    new = max(1, int(round(seconds * D.FRAME_RATE)))
    tail = c[peak:]
    frames = min(D.MAX_FRAMES - peak, max(2, int(round((len(tail) - 1) * new / old)) + 1))
    return np.concatenate([c[:peak], _retime(tail, frames)])


def _set_pitch_drop(c: np.ndarray, semitones: float, current: float) -> np.ndarray:
    _, peak, end = _landmarks(c)
    c = c.copy()
    shift = (current - semitones) * SEMITONE  # added where the decay ends, ramped in from the peak
    ramp = np.zeros(len(c))
    if end > peak:
        ramp[peak:end + 1] = np.linspace(0.0, 1.0, end - peak + 1)
        ramp[end + 1:] = 1.0
    c[:, _PITCH] = c[:, _PITCH] + shift * ramp
    return c


def _set_mean(c: np.ndarray, column: int, target: float) -> np.ndarray:
    """Move the curve up or down so that its loudness-weighted mean is `target`. The curve is
    clipped at its scale's ends, so the shift is found by bisection (the mean rises with it)."""
    c = c.copy()
    w = _weights(c)
    low, high = -1.0, 1.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        if np.average(np.clip(c[:, column] + mid, 0.0, 1.0), weights=w) < target:
            low = mid
        else:
            high = mid
    c[:, column] = np.clip(c[:, column] + 0.5 * (low + high), 0.0, 1.0)
    return c


def reshape(traj: D.Trajectory, new: Handles) -> D.Trajectory:
    """The trajectory with its handles set to `new` (handles equal to its own change nothing)."""
    now = handles(traj)
    c = traj.curves.astype(np.float64)
    if not math.isclose(new.attack, now.attack, abs_tol=0.5 / D.FRAME_RATE):
        c = _set_attack(c, new.attack)
    if not math.isclose(new.decay, now.decay, abs_tol=0.5 / D.FRAME_RATE):
        c = _set_decay(c, new.decay)
    # Re-timing moves the weighted means and the decay's end: measure again, then set the rest.
    current = handles(D.Trajectory(c.astype(np.float32), traj.timbre))
    if not math.isclose(new.pitch_drop, current.pitch_drop, abs_tol=0.05):
        c = _set_pitch_drop(c, new.pitch_drop, current.pitch_drop)
    for key, column in _MEANS.items():
        target, before = new.get(key), current.get(key)
        if key == "brightness":
            target, before = float(D.from_physical(key, target)), float(D.from_physical(key, before))
        if not math.isclose(target, before, abs_tol=1e-4):
            c = _set_mean(c, column, target)
    return D.trajectory_from_array(np.clip(c, 0.0, 1.0), traj.timbre, "shaped sound")


# How far "Vary" moves each handle (one standard deviation) and the timbre code.
VARY_SPREAD = {"attack": 0.01, "decay": 0.25, "pitch_drop": 1.5, "noise": 0.05, "brightness": 0.25, "ring": 0.05}
VARY_TIMBRE = 0.1  # 2 dB per band


def vary(traj: D.Trajectory, seed: int, amount: float = 1.0) -> D.Trajectory:
    """A sound near `traj`: each handle and timbre band moved by a small random step (`amount`
    scales them all). The same seed gives the same sound."""
    rng = np.random.default_rng(seed)
    now = handles(traj)
    moved = now
    for h in HANDLES:
        step = rng.normal(0.0, VARY_SPREAD[h.key] * amount)
        value = now.get(h.key) * 2.0 ** step if h.geometric else now.get(h.key) + step
        moved = moved.with_value(h.key, value)
    shaped = reshape(traj, moved)
    timbre = np.clip(traj.timbre + rng.normal(0.0, VARY_TIMBRE * amount, D.TIMBRE_BANDS), -3, 3)
    return D.Trajectory(shaped.curves, timbre.astype(np.float32))
