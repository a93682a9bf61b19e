"""Audio out through a real JACK server (dummy driver, clocked like a sound card): the engine
plays through sounddevice, a JACK client captures what comes out; the server vanishing and a
missing device are handled as the issue asks."""
import os
import queue
import subprocess
import sys
import time

import jack
import numpy as np
import pytest

from neurorack.engine.audio import AudioOutput, rescan
from test_engine import marked_engine

from neurorack.hal.gates import Gate, GateEdge


@pytest.fixture
def portaudio_on(server):
    """PortAudio in this process, connected to the test's server. PortAudio 19.6 cannot survive
    its JACK server going away, so it lets go of the server before the server stops."""
    import sounddevice as sd

    rescan()  # PortAudio lists the new server's ports
    yield server
    sd._terminate()
    server.stop()
    sd._initialize()


class Capture:
    """A JACK client recording every port of the other clients (as the latency probe does)."""

    def __init__(self):
        self.client = jack.Client("capture", no_start_server=True)
        self.blocks = queue.Queue()
        self.ins = [self.client.inports.register(f"in_{i}") for i in range(2)]
        self.client.set_process_callback(
            lambda frames: self.blocks.put(np.stack([p.get_array().copy() for p in self.ins])))
        self.client.activate()

    def connect(self):
        outs = [p for p in self.client.get_ports(is_audio=True, is_output=True)
                if not p.name.startswith(("system:", "capture:"))]
        for port, inport in zip(outs, self.ins):
            self.client.connect(port, inport)
        return outs

    def audio(self):
        blocks = []
        while not self.blocks.empty():
            blocks.append(self.blocks.get())
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((2, 0), np.float32)

    def close(self):
        self.client.deactivate()
        self.client.close()


def test_impacts_play_through_jack_on_both_channels(portaudio_on):
    engine, _ = marked_engine()
    engine.prerender.update()
    audio = AudioOutput(engine, device="jack", sample_rate=48000, block_size=128)
    capture = Capture()
    try:
        assert audio.ensure_running() and "system" in audio.device_name
        assert len(capture.connect()) == 2
        time.sleep(0.2)
        capture.audio()  # drop what came before the gates
        for _ in range(3):
            engine.gate(GateEdge(Gate.IMPACT, True))
            time.sleep(0.3)
        got = capture.audio()
    finally:
        capture.close()
        audio.close()
    marks = np.flatnonzero(got[0] == np.float32(0.9))
    assert len(marks) == 3 and np.array_equal(got[0], got[1])
    # Each impact arrives whole, sample for sample, as the engine rendered it.
    impact = engine.prerender.ready[1]
    for m in marks:
        assert np.array_equal(got[0, m:m + 4800], impact[:4800])
    assert audio.blocks > 0.9 * 48000 * 0.9 / 128  # the callback kept pace with the server's clock


def run_module(*args, timeout=60):
    return subprocess.Popen([sys.executable, "-m", "neurorack.cli", "run", "--board", "sim", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NEURORACK_CONFIG": os.environ.get("NEURORACK_CONFIG", "")})


def test_a_vanished_server_ends_the_process_for_its_restart(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path))
    proc = run_module("--device", "jack", "--osc-port", "0", "--duration", "60")
    time.sleep(6)
    assert proc.poll() is None, proc.stderr.read()
    server.stop()
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 75 and time.monotonic() - t0 < 10
    assert "audio output 'system' stopped" in err and "restarting the firmware" in err and "Traceback" not in err


def test_a_missing_device_is_one_line_and_the_module_keeps_running(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path))
    proc = run_module("--device", "no-such-card", "--osc-port", "0", "--duration", "5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    problems = [line for line in err.splitlines() if "no audio output 'no-such-card'" in line]
    assert len(problems) == 1 and "retrying every 2 s" in problems[0] and "Traceback" not in err


def test_the_latency_bench_measures_under_the_runtime_neurorack_run_runs(portaudio_on, tmp_path, monkeypatch):
    import threading

    from neurorack.assembly import ModuleOptions, assemble
    from neurorack.bench.latency import in_process
    from neurorack.runner import run_live
    from neurorack.runtime import SWITCH_INTERVAL_S, ModuleRuntime

    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path))
    bench = in_process(triggers=3, gap_s=0.05)["runtime"]
    module = assemble(ModuleOptions(board="sim", persist=False, device="jack"))
    seen, stop = {}, threading.Event()

    def look():  # from inside `neurorack run`'s main loop, once audio plays
        deadline = time.monotonic() + 60
        while module.audio.blocks < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.update(ModuleRuntime(module.cores).describe())
        stop.set()

    threading.Thread(target=look, daemon=True).start()
    assert run_live(module, stop=stop, duration=90) == 0
    assert seen == bench
    assert bench["switch_interval_s"] == SWITCH_INTERVAL_S and bench["gc_frozen"]
