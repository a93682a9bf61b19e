"""MIDI in: ports opened by name (and opened again when a device comes back), every message
stamped with its arrival (``time.monotonic_ns()``), parsed by mido, handed on (``deliver``).

The ports are python-rtmidi's, on ALSA's sequencer (a Pi: USB MIDI devices, the USB gadget's
``f_midi``) or on JACK (a desktop running it; the tests, on JACK's dummy driver). Why
rtmidi and not JACK-Client's MIDI ports or alsa-midi: docs/benchmarks.md ("MIDI").

One thread, ``midi``, owns the ports: it opens and closes them (a device that went, or came
back), takes the messages and calls ``deliver``. rtmidi calls back from its own thread (ALSA)
or from the server's process thread (JACK) only to queue the bytes. A message's moment comes
from rtmidi's own timestamps, taken in C as it arrived (``ArrivalClock``), so neither a wait for
the GIL nor the hop to the ``midi`` thread moves it. (Polling rtmidi's C queue instead, which
keeps Python out of JACK's thread altogether, is ``poll_jack``: measured, it cost three times the
idle CPU for no gain, docs/benchmarks.md "MIDI".) The bytes are decoded here rather than by mido's own port wrapper so
that running status (data bytes that reuse the last status byte) is honoured and everything
dropped is counted: system exclusive, status bytes MIDI does not define, stray data bytes,
and floods beyond ``MAX_RATE`` messages a second — each kind one rate-limited line (``logs.warn``).

    port = "all"       every input there is, and each one that appears later
    port = "virtual"   a port of our own that a DAW connects to ("neurorack")
    port = "KeyStep"   the inputs whose name contains this (case-folded)
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable

from ..errors import NeurorackError
from ..logs import warn

log = logging.getLogger(__name__)
CLIENT = "neurorack"
POLL_S = 1.0  # how often the port list is read for devices that came or went
JACK_POLL_S = 0.001  # how often rtmidi's queue is read on JACK when polled (the stamps stay exact)
POLL_JACK = False  # on JACK: rtmidi's callback (False) or its queue polled (docs/benchmarks.md, "MIDI")
MAX_RATE = 4000  # messages a second per input: above MIDI's wire rate (3125), below a runaway loop
QUEUE_LIMIT = 4096  # stamped messages waiting for the midi thread
SKIP_NAMES = ("midi through", CLIENT)  # never listen to ALSA's loopback, nor to ourselves
# Status bytes: 0x80..0xEF carry a channel and set running status; 0xF0..0xF7 cancel it; 0xF8..0xFF
# (real time) may appear anywhere and change nothing.
DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}
UNDEFINED = (0xF4, 0xF5, 0xF9, 0xFD)


class MidiDecoder:
    """Bytes to mido messages, one stream's worth of state (running status, a sysex in progress)."""

    def __init__(self, where: str = "MIDI"):
        self.where = where
        self._running: int | None = None
        self._pending: list[int] = []  # a message being assembled, status first
        self._in_sysex = False
        self.ignored = 0

    def feed(self, data) -> list:
        import mido

        out = []
        for byte in bytes(data):
            if byte >= 0xF8:  # real time: complete on its own, running status untouched
                if byte in UNDEFINED:
                    self._ignore("midi-unknown", "%s: ignoring undefined status byte 0x%02X", byte)
                else:
                    out.append(mido.Message.from_bytes([byte]))
                continue
            if self._in_sysex:
                if byte == 0xF7:
                    self._in_sysex = False
                    self._ignore("midi-sysex", "%s: ignoring a system exclusive message")
                    continue
                if byte < 0x80:
                    continue
                else:  # a status byte ends an unterminated sysex
                    self._in_sysex = False
                    self._ignore("midi-sysex", "%s: ignoring a system exclusive message (unterminated)")
            if byte >= 0x80:
                if self._pending:
                    self._ignore("midi-truncated", "%s: ignoring a message cut short (%s)",
                                 " ".join(f"{b:02X}" for b in self._pending))
                self._pending = []
                if byte == 0xF0:
                    self._running, self._in_sysex = None, True
                elif byte < 0xF0:
                    self._running = byte
                    self._pending = [byte]
                else:
                    self._running = None
                    if byte in SYSTEM_DATA:
                        self._pending = [byte]
                    else:  # 0xF4, 0xF5 (undefined) or a stray 0xF7
                        self._ignore("midi-unknown", "%s: ignoring undefined status byte 0x%02X", byte)
                        continue
            else:  # a data byte
                if not self._pending:
                    if self._running is None:
                        self._ignore("midi-stray", "%s: ignoring a data byte with no status before it (0x%02X)", byte)
                        continue
                    self._pending = [self._running]  # running status
                self._pending.append(byte)
            if not self._pending:  # a sysex began
                continue
            status = self._pending[0]
            need = DATA_BYTES.get(status & 0xF0) if status < 0xF0 else SYSTEM_DATA[status]
            if len(self._pending) == need + 1:
                out.append(mido.Message.from_bytes(self._pending))
                self._pending = []
        return out

    def _ignore(self, kind: str, message: str, *args) -> None:
        self.ignored += 1
        warn(log, kind, message, self.where, *args)


