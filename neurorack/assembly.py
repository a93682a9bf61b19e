"""The one place a module is put together: `neurorack run`, the demo, screenshots, offline
`--record` and every benchmark call ``assemble``, and get a complete ``Module``: profile,
settings (stored, then a run config's overrides), model and renderer, sound library, engine,
board and, live, the audio output.

Live (``live=True``) the model runs in a render process (render_process.py), so torch never
holds this process's GIL while audio plays, and the cores are planned (engine/cpus.py). Offline
the model runs in this process, there is no audio output, and the engine's clock is the
render's own time, so the same events file renders the same samples.

>>> module = assemble(ModuleOptions(board="sim", live=False, persist=False))
>>> audio = record(module, load_events("patch.jsonl"))
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from .engine.cpus import CorePlan, plan_cores
from .engine.prerender import NOTE_CACHE
from .engine.render_process import RenderProcess
from .engine.renderers import LocalRenderer
from .errors import NeurorackError
from .hal.profile import BoardProfile, load_profile
from .hal.sim import ControlSink, SimBoard
from .model.backends import CHOICES as BACKEND_CHOICES
from .model.paths import model_path
from .module import Module
from .settings import Settings, load_run_config, load_settings
from .sounds.library import SoundLibrary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModuleOptions:
    board: str = "sim"  # a profile name in hardware/, or a .toml path
    config: str | None = None  # a run config (TOML) over the stored settings
    model: str | None = None  # default: the settings' model
    library: str | None = None  # the user sound folder
    backend: str | None = None  # default: the profile's [model] backend
    persist: bool = True  # read and write the board's stored settings
    live: bool = True  # render process, audio output, planned cores; False: offline
    threads: int = 1
    device: str | None = None  # audio output; default: the run config's, then the profile's
    osc_port: int | None = None  # the sim board listens for OSC on 127.0.0.1 here (0: any free port)
    midi: str | None = None  # the MIDI input (hal/midi.py: all, off, virtual, a port's name); default: settings


def assemble(options: ModuleOptions = ModuleOptions(),
             make_board: Callable[[BoardProfile, ControlSink, dict, ModuleOptions], object] | None = None) -> Module:
    """A complete module for `options`. `make_board(profile, sink, calibration, options)`: a
    board of one's own (tests pass chip emulators), instead of the profile's."""
    profile = load_profile(options.board)
    backend = options.backend or profile.model_backend
    if backend not in BACKEND_CHOICES:
        raise NeurorackError(f"{profile.source}: [model] backend {backend!r} is not one of {', '.join(BACKEND_CHOICES)}")
    settings = load_settings(profile.name) if options.persist else Settings()
    if options.config:
        settings.update(load_run_config(options.config), str(options.config))
    library = SoundLibrary(options.library)
    rate = settings.audio.sample_rate
    model = options.model or model_path(settings.model)
    cores = CorePlan(None, None)
    if options.live:
        try:
            cores = plan_cores(settings.audio.cpu)
        except ValueError as exc:
            raise NeurorackError(f"settings: {exc}") from None
        # A buffer for every voice slot (playing and releasing), the two ready impacts, the
        # render in flight, gates still queued, and the MIDI notes kept rendered.
        renderer = RenderProcess(rate, model, backend=backend, threads=options.threads,
                                 slabs=2 * settings.voices + 6 + NOTE_CACHE, cpus=cores.render).start()
    else:
        from .model.generator import load_model

        renderer = LocalRenderer(load_model(model, backend=backend, threads=options.threads), rate)
    board_of = make_board or _board
    try:
        module = Module(profile, settings, renderer, library,
                        make_board=lambda sink: board_of(profile, sink, settings.calibration, options),
                        make_audio=_audio(profile, settings, options) if options.live else None,
                        cores=cores, persist=options.persist, offline=not options.live)
    except BaseException:
        renderer.stop()
        raise
    if options.live:
        module.midi.input = _midi_input(module, options.midi or settings.midi.port, settings.midi.api)
    return module


def _midi_input(module: Module, port: str, api: str):
    """The MIDI input, or None (off, or no MIDI here: one line, and the module plays on)."""
    if port == "off":
        return None
    try:
        from .hal.midi import MidiInput

        midi = MidiInput(module.midi, port, api, on_change=module.midi.device_changed).start()
    except ImportError as exc:
        log.error("MIDI: %s is not installed (pip install 'neurorack[midi]'); playing without MIDI", exc.name)
        return None
    except NeurorackError as exc:
        log.warning("MIDI: %s; playing without MIDI", exc)
        return None
    log.info("MIDI in (%s): %s", midi.api, ", ".join(midi.ports()) or f"waiting for {port!r}")
    return midi


def _board(profile: BoardProfile, sink: ControlSink, calibration: dict, options: ModuleOptions):
    """The profile's board: the sim board (OSC when asked, live), or the hardware's jacks."""
    if profile.gpio == "sim":
        board = SimBoard(profile, sink, calibration)
        if options.live and options.osc_port is not None:
            port = board.start_osc(options.osc_port)
            log.info("sim board: OSC on 127.0.0.1:%d", port)
        return board
    from .hal.board import HardwareBoard

    board = HardwareBoard(profile, sink, calibration)
    if options.live:
        board.start()
    return board


def _audio(profile: BoardProfile, settings: Settings, options: ModuleOptions):
    from .engine.audio import AudioOutput

    a, output = settings.audio, profile.audio  # the board's output; --device or a run config's device win
    return lambda engine: AudioOutput(engine, options.device or a.device or output.device_spec, a.sample_rate,
                                      a.block_size, a.channels, rt_priority=output.rt_priority)
