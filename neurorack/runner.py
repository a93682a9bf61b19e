"""Running the module: live (audio device, board inputs, main loop) or offline (an events file
rendered block by block into a WAV, through the same engine).

Offline, every event lands on its exact frame and a control change is rendered before the next
event is applied, so the output is deterministic: the same file gives the same samples. Live,
the pre-render worker catches up within a few milliseconds instead (``bench latency``).
"""
from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time

import numpy as np

from . import logs
from .engine.audio import AudioOutput, AudioWedged
from .engine.cpus import pin_process
from .hal.sim import SimBoard, SimEvent
from .errors import NeurorackError
from .module import Module

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.0005
TAIL_LIMIT_S = 30.0  # an offline render stops this long after the last event at the latest


def record(module: Module, events: list[SimEvent], duration: float | None = None) -> np.ndarray:
    """The output stream for these events, mono float32, until the last sound has died away
    (or `duration` seconds). The engine's worker thread is not started: renders happen here."""
    engine, board = module.engine, SimBoard(module.profile, module)
    rate, block = engine.sample_rate, engine.block_size
    engine.prerender.update()
    last_t = events[-1].t if events else 0.0
    limit = duration if duration is not None else last_t + TAIL_LIMIT_S
    total = int(round(limit * rate))
    out = np.zeros(-(-total // block) * block, np.float32)
    pending = list(events)
    frame = 0
    while frame < total:
        # Events before this block's start are applied now; a gate sounds one block after its frame.
        while pending and round(pending[0].t * rate) < frame + block:
            event = pending.pop(0)
            at = int(round(event.t * rate))
            board.apply(event, frame=at if event.kind == "gate" else None)
            if event.kind != "gate":
                engine.prerender.update()
        engine.process(out[frame:frame + block])
        frame += block
        if duration is None and not pending and engine.voices.active() == 0 and len(engine.ring) == 0:
            break
    return out[:min(frame, total)]


def start_display(module: Module):
    """The profile's screen, drawn by a DisplayLoop; None (and one log line) when there is none
    or it cannot be opened: the module plays without a screen."""
    from .hal.display import open_display
    from .ui.menu import DisplayLoop

    try:
        device = open_display(module.profile.display)
    except Exception as exc:  # a missing bus, a missing library, a panel that does not answer
        log.error("display: %s; playing without a screen", exc)
        return None
    return DisplayLoop(module.ui, device).start() if device is not None else None


def run_live(module: Module, board, audio: AudioOutput, duration: float | None = None,
             stop: threading.Event | None = None, report_s: float = 1.0, panel_port: int | None = None,
             panel_host: str = "127.0.0.1") -> int:
    """The firmware main loop: keep audio running, report problems, save settings. Returns the
    exit status: 0, or 75 when only a restart can reopen the audio device. `panel_port`: serve
    the virtual panel there (the sim board), on `panel_host` (beyond localhost: paired, ui/panel.py)."""
    stop = stop or threading.Event()
    # The audio callback needs the GIL every block (2.7 ms at 128 frames): a thread holding it
    # (OSC parsing, the CV poller) must hand it over sooner than Python's default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # ... and on one core the callback thread takes it the moment another thread lets go.
    pin_process(module.cores.audio)
    log.info("cores: %s", module.cores.describe())
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = module.engine
    t0 = time.monotonic()
    engine.prerender.update()  # the first renders before audio runs
    # A full garbage collection holds the GIL for ~45 ms here, and the audio callback waits for
    # it. Everything made so far lives as long as the module: frozen, collections skip it.
    display = start_display(module)
    panel = None
    if panel_port is not None:
        from .ui.panel import Panel

        try:
            panel = Panel(module, board, display.device if display else None, panel_host).start(panel_port)
        except NeurorackError as exc:  # a port in use: the module plays on without its panel
            log.error("%s; playing without the virtual panel", exc)
    if panel is not None:
        if panel.pairing:
            log.info("virtual panel on %s:%d: pair a browser with http://ADDRESS:%d/?pair=%s (code also on the "
                     "Status screen)", panel_host, panel.port, panel.port, panel.pairing)
        else:
            log.info("virtual panel: http://127.0.0.1:%d/", panel.port)
    gc.collect()
    gc.freeze()
    engine.start()
    seen = Counters.read(engine, audio)
    try:
        if audio.ensure_running() and all(b is not None for b in engine.prerender.ready.values()):
            log.info("ready: first gate playable %.2f s after the engine started", time.monotonic() - t0)
        while not stop.wait(0.1):
            audio.ensure_running()
            module.save_if_rested()
            if time.monotonic() - seen.at >= report_s:
                now = Counters.read(engine, audio)
                for line in now.news_since(seen):
                    log.warning(line)
                logs.flush_held()
                seen = now
            if duration is not None and time.monotonic() - t0 >= duration:
                break
    except KeyboardInterrupt:
        pass
    except AudioWedged as exc:
        log.error("%s", exc)
        return AudioWedged.exit_code
    finally:
        audio.close()
        for part in (panel, display):
            if part is not None:
                part.stop()
        board.close()
        module.close()
    return 0


class Counters:
    """The engine's and the audio's problem counters at one moment, for one-line reports."""

    FIELDS = {
        "xruns": "audio underflows (xruns)",
        "late": "late audio callbacks",
        "dropped": "gates dropped (more than the queue holds: a gate storm)",
        "not_ready": "gates before the first render was ready",
        "cut": "voices cut short (every voice busy)",
        "bad_values": "control values ignored (not a number)",
    }

    def __init__(self, at: float, **values):
        self.at, self.values = at, values

    @classmethod
    def read(cls, engine, audio) -> "Counters":
        return cls(time.monotonic(), xruns=audio.xruns, late=audio.late, dropped=engine.ring.dropped,
                   not_ready=engine.not_ready, cut=engine.voices.cut, bad_values=engine.bad_values)

    def news_since(self, before: "Counters") -> list[str]:
        return [f"{self.values[k] - before.values[k]} {label} in the last {self.at - before.at:.0f} s"
                for k, label in self.FIELDS.items() if self.values[k] > before.values[k]]
