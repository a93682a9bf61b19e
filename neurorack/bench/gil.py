"""`neurorack bench gil`: how long a real-time thread of the audio process waits for the GIL
while another thread draws the screen, with the process on all cores and pinned to one.

The real-time thread stands in for the audio callback: SCHED_FIFO (where allowed), it wakes
every 2 ms and takes the GIL, and records how late it got there. The other thread draws
screens' text with the shipped fonts, as the display loop does, but without pause. Each
variant runs in a fresh process, alternating, so both meet the same moments of the machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from .common import environment

PERIOD_S = 0.002
LATE_MS = 1.33  # half a 128-frame block at 48 kHz: a callback this late has little time left


def _draw_forever(stop: threading.Event) -> None:
    from PIL import Image, ImageDraw

    from ..ui.paint import Painter

    image = Image.new("1", (128, 64))
    painter = Painter(ImageDraw.Draw(image), image.size)
    n = 0
    while not stop.is_set():
        painter.title("Home", f"{n % 100:02d}")
        for row in range(3):
            painter.row(row, f"CV {row + 1}  richness", f"{n % 97 / 10:+.1f} V", selected=row == n % 3)
        n += 1


def probe(seconds: float, pin: bool, switch_interval: float) -> dict:
    """In this process: the drawing thread, and the real-time thread's lateness over `seconds`."""
    from ..engine.cpus import pin_process

    sys.setswitchinterval(switch_interval)
    if pin:
        pin_process({max(os.sched_getaffinity(0))})
    stop = threading.Event()
    threading.Thread(target=_draw_forever, args=(stop,), daemon=True).start()
    lateness, realtime = [], [True]

    def waker():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        except (PermissionError, OSError):
            realtime[0] = False
        due = time.monotonic() + PERIOD_S
        end = due + seconds
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()  # the GIL is ours again here
            lateness.append(now - due)
            due = max(due + PERIOD_S, now + PERIOD_S / 4)

    thread = threading.Thread(target=waker)
    thread.start()
    thread.join()
    stop.set()
    ms = np.array(lateness) * 1000
    return {"pinned": pin, "realtime": realtime[0], "wakes": int(len(ms)), "median_ms": float(np.median(ms)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "late": int((ms > LATE_MS).sum())}


def run(out: str, runs: int = 5, seconds: float = 10.0, switch_interval: float = 0.0005) -> dict:
    results = {"pinned": [], "unpinned": []}
    for _ in range(runs):
        for variant in ("unpinned", "pinned"):
            child = subprocess.run([sys.executable, "-m", "neurorack.bench.gil", str(seconds),
                                    str(int(variant == "pinned")), str(switch_interval)],
                                   capture_output=True, text=True, timeout=seconds + 60, check=True)
            results[variant].append(json.loads(child.stdout.strip().splitlines()[-1]))
    summary = {variant: {"max_ms_each_run": [round(r["max_ms"], 2) for r in rows],
                         "runs_with_a_wait_over_100_ms": sum(r["max_ms"] > 100 for r in rows),
                         "median_of_p99_ms": float(np.median([r["p99_ms"] for r in rows])),
                         "late_wakes_total": sum(r["late"] for r in rows)}
               for variant, rows in results.items()}
    result = {"environment": environment(), "seconds_per_run": seconds, "period_ms": PERIOD_S * 1000,
              "late_ms": LATE_MS, "switch_interval_s": switch_interval, "summary": summary, "runs": results}
    from ..fileio import write_json

    write_json(out, result)
    return result


if __name__ == "__main__":
    seconds, pin, interval = sys.argv[1:4]
    print(json.dumps(probe(float(seconds), pin == "1", float(interval))))