class ArrivalClock:
    """A message's monotonic moment from rtmidi's timestamps: the time since the message before,
    measured in C as each arrived. Offset to ``time.monotonic_ns()`` by the least difference seen
    (the message handled soonest after its arrival), let to creep up by ``DRIFT`` so clocks that
    differ by up to 100 ppm stay in step; never later than the moment it was handled."""

    DRIFT = 1e-4

    def __init__(self):
        self.elapsed_ns: int | None = None
        self.offset_ns: int | None = None

    def stamp(self, delta_s: float, handled_ns: int) -> int:
        step = max(0, round(delta_s * 1e9))
        self.elapsed_ns = 0 if self.elapsed_ns is None else self.elapsed_ns + step
        seen = handled_ns - self.elapsed_ns
        if self.offset_ns is None or seen < self.offset_ns + self.DRIFT * step:
            self.offset_ns = seen
        else:
            self.offset_ns += round(self.DRIFT * step)
        return min(handled_ns, self.elapsed_ns + self.offset_ns)


class RateLimit:
    """A token bucket: `rate` messages a second, bursts of up to a second's worth."""

    def __init__(self, rate: float = MAX_RATE, clock=time.monotonic):
        self.rate, self.clock = rate, clock
        self.tokens, self.at = float(rate), clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def available_apis() -> dict[str, int]:
    import rtmidi

    names = {rtmidi.API_LINUX_ALSA: "alsa", rtmidi.API_UNIX_JACK: "jack"}
    return {names[a]: a for a in rtmidi.get_compiled_api() if a in names}


def jack_server_id() -> int | None:
    """The JACK 2 server of this user's default name that runs now, as the inode of its file in
    /dev/shm (a restarted server makes a new one), or None: asked without opening a client, which
    would print libjack's complaints when there is none."""
    name = os.environ.get("JACK_DEFAULT_SERVER", "default")
    try:
        return os.stat(f"/dev/shm/jack_{name}_{os.getuid()}_0").st_ino
    except FileNotFoundError:
        return None


def jack_running() -> bool:
    return jack_server_id() is not None


def choose_api(api: str = "auto") -> str:
    """"alsa" where the sequencer exists, else "jack" where a server runs."""
    apis = available_apis()
    if api != "auto":
        if api not in apis:
            raise NeurorackError(f"this python-rtmidi has no {api} MIDI support (it has: {', '.join(apis) or 'none'})")
        return api
    if "alsa" in apis and os.path.exists("/dev/snd/seq"):
        return "alsa"
    if "jack" in apis and jack_running():
        return "jack"
    raise NeurorackError("no MIDI here: no ALSA sequencer (/dev/snd/seq: modprobe snd-seq) and no JACK server running")


