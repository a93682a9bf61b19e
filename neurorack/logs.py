"""Warnings rate-limited by kind, not by text: a flood of distinct values says one line a second.

Every warning names its kind (a fixed word in the code: "cv-range", "osc-malformed", ...). A kind
logs at most once per ``INTERVAL_S``; what it held back meanwhile is counted, said on its next
line or by ``flush_held`` (the main loop calls it), and ``counts()`` gives every kind's total
since start (the status screen shows them). Memory is bounded: kinds come from the code, and
any beyond ``MAX_KINDS`` share one.

>>> warn(log, "cv-range", "CV %d: %g V is outside -5..5 V; clamped", 2, 7.5)
"""
from __future__ import annotations

import logging
import threading
import time

INTERVAL_S = 1.0
MAX_KINDS = 64

_lock = threading.Lock()


class _Kind:
    __slots__ = ("logged_at", "held", "total", "logger")

    def __init__(self, logger: logging.Logger):
        self.logged_at, self.held, self.total, self.logger = float("-inf"), 0, 0, logger


_kinds: dict[str, _Kind] = {}


def warn(logger: logging.Logger, kind: str, message: str, *args, level: int = logging.WARNING) -> bool:
    """Log `message % args` unless `kind` logged within the last second; True if it was logged."""
    now = time.monotonic()
    with _lock:
        state = _kinds.get(kind)
        if state is None:
            if len(_kinds) >= MAX_KINDS:
                kind = "other"
            state = _kinds.setdefault(kind, _Kind(logger))
        state.total += 1
        if now - state.logged_at < INTERVAL_S:
            state.held += 1
            return False
        held, state.logged_at, state.held = state.held, now, 0
    if held:
        message += " (and %d more like it held back)"
        args = (*args, held)
    logger.log(level, message, *args)
    return True


def flush_held() -> None:
    """One line for each kind that held warnings back and has been quiet for a second since."""
    now = time.monotonic()
    lines = []
    with _lock:
        for kind, state in _kinds.items():
            if state.held and now - state.logged_at >= INTERVAL_S:
                lines.append((state.logger, kind, state.held))
                state.held, state.logged_at = 0, now
    for logger, kind, held in lines:
        logger.warning("%d more %s warnings held back", held, kind)


def counts() -> dict[str, int]:
    """Warnings per kind since start (logged and held back)."""
    with _lock:
        return {kind: state.total for kind, state in _kinds.items()}


def reset() -> None:
    with _lock:
        _kinds.clear()
