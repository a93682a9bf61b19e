"""Keeps the impact each gate will play rendered ahead of time, so a gate costs no model compute.

A worker thread waits for a control change, has the renderer render the two impacts (gate 1:
sound A as the CVs modulate it; gate 2: the morph of A and B, modulated the same way) and
publishes each as a reference swap that a gate reads without a lock, as soon as the renderer
says the buffer is playable (its head rendered). A burst of changes costs one render: the
worker always renders the newest state. The gate fired last is rendered first.

MIDI notes play a gate's impact at another pitch (``controls.transpose``: 1 V/oct). A note
whose impact is rendered plays it at once, like a gate; the impacts of the ``NOTE_CACHE`` notes
played last are kept and rendered again when the controls move (after both gates), so a
repeated note or a riff costs no model compute either. A note never heard before is rendered
on arrival, before anything else, and plays as soon as its head is ready (~a block later:
docs/benchmarks.md, "MIDI"). Notes waiting beyond ``NOTE_QUEUE`` (a flood of new pitches) are
dropped, oldest first, and counted.

Buffers are kept alive here until no voice holds them any more, so the audio callback only
drops references and never frees memory (``sys.getrefcount`` tells when nobody else holds one);
then they go back to the renderer.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from .. import descriptors as D
from ..hal.gates import JACKS, Gate
from ..sounds.morph import morph
from .controls import RenderRequest, modulate, transpose
from .renderers import BuffersBusy, Renderer

log = logging.getLogger(__name__)
BUSY_RETRY_S = 0.005
NOTE_CACHE = 6  # notes (gate, pitch) kept rendered besides the two gates' own impacts
NOTE_QUEUE = 8  # new notes waiting for their render


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
        # Notes: (gate, semitones) -> (what it depends on, buffer). The worker writes; a note reads.
        self.notes: dict[tuple[int, int], tuple[tuple, np.ndarray]] = {}
        self._note_order: list[tuple[int, int]] = []  # most recently played last (worker only)
        self._played: deque = deque(maxlen=64)  # notes played from the cache, for the order
        self._note_jobs: deque = deque(maxlen=NOTE_QUEUE)
        self.notes_dropped = 0
        self.note_renders = 0

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
        return any(self.rendered[g] != depends_on(g, request) for g in JACKS) or bool(self._note_jobs)

    def note(self, gate: Gate, semitones: int, play: Callable[[np.ndarray], None]) -> bool:
        """Play `gate`'s impact `semitones` higher: ``play(buffer)`` now if it is rendered (True),
        else on the worker once its head is (False). Any thread but the audio callback."""
        if semitones == 0:
            buffer = self.ready.get(gate)
        else:
            cached = self.notes.get((gate, semitones))
            buffer = cached[1] if cached is not None else None
        self.last_gate = gate
        if buffer is not None:
            if semitones:
                self._played.append((gate, semitones))
            play(buffer)
            return True
        if semitones == 0:
            return False  # the gate's own impact, not rendered yet: as a gate before the first render
        if len(self._note_jobs) >= NOTE_QUEUE:
            self.notes_dropped += 1  # the deque drops its oldest: the newest notes matter most
        self._note_jobs.append((gate, semitones, play))
        self._wake.set()
        return False


    def update(self, interruptible: bool = False) -> int:
        """Render whatever is stale, newest state first; returns how many impacts were rendered.
        `interruptible` (the live worker): the kept notes' renders stop at the next change."""
        done = self._render_new_notes()
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
        done += self._refresh_notes(interruptible)
        self._release_unused()
        return done

    # -- notes ------------------------------------------------------------------------------------
    def _note_key(self, gate: Gate, semitones: int) -> tuple:
        return depends_on(gate, transpose(self._request(), semitones))

    def _render_note(self, gate: Gate, semitones: int, play: Callable[[np.ndarray], None] | None) -> bool:
        request = transpose(self._request(), semitones)
        key = depends_on(gate, request)
        done = []

        def publish(buffer: np.ndarray) -> None:
            self._kept.append(buffer)
            self.notes[(gate, semitones)] = (key, buffer)
            if play is not None and not done:
                done.append(True)
                play(buffer)  # the head is ready: the note sounds while the rest renders
        try:
            self._render_with(impact_trajectory(gate, request, self._sounds), publish)
        except Exception as exc:  # as for a gate: keep playing, say why once
            message = f"cannot render a note {semitones:+d} semitones on gate {int(gate)}: {exc}"
            if message != self.error:
                log.error(message)
            self.error = message
            return False
        self.note_renders += 1
        key_ = (gate, semitones)
        if key_ in self._note_order:
            self._note_order.remove(key_)
        self._note_order.append(key_)
        while len(self._note_order) > NOTE_CACHE:
            self.notes.pop(self._note_order.pop(0), None)  # its buffer is released once no voice plays it
        return True

    def _render_new_notes(self) -> int:
        done = 0
        while self._note_jobs:
            gate, semitones, play = self._note_jobs.popleft()
            cached = self.notes.get((gate, semitones))
            if cached is not None:  # the same note twice in a row: rendered meanwhile
                play(cached[1])
                continue
            done += self._render_note(gate, semitones, play)
        return done

    def _refresh_notes(self, interruptible: bool) -> int:
        """Render the kept notes again for the current controls, most recently played first;
        stop as soon as something newer is waiting (a note, a control change)."""
        while self._played:
            key = self._played.popleft()
            if key in self._note_order:
                self._note_order.remove(key)
                self._note_order.append(key)
        done = 0
        for gate, semitones in reversed(list(self._note_order)):
            if interruptible and (self._note_jobs or self._wake.is_set()):
                break
            cached = self.notes.get((gate, semitones))
            if cached is not None and cached[0] == self._note_key(gate, semitones):
                continue
            done += self._render_note(gate, semitones, None)
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

        self._render_with(traj, publish)

    def _render_with(self, traj: D.Trajectory, publish: Callable[[np.ndarray], None]) -> None:
        def published(buffer: np.ndarray) -> None:
            publish(buffer)
            with self.published:
                self.published.notify_all()

        for _ in range(int(1.0 / BUSY_RETRY_S)):
            try:
                return self.renderer.render(traj, published)
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
                self.update(interruptible=True)

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
