"""What MIDI does to the module: the mapping's actions (engine/midi.py) applied to the engine,
program changes and learned controllers handed to the module, and what the status screen
shows (activity, the last message, the ports).

Everything that brings MIDI calls it the same way, ``control(message, at_ns)``: the MIDI input
(hal/midi.py, on its thread), the sim board's events file and ``--midi-file`` (offline, at each
event's own time). One lock serialises them and the screens' MIDI learn.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from .engine.midi import Cc, Learned, MidiConfig, MidiMap, Note, Program
from .errors import NeurorackError
from .logs import warn

log = logging.getLogger(__name__)
ACTIVITY_S = 0.5  # a message this recent lights the activity mark


class MidiControl:
    """`select_program(n)`: make the library's n-th sound sound A; `store(config)`: keep the
    MIDI settings (a learned controller) for this board."""

    def __init__(self, engine, config: MidiConfig, cv_ranges: dict[int, str],
                 select_program: Callable[[int], None], store: Callable[[MidiConfig], None]):
        self.engine, self.select_program, self.store = engine, select_program, store
        self.map = MidiMap(config, cv_ranges)
        self._lock = threading.Lock()
        self.input = None  # the MIDI input (hal/midi.MidiInput), when live and on
        self.messages = 0
        self.last: str | None = None
        self.last_at = float("-inf")  # time.monotonic() of the last message
        self.failed = 0  # messages whose action could not be done (a program with no sound)
        engine.set_cc_map(config.cc)

    def __call__(self, message, at_ns: int) -> None:
        with self._lock:
            self.messages += 1
            self.last, self.last_at = _describe(message), time.monotonic()
            actions = self.map.handle(message, at_ns)
        for action in actions:
            try:
                self._apply(action)
            except NeurorackError as exc:  # one line; the module plays on
                self.failed += 1
                warn(log, "midi-action", "MIDI %s: %s", self.last, exc)

    def _apply(self, action) -> None:
        if isinstance(action, Note):
            self.engine.note(action.edge, action.semitones, action.gain)
        elif isinstance(action, Cc):
            self.engine.cc(action.number, action.volts)
        elif isinstance(action, Program):
            self.select_program(action.number)
        elif isinstance(action, Learned):
            self.engine.set_cc_map(self.map.config.cc)
            log.info("MIDI learn: CC %d now drives %s", action.number, action.mapping.describe())
            self.store(self.map.config)

    # -- the screens ------------------------------------------------------------------------------
    def learn(self, target: str | None) -> None:
        """The next controller moved drives `target` (None: stop learning)."""
        with self._lock:
            self.map.learn(target)

    @property
    def learning(self) -> str | None:
        return self.map.learning

    def configure(self, config: MidiConfig) -> MidiConfig:
        """New MIDI settings (a channel, the takeover, the root), from now on."""
        with self._lock:
            self.map.configure(config)
        self.engine.set_cc_map(config.cc)
        return config

    def forget(self, number: int) -> None:
        """CC `number` drives nothing from now on."""
        with self._lock:
            cc = {n: m for n, m in self.map.config.cc.items() if n != number}
            self.map.configure(replace(self.map.config, cc=cc))
        self.engine.cc(number, 0.0)
        self.engine.set_cc_map(self.map.config.cc)
        self.store(self.map.config)

    def device_changed(self, name: str, present: bool) -> None:
        """A device came (back): its knobs are wherever they are now, so pick-up starts again."""
        if present:
            with self._lock:
                self.map.forget_controllers()

    def active(self) -> bool:
        return time.monotonic() - self.last_at < ACTIVITY_S

    def view(self):
        from .ui.view import MidiView, frozen_mapping

        midi_in = self.input
        return MidiView(ports=tuple(midi_in.ports()) if midi_in is not None else (), on=midi_in is not None,
                        active=self.active(), messages=self.messages, last=self.last, learning=self.map.learning,
                        controllers=frozen_mapping({n: m.describe() for n, m in sorted(self.map.config.cc.items())}))

    def rows(self) -> dict[str, str]:
        """For the status screen: the input, activity and count, the last message."""
        midi_in = self.input
        ports = ", ".join(midi_in.ports()) if midi_in is not None else ""
        where = (ports or "waiting for a device") if midi_in is not None else "off"
        rows = {"MIDI in": where, "MIDI msgs": ("* " if self.active() else "") + str(self.messages)}
        if self.last:
            rows["MIDI last"] = self.last
        if self.map.learning:
            rows["MIDI learn"] = self.map.learning
        return rows


def _describe(message) -> str:
    """A message in a dozen characters for a small screen: "on 60 v100 c1", "cc21=64 c1"."""
    kind = getattr(message, "type", "?")
    channel = getattr(message, "channel", None)
    where = f" c{channel + 1}" if channel is not None else ""
    if kind == "note_on" and message.velocity > 0:
        return f"on {message.note} v{message.velocity}{where}"
    if kind in ("note_on", "note_off"):
        return f"off {message.note}{where}"
    if kind == "control_change":
        return f"cc{message.control}={message.value}{where}"
    if kind == "program_change":
        return f"prog {message.program}{where}"
    return kind + where
