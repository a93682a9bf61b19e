"""Tone matching: how near two sounds are, in numbers a musician can read, and why.

The distance between sounds A and B (docs/descriptors.md, "Tone matching"):

- their curves are put on one time line, onsets on the same frame (``morph.align``, as a morph does);
- for each of the seven descriptors, the mean absolute difference of the two curves, in the
  descriptor's normalised units (1 is its whole scale: 80 dB of loudness, 72 semitones of pitch).
  Loudness counts every frame (it says when each sound is heard: a long tail against a short
  one); the six others are weighted at each frame by the quieter sound's loudness, so they
  compare the sounds where both are heard, and pitch also by the more tonal sound's tone_like
  (the pitch of a noise is no note);
- for the timbre code, the mean absolute difference of its 16 band levels in dB, over 80 dB (the
  loudness scale): a dB of colour weighs as a dB of level;
- the distance is the mean of these eight parts, times 100. 0: the same curves and colour; 100:
  opposite ends of every scale. With the shipped model, a factory sound's render, analysed again,
  lies 1 to 9 from the sound; the factory sounds lie 10 to 39 from one another.

The parts, largest first, say why two sounds differ; each is shown with both sounds' values in
the descriptor's own unit (dB, Hz, a note), averaged over the frames with its part's weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import descriptors as D
from .morph import align

TIMBRE_DB = 20.0  # the timbre code's unit (descriptors.timbre_code)
LEVEL_RANGE_DB = 80.0  # the loudness scale: the yardstick for the timbre part
PARTS = (*D.NAMES, "timbre")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Part:
    """One descriptor's (or the timbre's) share of a distance."""

    name: str
    difference: float  # 0..1: a fraction of the descriptor's whole scale
    here: str  # the first sound's value, in the descriptor's unit
    there: str  # the second's

    def describe(self) -> str:
        return f"{self.name} {self.here} vs {self.there}" if self.name != "timbre" else f"timbre {self.here} apart"


@dataclass(frozen=True)
class Match:
    name: str  # the library sound
    distance: float  # 0..100
    parts: tuple[Part, ...]  # largest difference first

    def why(self, count: int = 2) -> str:
        return ", ".join(p.describe() for p in self.parts[:count])


def note_name(midi: float) -> str:
    n = int(round(midi))
    return f"{NOTE_NAMES[n % 12]}{n // 12 - 1}"


def _shown(name: str, value: float) -> str:
    if name == "loudness":
        return f"{value:.0f} dB"
    if name == "brightness":
        return f"{value / 1000:.1f} kHz" if value >= 1000 else f"{value:.0f} Hz"
    if name == "pitch":
        return note_name(value)
    if name == "noisiness":
        return f"{value:.0f} dB"
    if name == "richness":
        return f"{value:.1f} oct"
    return f"{value:.2f}"  # percussivity, tone_like: ratios


def compare(a: D.Trajectory, b: D.Trajectory) -> tuple[float, tuple[Part, ...]]:
    """The distance from a to b (0..100, symmetric) and its parts, largest first."""
    ca, cb = align(a, b)
    loud = D.INDEX["loudness"]
    weight = np.minimum(ca[:, loud], cb[:, loud]).astype(np.float64)  # where both sound
    if weight.sum() <= 0:  # they never sound together: where either does
        weight = np.maximum(ca[:, loud], cb[:, loud]).astype(np.float64)
    if weight.sum() <= 0:  # two silent trajectories: every frame alike
        weight = np.ones_like(weight)
    tonal = weight * np.maximum(ca[:, D.INDEX["tone_like"]], cb[:, D.INDEX["tone_like"]])
    if tonal.sum() <= 0:
        tonal = weight
    parts = []
    for i, name in enumerate(D.NAMES):
        w = {"loudness": np.ones_like(weight), "pitch": tonal}.get(name, weight)
        diff = float(np.average(np.abs(ca[:, i] - cb[:, i]), weights=w))
        here = float(np.average(D.to_physical(name, ca[:, i]), weights=w))
        there = float(np.average(D.to_physical(name, cb[:, i]), weights=w))
        parts.append(Part(name, diff, _shown(name, here), _shown(name, there)))
    timbre_db = float(np.mean(np.abs(a.timbre - b.timbre))) * TIMBRE_DB
    parts.append(Part("timbre", min(1.0, timbre_db / LEVEL_RANGE_DB), f"{timbre_db:.1f} dB", ""))
    distance = 100.0 * float(np.mean([p.difference for p in parts]))
    return distance, tuple(sorted(parts, key=lambda p: -p.difference))


def nearest(query: D.Trajectory, sounds, top: int = 5, exclude: str | None = None) -> list[Match]:
    """The `top` library sounds (``Sound`` objects) nearest to `query`, nearest first; `exclude`
    leaves one name out (a sound's own entry, when asking for its neighbours)."""
    from .library import name_key

    skip = name_key(exclude) if exclude else None
    matches = []
    for sound in sounds:
        if skip is not None and name_key(sound.name) == skip:
            continue
        distance, parts = compare(query, sound.trajectory)
        matches.append(Match(sound.name, distance, parts))
    matches.sort(key=lambda m: (m.distance, m.name))
    return matches[:max(0, top)]
