"""What the knobs and CVs mean: assignments, modulation, and the control state a render needs.

A CV input is assigned to a descriptor or to the morph amount, with a depth and an offset:

    amount = offset + depth * volts / span        span: 5 V (bipolar), 10 V (unipolar)

and the amount is added to that descriptor's normalised curve (every frame, clipped to 0..1),
or to the morph amount set with the encoder. Pitch is the exception a musician expects:
1 V/oct, so depth 1 moves ``12 * volts`` semitones and the offset is in volts.

>>> a = CvAssignment("richness", depth=0.5)
>>> round(a.amount(2.5, "bipolar"), 3)   # +2.5 V at half depth: a quarter of the range
0.25
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .. import descriptors as D
from ..errors import NeurorackError
from ..hal.cv import RANGES

MORPH = "morph"
TARGETS = (*D.NAMES, MORPH)
PITCH_SEMITONES = (D.SCALES["pitch"].high - D.SCALES["pitch"].low)  # the normalised pitch axis, in semitones


@dataclass(frozen=True)
class CvAssignment:
    target: str
    depth: float = 1.0
    offset: float = 0.0

    def __post_init__(self):
        if self.target not in TARGETS:
            raise NeurorackError(f"a CV can modulate {', '.join(TARGETS)}; not {self.target!r}")
        if not (math.isfinite(self.depth) and math.isfinite(self.offset)):
            raise NeurorackError(f"CV depth and offset must be numbers (got {self.depth}, {self.offset})")

    def amount(self, volts: float, range_: str = "bipolar") -> float:
        """The normalised shift this input adds to its target (pitch: 1 V/oct)."""
        if self.target == "pitch":
            return 12.0 * (self.offset + self.depth * volts) / PITCH_SEMITONES
        low, high = RANGES[range_]
        span = max(abs(low), abs(high))
        return self.offset + self.depth * volts / span


DEFAULT_ASSIGNMENTS = {
    1: CvAssignment(MORPH),
    2: CvAssignment("richness"),
    3: CvAssignment("noisiness"),
    4: CvAssignment("pitch"),
}


@dataclass(frozen=True)
class RenderRequest:
    """Everything that decides the two impacts the gates will play. Equal requests render equally."""

    sound_a: str
    sound_b: str
    morph: float
    shifts: tuple[float, ...]  # per descriptor, in NAMES order


@dataclass
class ControlState:
    """Sounds, encoder morph amount and CV volts, as the engine's control thread sees them."""

    sound_a: str
    sound_b: str
    morph: float = 0.5  # the encoder's setting; a CV assigned to the morph adds to it
    assignments: dict[int, CvAssignment] = field(default_factory=lambda: dict(DEFAULT_ASSIGNMENTS))
    ranges: dict[int, str] = field(default_factory=dict)  # CV input -> "bipolar" | "unipolar"
    volts: dict[int, float] = field(default_factory=dict)
    # MIDI CCs (engine/midi.py): what each drives (a CcMapping: as a CV input, or a target of its
    # own) and the volts it reads now; added to the CVs.
    cc_map: dict = field(default_factory=dict)
    cc: dict[int, float] = field(default_factory=dict)

    def request(self) -> RenderRequest:
        shifts = [0.0] * len(D.NAMES)
        morph = self.morph
        sources = [(a, self.volts.get(n, 0.0), self.ranges.get(n, "bipolar")) for n, a in self.assignments.items()]
        for number, volts in self.cc.items():
            mapping = self.cc_map.get(number)
            if mapping is None:
                continue
            if mapping.cv is not None:  # acts as that CV input: its assignment, its range
                if mapping.cv in self.assignments:
                    sources.append((self.assignments[mapping.cv], volts, self.ranges.get(mapping.cv, "bipolar")))
            else:
                sources.append((mapping.assignment(), volts, "bipolar"))
        for assignment, volts, range_ in sources:
            amount = assignment.amount(volts, range_)
            if assignment.target == MORPH:
                morph += amount
            else:
                shifts[D.INDEX[assignment.target]] += amount
        return RenderRequest(self.sound_a, self.sound_b, min(1.0, max(0.0, morph)), tuple(shifts))

    def copy(self) -> "ControlState":
        return replace(self, assignments=dict(self.assignments), ranges=dict(self.ranges), volts=dict(self.volts),
                       cc_map=dict(self.cc_map), cc=dict(self.cc))


def transpose(request: RenderRequest, semitones: float) -> RenderRequest:
    """The request `semitones` higher, through the CVs' own 1 V/oct path (semitones / 12 volts on
    the pitch), so a MIDI note and a CV agree on what a semitone is."""
    if not semitones:
        return request
    shifts = list(request.shifts)
    shifts[D.INDEX["pitch"]] += CvAssignment("pitch").amount(semitones / 12)
    return replace(request, shifts=tuple(shifts))


def modulate(traj: D.Trajectory, shifts) -> D.Trajectory:
    """Add each descriptor's shift to its whole curve, clipped to the normalised range, and say
    how far each is moved (Trajectory.moved: where two knobs cannot both be met, the moved wins)."""
    shifts = np.asarray(shifts, np.float32)
    if not shifts.any():
        return traj
    curves = np.clip(traj.curves + shifts[None, :], 0.0, 1.0).astype(np.float32)
    return D.Trajectory(curves, traj.timbre, tuple(float(abs(s)) for s in shifts))
