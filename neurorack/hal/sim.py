"""The simulated board: gates, CVs, encoder and button from OSC or from a file of timed events.

Both feed the same ``ControlSink`` a real board feeds (``hal.board``), so the engine cannot
tell them apart. OSC listens on 127.0.0.1 only:

    /gate/1 1   /gate/1 0   /cv/2 3.3   /encoder 1   /button 1 (press) | /button 2 (long)

An events file holds one JSON object per line, times in seconds from the start:

    {"t": 0.5, "gate": 1, "on": true}
    {"t": 0.7, "cv": 2, "volts": 1.5}
    {"t": 1.0, "encoder": 1}
    {"t": 1.2, "button": "press"}          ("long" for a long press)
    {"t": 1.5, "midi": [144, 60, 100]}     MIDI bytes: one message or several, running status too

MIDI in an events file takes the path a MIDI port's bytes take (hal/midi.MidiDecoder, then
the sink's ``midi``), and ``midi_file_events`` turns a standard MIDI file into such events.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import NeurorackError
from ..logs import warn
from .cv import RANGES, CvBank
from .gates import Gate, GateEdge
from .profile import BoardProfile

log = logging.getLogger(__name__)
BUTTON_KINDS = ("press", "long")
MAX_STEPS = 64  # encoder detents one message may carry (a hand turns a few per message)
MAX_EVENT_T = 24 * 3600.0  # an events file spans at most a day
MAX_EVENTS_BYTES = 64 << 20
KEYS = {"gate": ("on",), "cv": ("volts",), "encoder": (), "button": (), "midi": ()}  # besides "t" and the kind
MAX_MIDI_BYTES = 256  # one event's MIDI bytes


@dataclass(frozen=True)
class ControlSink:
    """What a board drives: the engine's gates and CVs, the menus' encoder and button. Volts
    are module volts, already calibrated and clamped by the board."""

    gate: Callable[[GateEdge], None]
    cv: Callable[[int, float], None]
    encoder: Callable[[int], None]
    button: Callable[[str], None]
    midi: Callable[[object, int], None] | None = None  # (a mido message, its moment): the module's MIDI


@dataclass(frozen=True)
class SimEvent:
    t: float
    kind: str  # "gate" | "cv" | "encoder" | "button" | "midi"
    number: int = 0  # gate or CV input
    value: object = None  # on (bool), volts (float), steps (int), "press" | "long", MIDI bytes (tuple)


class EventsFileError(NeurorackError):
    pass


def parse_event(obj, where: str = "event") -> SimEvent:
    if not isinstance(obj, dict):
        raise EventsFileError(f"{where}: expected a JSON object")
    t = obj.get("t")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or not 0 <= t <= MAX_EVENT_T:
        raise EventsFileError(f"{where}: 't' must be a time in seconds, 0 to {MAX_EVENT_T:.0f}")
    kinds = [k for k in KEYS if k in obj]
    if len(kinds) != 1:
        raise EventsFileError(f"{where}: needs exactly one of 'gate', 'cv', 'encoder', 'button', 'midi'")
    kind = kinds[0]
    unknown = sorted(set(obj) - {"t", kind, *KEYS[kind]})
    if unknown:
        raise EventsFileError(f"{where}: unknown key {unknown[0]!r} for a {kind} event "
                              f"(it takes {', '.join(repr(k) for k in ('t', kind, *KEYS[kind]))})")
    if kind == "gate":
        on = obj.get("on", True)
        if not isinstance(on, bool):
            raise EventsFileError(f"{where}: 'on' must be true or false, not {on!r}")
        return SimEvent(float(t), "gate", _int(obj["gate"], where, "gate"), on)
    if kind == "cv":
        volts = obj.get("volts")
        if not isinstance(volts, (int, float)) or isinstance(volts, bool) or not math.isfinite(volts):
            raise EventsFileError(f"{where}: 'volts' must be a number")
        return SimEvent(float(t), "cv", _int(obj["cv"], where, "cv"), float(volts))
    if kind == "encoder":
        steps = _int(obj["encoder"], where, "encoder", signed=True)
        if abs(steps) > MAX_STEPS:
            raise EventsFileError(f"{where}: 'encoder' must be -{MAX_STEPS}..{MAX_STEPS} detents")
        return SimEvent(float(t), "encoder", 0, steps)
    if kind == "midi":
        data = obj["midi"]
        if (not isinstance(data, list) or not 1 <= len(data) <= MAX_MIDI_BYTES
                or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in data)):
            raise EventsFileError(f"{where}: 'midi' must be a list of 1 to {MAX_MIDI_BYTES} bytes (0..255), "
                                  "e.g. [144, 60, 100]")
        return SimEvent(float(t), "midi", 0, tuple(data))
    if obj["button"] not in BUTTON_KINDS:
        raise EventsFileError(f"{where}: 'button' must be one of {', '.join(BUTTON_KINDS)}")
    return SimEvent(float(t), "button", 0, obj["button"])


def _int(value, where, key, signed=False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (not signed and not 1 <= value <= 64):
        raise EventsFileError(f"{where}: {key!r} must be {'an integer' if signed else 'a number from 1 to 64'}")
    return value


def midi_file_events(path) -> list[SimEvent]:
    """A standard MIDI file's channel messages as events at their times (hal/midi.read_midi_file)."""
    from .midi import read_midi_file

    return [SimEvent(t, "midi", 0, tuple(message.bytes())) for t, message in read_midi_file(path)]


