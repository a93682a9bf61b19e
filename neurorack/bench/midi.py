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
        self.sent_ns: list[int] = []  # the monotonic moment each event was written
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
                    self.sent_ns.append(time.monotonic_ns())
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


# -- backend: rtmidi's JACK input against JACK-Client's MIDI port --------------------------------
class _Stamps:
    def __init__(self):
        self.at: list[int] = []

    def midi(self, message, at_ns):
        self.at.append(time.monotonic_ns())  # delivered to the sink, on the midi thread


class JackClientInput:
    """The alternative: a JACK-Client MIDI in port; Python runs in every process cycle."""

    def __init__(self):
        import jack

        self.client = jack.Client("jackclient-in", no_start_server=True)
        self.port = self.client.midi_inports.register("in")
        self.at: list[int] = []

        @self.client.set_process_callback
        def process(frames):
            for _offset, _data in self.port.incoming_midi_events():
                self.at.append(time.monotonic_ns())
        self.client.activate()

    def close(self):
        self.client.deactivate()
        self.client.close()


def _idle_cpu_ms_per_s(seconds: float) -> float:
    t0, c0 = time.monotonic(), time.process_time()
    time.sleep(seconds)
    return 1000 * (time.process_time() - c0) / (time.monotonic() - t0)


def _delays(keyboard: JackKeyboard, lists, notes: int, rng) -> list[list[float]]:
    """Send `notes` note-ons at uneven moments; per list of arrival stamps, each note's delay
    (ms) from the moment it was written (none if a list missed one: it would misalign)."""
    time.sleep(0.3)  # a new connection takes effect in the server's next cycles
    first, starts = len(keyboard.sent_ns), [len(a) for a in lists]
    for k in range(notes):
        keyboard.send(bytes([0x90, 40 + k % 40, 100]))
        time.sleep(0.004 + 0.006 * rng.random())
    time.sleep(0.3)
    sent = keyboard.sent_ns[first:]
    out = []
    for at, start in zip(lists, starts):
        got = at[start:]
        out.append([(a - s) / 1e6 for s, a in zip(sent, got)] if len(got) == len(sent) else [])
    return out


def backends(notes: int = 300, rounds: int = 2, idle_s: float = 3.0) -> dict:
    """Side by side, in turns: nothing, rtmidi (hal/midi.py's MidiInput), JACK-Client."""
    import sys

    from ..hal.midi import MidiInput

    sys.setswitchinterval(0.0005)  # as `neurorack run` sets it: a woken thread gets the GIL soon
    rng = np.random.default_rng(0)
    keyboard = JackKeyboard()
    result = {"none": {"idle_cpu_ms_per_s": []}, "rtmidi": {"idle_cpu_ms_per_s": [], "callback_ms": [],
                                                             "delivered_ms": []},
              "jack_client": {"idle_cpu_ms_per_s": [], "callback_ms": []}}
    try:
        for _ in range(rounds):
            result["none"]["idle_cpu_ms_per_s"].append(_idle_cpu_ms_per_s(idle_s))
            sink = _Stamps()
            arrivals = []
            midi = MidiInput(sink, port=KEYBOARD, api="jack", poll_s=3600)
            midi.deliver = (lambda deliver: lambda message, at_ns: (arrivals.append(at_ns),
                                                                    deliver(message, at_ns)))(midi.deliver)
            midi.start()
            try:
                result["rtmidi"]["idle_cpu_ms_per_s"].append(_idle_cpu_ms_per_s(idle_s))
                callback, delivered = _delays(keyboard, [arrivals, sink.at], notes, rng)
                result["rtmidi"]["callback_ms"] += callback
                result["rtmidi"]["delivered_ms"] += delivered
            finally:
                midi.close()
            other = JackClientInput()
            try:
                keyboard.connect_to("jackclient-in:in")
                result["jack_client"]["idle_cpu_ms_per_s"].append(_idle_cpu_ms_per_s(idle_s))
                result["jack_client"]["callback_ms"] += _delays(keyboard, [other.at], notes, rng)[0]
            finally:
                other.close()
    finally:
        keyboard.close()
    for name, parts in result.items():
        for key in list(parts):
            values = parts[key]
            parts[key] = {"each": [round(v, 4) for v in values]} if key.startswith("idle") else _stats(values)
            if key.startswith("idle"):
                parts[key]["median"] = float(np.median(values))
    return result


# -- pitch: the note's render against the note, over five octaves ----------------------------------
TONAL_SOUNDS = ("Big Impact", "Sub Boom", "Drop Boom")  # the factory sounds whose tone_like is above 0.5


def measured_f0(audio: np.ndarray, rate: int = RATE) -> float:
    """The median yin f0 (Hz) over the frames within 20 dB of the loudest, in the first second."""
    import librosa

    y = audio[:rate].astype(np.float32)
    frame, hop = 4096, 512
    f0 = librosa.yin(y, fmin=25.0, fmax=2500.0, sr=rate, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)[0][:len(f0)]
    keep = rms >= rms.max() * 0.1
    return float(np.median(f0[:len(keep)][keep]))


def pitch_accuracy(model=None, sounds=TONAL_SOUNDS, octaves: int = 5, step: int = 3) -> dict:
    """Each tonal sound rendered as the note path renders it (``transpose``: 1 V/oct, then
    ``impact_trajectory``), at notes every `step` semitones over `octaves` octaves placed where
    the pitch axis (MIDI 24..96) holds them. Cents against the note: absolute (the sound's own
    pitch descriptor plus the semitones) and relative (the root note's measured f0 times
    2^(semitones/12): what tracking 1 V/oct means)."""
    import math

    from .. import descriptors as D
    from ..engine.controls import RenderRequest, transpose
    from ..engine.prerender import impact_trajectory
    from ..model.generator import load_model
    from ..sounds.library import SoundLibrary

    generator = load_model(model, threads=1)
    library = SoundLibrary()
    out = {}
    for name in sounds:
        traj = library.get(name).trajectory
        own = float(np.median(D.to_physical("pitch", traj.curves[:, D.INDEX["pitch"]])))  # MIDI note
        low = math.ceil(26 - own)
        low -= low % step  # so that 0 (the root) is among them
        semitones = list(range(low, low + 12 * octaves + 1, step))
        request = RenderRequest(name, name, 0.5, (0.0,) * len(D.NAMES))
        rows = []
        for s in semitones:
            audio = generator.render(impact_trajectory(1, transpose(request, s), lambda n: traj), RATE)
            rows.append({"semitones": s, "note_midi": own + s, "f0_hz": measured_f0(audio)})
        root = next(r["f0_hz"] for r in rows if r["semitones"] == 0)
        for r in rows:
            target = 440.0 * 2 ** ((r["note_midi"] - 69) / 12)
            r["cents_vs_note"] = 1200 * math.log2(r["f0_hz"] / target)
            r["cents_vs_root"] = 1200 * math.log2(r["f0_hz"] / root) - 100 * r["semitones"]
        rel = np.abs([r["cents_vs_root"] for r in rows])
        ab = np.abs([r["cents_vs_note"] for r in rows])
        out[name] = {"own_pitch_midi": own, "notes": rows,
                     "abs_cents_vs_root": {"median": float(np.median(rel)), "max": float(rel.max())},
                     "abs_cents_vs_note": {"median": float(np.median(ab)), "max": float(ab.max())},
                     "within_10_cents_of_root": int(np.sum(rel <= 10)), "notes_measured": len(rows)}
    return out
