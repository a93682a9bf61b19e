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
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from .common import environment
from .jack import JackServer
from .latency import RATE, BLOCK, _stats, onset

KEYBOARD = "keyboard"


class _KeyboardClient:
    """The JACK client itself, in the keyboard's own process (``python -m neurorack.bench.midi``)."""

    def __init__(self, name: str, capture_s: float):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.out = self.client.midi_outports.register("out")
        self.ins = [self.client.inports.register(f"in_{i}") for i in range(2)] if capture_s else []
        self.record = np.zeros(int(capture_s * RATE), np.float32) if capture_s else None
        self.start_frame: int | None = None
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._sent: list[tuple[int, int]] = []
        self.xruns = 0  # the server's reports of a late cycle: a cycle's MIDI may be lost in one
        self.client.set_xrun_callback(self._xrun)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _xrun(self, delay_us: float) -> None:
        self.xruns += 1

    def _process(self, frames: int) -> None:
        self.out.clear_buffer()
        now = self.client.last_frame_time
        if self.start_frame is None:
            self.start_frame = now
        if self.record is not None:
            at = now - self.start_frame
            if at + frames <= len(self.record):
                np.add(self.ins[0].get_array(), self.ins[1].get_array(), out=self.record[at:at + frames])
        if self._lock.acquire(blocking=False):  # never wait in the server's thread
            try:
                if self._pending:
                    for data in self._pending:
                        self.out.write_midi_event(0, data)
                    self._sent.append((now - self.start_frame, time.monotonic_ns()))
                    self._pending = []
                    self._written.notify_all()
            finally:
                self._lock.release()

    def send(self, events) -> tuple[int, int]:
        with self._written:
            self._pending = [bytes(e) for e in events]
            count = len(self._sent)
            if not self._written.wait_for(lambda: len(self._sent) > count, 2.0):
                raise TimeoutError("the JACK keyboard's process callback did not run")
            return self._sent[-1]


def keyboard_main() -> None:
    """One JSON command a line on stdin, one JSON answer a line on stdout."""
    import json
    import sys

    sys.setswitchinterval(0.0005)
    command = json.loads(sys.stdin.readline())
    keyboard = _KeyboardClient(command["name"], command.get("capture_s", 0.0))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "send" in command:
            frame, ns = keyboard.send(command["send"])
            answer = {"frame": frame, "ns": ns, "xruns": keyboard.xruns}
        elif "connect" in command:
            keyboard.client.connect(keyboard.out, command["connect"])
            answer = {}
        elif "capture_from" in command:
            outs = [p for p in keyboard.client.get_ports(is_audio=True, is_output=True)
                    if not p.name.startswith(("system:", command["name"] + ":"))]
            for port, inport in zip(outs, keyboard.ins):
                keyboard.client.connect(port, inport)
            answer = {"ports": [p.name for p in outs]}
        elif "save" in command:
            np.save(command["save"], keyboard.record)
            answer = {}
        else:
            break
        print(json.dumps(answer), flush=True)
    keyboard.client.deactivate()
    keyboard.client.close()


