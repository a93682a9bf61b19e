"""`neurorack bench midi`: MIDI in, measured through a real MIDI path on a JACK server's dummy
driver (48 kHz, 128 frames), as issue 14 asks.

- backend: python-rtmidi's JACK input (what hal/midi.py opens) against JACK-Client's own MIDI
  port (Python in the server's process thread): arrival delay from the moment a keyboard client
  wrote the event, and the CPU each costs while no MIDI comes, side by side, in turns (ABAB);
- note to sound: a JACK keyboard client sends note-ons and records the module's output in the
  same client, so the delay is counted in the server's own frames, from the cycle the event was
  written to the first sample of the onset; repeated notes (pre-rendered) and a new note each
  time (rendered on arrival);
- pitch: the render of a tonal sound at notes over five octaves, its f0 (the descriptors'
  yin) against the note, in cents.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

from .common import environment
from .jack import JackServer
from .latency import RATE, BLOCK, _stats, onset

KEYBOARD = "keyboard"


class JackKeyboard:
    """A JACK client with one MIDI out port (and, for the benches, audio ins recording what the
    other clients play). ``send(data)`` writes one MIDI event at the start of the next cycle and
    returns that cycle's frame time once it has been written."""

    def __init__(self, name: str = KEYBOARD, capture: bool = False, seconds: float = 0.0):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.out = self.client.midi_outports.register("out")
        self._pending: list[bytes] = []
        self._sent: list[int] = []
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self.ins = [self.client.inports.register(f"in_{i}") for i in range(2)] if capture else []
        self.record = np.zeros(int(seconds * RATE), np.float32) if capture else None
        self.start_frame: int | None = None
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        self.out.clear_buffer()
        now = self.client.last_frame_time
        if self.record is not None:
            if self.start_frame is None:
                self.start_frame = now
            at = now - self.start_frame
            if at + frames <= len(self.record):
                self.record[at:at + frames] = sum(p.get_array() for p in self.ins)
        if self._lock.acquire(blocking=False):  # never wait in the server's thread
            try:
                for data in self._pending:
                    self.out.write_midi_event(0, data)
                if self._pending:
                    self._sent.append(now)
                    self._pending = []
                    self._written.notify_all()
            finally:
                self._lock.release()

    def send(self, *events: bytes, timeout: float = 2.0) -> int:
        """Write `events` (each bytes of one JACK MIDI event) in the next cycle; its frame time."""
        with self._written:
            self._pending = [bytes(e) for e in events]
            count = len(self._sent)
            if not self._written.wait_for(lambda: len(self._sent) > count, timeout):
                raise TimeoutError("the JACK keyboard's process callback did not run")
            return self._sent[-1]

    def connect_to(self, port_name: str) -> None:
        self.client.connect(self.out, port_name)

    def capture_from(self, outs) -> None:
        for port, inport in zip(outs, self.ins):
            self.client.connect(port, inport)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
