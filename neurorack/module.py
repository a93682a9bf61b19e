"""The instrument: a board's inputs drive the engine; settings are remembered per board.

``Module`` is the ``ControlSink`` every board (hardware or simulated) calls. Gates and CVs go
straight to the engine. Until the menus arrive (issue 4), the encoder sets the morph amount
(1/20 per detent) and the button steps through the library: a press picks the next sound A,
a long press the next sound B.

>>> module = Module.create("sim")
>>> module.engine.start(); module.gate(1, True)
"""
from __future__ import annotations

import logging
import time

from .engine.engine import Engine
from .engine.render_process import RenderProcess
from .engine.renderers import LocalRenderer, Renderer
from .errors import NeurorackError
from .hal.profile import BoardProfile, load_profile
from .settings import Settings, load_run_config, load_settings, save_settings
from .sounds.library import SoundLibrary

log = logging.getLogger(__name__)
MORPH_STEP = 0.05
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
            renderer, sounds=lambda name: library.get(name).trajectory,
            sound_a=settings.sound_a, sound_b=settings.sound_b, sample_rate=rate,
            block_size=settings.audio.block_size, voices=settings.voices, level_db=settings.level_db,
            cv_ranges={c.number: c.range for c in profile.cv})
        self.engine.set_morph(settings.morph)
        for number, assignment in settings.assignments.items():
            self.engine.assign(number, assignment)
        self._dirty_since: float | None = None

    @classmethod
    def create(cls, board: str, config=None, model=None, library_dir=None, backend: str = "cpu",
               persist: bool = True, threads: int = 1, live: bool = True) -> "Module":
        """Profile, stored settings, run config (overrides), model and library, ready to start.

        ``live``: the model runs in a render process (render_process.py), so torch never holds
        this process's GIL while audio plays; offline (``live=False``) it runs in this process.
        """
        profile = load_profile(board)
        settings = load_settings(profile.name) if persist else Settings()
        if config:
            settings.update(load_run_config(config), str(config))
        library = SoundLibrary(library_dir)
        rate = settings.audio.sample_rate
        if live:
            # A buffer for every voice slot (playing and releasing), the two ready impacts, the
            # render in flight and gates still queued.
            renderer = RenderProcess(rate, model, backend=backend, threads=threads,
                                     slabs=2 * settings.voices + 6).start()
        else:
            from .model.generator import load_model

            renderer = LocalRenderer(load_model(model, backend=backend, threads=threads), rate)
        try:
            return cls(profile, settings, renderer, library, profile.name, persist)
        except BaseException:
            getattr(renderer, "stop", lambda: None)()
            raise

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
    def gate(self, number: int, on: bool, frame: int | None = None) -> None:
        self.engine.gate(number, on, frame)

    def cv(self, number: int, volts: float) -> None:
        self.engine.cv(number, volts)

    def encoder(self, steps: int) -> None:
        self.settings.morph = min(1.0, max(0.0, round(self.settings.morph + MORPH_STEP * steps, 4)))
        self.engine.set_morph(self.settings.morph)
        self._changed()

    def button(self, kind: str) -> None:
        key = "sound_b" if kind == "long" else "sound_a"
        names = [s.name for s in self.library.sounds()]
        current = getattr(self.settings, key)
        following = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        setattr(self.settings, key, following)
        self.engine.set_sounds(self.settings.sound_a, self.settings.sound_b)
        self._changed()

    def _changed(self) -> None:
        self._dirty_since = time.monotonic()

    def close(self) -> None:
        """Stop rendering (after the audio has stopped) and save what changed."""
        self.engine.stop()
        getattr(self.renderer, "stop", lambda: None)()
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