class JackKeyboard:
    """A MIDI keyboard on the JACK server: a JACK client with one MIDI out port (and, for the
    benches, two audio ins recording what the other clients play), in a process of its own, as a
    real keyboard or DAW is: its Python callback in the server's thread never waits for the GIL
    of the process under test. ``send(*events)`` writes each (bytes of one JACK MIDI event) at
    the start of the next cycle and returns that cycle's frame (from the client's start)."""

    def __init__(self, name: str = KEYBOARD, capture: bool = False, seconds: float = 0.0):
        import json
        import sys

        self.name = name
        self.sent_ns: list[int] = []  # the monotonic moment each send was written
        self.xruns = 0  # late cycles the server reported to the keyboard, so far
        self.record: np.ndarray | None = None
        self._proc = subprocess.Popen([sys.executable, "-m", "neurorack.bench.midi"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._json = json
        self._ask({"name": name, "capture_s": seconds if capture else 0.0})

    def _ask(self, command: dict) -> dict:
        self._proc.stdin.write(self._json.dumps(command) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the JACK keyboard exited ({self._proc.wait()})")
        return self._json.loads(line)

    def send(self, *events: bytes) -> int:
        answer = self._ask({"send": [list(e) for e in events]})
        self.sent_ns.append(answer["ns"])
        self.xruns = answer["xruns"]
        return answer["frame"]

    def connect_to(self, port_name: str) -> None:
        self._ask({"connect": port_name})

    def capture_from_others(self) -> list[str]:
        return self._ask({"capture_from": True, "name": self.name})["ports"]

    def fetch_record(self) -> np.ndarray:
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="neurorack-keyboard-")) / "record.npy"
        self._ask({"save": str(path)})
        self.record = np.load(path)
        path.unlink()
        path.parent.rmdir()
        return self.record

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write("{}\n")
                self._proc.stdin.flush()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()


# -- backend: rtmidi's JACK input (its callback, or its queue polled) against JACK-Client's port ----
class JackClientInput:
    """The alternative: a JACK-Client MIDI in port; Python runs in every process cycle."""

    def __init__(self, deliver):
        import jack

        self.client = jack.Client("jackclient-in", no_start_server=True)
        self.port = self.client.midi_inports.register("in")

        @self.client.set_process_callback
        def process(frames):
            for _offset, data in self.port.incoming_midi_events():
                now = time.monotonic_ns()
                deliver(bytes(data), now, now)
        self.client.activate()

    def close(self):
        self.client.deactivate()
        self.client.close()


def _idle_cpu_ms_per_s(seconds: float) -> float:
    t0, c0 = time.monotonic(), time.process_time()
    time.sleep(seconds)
    return 1000 * (time.process_time() - c0) / (time.monotonic() - t0)


def _one_backend(kind: str, keyboard: "JackKeyboard", notes: int, idle_s: float) -> dict:
    from ..hal.midi import MidiInput

    got: list[tuple[int, int]] = []  # (stamp, delivered) per message
    if kind == "jack_client":
        receiver = JackClientInput(lambda data, stamp, now: got.append((stamp, now)))
        keyboard.connect_to("jackclient-in:in")
    else:
        receiver = MidiInput(lambda message, at_ns: got.append((at_ns, time.monotonic_ns())), port=KEYBOARD,
                             api="jack", poll_s=3600, poll_jack=kind == "rtmidi_polled").start()
    try:
        time.sleep(0.3)  # a new connection takes effect in the server's next cycles
        idle = _idle_cpu_ms_per_s(idle_s)
        xruns, first = keyboard.xruns, len(keyboard.sent_ns)
        t0 = time.monotonic()
        for k in range(notes):  # 1000 a second, as the flood
            keyboard.send(bytes([0xB0, 22, k % 128]))
            time.sleep(max(0.0, t0 + (k + 1) / 1000 - time.monotonic()))
        time.sleep(0.5)
    finally:
        receiver.close()
    sent = keyboard.sent_ns[first:]
    aligned = len(got) == len(sent)  # a lost message would misalign the pairs: no delays then
    return {"idle_cpu_ms_per_s": idle, "sent": len(sent), "received": len(got), "xruns": keyboard.xruns - xruns,
            "stamp_minus_written_ms": _stats([(g[0] - w) / 1e6 for g, w in zip(got, sent)] if aligned else []),
            "delivered_minus_written_ms": _stats([(g[1] - w) / 1e6 for g, w in zip(got, sent)] if aligned else [])}


BACKENDS = ("rtmidi_callback", "rtmidi_polled", "jack_client")


def backends(notes: int = 1000, rounds: int = 3, idle_s: float = 3.0) -> dict:
    """Side by side, in turns (ABCABC...): rtmidi's callback (what hal/midi.py opens), rtmidi's
    queue polled every millisecond, JACK-Client's port; with nothing open as the floor."""
    import sys

    sys.setswitchinterval(0.0005)  # as `neurorack run` sets it: a woken thread gets the GIL soon
    keyboard = JackKeyboard()
    turns: dict[str, list] = {"nothing_open": [], **{k: [] for k in BACKENDS}}
    try:
        for _ in range(rounds):
            turns["nothing_open"].append({"idle_cpu_ms_per_s": _idle_cpu_ms_per_s(idle_s)})
            for kind in BACKENDS:
                turns[kind].append(_one_backend(kind, keyboard, notes, idle_s))
    finally:
        keyboard.close()
    summary = {}
    for kind, runs in turns.items():
        summary[kind] = {"idle_cpu_ms_per_s_median": float(np.median([r["idle_cpu_ms_per_s"] for r in runs]))}
        if kind != "nothing_open":
            summary[kind].update(
                lost=sum(r["sent"] - r["received"] for r in runs), sent=sum(r["sent"] for r in runs),
                xruns=sum(r["xruns"] for r in runs),
                stamp_p99_ms_each=[r["stamp_minus_written_ms"].get("p99") for r in runs],
                delivered_p50_ms_each=[r["delivered_minus_written_ms"].get("median") for r in runs],
                delivered_p99_ms_each=[r["delivered_minus_written_ms"].get("p99") for r in runs])
    return {"summary": summary, "turns": turns, "messages_per_turn": notes}


# -- pitch: the note's render against the note, over five octaves ----------------------------------
TONAL_SOUNDS = ("Big Impact", "Sub Boom", "Drop Boom")  # the factory sounds whose tone_like is above 0.5


def pitch_accuracy(model=None, sounds=TONAL_SOUNDS, octaves: int = 5, step: int = 3) -> dict:
    """Each tonal sound rendered as the note path renders it (``transpose``: 1 V/oct, then
    ``impact_trajectory``), at notes every `step` semitones over `octaves` octaves placed where
    the pitch axis holds them, measured as bench cv measures the CVs (``pitch_error_cents``: the
    f0 of each tonal frame against the pitch that frame asked for). Cents against the note
    (absolute), against the root note's own error, and against the module tuned once (the median
    error over all the notes taken off, as a musician tunes a module to the rack: what tracking
    1 V/oct means; the target, 10 cents, is read on this one)."""
    import math

    from .. import descriptors as D
    from ..engine.controls import RenderRequest, transpose
    from ..engine.prerender import impact_trajectory
    from ..model.generator import load_model
    from ..sounds.library import SoundLibrary
    from .cv import pitch_error_cents, tonal_frames

    generator = load_model(model, threads=1)
    library = SoundLibrary()
    out = {}
    for name in sounds:
        traj = library.get(name).trajectory
        curve = D.to_physical("pitch", traj.curves[:, D.INDEX["pitch"]])  # MIDI note numbers, per frame
        own = float(np.median(curve))
        low = math.ceil(26 - own)
        low -= low % step  # so that 0 (the root) is among them
        semitones = list(range(low, low + 12 * octaves + 1, step))
        request = RenderRequest(name, name, 0.5, (0.0,) * len(D.NAMES))
        rows = []
        for s in semitones:
            audio = generator.render(impact_trajectory(1, transpose(request, s), lambda n: traj), RATE)
            cents, frames = pitch_error_cents(audio, curve + s, tonal_frames(traj), RATE)
            rows.append({"semitones": s, "note_midi": own + s, "cents_vs_note": cents, "frames": frames})
        root = next(r["cents_vs_note"] for r in rows if r["semitones"] == 0)
        measured = [r for r in rows if r["frames"]]
        tuning = float(np.median([r["cents_vs_note"] for r in measured]))
        for r in rows:
            r["cents_vs_root"] = r["cents_vs_note"] - root
            r["cents_vs_tuned"] = r["cents_vs_note"] - tuning
        rel = np.abs([r["cents_vs_root"] for r in measured])
        ab = np.abs([r["cents_vs_note"] for r in measured])
        out[name] = {"own_pitch_midi": own, "notes": rows,
                     "abs_cents_vs_root": {"median": float(np.median(rel)), "max": float(rel.max())},
                     "abs_cents_vs_note": {"median": float(np.median(ab)), "max": float(ab.max())},
                     "within_10_cents_of_root": int(np.sum(rel <= 10)), "tuning_cents": tuning,
                     "within_10_cents_tuned": int(np.sum(np.abs([r["cents_vs_tuned"] for r in measured]) <= 10)),
                     "max_abs_cents_tuned": float(np.max(np.abs([r["cents_vs_tuned"] for r in measured]))),
                     "notes_measured": len(measured),
                     "notes_outside_the_range": len(rows) - len(measured)}
    return out


def decay_s(audio: np.ndarray, rate: int = RATE, drop_db: float = 40.0) -> float:
    """Seconds from the peak of the envelope (10 ms RMS) to `drop_db` below it."""
    hop = rate // 100
    frames = len(audio) // hop
    env = np.sqrt(np.mean(audio[:frames * hop].reshape(frames, hop) ** 2, axis=1)) + 1e-12
    peak = int(np.argmax(env))
    below = np.flatnonzero(env[peak:] < env[peak] * 10 ** (-drop_db / 20))
    return float((below[0] if len(below) else frames - peak) * hop / rate)


def shift_or_render(model=None, sound: str = "Big Impact", semitones=(-12, -5, 7, 12), repeats: int = 5) -> dict:
    """The third way a note could get its pitch: shift (resample, soxr) the impact rendered at
    the root, against rendering it at the note (head first, as on arrival): the time each takes
    and what each does to the sound's decay (-40 dB)."""
    from .. import descriptors as D
    from ..engine.controls import RenderRequest, transpose
    from ..engine.prerender import impact_trajectory
    from ..fileio import resample
    from ..model.generator import load_model
    from ..sounds.library import SoundLibrary

    generator = load_model(model, threads=1)
    traj = SoundLibrary().get(sound).trajectory
    request = RenderRequest(sound, sound, 0.5, (0.0,) * len(D.NAMES))
    root = generator.render(impact_trajectory(1, request, lambda n: traj), RATE)
    rows = []
    for s in semitones:
        note = impact_trajectory(1, transpose(request, s), lambda n: traj)
        out = np.empty(generator.n_samples(note, RATE), np.float32)
        head_ms, shift_ms = [], []
        for _ in range(repeats):
            t0, head = time.perf_counter(), []
            generator.render_into(note, out, RATE, on_head=lambda n: head.append(time.perf_counter()))
            head_ms.append(1000 * (head[0] - t0))
            t0 = time.perf_counter()
            shifted = resample(root, round(RATE * 2 ** (s / 12)), RATE)  # played faster: higher
            shift_ms.append(1000 * (time.perf_counter() - t0))
        rows.append({"semitones": s, "render_head_ms_median": float(np.median(head_ms)),
                     "shift_whole_ms_median": float(np.median(shift_ms)),
                     "decay_s": {"root": decay_s(root), "rendered": decay_s(out), "shifted": decay_s(shifted)}})
    return {"sound": sound, "notes": rows}


# -- note to sound: a JACK keyboard plays the module, and records it --------------------------------
REPEATED = 7  # semitones: after its first render, the pre-rendered case
NEW_NOTES = [s for s in range(-24, 25) if s not in (0, REPEATED)]  # 47 pitches: longer than the note cache


def note_to_sound(notes: int = 200, gap_s: float = 0.25) -> dict:
    """Note-ons from a JACK keyboard (its own process) into the module as `neurorack run`
    assembles it (its MIDI input, MidiControl, engine, sounddevice on JACK) under its runtime;
    the onset found in the keyboard client's own capture, counted in server frames from the
    cycle the note-on was written. Repeated notes and new ones in turns (ABAB), so both meet
    the same moments of this machine."""
    from ..assembly import ModuleOptions, assemble
    from ..engine.audio import rescan
    from ..runtime import ModuleRuntime
    from .latency import bench_config

    rescan()
    keyboard = JackKeyboard(capture=True, seconds=2 * notes * gap_s + 10)
    module = assemble(ModuleOptions(board="sim", config=bench_config(), persist=False, device="jack", midi=KEYBOARD))
    engine, audio, midi = module.engine, module.audio, module.midi.input
    root = module.settings.midi.root
    sent: dict[str, list[int]] = {"repeated": [], "new": []}
    rng = np.random.default_rng(0)
    try:
        with ModuleRuntime(module.cores) as runtime:
            module.render_stale()
            runtime.freeze()
            engine.start()
            if midi is None or not midi.ports():
                raise RuntimeError("the module's MIDI input did not open the keyboard's port")
            if not audio.ensure_running():
                raise RuntimeError(f"cannot play through JACK: {audio.problem}")
            keyboard.capture_from_others()
            time.sleep(0.5)
            for k in range(2 * notes + 1):
                kind = "repeated" if k % 2 == 0 else "new"
                note = root + (REPEATED if kind == "repeated" else NEW_NOTES[(k // 2) % len(NEW_NOTES)])
                frame = keyboard.send(bytes([0x90, note, 127]))
                if k > 0:  # the first repeated note is its first render
                    sent[kind].append(frame)
                time.sleep(0.02)
                keyboard.send(bytes([0x80, note, 0]))
                time.sleep(gap_s * (0.75 + 0.5 * rng.random()) - 0.02)  # never in step with the blocks
            time.sleep(0.5)
            record = keyboard.fetch_record()
            shared = runtime.describe()
    finally:
        module.close()
        keyboard.close()
    result = {}
    for kind, frames in sent.items():
        found = [onset(record, f) for f in frames]
        got = [f for f in found if f is not None]
        result[kind] = {"latency_ms": _stats(np.array(got) * 1000 / RATE), "latency_frames": _stats(got),
                        "misses": len(found) - len(got)}
    result.update(xruns=audio.xruns, late_callbacks=audio.late, keyboard_xruns=keyboard.xruns,
                  note_renders=engine.prerender.note_renders, notes_dropped=engine.prerender.notes_dropped,
                  midi_dropped=midi.dropped, runtime=shared, cores=module.cores.describe())
    return result


def run(out: str, notes: int = 200, backend_notes: int = 1000, rounds: int = 3, pitch: bool = True) -> dict:
    server = JackServer(RATE, BLOCK).start()
    try:
        result = {"environment": environment(), "server": {"driver": "dummy", "rate": RATE, "period": BLOCK},
                  "block_ms": 1000 * BLOCK / RATE, "backend": backends(backend_notes, rounds),
                  "alsa_sequencer": os.path.exists("/dev/snd/seq")}
        result["note_to_sound"] = note_to_sound(notes)
    finally:
        import sounddevice as sd

        sd._terminate()  # let go of the server before it stops (PortAudio 19.6 cannot survive it)
        server.stop()
        sd._initialize()
    if pitch:
        result["pitch"] = pitch_accuracy()
        result["shift_or_render"] = shift_or_render()
    from ..fileio import write_json

    write_json(out, result)
    return result


if __name__ == "__main__":
    keyboard_main()
