"""Which CPU cores the audio process and the render process run on.

Why: the audio callback is Python and must take the GIL every block. A thread of the audio
process that releases and retakes the GIL in quick succession (Pillow drawing text for the
screen does) wakes the waiting callback thread on another core again and again, and retakes
the GIL before it gets there: measured here (`neurorack bench gil`), a real-time thread then
waited 30-46 ms behind the screen's drawing, and up to a second in other trials. On one
core the real-time callback thread preempts the other thread the moment it lets go, so the
whole audio process shares one core, and the render process gets the others (docs/benchmarks.md).

>>> plan = plan_cores("auto", allowed={0, 1, 2, 3})
>>> plan.audio, plan.render
(frozenset({3}), frozenset({0, 1, 2}))
>>> pin_process(plan.audio)   # every thread of this process, and those it starts later
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorePlan:
    audio: frozenset[int] | None  # None: wherever the kernel puts it
    render: frozenset[int] | None

    def describe(self) -> str:
        if self.audio is None:
            return "not pinned"
        return f"audio {_cores(self.audio)}, render {_cores(self.render)}"


def _cores(cores) -> str:
    return ",".join(str(c) for c in sorted(cores)) if cores else "any"


def allowed_cores() -> set[int]:
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def plan_cores(setting, allowed: set[int] | None = None) -> CorePlan:
    """`setting`: "auto" (the last core for audio, the others for rendering; nothing pinned on
    a single core), "off", or a core number for audio. Raises ValueError for a core this
    process may not use."""
    allowed = allowed_cores() if allowed is None else set(allowed)
    if setting in (None, "off", False) or len(allowed) < 2:
        return CorePlan(None, None)
    if setting == "auto":
        audio = max(allowed)
    else:
        try:
            audio = int(setting)
        except (TypeError, ValueError):
            raise ValueError(f"audio cpu must be 'auto', 'off' or a core number, not {setting!r}") from None
        if audio not in allowed:
            raise ValueError(f"audio cpu {audio} is not one of this machine's cores ({_cores(allowed)})")
    return CorePlan(frozenset({audio}), frozenset(allowed - {audio}))


def pin_process(cores) -> None:
    """Every thread of this process to `cores` (threads started later inherit it); None: no-op."""
    if not cores:
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except ProcessLookupError:  # a thread that ended meanwhile
            pass
    log.debug("audio process pinned to cores %s", _cores(cores))


def raise_to_fifo(priority: int) -> str | None:
    """Put the calling thread (only it: Linux schedules threads) on SCHED_FIFO at `priority`.
    Returns None when it runs real-time (already, as under JACK, or now), else why not; 0: no-op.
    Called once, by the audio callback's thread on its first block."""
    if priority <= 0 or not hasattr(os, "SCHED_FIFO"):
        return None
    try:
        if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
            return None
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:  # EPERM: no LimitRTPRIO / rtprio for this user
        return f"the audio thread stays at normal priority: SCHED_FIFO {priority} refused ({exc.strerror})"
    return None
