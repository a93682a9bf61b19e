"""The simulated board: gates, CVs, encoder and button from OSC or from a file of timed events.

Both feed the same ``ControlSink`` a real board feeds (``hal.board``), so the engine cannot
tell them apart. OSC listens on 127.0.0.1 only:

    /gate/1 1   /gate/1 0   /cv/2 3.3   /encoder 1   /button 1 (press) | /button 2 (long)

An events file holds one JSON object per line, times in seconds from the start:

    {"t": 0.5, "gate": 1, "on": true}
    {"t": 0.7, "cv": 2, "volts": 1.5}
    {"t": 1.0, "encoder": 1}
    {"t": 1.2, "button": "press"}          ("long" for a long press)
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..errors import NeurorackError
from ..logs import warn
from .cv import RANGES, CvInput
from .profile import BoardProfile

log = logging.getLogger(__name__)
BUTTON_KINDS = ("press", "long")
MAX_STEPS = 64  # encoder detents one message may carry (a hand turns a few per message)
MAX_EVENT_T = 24 * 3600.0  # an events file spans at most a day
MAX_EVENTS_BYTES = 64 << 20
KEYS = {"gate": ("on",), "cv": ("volts",), "encoder": (), "button": ()}  # besides "t" and the kind


class ControlSink(Protocol):
    """What a board drives. Volts are module volts, already calibrated and clamped."""

    def gate(self, number: int, on: bool, frame: int | None = None, at_ns: int | None = None) -> None: ...
    def cv(self, number: int, volts: float) -> None: ...
    def encoder(self, steps: int) -> None: ...
    def button(self, kind: str) -> None: ...


@dataclass(frozen=True)
class SimEvent:
    t: float
    kind: str  # "gate" | "cv" | "encoder" | "button"
    number: int = 0  # gate or CV input
    value: object = None  # on (bool), volts (float), steps (int), "press" | "long"


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
        raise EventsFileError(f"{where}: needs exactly one of 'gate', 'cv', 'encoder', 'button'")
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
    if obj["button"] not in BUTTON_KINDS:
        raise EventsFileError(f"{where}: 'button' must be one of {', '.join(BUTTON_KINDS)}")
    return SimEvent(float(t), "button", 0, obj["button"])


def _int(value, where, key, signed=False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (not signed and not 1 <= value <= 64):
        raise EventsFileError(f"{where}: {key!r} must be {'an integer' if signed else 'a number from 1 to 64'}")
    return value


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
    (range and calibration), exactly as the hardware board does with ADC readings."""

    def __init__(self, profile: BoardProfile, sink: ControlSink, calibration: dict | None = None):
        self.profile, self.sink = profile, sink
        self.cv_inputs: dict[int, CvInput] = {c.number: c for c in profile.cv}
        for number, c in (calibration or {}).items():
            self.set_calibration(number, c)
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def set_calibration(self, number: int, calibration) -> None:
        """CV input `number` reads through `calibration` from now on."""
        if number in self.cv_inputs:
            self.cv_inputs[number] = replace(self.cv_inputs[number], calibration=calibration)

    def apply(self, event: SimEvent, frame: int | None = None, at_ns: int | None = None) -> None:
        """Deliver one event to the sink (the offline renderer passes the gate's exact frame;
        OSC, the moment its packet arrived)."""
        if event.kind == "gate":
            if event.number not in self.profile.gates:
                return warn(log, "unknown-gate", "no gate input %d on board %s", event.number, self.profile.name)
            self.sink.gate(event.number, bool(event.value), frame, at_ns)
        elif event.kind == "cv":
            cv = self.cv_inputs.get(event.number)
            if cv is None:
                return warn(log, "unknown-cv", "no CV input %d on board %s", event.number, self.profile.name)
            volts = float(event.value)
            if not math.isfinite(volts):
                return warn(log, "bad-value", "CV %d: ignoring a value that is not a number", event.number)
            low, high = RANGES[cv.range]
            if not low <= volts <= high:
                warn(log, "cv-range", "CV %d: %g V is outside %g..%g V; clamped", event.number, volts, low, high)
            self.sink.cv(event.number, cv.to_volts(volts))
        elif event.kind == "encoder":
            self.sink.encoder(int(event.value))
        elif event.kind == "button":
            self.sink.button(str(event.value))

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

    def _numbered(self, kind: str, address: str, args) -> None:
        """/gate/N and /cv/N: the input number is the address's last part."""
        value = self._value(address, args)
        part = address.rsplit("/", 1)[1]
        if not (part.isascii() and part.isdigit() and len(part) <= 3):
            return warn(log, "osc-address", "OSC %.40s: the input number must be an integer", address)
        number = int(part)
        if value is not None:
            self.apply(SimEvent(0.0, kind, number, value != 0 if kind == "gate" else value),
                       at_ns=self._server.arrival_ns if self._server is not None else None)

    def _osc_gate(self, address, *args):
        self._numbered("gate", address, args)

    def _osc_cv(self, address, *args):
        self._numbered("cv", address, args)

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
