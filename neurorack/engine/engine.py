"""The engine: gates and controls in, one mono block of audio out per callback.

Data flows one way. Hardware threads call ``gate``, ``cv``, ``set_morph`` and ``set_sounds``;
a control change wakes the pre-render worker; a gate takes the impact already rendered for it
and queues it, stamped with the stream frame of the edge's moment; ``process`` (the audio
callback's body) places queued impacts at their sample offsets and mixes the voices.
``process`` takes no lock, calls no torch, logs nothing and allocates no arrays: counters carry
its news to the main loop. Offline (``offline=True``) the clock is the render's own time.

>>> engine = Engine(LocalRenderer(gen), sounds=lambda name: library.get(name).trajectory,
...                 sound_a="Snap", sound_b="Sub Boom")
>>> engine.start(); engine.gate(GateEdge(Gate.IMPACT, True))   # sounds one block after now
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from .. import descriptors as D
from ..hal.gates import JACKS, Gate, GateEdge
from .controls import ControlState, CvAssignment, RenderRequest
from .events import GateRing, OfflineClock, StreamClock
from .prerender import PreRenderer
from .renderers import Renderer
from .voices import VoicePool


class Engine:
    def __init__(self, renderer: Renderer, sounds: Callable[[str], D.Trajectory],
                 sound_a: str, sound_b: str, sample_rate: int = 48000, block_size: int = 128,
                 voices: int = 4, level_db: float = 0.0, cv_ranges: dict[int, str] | None = None,
                 offline: bool = False):
        self.sample_rate, self.block_size = sample_rate, block_size
        self.set_level(level_db)
        self.controls = ControlState(sound_a, sound_b, ranges=dict(cv_ranges or {}))
        self._lock = threading.Lock()  # guards `controls` between hardware threads and the worker
        self.clock = (OfflineClock if offline else StreamClock)(sample_rate, block_size)
        self.ring = GateRing()
        self.voices = VoicePool(voices, block_size, fade_samples=max(1, round(0.005 * sample_rate)))
        self.prerender = PreRenderer(renderer, self.request, sounds)
        self.frame = 0  # frames produced so far: the stream clock
        self.gates = np.zeros(len(Gate), np.int64)  # accepted triggers, indexed by Gate
        self.gate_on = np.zeros(len(Gate), bool)  # what each gate jack reads now (screen)
        self.not_ready = 0  # gates that came before the first render finished

    # -- control side (any thread but the audio callback) ---------------------------------------
    def request(self) -> RenderRequest:
        with self._lock:
            return self.controls.request()

    def _change(self, apply: Callable[[ControlState], None]) -> None:
        with self._lock:
            apply(self.controls)
        self.prerender.changed()

    def cv(self, number: int, volts: float) -> None:
        """A CV input now reads `volts` (module volts: finite, calibrated and clamped by the HAL)."""
        self._change(lambda c: c.volts.__setitem__(number, float(volts)))

    def set_morph(self, amount: float) -> None:
        """The encoder's morph amount, 0..1."""
        self._change(lambda c: setattr(c, "morph", min(1.0, max(0.0, float(amount)))))

    def set_sounds(self, sound_a: str | None = None, sound_b: str | None = None) -> None:
        def apply(c):
            c.sound_a = sound_a or c.sound_a
            c.sound_b = sound_b or c.sound_b
        self._change(apply)

    def assign(self, number: int, assignment: CvAssignment) -> None:
        """CV input `number` now drives ``assignment.target`` (validated when the assignment was made)."""
        self._change(lambda c: c.assignments.__setitem__(number, assignment))

    def cc(self, number: int, volts: float) -> None:
        """MIDI CC `number` now reads `volts` on the scale of what it drives (engine/midi.py)."""
        self._change(lambda c: c.cc.__setitem__(number, float(volts)))

    def set_cc_map(self, cc_map: dict) -> None:
        """What each CC drives (CcMapping: as a CV input, or a target of its own)."""
        self._change(lambda c: setattr(c, "cc_map", dict(cc_map)))

    def note(self, edge: GateEdge, semitones: int = 0, gain: float = 1.0) -> None:
        """A MIDI note: a gate edge whose impact plays `semitones` above the root (1 V/oct) at
        `gain` (its velocity). Pre-rendered (the root, a note played lately) it is queued at
        once, as a gate is; else the worker renders it first and it sounds as soon as its head
        is ready, placed by the edge's moment where that is still ahead."""
        if edge.gate not in JACKS:
            return
        self.gate_on[edge.gate] = edge.on
        if not edge.on:
            return
        gate, stamp = edge.gate, self.clock.frame_at(edge.at_ns)

        def play(buffer):
            if self.ring.push(gate, stamp, buffer, gain):
                self.gates[gate] += 1
        if not self.prerender.note(gate, semitones, play) and semitones == 0:
            self.not_ready += 1

    def set_level(self, level_db: float) -> None:
        """Output level in dB (a float the callback reads; one assignment, no lock needed)."""
        self.level = float(10 ** (level_db / 20))

    def audition(self, name: str) -> None:
        """Play sound `name` once, modulated by the CVs, without selecting it: rendered by the
        worker, then queued like a gate that has no jack."""
        self.prerender.audition(name, lambda buffer: self.ring.push(Gate.AUDITION, self.clock.frame_now(), buffer))

    def snapshot(self) -> ControlState:
        with self._lock:
            return self.controls.copy()

    def gate(self, edge: GateEdge) -> None:
        """A gate edge. A rising edge queues the impact rendered for that gate, stamped with the
        stream frame of the edge's moment; it sounds one block after the stamp."""
        if edge.gate not in JACKS:
            return
        self.gate_on[edge.gate] = edge.on
        if not edge.on:
            return
        buffer = self.prerender.fired(edge.gate)
        if buffer is None:
            self.not_ready += 1
            return
        if self.ring.push(edge.gate, self.clock.frame_at(edge.at_ns), buffer):
            self.gates[edge.gate] += 1

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.prerender.start()

    def stop(self) -> None:
        self.prerender.stop()

    # -- the audio callback -------------------------------------------------------------------
    def process(self, out: np.ndarray) -> None:
        """Fill `out` (a mono float32 block) with the next frames of the output stream."""
        n = len(out)
        start = self.frame
        self.clock.begin_block(start)
        ring, delay = self.ring, self.block_size
        end = start + n
        while True:
            stamp = ring.peek_stamp()
            if stamp is None or stamp + delay >= end:
                break
            gate, stamp, buffer, gain = ring.pop()
            self.voices.trigger(buffer, max(0, stamp + delay - start), self.level * gain)
        self.voices.mix(out)
        self.frame = end
