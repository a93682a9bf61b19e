"""`neurorack bench latency`: gate to sound, control to sound and cold start, through a JACK
server on its dummy driver (48 kHz, 128 frames), as the issue defines them.

- in process: gates injected at a known stream frame into the real engine and model, the onset
  found in the output stream the callback produced (a tap copies each block aside);
- from outside: ../shared/tools/latency_probe.py sends OSC gates to `neurorack run --board sim`
  and finds onsets in a JACK capture; the minimal click player runs beside it, and the probe
  measures the two in turns (ABAB), so both meet the same moments of this machine;
- control to sound: a CV change, then a gate 10 ms later: does it play the new impact?
- cold start: process start to the first impact heard by a JACK capture client.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import environment
from .jack import JackServer

RATE, BLOCK = 48000, 128
# A sharp sound that has died away (-69 dB) within the probe's 0.25 s between gates, so each
# onset stands clear of the one before, for the module and the click player alike.
BENCH_SOUND = "Noise Burst"


def bench_config(channels: int = 2) -> str:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="neurorack-bench-")) / "bench.toml"
    path.write_text(f'sound_a = "{BENCH_SOUND}"\nsound_b = "Glass Ring"\n[audio]\nchannels = {channels}\n')
    return str(path)


def onset(signal: np.ndarray, at: int, rate: int = RATE):
    """Frames from `at` to the first sample above 4x the 5 ms before it (the probe's rule)."""
    floor = float(np.abs(signal[max(0, at - rate // 200):at]).max()) if at > 0 else 0.0
    hit = np.flatnonzero(np.abs(signal[at:at + rate // 10]) > max(1e-3, 4 * floor))
    return int(hit[0]) if len(hit) else None


def _stats(values) -> dict:
    v = np.asarray(values, float)
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "median": float(np.median(v)), "p99": float(np.percentile(v, 99)), "max": float(v.max())}


class Tap:
    """Wraps Engine.process to copy every block into a preallocated record (bench only)."""

    def __init__(self, engine, seconds: float):
        self.engine, self.record = engine, np.zeros(int(seconds * engine.sample_rate), np.float32)
        self.process = engine.process
        engine.process = self._process

    def _process(self, out):
        start = self.engine.frame
        self.process(out)
        end = min(start + len(out), len(self.record))
        if end > start:
            self.record[start:end] = out[:end - start]


def in_process(triggers: int, gap_s: float) -> dict:
    """Gates into the engine at known frames, under the runtime `neurorack run` runs
    (runtime.ModuleRuntime: switch interval, pinned cores, a frozen GC)."""
    from ..assembly import ModuleOptions, assemble
    from ..engine.audio import rescan
    from ..hal.gates import Gate, GateEdge
    from ..runtime import ModuleRuntime

    rescan()
    module = assemble(ModuleOptions(board="sim", config=bench_config(), persist=False, device="jack"))
    engine, audio = module.engine, module.audio
    with ModuleRuntime(module.cores) as runtime:
        module.render_stale()
        tap = Tap(engine, triggers * gap_s + 5)
        runtime.freeze()
        engine.start()
        try:
            if not audio.ensure_running():
                raise RuntimeError(f"cannot play through JACK: {audio.problem}")
            time.sleep(0.5)
            stamps, rng = [], np.random.default_rng(0)
            for _ in range(triggers):
                time.sleep(gap_s * (0.75 + 0.5 * rng.random()))  # never in step with the blocks
                at = time.monotonic_ns()
                engine.gate(GateEdge(Gate.IMPACT, True, at))
                stamps.append(engine.clock.frame_at(at))
            time.sleep(0.3)
            control = control_to_sound(module, 50)
            shared = runtime.describe()
        finally:
            module.close()
    found = [onset(tap.record, stamp) for stamp in stamps]
    frames = [f for f in found if f is not None]
    misses = len(found) - len(frames)
    return {"latency_frames": _stats(frames), "latency_ms": _stats(np.array(frames) * 1000 / RATE),
            "misses": misses, "xruns": audio.xruns, "late_callbacks": audio.late, "control_to_sound": control,
            "cores": module.cores.describe(), "runtime": shared}


def control_to_sound(module, changes: int, wait_ms: float = 10.0) -> dict:
    """Move CV 2 (richness): how long until the new impact is published (polled, no sleep), and,
    in a second pass, whether a gate fired `wait_ms` after a change takes the new impact."""
    from ..hal.gates import Gate

    engine = module.engine
    values = [-4.0 + 8.0 * ((k * 7) % changes) / changes for k in range(changes)]
    publish_ms, fresh = [], 0
    for k, volts in enumerate(values):
        engine.prerender.wait_ready(5)
        before = engine.prerender.ready[Gate.IMPACT]
        t0 = time.perf_counter()
        engine.cv(2, volts)
        while engine.prerender.ready[Gate.IMPACT] is before and time.perf_counter() - t0 < 1.0:
            time.sleep(0.0001)
        publish_ms.append(1000 * (time.perf_counter() - t0))
    for k, volts in enumerate(values):
        engine.prerender.wait_ready(5)
        before = engine.prerender.ready[Gate.IMPACT]
        engine.cv(2, -volts)
        time.sleep(wait_ms / 1000)
        fresh += engine.prerender.ready[Gate.IMPACT] is not before  # what engine.gate would take now
    return {"wait_ms": wait_ms, "fresh_after_wait": fresh, "changes": changes, "publish_ms": _stats(publish_ms)}


def _start_module(port: int, extra=(), nice: int = 0, config: str | None = None) -> subprocess.Popen:
    """`neurorack run` on the sim board, playing through JACK; `nice` as the service would set it."""
    import tempfile

    env = {**os.environ, "NEURORACK_CONFIG": tempfile.mkdtemp(prefix="neurorack-bench-")}  # factory settings
    return subprocess.Popen([sys.executable, "-m", "neurorack.cli", "run", "--board", "sim", "--device", "jack",
                             "--osc-port", str(port), "--config", config or bench_config(), *extra], env=env,
                            preexec_fn=(lambda: os.nice(nice)) if nice else None,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _probe(tools: Path, port: int, triggers: int, gap_s: float) -> dict:
    result = subprocess.run([sys.executable, str(tools / "latency_probe.py"), str(port), str(triggers), str(gap_s)],
                            capture_output=True, text=True, timeout=triggers * (gap_s + 0.1) + 60)
    if result.returncode != 0:
        raise RuntimeError(f"latency probe failed: {result.stderr.strip()[-300:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def external(tools: Path, triggers: int, gap_s: float, rounds: int = 2) -> dict:
    """The module and the click player run side by side, both mono (the probe sums the first two
    application ports it finds), and the probe measures them in turns, ABAB: whatever else this
    machine is doing at a given minute falls on both alike."""
    module = _start_module(9400, config=bench_config(channels=1))
    click = subprocess.Popen([sys.executable, str(tools / "click_player.py"), "9401", str(BLOCK)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # started, rendered, streams open
    turns = []
    try:
        for process in (module, click):
            if process.poll() is not None:
                raise RuntimeError(f"a player exited at start: {process.stderr.read()[-500:]}")
        for _ in range(rounds):
            ours = _probe(tools, 9400, triggers, gap_s)
            floor = _probe(tools, 9401, triggers, gap_s)
            turns.append({"neurorack": ours, "click_player": floor,
                          "p99_difference_ms": ours["p99_ms"] - floor["p99_ms"]
                          if ours.get("p99_ms") and floor.get("p99_ms") else None})
    finally:
        log = _stop(module)
        _stop(click)
    differences = [t["p99_difference_ms"] for t in turns if t["p99_difference_ms"] is not None]
    return {"rounds": turns, "triggers_per_round": triggers,
            "p99_difference_ms": {"each_round": differences, "worst": max(differences) if differences else None},
            "misses": {"neurorack": sum(t["neurorack"]["misses"] for t in turns),
                       "click_player": sum(t["click_player"]["misses"] for t in turns)},
            "module_log_problems": [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line][:20]}


def cold_start(runs: int = 3, extra=(), on_heard=None) -> dict:
    """Process start to the first impact in a JACK capture, with a gate sent every 10 ms.
    `extra`: more `neurorack run` arguments; `on_heard(process)`: called once it played."""
    import jack
    from pythonosc.udp_client import SimpleUDPClient

    times = []
    for run in range(runs):
        heard = {}
        client = jack.Client(f"coldstart{run}", no_start_server=True)
        inport = client.inports.register("in")

        @client.set_process_callback
        def process(frames):
            if "t" not in heard and np.abs(inport.get_array()).max() > 1e-4:
                heard["t"] = time.monotonic()

        pending = []
        client.set_port_registration_callback(lambda port, registered: pending.append(port) if registered else None)
        client.activate()
        osc = SimpleUDPClient("127.0.0.1", 9402)
        t0 = time.monotonic()
        proc = _start_module(9402, extra)
        try:
            while "t" not in heard and time.monotonic() - t0 < 30:
                while pending:
                    port = pending.pop()
                    if port.is_output and port.is_audio and not port.name.startswith(("system:", "coldstart")):
                        client.connect(port, inport)
                osc.send_message("/gate/1", 1)
                time.sleep(0.01)
            if on_heard and "t" in heard:
                on_heard(proc)
        finally:
            _stop(proc)
            client.deactivate()
            client.close()
        times.append(heard.get("t", float("nan")) - t0)
    return {"seconds": times, "median_s": float(np.nanmedian(times))}


def run(out: str, triggers: int = 200, gap_s: float = 0.25, tools: str = "../shared/tools", external_run: bool = True,
        rounds: int = 2) -> dict:
    server = JackServer(RATE, BLOCK).start()
    try:
        result = {"environment": environment(), "server": {"driver": "dummy", "rate": RATE, "period": BLOCK},
                  "block_ms": 1000 * BLOCK / RATE}
        # Each part in its own process where PortAudio is concerned: one PortAudio per JACK server life.
        result["in_process"] = in_process(triggers, gap_s)
        if external_run:
            tools_dir = Path(tools)
            if not (tools_dir / "latency_probe.py").is_file():
                raise FileNotFoundError(f"no latency_probe.py in {tools_dir} (give --tools DIR)")
            result["external"] = external(tools_dir, triggers, gap_s, rounds)
        result["cold_start"] = cold_start()
    finally:
        import sounddevice as sd

        sd._terminate()  # let go of the server before it stops (PortAudio 19.6 cannot survive it)
        server.stop()
        sd._initialize()
    from ..fileio import write_json

    write_json(out, result)
    return result
