"""Running the module: live (audio device, board inputs, main loop) or offline (an events file
rendered block by block into a WAV, through the same engine).

Offline, every event lands on its exact frame and a control change is rendered before the next
event is applied, so the output is deterministic: the same file gives the same samples. Live,
the pre-render worker catches up within a few milliseconds instead (``bench latency``).
"""
from __future__ import annotations

import logging
import signal
import threading
import time

import numpy as np

from .engine.audio import AudioWedged
from .errors import NeurorackError
from .hal.sim import SimEvent
from .module import Module
from .runtime import ModuleRuntime

log = logging.getLogger(__name__)
TAIL_LIMIT_S = 30.0  # an offline render stops this long after the last event at the latest


def record(module: Module, events: list[SimEvent], duration: float | None = None) -> np.ndarray:
    """The output stream for these events, mono float32, until the last sound has died away
    (or `duration` seconds). `module` is an offline one (``ModuleOptions(live=False)``): its
    worker thread is not started, renders happen here, and each gate lands on its own frame."""
    engine, board = module.engine, module.board
    rate, block = engine.sample_rate, engine.block_size
    module.render_stale()
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
            board.apply_offline(event)
            if event.kind != "gate":  # a control moved, or a MIDI note needs its pitch: rendered now
                module.render_stale()
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


def run_live(module: Module, duration: float | None = None, stop: threading.Event | None = None,
             report_s: float = 1.0, panel_port: int | None = None, panel_host: str = "127.0.0.1",
             events: list[SimEvent] | None = None) -> int:
    """The firmware main loop: keep audio running, report problems, save settings. Returns the
    exit status: 0, or 75 when only a restart can reopen the audio device. `panel_port`: serve
    the virtual panel there (the sim board), on `panel_host` (beyond localhost: paired,
    ui/panel.py). `events`: play these on the sim board, from the start."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine, audio = module.engine, module.audio
    t0 = time.monotonic()
    with ModuleRuntime(module.cores) as runtime:
        module.render_stale()  # the first renders before audio runs
        module.display = start_display(module)
        panel = None
        if panel_port is not None:
            from .hal.display import simulated_screen
            from .ui.panel import Panel

            screen = module.display.device if module.display else simulated_screen(module.profile.display)
            try:
                panel = Panel(module, screen, panel_host).start(panel_port)
            except NeurorackError as exc:  # a port in use: the module plays on without its panel
                log.error("%s; playing without the virtual panel", exc)
        if panel is not None:
            if panel.pairing:
                log.info("virtual panel on %s:%d: pair a browser with http://ADDRESS:%d/?pair=%s (code also on the "
                         "Status screen)", panel_host, panel.port, panel.port, panel.pairing)
            else:
                log.info("virtual panel: http://127.0.0.1:%d/", panel.port)
        runtime.freeze()
        engine.start()
        if events:
            module.board.play_events(events)
        try:
            if audio.ensure_running() and all(b is not None for b in engine.prerender.ready.values()):
                log.info("ready: first gate playable %.2f s after the engine started", time.monotonic() - t0)
            last_report = time.monotonic()
            while not stop.wait(0.1):
                audio.ensure_running()
                module.save_if_rested()
                if time.monotonic() - last_report >= report_s:
                    module.health.report()
                    last_report = time.monotonic()
                if duration is not None and time.monotonic() - t0 >= duration:
                    break
        except KeyboardInterrupt:
            pass
        except AudioWedged as exc:
            log.error("%s", exc)
            return AudioWedged.exit_code
        finally:
            for part in (panel, module.display):
                if part is not None:
                    part.stop()
            module.close()
    return 0
