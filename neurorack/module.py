"""The instrument: a board's inputs drive the engine; settings are remembered per board.

``Module`` is the ``ControlSink`` every board (hardware or simulated) calls. Gates and CVs go
straight to the engine; the encoder and its button drive the menus (``ui/``), whose screens
act through the methods below (select a sound, assign a CV, store a calibration, change a
setting). On the home screen a turn sets the morph amount, 1/20 per detent.

>>> module = Module.create("sim")
>>> module.engine.start(); module.gate(1, True)
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from . import __version__, logs
from .engine.controls import CvAssignment
from .engine.cpus import CorePlan, plan_cores
from .engine.engine import Engine
from .engine.render_process import RenderProcess
from .engine.renderers import LocalRenderer, Renderer
from .errors import NeurorackError
from .hal.cv import Calibration
from .hal.profile import BoardProfile, load_profile
from .model.backends import CHOICES as BACKEND_CHOICES
from .model.paths import model_path
from .settings import Settings, load_run_config, load_settings, save_settings
from .sounds.library import SoundLibrary
from .ui.menu import Ui
from .ui.system import system_status

log = logging.getLogger(__name__)
MORPH_STEP = 0.05
PREVIEW_PREFIX = "\x00preview "  # the engine's name for a preview: unprintable, so never a sound's
SAVE_AFTER_S = 1.0  # write settings once the knob has rested this long, not on every detent


class Module:
    def __init__(self, profile: BoardProfile, settings: Settings, renderer: Renderer, library: SoundLibrary,
                 board: str | None = None, persist: bool = True):
        self.profile, self.settings, self.renderer, self.library = profile, settings, renderer, library
        self.board_name = board or profile.name
        self.persist = persist
        self._check_sounds()
        rate = settings.audio.sample_rate
        self.engine = Engine(
            renderer, sounds=self._trajectory,
            sound_a=settings.sound_a, sound_b=settings.sound_b, sample_rate=rate,
            block_size=settings.audio.block_size, voices=settings.voices, level_db=settings.level_db,
            cv_ranges={c.number: c.range for c in profile.cv})
        self.engine.set_morph(settings.morph)
        for number, assignment in settings.assignments.items():
            self.engine.assign(number, assignment)
        self._dirty_since: float | None = None
        self.board = None  # set by whoever runs the module (the calibration wizard reaches it)
        self.audio = None  # the audio output, when live (xruns and device problems on screen)
        self.cores = CorePlan(None, None)  # where the audio and render processes run, when live
        self.panel_pairing: str | None = None  # the virtual panel's pairing code, when offered beyond localhost
        self._preview: tuple[str, object] | None = None  # (engine name, trajectory) gate 1 plays instead of A
        self._previews = 0
        self.ui = Ui(self)

    @classmethod
    def create(cls, board: str, config=None, model=None, library_dir=None, backend: str | None = None,
               persist: bool = True, threads: int = 1, live: bool = True) -> "Module":
        """Profile, stored settings, run config (overrides), model and library, ready to start.

        ``live``: the model runs in a render process (render_process.py), so torch never holds
        this process's GIL while audio plays; offline (``live=False``) it runs in this process.
        """
        profile = load_profile(board)
        backend = backend or profile.model_backend
        if backend not in BACKEND_CHOICES:
            raise NeurorackError(f"{profile.source}: [model] backend {backend!r} is not one of {', '.join(BACKEND_CHOICES)}")
        settings = load_settings(profile.name) if persist else Settings()
        if config:
            settings.update(load_run_config(config), str(config))
        library = SoundLibrary(library_dir)
        rate = settings.audio.sample_rate
        model = model or model_path(settings.model)
        cores = CorePlan(None, None)
        if live:
            try:
                cores = plan_cores(settings.audio.cpu)
            except ValueError as exc:
                raise NeurorackError(f"settings: {exc}") from None
            # A buffer for every voice slot (playing and releasing), the two ready impacts, the
            # render in flight and gates still queued.
            renderer = RenderProcess(rate, model, backend=backend, threads=threads,
                                     slabs=2 * settings.voices + 6, cpus=cores.render).start()
        else:
            from .model.generator import load_model

            renderer = LocalRenderer(load_model(model, backend=backend, threads=threads), rate)
        try:
            module = cls(profile, settings, renderer, library, profile.name, persist)
        except BaseException:
            renderer.stop()
            raise
        module.cores = cores
        return module

    def _check_sounds(self) -> None:
        names = [s.name for s in self.library.sounds()]
        if not names:
            raise NeurorackError("the sound library is empty: not even the factory sounds could be read")
        for key in ("sound_a", "sound_b"):
            name = getattr(self.settings, key)
            try:
                setattr(self.settings, key, self.library.get(name).name)
            except NeurorackError:
                fallback = names[0] if key == "sound_a" else names[min(1, len(names) - 1)]
                log.warning("sound %r is not in the library; using %r", name, fallback)
                setattr(self.settings, key, fallback)

    # -- ControlSink ----------------------------------------------------------------------------
    def gate(self, number: int, on: bool, frame: int | None = None, at_ns: int | None = None) -> None:
        self.engine.gate(number, on, frame, at_ns)

    def cv(self, number: int, volts: float) -> None:
        self.engine.cv(number, volts)

    def encoder(self, steps: int) -> None:
        self.ui.turn(steps)

    def button(self, kind: str) -> None:
        self.ui.long_press() if kind == "long" else self.ui.press()

    # -- what the screens do ----------------------------------------------------------------------
    def nudge_morph(self, steps: int) -> None:
        self.settings.morph = min(1.0, max(0.0, round(self.settings.morph + MORPH_STEP * steps, 4)))
        self.engine.set_morph(self.settings.morph)
        self._changed()

    def select_sound(self, slot: str, name: str) -> None:
        """Sound A or B (`slot` "a" or "b") is now `name` from the library."""
        name = self.library.get(name).name  # NeurorackError for a sound that has gone
        setattr(self.settings, f"sound_{slot}", name)
        self.engine.set_sounds(self.settings.sound_a, self.settings.sound_b)
        self._changed()

    def audition(self, name: str) -> None:
        """Play `name` once, as the CVs modulate it, without selecting it."""
        self.engine.audition(name)

    # -- finding and making sounds (ui/sound_screens.py, the panel) ------------------------------
    def _trajectory(self, name: str):
        """What the engine renders for a sound name: the library's, or the preview's."""
        preview = self._preview
        if preview is not None and name == preview[0]:
            return preview[1]
        return self.library.get(name).trajectory

    def sound_names(self) -> list[str]:
        return [s.name for s in self.library.sounds()]

    def sound_trajectory(self, name: str):
        return self.library.get(name).trajectory

    def similar_sounds(self, name: str, top: int = 8):
        """The library sounds nearest to `name` (sounds/match.py), nearest first, itself left out."""
        from .sounds.match import nearest

        return nearest(self.library.get(name).trajectory, self.library.sounds(), top, exclude=name)

    def preview(self, trajectory) -> None:
        """Gate 1 plays `trajectory` instead of sound A (as the CVs modulate it), until
        ``preview(None)``; the settings keep sound A. Each call is a new name to the engine, so
        the impact is rendered again at once."""
        if trajectory is None:
            self._preview = None
            self.engine.set_sounds(self.settings.sound_a, self.settings.sound_b)
            return
        self._previews += 1
        self._preview = (f"{PREVIEW_PREFIX}{self._previews}", trajectory)  # no library name holds it
        self.engine.set_sounds(sound_a=self._preview[0])

    def free_name(self, base: str) -> str:
        return self.library.free_name(base)

    def save_sound(self, name: str, trajectory, meta: dict | None = None) -> str:
        """A new user sound (a name that exists is refused); the name it was saved under."""
        sound = self.library.add(name, trajectory, meta)
        log.info("saved the sound %r", sound.name)
        return sound.name

    def morph_now(self):
        """(sound A, sound B, the morph amount, the morph's trajectory): what gate 2 plays now,
        CVs on the morph included."""
        from .sounds.morph import morph

        request = self.engine.snapshot().request()
        a, b = self.settings.sound_a, self.settings.sound_b
        return a, b, request.morph, morph(self.sound_trajectory(a), self.sound_trajectory(b), request.morph)

    def import_file(self, data: bytes, name: str, filename: str) -> list[str]:
        """A dropped file (the virtual panel) imported and scored as `sounds import` does."""
        from .ui.upload import import_upload

        model = getattr(self.renderer, "info", {}).get("model")
        lines = import_upload(data, name, filename, self.library.user_dir, model)
        self.library.reload()
        return lines

    def assign(self, number: int, assignment: CvAssignment) -> None:
        self.settings.assignments[number] = assignment
        self.engine.assign(number, assignment)
        self._changed()

    def raw_volts(self, number: int) -> float:
        """CV `number` as read before its stored calibration (what the calibration wizard needs)."""
        volts = self.engine.snapshot().volts.get(number, 0.0)
        return self.settings.calibration.get(number, Calibration()).undo(volts)

    def store_calibration(self, number: int, calibration: Calibration) -> None:
        self.settings.calibration[number] = calibration
        if self.board is not None:
            self.board.set_calibration(number, calibration)
        self._changed()
        self.save_if_rested(force=True)  # a calibration is worth writing at once

    def setting(self, key: str):
        if key == "board":
            return self.board_name
        if key.startswith("audio."):
            return getattr(self.settings.audio, key[6:])
        return getattr(self.settings, key)

    def apply_setting(self, key: str, value) -> None:
        """Change a setting from the settings screen. The level applies at once; the others
        (voices, block size, model) when the module starts again."""
        if key == "board":
            raise NeurorackError("the board is chosen when the module starts (--board)")
        if key.startswith("audio."):
            setattr(self.settings.audio, key[6:], value)
        else:
            setattr(self.settings, key, value)
        if key == "level_db":
            self.engine.set_level(value)
        self._changed()

    def problems(self) -> dict:
        """For the home screen's badge: an error to show, and the xrun count."""
        error = self.engine.prerender.error or (self.audio.problem if self.audio else None)
        return {"error": error, "xruns": self.audio.xruns if self.audio else 0}

    def status(self) -> dict[str, str]:
        info = getattr(self.renderer, "info", {})
        rows = system_status(info.get("pid"))
        rows["Inference"] = info.get("backend", "?") + (" (proc)" if "pid" in info else "")
        rows["Xruns"] = str(self.audio.xruns if self.audio else 0)
        rows["Renders"] = str(self.engine.prerender.renders)
        rows["Cores"] = self.cores.describe()
        rows["Model"] = self._model_name(info)
        rows["Version"] = __version__
        if self.panel_pairing:
            rows["Pair"] = self.panel_pairing
        for kind, count in sorted(logs.counts().items()):  # warnings by kind since start
            rows[f"! {kind}"] = str(count)
        return rows

    def about(self) -> dict[str, str]:
        info = getattr(self.renderer, "info", {})
        return {"neurorack": __version__, "Model": self._model_name(info), "Board": self.board_name,
                "Sounds": str(len(self.library.sounds())), "Licence": "MIT (code)"}

    @staticmethod
    def _model_name(info: dict) -> str:
        name = Path(info.get("model", "?")).parent.name
        params = info.get("parameters")
        return f"{name} ({params / 1000:.0f}k)" if params else name

    def _changed(self) -> None:
        self._dirty_since = time.monotonic()

    def close(self) -> None:
        """Stop rendering (after the audio has stopped) and save what changed."""
        self.engine.stop()
        self.renderer.stop()
        self.save_if_rested(force=True)

    # -- main loop chores -----------------------------------------------------------------------
    def save_if_rested(self, force: bool = False) -> None:
        if not self.persist or self._dirty_since is None:
            return
        if force or time.monotonic() - self._dirty_since >= SAVE_AFTER_S:
            self._dirty_since = None
            try:
                save_settings(self.board_name, self.settings)
            except OSError as exc:
                log.error("cannot save settings: %s", exc)