class MidiInput:
    """The module's MIDI in: ``start()`` opens what ``port`` names and keeps watching for
    devices that come and go; ``close()`` ends it. ``deliver(message, at_ns)`` runs on the
    ``midi`` thread. ``received`` counts messages (the status screen), ``last`` is the newest."""

    def __init__(self, sink: Callable[[object, int], None], port: str = "all", api: str = "auto", poll_s: float = POLL_S,
                 on_change: Callable[[str, bool], None] | None = None, poll_jack: bool = POLL_JACK):
        self.sink, self.port, self.poll_s = sink, port, poll_s
        self.api = choose_api(api)
        self.polled = poll_jack and self.api == "jack"
        self.on_change = on_change  # (port name, present): a device came or went
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._open: dict[str, object] = {}  # port name -> rtmidi.MidiIn
        self._limits: dict[str, RateLimit] = {}
        self._decoders: dict[str, MidiDecoder] = {}
        self._reported_drops = 0
        self._clocks: dict[str, ArrivalClock] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe = None
        self._server: int | None = None  # on JACK: the server our clients belong to (jack_server_id)
        self.received = 0
        self.dropped = 0  # floods and a full queue
        self.lost = 0  # devices that vanished while open
        self.last: str | None = None  # the newest message, as text (the status screen)
        self.last_ns = 0

    # -- ports ----------------------------------------------------------------------------------
    def _midi_in(self, client: str = CLIENT):
        import rtmidi

        midi_in = rtmidi.MidiIn(available_apis()[self.api], name=client, queue_size_limit=QUEUE_LIMIT)
        midi_in.ignore_types(sysex=False, timing=True, active_sense=True)  # sysex: one line, not silence
        return midi_in

    def _lister(self):
        """An rtmidi client to list ports with: an open port's (one JACK client fewer waking
        every cycle), else a probe of its own."""
        for midi_in in self._open.values():
            return midi_in
        if self._probe is None:
            self._probe = self._midi_in()
        return self._probe

    def names(self) -> list[str]:
        """The input ports there are now (our own excepted)."""
        return [n for n in self._lister().get_ports() if not any(s in n.casefold() for s in SKIP_NAMES)]

    def wanted(self, names: list[str]) -> list[str]:
        if self.port == "all":
            return names
        key = self.port.casefold()
        return [n for n in names if key in n.casefold()]

    def start(self) -> "MidiInput":
        try:
            self._server = jack_server_id() if self.api == "jack" else None
            self._open_ports()
        except NeurorackError:
            raise
        except Exception as exc:  # rtmidi's errors: no server, no sequencer
            raise NeurorackError(f"cannot open MIDI on {self.api}: {exc}") from None
        self._thread = threading.Thread(target=self._run, name="midi", daemon=True)
        self._thread.start()
        return self

    def _open_ports(self) -> None:
        if self.port != "virtual":
            self.scan()
        elif "virtual" not in self._open:
            midi_in = self._midi_in()
            midi_in.open_virtual_port("in")
            self._attach("virtual", midi_in)

    def scan(self) -> None:
        """Open wanted ports that appeared, close those that went (every ``poll_s``)."""
        names = self.names()
        for name in [n for n in self._open if n not in names]:
            self._lose(name)
        for name in self.wanted(names):
            if name in self._open:
                continue
            midi_in, self._probe = self._lister(), None  # the probe, if it is one, becomes this port's
            if midi_in.is_port_open():
                midi_in = self._midi_in()
            try:
                midi_in.open_port(midi_in.get_ports().index(name), "in")
            except (ValueError, Exception) as exc:  # gone again between the listing and the opening
                warn(log, "midi-open", "cannot open MIDI port %s: %s", name, exc)
                midi_in.delete()
                continue
            self._attach(name, midi_in)
            log.info("MIDI in: %s", name)
            if self.on_change:
                self.on_change(name, True)

    def _attach(self, name: str, midi_in) -> None:
        self._limits.setdefault(name, RateLimit())
        self._decoders[name] = MidiDecoder(f"MIDI {name}")
        self._clocks[name] = ArrivalClock()
        if not self.polled:  # rtmidi calls back from its thread (ALSA: its own; JACK: the server's)
            def arrived(event, _data, name=name):
                if self._queue.qsize() >= QUEUE_LIMIT:
                    self.dropped += 1
                    return
                self._queue.put((name, time.monotonic_ns(), event[0], event[1]))
            midi_in.set_callback(arrived)
        self._open[name] = midi_in

    def _detach(self, name: str) -> None:
        midi_in = self._open.pop(name, None)
        if midi_in is not None:
            if not self.polled:
                midi_in.cancel_callback()
            midi_in.close_port()
            midi_in.delete()

    def _lose(self, name: str) -> None:
        self.lost += 1
        self._detach(name)
        warn(log, "midi-lost", "MIDI device %s is gone; listening for it to come back", name)
        if self.on_change:
            self.on_change(name, False)

    def _server_up(self) -> bool:
        """On JACK, whether a server runs; when the one our clients belonged to stopped or was
        replaced, every port goes with it (its clients died with the server, and a dead client
        lists its old ports as if nothing happened), to be opened again on the new one."""
        if self.api != "jack":
            return True
        now = jack_server_id()
        if now != self._server:
            if self._open or self._probe is not None:
                warn(log, "midi-server", "the JACK server %s; MIDI ports opened again when it is up",
                     "stopped" if now is None else "restarted")
            for name in list(self._open):
                self._lose(name)
            if self._probe is not None:
                self._probe.delete()
                self._probe = None
            self._server = now
        return now is not None

    def ports(self) -> list[str]:
        return list(self._open)

    # -- the midi thread -------------------------------------------------------------------------
    def _run(self) -> None:
        next_scan = time.monotonic() + self.poll_s
        while not self._stop.is_set():
            if self.polled:
                for name, midi_in in list(self._open.items()):
                    while (event := midi_in.get_message()) is not None:
                        self._take(name, time.monotonic_ns(), *event)
                self._stop.wait(JACK_POLL_S)
            else:
                try:
                    item = self._queue.get(timeout=min(0.2, self.poll_s))
                except queue.Empty:
                    item = None
                if item is not None:
                    self._take(*item)
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.poll_s
                try:
                    if self._server_up():
                        self._open_ports()
                except Exception as exc:  # the MIDI system itself went (JACK stopped): try again later
                    warn(log, "midi-system", "MIDI on %s: %s; trying again", self.api, exc)
                    self._probe = None

    def _take(self, name: str, handled_ns: int, data, delta_s: float) -> None:
        decoder = self._decoders.get(name)
        if decoder is None:
            return
        at_ns = self._clocks[name].stamp(delta_s, handled_ns)
        if not self._limits[name].allow():
            self.dropped += 1
        else:
            for message in decoder.feed(data):
                self.deliver(message, at_ns)
        if self.dropped != self._reported_drops:
            warn(log, "midi-flood", "MIDI: %d messages dropped in all (over %d a second)", self.dropped, MAX_RATE)
            self._reported_drops = self.dropped

    def deliver(self, message, at_ns: int) -> None:
        self.received += 1
        self.last, self.last_ns = str(message), at_ns
        try:
            self.sink(message, at_ns)
        except NeurorackError as exc:  # a program change to no sound, a learn gone wrong: one line
            warn(log, "midi-action", "MIDI %s: %s", message, exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for name in list(self._open):
            self._detach(name)
        if self._probe is not None:
            self._probe.delete()
            self._probe = None


# -- standard MIDI files (`neurorack run --midi-file`) ---------------------------------------------
MAX_FILE_BYTES = 16 << 20
MAX_FILE_SECONDS = 24 * 3600.0


class MidiFileError(NeurorackError):
    pass


def read_midi_file(path) -> list[tuple[float, object]]:
    """(seconds from the start, message) for every channel message of a standard MIDI file,
    all tracks merged with the file's tempo map (mido). A file that is not one is one clear
    error naming it; meta and system messages are left out (they play nothing)."""
    import mido
    from pathlib import Path

    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise MidiFileError(f"MIDI file {path} is over {MAX_FILE_BYTES >> 20} MB")
        song = mido.MidiFile(path, clip=True)
        events, t = [], 0.0
        for message in song:  # times: seconds since the message before, tempo applied
            t += message.time
            if t > MAX_FILE_SECONDS:
                raise MidiFileError(f"{path.name}: longer than {MAX_FILE_SECONDS / 3600:.0f} hours")
            if not message.is_meta and hasattr(message, "channel"):
                events.append((t, message.copy(time=0)))
    except MidiFileError:
        raise
    except OSError as exc:
        raise MidiFileError(f"cannot read MIDI file {path}: {exc.strerror or exc}") from None
    except (EOFError, ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as exc:
        reason = str(exc) or ("it ends too soon" if isinstance(exc, EOFError) else type(exc).__name__)
        raise MidiFileError(f"{path.name}: not a standard MIDI file ({reason})") from None
    return events
