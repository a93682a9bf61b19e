"""What the screens, the menu and the panel read of the module: one immutable view.

``module.view()`` takes it in one go (the engine's controls under their lock, the counters as
they are); the UI draws from it and acts only through the module's methods. ``ui/`` never
imports ``module.py``: the module is what hands the UI this view.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..engine.controls import CvAssignment
from ..hal.gates import Gate


@dataclass(frozen=True)
class CvView:
    number: int
    range: str  # "bipolar" | "unipolar"
    volts: float  # module volts, calibrated
    assignment: CvAssignment | None  # None: the input drives nothing


@dataclass(frozen=True)
class MidiView:
    """MIDI as the screens show it: the input, activity, the last message, the learn in progress."""

    ports: tuple[str, ...] = ()  # the open inputs
    on: bool = False  # a MIDI input is open (or waiting for its device)
    active: bool = False  # a message came within the last half second
    messages: int = 0
    last: str | None = None  # the newest message, short ("on 60 v100 c1")
    learning: str | None = None  # the target MIDI learn waits to give the next controller
    controllers: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))  # CC -> what it drives


@dataclass(frozen=True)
class ModuleView:
    sound_a: str
    sound_b: str
    morph: float  # the encoder's setting, 0..1
    morph_now: float  # with the CVs assigned to the morph added: what gate 2 plays
    gates_on: tuple[bool, ...]  # indexed by Gate: what each jack reads now
    gate_counts: tuple[int, ...]  # indexed by Gate: triggers accepted so far
    cvs: tuple[CvView, ...]
    sounds: tuple[str, ...]  # the library, in browsing order
    error: str | None  # a problem now (render, audio device), for the ERR badge
    xruns: int
    health: Mapping[str, int]  # every counter of what went wrong
    renders: int
    rendering: bool  # a control moved and its impact is not rendered yet
    midi: MidiView = MidiView()

    def gate_on(self, gate: Gate) -> bool:
        return self.gates_on[gate]

    def cv(self, number: int) -> CvView:
        return next(c for c in self.cvs if c.number == number)


def frozen_mapping(values: dict) -> Mapping:
    return MappingProxyType(dict(values))

