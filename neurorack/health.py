"""Health: every counter that says something went wrong, and every problem now, in one place.

The parts that can go wrong (the audio output, the engine, the render process, the board, the
display) keep their own counters, as cheap as an integer the audio callback can bump. The
assembler registers each here once; the main loop calls ``report()`` once a second, which logs
one line per counter that moved, and the Status screen shows them all (``rows()``).

>>> health = Health()
>>> health.count("xruns", "audio underflows (xruns)", lambda: audio.xruns)
>>> health.problem("render", lambda: prerender.error)
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from . import logs

log = logging.getLogger(__name__)


class Health:
    def __init__(self):
        self._counters: dict[str, tuple[str, Callable[[], int]]] = {}
        self._problems: dict[str, Callable[[], str | None]] = {}
        self._seen: dict[str, int] = {}
        self._seen_at = time.monotonic()

    def count(self, key: str, label: str, read: Callable[[], int]) -> None:
        """A counter of things that went wrong (`label` says what one is, in a log line)."""
        self._counters[key] = (label, read)
        self._seen[key] = int(read())

    def problem(self, key: str, read: Callable[[], str | None]) -> None:
        """Something that is wrong now, in words (None when all is well)."""
        self._problems[key] = read

    def counts(self) -> dict[str, int]:
        return {key: int(read()) for key, (_, read) in self._counters.items()}

    def error(self) -> str | None:
        """The first problem there is now (the home screen's ERR badge)."""
        for read in self._problems.values():
            message = read()
            if message:
                return message
        return None

    def report(self) -> list[str]:
        """One line per counter that moved since the last report, logged as a warning."""
        now = time.monotonic()
        lines = []
        for key, count in self.counts().items():
            if count > self._seen[key]:
                lines.append(f"{count - self._seen[key]} {self._counters[key][0]} in the last {now - self._seen_at:.0f} s")
            self._seen[key] = count
        self._seen_at = now
        for line in lines:
            log.warning(line)
        logs.flush_held()
        return lines

    def rows(self) -> dict[str, str]:
        """For the Status screen: every counter, then the warnings logged by kind since start."""
        rows = {key.replace("_", " ").capitalize(): str(count) for key, count in self.counts().items()}
        for kind, count in sorted(logs.counts().items()):
            rows[f"! {kind}"] = str(count)
        return rows
