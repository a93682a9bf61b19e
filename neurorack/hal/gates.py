"""The gates, named once, and the one value a gate edge carries from the board to the engine.

Gate 1 fires an impact (sound A, as the CVs modulate it), gate 2 the morph of A and B. The
screens' audition plays like a gate that has no jack. ``GateEdge.at_ns`` is the edge's moment,
``time.monotonic_ns()`` where it happened (the GPIO callback, the kernel's stamp of a GPIO
alert or an OSC packet): whoever handles it later places it by that moment, not by its own.
Offline, an event at t seconds carries ``round(t * 1e9)`` and lands on frame ``round(t * rate)``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum


class Gate(IntEnum):
    AUDITION = 0  # the screens' "audition": no jack
    IMPACT = 1  # gate 1: sound A
    MORPH = 2  # gate 2: the morph of A and B


JACKS = (Gate.IMPACT, Gate.MORPH)


@dataclass(frozen=True)
class GateEdge:
    gate: Gate
    on: bool
    at_ns: int = field(default_factory=time.monotonic_ns)

    @classmethod
    def at_seconds(cls, gate: int, on: bool, t: float) -> "GateEdge":
        """An edge of an offline render or a scripted screen tour, `t` seconds from the start."""
        return cls(Gate(gate), on, round(t * 1e9))