def load_events(path) -> list[SimEvent]:
    """Read an events file; sorted by time (ties keep file order). A bad line is an error naming it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_EVENTS_BYTES:
            raise EventsFileError(f"events file {path} is over {MAX_EVENTS_BYTES >> 20} MB")
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EventsFileError(f"cannot read events file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    events = []
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventsFileError(f"{path.name}:{i}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise EventsFileError(f"{path.name}:{i}: nested too deeply") from None
        events.append(parse_event(obj, f"{path.name}:{i}"))
    return sorted(events, key=lambda e: e.t)


class SimBoard:
    """Turns OSC messages and file events into sink calls, through the profile's CV inputs
    (range, calibration and deadband: ``CvBank``), exactly as the hardware board does with ADC
    readings."""

    def __init__(self, profile: BoardProfile, sink: ControlSink, calibration: dict | None = None):
        self.profile, self.sink = profile, sink
        self.cvs = CvBank(profile.cv, calibration)
        self._midi = None  # the MIDI byte decoder, made on the first MIDI event (running status spans events)
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def set_calibration(self, number: int, calibration) -> None:
        self.cvs.set_calibration(number, calibration)

    def raw_volts(self, number: int) -> float:
        """CV `number` as last given, before calibration."""
        return self.cvs.raw_volts(number)

    def apply(self, event: SimEvent, at_ns: int | None = None) -> None:
        """Deliver one event to the sink. A gate's moment is `at_ns` (an OSC packet's arrival;
        offline, the event's own time), or now."""
        if event.kind == "gate":
            if event.number not in self.profile.gates:
                return warn(log, "unknown-gate", "no gate input %d on board %s", event.number, self.profile.name)
            gate, on = Gate(event.number), bool(event.value)
            self.sink.gate(GateEdge(gate, on) if at_ns is None else GateEdge(gate, on, at_ns))
        elif event.kind == "cv":
            cv = self.cvs.inputs.get(event.number)
            if cv is None:
                return warn(log, "unknown-cv", "no CV input %d on board %s", event.number, self.profile.name)
            volts = float(event.value)
            low, high = RANGES[cv.range]
            if math.isfinite(volts) and not low <= volts <= high:
                warn(log, "cv-range", "CV %d: %g V is outside %g..%g V; clamped", event.number, volts, low, high)
            volts = self.cvs.read(event.number, volts)
            if volts is not None:
                self.sink.cv(event.number, volts)
        elif event.kind == "encoder":
            self.sink.encoder(int(event.value))
        elif event.kind == "button":
            self.sink.button(str(event.value))
        elif event.kind == "midi":
            if self.sink.midi is None:
                return warn(log, "midi-off", "MIDI events ignored: this module has no MIDI")
            if self._midi is None:
                from .midi import MidiDecoder

                self._midi = MidiDecoder("MIDI (events)")
            at_ns = time.monotonic_ns() if at_ns is None else at_ns
            for message in self._midi.feed(event.value):
                self.sink.midi(message, at_ns)

    def apply_offline(self, event: SimEvent) -> None:
        """An events file's event at its own time (an offline render, a screen tour)."""
        self.apply(event, at_ns=round(event.t * 1e9) if event.kind in ("gate", "midi") else None)

    # -- OSC ------------------------------------------------------------------------------------
    def start_osc(self, port: int = 9000) -> int:
        """Listen on 127.0.0.1:`port` (0 picks a free one); returns the port."""
        from pythonosc.dispatcher import Dispatcher

        from .osc import StampedOSCServer

        dispatcher = Dispatcher()
        dispatcher.map("/gate/*", self._osc_gate)
        dispatcher.map("/cv/*", self._osc_cv)
        dispatcher.map("/encoder", self._osc_encoder)
        dispatcher.map("/button", self._osc_button)
        dispatcher.set_default_handler(
            lambda address, *args: warn(log, "osc-address", "unknown OSC address %.60r", address))
        try:
            self._server = StampedOSCServer(("127.0.0.1", port), dispatcher)
        except OSError as exc:
            raise NeurorackError(f"cannot listen for OSC on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name="osc", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self._server.server_address[1]

    def _value(self, address: str, args) -> float | None:
        """The message's first argument as a finite number, or None (and a rate-limited line)."""
        value = args[0] if args else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        warn(log, "osc-argument", "OSC %.40s: expected one number argument, got %.60r", address, list(args))
        return None

    def _input_number(self, address: str) -> int | None:
        """/gate/N and /cv/N: the input number is the address's last part."""
        part = address.rsplit("/", 1)[1]
        if part.isascii() and part.isdigit() and len(part) <= 3:
            return int(part)
        warn(log, "osc-address", "OSC %.40s: the input number must be an integer", address)
        return None

    def _osc_gate(self, address, *args):
        # The OSC thread's whole gate path: this handler, apply, Engine.gate, GateRing.push.
        value, number = self._value(address, args), self._input_number(address)
        if value is not None and number is not None:
            self.apply(SimEvent(0.0, "gate", number, value != 0), at_ns=self._server.arrival_ns)

    def _osc_cv(self, address, *args):
        value, number = self._value(address, args), self._input_number(address)
        if value is not None and number is not None:
            self.apply(SimEvent(0.0, "cv", number, value))

    def _osc_encoder(self, address, *args):
        steps = self._value(address, args)
        if steps is not None:
            self.apply(SimEvent(0.0, "encoder", 0, int(max(-MAX_STEPS, min(MAX_STEPS, steps)))))

    def _osc_button(self, address, *args):
        if args and args[0] in BUTTON_KINDS:
            return self.apply(SimEvent(0.0, "button", 0, args[0]))
        value = self._value(address, args)
        if value is not None:
            self.apply(SimEvent(0.0, "button", 0, "long" if value == 2 else "press"))

    # -- events played live ---------------------------------------------------------------------
    def play_events(self, events: list[SimEvent], on_done=None) -> None:
        """Deliver file events at their times, from now, on a thread (a scripted patch, live)."""
        def run():
            t0 = time.monotonic()
            for event in events:
                if self._stop.wait(max(0.0, t0 + event.t - time.monotonic())):
                    return
                self.apply(event)
            if on_done:
                on_done()
        thread = threading.Thread(target=run, name="sim-events", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
