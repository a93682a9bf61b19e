"""`neurorack bench soak`: the module under load for minutes: gates at 20 Hz on both inputs, all
four CVs sweeping (so the worker re-renders all the time), the other core kept busy. Counts
xruns two ways (the JACK server's own xrun callback, and what the module reports) and samples
the module's resident memory to see whether it grows. Then the floors, under the same load:
the minimal click player, and the JACK server with no player at all."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .common import environment
from .jack import JackServer
from .latency import BLOCK, RATE, _start_module, _stop

PORT = 9410


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _drive(stop: threading.Event, gate_rate: float, cv_rate: float = 100.0) -> dict:
    """Send gates and CV sweeps over OSC until `stop`; returns what was sent."""
    from pythonosc.udp_client import SimpleUDPClient

    osc = SimpleUDPClient("127.0.0.1", PORT)
    sent = {"gates": 0, "cvs": 0}
    t0 = time.monotonic()
    next_gate = next_cv = t0
    gate_turn = 0
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_gate:
            gate = 1 + gate_turn % 2  # alternate, so each input gets `gate_rate` per second
            osc.send_message(f"/gate/{gate}", 1)
            osc.send_message(f"/gate/{gate}", 0)
            sent["gates"] += 1
            gate_turn += 1
            next_gate += 1.0 / (2 * gate_rate)
        if now >= next_cv:
            t = now - t0
            for n, period in ((1, 7.0), (2, 3.0), (3, 5.0), (4, 11.0)):  # slow and fast sweeps, never in step
                osc.send_message(f"/cv/{n}", 4.5 * math.sin(2 * math.pi * t / period))
            sent["cvs"] += 4
            next_cv += 1.0 / cv_rate
        time.sleep(max(0.0, min(next_gate, next_cv) - time.monotonic()))
    return sent


# Stands in for the render process's compute when the floor is measured: the module renders
# on one core all the soak long (every CV sweep step is a new impact), and heavy compute anywhere
# on this machine delays a real-time audio thread, even at the lowest priority (measured).
RENDER_LOAD = "import numpy as np\nx = np.random.rand(1 << 20).astype(np.float32)\nwhile True: np.fft.rfft(x)"


def _soak(player: subprocess.Popen, seconds: float, gate_rate: float, server_xruns: list) -> dict:
    """Drive `player` over OSC for `seconds`; the JACK server's xruns and the player's memory."""
    time.sleep(8)
    if player.poll() is not None:
        raise RuntimeError(f"the player exited at start: {player.stderr.read()[-500:]}")
    xruns_at_start = server_xruns[0]
    stop = threading.Event()
    sent: dict = {}
    driver = threading.Thread(target=lambda: sent.update(_drive(stop, gate_rate)), daemon=True)
    driver.start()
    t0 = time.monotonic()
    samples = []
    while time.monotonic() - t0 < seconds:
        time.sleep(5)
        if player.poll() is not None:
            raise RuntimeError(f"the player exited during the soak: {player.stderr.read()[-500:]}")
        samples.append((time.monotonic() - t0, _rss_kb(player.pid)))
    stop.set()
    driver.join(5)
    return {"jack_server_xruns": server_xruns[0] - xruns_at_start, "sent": sent, "rss_samples": samples,
            "log": _stop(player)}


def _memory(samples, seconds: float) -> dict:
    t, rss = np.array([s[0] for s in samples]), np.array([s[1] for s in samples], float)
    settled = t >= min(60.0, seconds / 3)  # after the first minute: allocator and caches settled
    slope = float(np.polyfit(t[settled], rss[settled], 1)[0] * 60) if settled.sum() >= 3 else float("nan")
    return {"first": int(rss[0]), "after_settling": int(rss[settled][0]) if settled.any() else None,
            "last": int(rss[-1]), "max": int(rss.max()), "slope_kb_per_min_after_settling": slope}


def _empty_server(seconds: float, server_xruns: list) -> dict:
    """No player at all: the JACK server and its monitor alone, for `seconds`."""
    xruns_at_start = server_xruns[0]
    time.sleep(seconds)
    return {"jack_server_xruns": server_xruns[0] - xruns_at_start}


def run(out: str, seconds: float = 300.0, gate_rate: float = 20.0, nice: int = -10, tools: str = "../shared/tools",
        floor: bool = True) -> dict:
    """`nice`: the module's priority, -10 as deploy/neurorack.service runs it (0: as the load's).
    `floor`: then, with the same busy core and a stand-in for the render process's compute
    (RENDER_LOAD, at the lowest priority), the minimal click player from `tools` under the same
    drive and priority, and the JACK server with no player at all, each for `seconds`."""
    import jack

    server = JackServer(RATE, BLOCK).start()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # the other core, busy
    monitor = jack.Client("soak-monitor", no_start_server=True)
    server_xruns = [0]
    monitor.set_xrun_callback(lambda delay: server_xruns.__setitem__(0, server_xruns[0] + 1))
    monitor.activate()
    load = None
    try:
        module = _soak(_start_module(PORT, nice=nice), seconds, gate_rate, server_xruns)
        if floor:
            load = subprocess.Popen([sys.executable, "-c", RENDER_LOAD], preexec_fn=lambda: os.nice(19))
            player = subprocess.Popen([sys.executable, str(Path(tools) / "click_player.py"), str(PORT), str(BLOCK)],
                                      preexec_fn=(lambda: os.nice(nice)) if nice else None,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            click = _soak(player, seconds, gate_rate, server_xruns)
            empty = _empty_server(seconds, server_xruns)
    finally:
        for process in (busy, load):
            if process is not None:
                process.kill()
        monitor.deactivate()
        monitor.close()
        server.stop()
    reported = {"xruns": 0, "late": 0}
    for line in module["log"].splitlines():
        if "audio underflows (xruns)" in line:
            reported["xruns"] += int(line.split("WARNING: ")[1].split()[0])
        elif "late audio callbacks" in line:
            reported["late"] += int(line.split("WARNING: ")[1].split()[0])
    result = {
        "environment": environment(), "seconds": seconds, "gate_rate_per_input": gate_rate, "sent": module["sent"],
        "jack_server_xruns": module["jack_server_xruns"], "module_reported": reported,
        "rss_kb": _memory(module["rss_samples"], seconds),
        "rss_samples": [[round(a, 1), int(b)] for a, b in module["rss_samples"]],
        "other_core_busy": True, "module_nice": nice,
    }
    if floor:
        result["click_player_floor"] = {"jack_server_xruns": click["jack_server_xruns"], "sent": click["sent"],
                                        "render_load": RENDER_LOAD, "nice": nice}
        result["empty_server_floor"] = {"jack_server_xruns": empty["jack_server_xruns"], "render_load": RENDER_LOAD,
                                        "players": 0}
    from ..fileio import write_json

    write_json(out, result)
    return result
