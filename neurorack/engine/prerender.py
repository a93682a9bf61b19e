"""Keeps the impact each gate will play rendered ahead of time, so a gate costs no model compute.

A worker thread waits for a control change, has the renderer render the two impacts (gate 1:
sound A as the CVs modulate it; gate 2: the morph of A and B, modulated the same way) and
publishes each as a reference swap that a gate reads without a lock, as soon as the renderer
says the buffer is playable (its head rendered). A burst of changes costs one render: the
worker always renders the newest state. The gate fired last is rendered first.

Buffers are kept alive here until no voice holds them any more, so the audio callback only
drops references and never frees memory (``sys.getrefcount`` tells when nobody else holds one);
then they go back to the renderer.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable

import numpy as np

from .. import descriptors as D
from ..hal.gates import JACKS, Gate
from ..sounds.morph import morph
from .controls import RenderRequest, modulate
from .renderers import BuffersBusy, Renderer

log = logging.getLogger(__name__)
BUSY_RETRY_S = 0.005


def impact_trajectory(gate: Gate, request: RenderRequest, sounds: Callable[[str], D.Trajectory]) -> D.Trajectory:
    a = sounds(request.sound_a)
    traj = a if gate == Gate.IMPACT else morph(a, sounds(request.sound_b), request.morph)
    return modulate(traj, request.shifts)


def _count_unused_refs() -> int:
    """The reference count of a buffer held only by a list being looped over, as
    ``_release_unused`` sees it (measured, since interpreters differ)."""
    for buffer in [np.empty(0)]:
        return sys.getrefcount(buffer)
    raise AssertionError


_UNUSED_REFS = _count_unused_refs()


def depends_on(gate: Gate, request: RenderRequest) -> tuple:
    """The part of the request a gate's impact depends on: gate 1 ignores B and the morph."""
    return (request.sound_a, request.shifts) if gate == Gate.IMPACT else (request.sound_a, request.sound_b, request.morph,
                                                                   request.shifts)


class PreRenderer:
    """``renderer``: a Renderer (renderers.py); ``request()`` returns the current RenderRequest;
    ``sounds(name) -> Trajectory``."""

    def __init__(self, renderer: Renderer, request: Callable[[], RenderRequest],
                 sounds: Callable[[str], D.Trajectory]):
        self.renderer, self._request, self._sounds = renderer, request, sounds
        self.ready: dict[int, np.ndarray | None] = {g: None for g in JACKS}  # what a gate plays now
        self.rendered: dict[int, tuple | None] = {g: None for g in JACKS}  # what each ready impact depends on
        self.last_gate = Gate.IMPACT
        self.renders = 0
        self.error: str | None = None  # the last render failure, for the log and the screen
        self._kept: list[np.ndarray] = []
        self._audition: tuple[str, Callable[[np.ndarray], None]] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = threading.Condition()  # notified after every publish (benchmarks wait on it)

    # -- control side ---------------------------------------------------------------------------
    def changed(self) -> None:
        """A control moved: render again (any thread; returns at once)."""
        self._wake.set()

    def audition(self, name: str, play: Callable[[np.ndarray], None]) -> None:
        """Render sound `name` as the controls modulate it, then ``play(buffer)`` (any thread)."""
        self._audition = (name, play)
        self._wake.set()

    def fired(self, gate: Gate):
        """The impact gate `gate` plays now (None before its first render); that gate is then
        rendered first on the next change (any thread, no lock: one reference read)."""
        self.last_gate = gate
        return self.ready[gate]

    def pending(self) -> bool:
        request = self._request()
        return any(self.rendered[g] != depends_on(g, request) for g in JACKS)

    def update(self) -> int:
        """Render whatever is stale, newest state first; returns how many impacts were rendered."""
        done = 0
        if self._audition is not None:
            (name, play), self._audition = self._audition, None
            done += self._render_audition(name, play)
        order = sorted(JACKS, key=lambda g: g != self.last_gate)  # the gate fired last first
        for gate in order:
            request = self._request()
            key = depends_on(gate, request)
            if self.rendered[gate] == key:
                continue
            needs = (request.sound_a, request.morph, request.sound_b) if gate == Gate.MORPH else (request.sound_a,)
            try:
                self._render(gate, impact_trajectory(gate, request, self._sounds))
            except Exception as exc:  # a bad sound or a model fault: keep playing the last good render
                message = f"cannot render gate {int(gate)} ({', '.join(map(str, needs))}): {exc}"
                if message != self.error:
                    log.error(message)
                self.error = message
                self.rendered[gate] = key  # do not retry the same failing state in a loop
                continue
            self.error = None
            self.rendered[gate] = key
            self.renders += 1
            done += 1
        self._release_unused()
        return done

    def _render_audition(self, name: str, play: Callable[[np.ndarray], None]) -> int:
        request = self._request()
        try:
            self._render(Gate.AUDITION, modulate(self._sounds(name), request.shifts))
            buffer = self.ready.pop(Gate.AUDITION)  # no jack's; published only to be kept until played out
        except Exception as exc:
            self.error = f"cannot audition {name}: {exc}"
            log.error(self.error)
            return 0
        play(buffer)
        return 1

    def _render(self, gate: Gate, traj: D.Trajectory) -> None:
        def publish(buffer: np.ndarray) -> None:
            self._kept.append(buffer)
            self.ready[gate] = buffer  # the swap a gate sees
            with self.published:
                self.published.notify_all()

        for _ in range(int(1.0 / BUSY_RETRY_S)):
            try:
                return self.renderer.render(traj, publish)
            except BuffersBusy:  # every buffer is playing: wait for a voice to finish with one
                time.sleep(BUSY_RETRY_S)
                self._release_unused()
        raise BuffersBusy("every impact buffer stayed in use for 1 s")

    def _release_unused(self) -> None:
        # At the baseline count only this list and the loop hold a buffer: no voice, ring slot or
        # published gate does, and none can take it again, so dropping it here frees it here.
        keep = []
        for buffer in self._kept:
            if sys.getrefcount(buffer) > _UNUSED_REFS:
                keep.append(buffer)
            else:
                self.renderer.release(buffer)
        self._kept = keep

    # -- the worker -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prerender", daemon=True)
        self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            # The timeout lets buffers that voices finished with be released while nothing changes.
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            if not self._stop.is_set():
                self.update()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until both gates have an impact for the current state (start-up, tests)."""
        deadline = time.monotonic() + timeout
        with self.published:
            while self.pending() or any(self.ready[g] is None for g in JACKS):
                left = deadline - time.monotonic()
                if left <= 0 or (self.error and all(self.ready[g] is None for g in JACKS)):
                    return False
                self.published.wait(min(left, 0.05))
        return True
