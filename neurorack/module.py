"""The instrument: the engine, the menus, the board that drives them, and what went wrong.

A ``Module`` is put together by ``assembly.assemble`` and is complete when it is returned: its
engine, board, audio output (when live), menus and health. Boards drive the engine directly
(gates and CVs) and the menus (encoder and button); the screens read ``view()`` and act
through the methods below (select a sound, assign a CV, store a calibration, change a
setting). On the home screen a turn sets the morph amount, 1/20 per detent.

>>> module = assemble(ModuleOptions(board="sim", live=False))
>>> module.board.apply(SimEvent(0.0, "gate", 1, True))
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from . import __version__
from .engine.controls import CvAssignment
from .engine.cpus import CorePlan
from .engine.engine import Engine
from .engine.renderers import Renderer
from .errors import NeurorackError
from .hal.cv import Calibration
from .hal.profile import BoardProfile
from .hal.sim import ControlSink
from .health import Health
from .midi_control import MidiControl
from .settings import Settings, save_settings
from .sounds.library import SoundLibrary
from .ui.menu import Ui
from .ui.system import system_status
from .ui.view import CvView, ModuleView, frozen_mapping

log = logging.getLogger(__name__)
MORPH_STEP = 0.05
PREVIEW_PREFIX = "\x00preview "  # the engine's name for a preview: unprintable, so never a sound's
SAVE_AFTER_S = 1.0  # write settings once the knob has rested this long, not on every detent


class Module:
    def __init__(self, profile: BoardProfile, settings: Settings, renderer: Renderer, library: SoundLibrary,
                 make_board: Callable[[ControlSink], object], make_audio: Callable[[Engine], object] | None = None,
                 cores: CorePlan = CorePlan(None, None), persist: bool = True, offline: bool = False):
        """`make_board(sink)`: the board, driving `sink`; `make_audio(engine)`: the audio output
        (None offline). The assembler passes both; tests may pass their own boards."""
        self.profile, self.settings, self.renderer, self.library = profile, settings, renderer, library
        self.board_name = profile.name
        self.persist, self.cores, self.offline = persist, cores, offline
        self._check_sounds()
        rate = settings.audio.sample_rate
        self.engine = Engine(
            renderer, sounds=self._trajectory,
            sound_a=settings.sound_a, sound_b=settings.sound_b, sample_rate=rate,
            block_size=settings.audio.block_size, voices=settings.voices, level_db=settings.level_db,
            cv_ranges={c.number: c.range for c in profile.cv}, offline=offline)
        self.engine.set_morph(settings.morph)
        for number, assignment in settings.assignments.items():
            self.engine.assign(number, assignment)
        self._dirty_since: float | None = None
        self.panel_pairing: str | None = None  # the virtual panel's pairing code, when offered beyond localhost
        self.display = None  # the display loop, while one draws (runner.run_live)
        self._preview: tuple[str, object] | None = None  # (engine name, trajectory) gate 1 plays instead of A
        self._previews = 0
        self.ui = Ui(self)
        # MIDI (a port, the events file): notes and CCs to the engine, programs and learn here.
        self.midi = MidiControl(self.engine, settings.midi, {c.number: c.range for c in profile.cv},
                                self.select_program, self._store_midi)
        # Gates and CVs go straight to the engine; the encoder and button to the menus.
        self.board = make_board(ControlSink(self.engine.gate, self.engine.cv, self.ui.turn, self.ui.button,
                                            self.midi))
        self.audio = make_audio(self.engine) if make_audio else None
        self.health = self._health()

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

    def _health(self) -> Health:
        """Every counter of what went wrong, registered once, from every part that has one."""
        health, engine, audio, board = Health(), self.engine, self.audio, self.board
        if audio is not None:
            health.count("xruns", "audio underflows (xruns)", lambda: audio.xruns)
            health.count("late", "late audio callbacks", lambda: audio.late)
        health.count("dropped", "gates dropped (more than the queue holds: a gate storm)", lambda: engine.ring.dropped)
        health.count("not_ready", "gates before the first render was ready", lambda: engine.not_ready)
        health.count("cut", "voices cut short (every voice busy)", lambda: engine.voices.cut)
        health.count("bad_values", "control values ignored (not a number)", lambda: board.cvs.bad_values)
        if hasattr(board, "dropped_gates"):
            health.count("debounced", "gates dropped by the debounce (bounces, a gate storm)", lambda: board.dropped_gates)
        if hasattr(board, "adc_errors"):
            health.count("adc_errors", "ADC reads that failed", lambda: board.adc_errors)
        if hasattr(self.renderer, "restarts"):
            health.count("render_restarts", "render process restarts", lambda: self.renderer.restarts)
        health.count("display_errors", "display frames that failed",
                     lambda: self.display.errors if self.display is not None else 0)
        midi = self.midi
        health.count("midi_lost", "MIDI devices gone (listening for them to come back)",
                     lambda: midi.input.lost if midi.input is not None else 0)
        health.count("midi_dropped", "MIDI messages dropped (a flood)",
                     lambda: midi.input.dropped if midi.input is not None else 0)
        health.count("midi_failed", "MIDI messages that could not act (a program with no sound)", lambda: midi.failed)
        health.count("notes_dropped", "MIDI notes dropped (new pitches faster than they render)",
                     lambda: engine.prerender.notes_dropped)
        health.problem("render", lambda: engine.prerender.error)
        if audio is not None:
            health.problem("audio", lambda: audio.problem)
        if hasattr(board, "adc_problem"):
            health.problem("adc", lambda: board.adc_problem)
        health.problem("display", lambda: self.display.problem if self.display is not None else None)
        return health

    # -- what the screens read --------------------------------------------------------------------
    def view(self) -> ModuleView:
        state = self.engine.snapshot()
        request = state.request()
        counts = self.health.counts()
        cvs = tuple(CvView(c.number, c.range, state.volts.get(c.number, 0.0),
                           state.assignments.get(c.number))
                    for c in self.profile.cv)
        # A preview (Shape, Vary) is gate 1's for a while; sound A is still the one selected.
        sound_a = self.settings.sound_a if self._preview is not None else state.sound_a
        return ModuleView(
            sound_a=sound_a, sound_b=state.sound_b, morph=state.morph, morph_now=request.morph,
            gates_on=tuple(bool(x) for x in self.engine.gate_on), gate_counts=tuple(int(x) for x in self.engine.gates),
            cvs=cvs, sounds=tuple(s.name for s in self.library.sounds()), error=self.health.error(),
            xruns=counts.get("xruns", 0), health=frozen_mapping(counts), renders=self.engine.prerender.renders,
            rendering=self.engine.prerender.pending(), midi=self.midi.view())

    def apply_event(self, event) -> None:
        """One control as a patch cable or a knob would make it (the virtual panel, a screen
        tour): through the board, the path OSC takes. Offline, a gate is at the event's own time."""
        self.board.apply_offline(event) if self.offline else self.board.apply(event)

    def show_pairing(self, code: str | None) -> None:
        """The virtual panel's pairing code, shown on the Status screen (None: nothing to pair)."""
        self.panel_pairing = code

    def raw_volts(self, number: int) -> float:
        """CV `number` as the board reads it before calibration (the calibration wizard)."""
        return self.board.raw_volts(number)

    def setting(self, key: str):
        if key == "board":
            return self.board_name
        if key.startswith("midi."):
            return getattr(self.settings.midi, key[5:])
        if key.startswith("audio."):
            return getattr(self.settings.audio, key[6:])
        return getattr(self.settings, key)

    def status(self) -> dict[str, str]:
        info = self.renderer.info
        rows = system_status(info.pid)
        rows["Inference"] = info.backend + (" (proc)" if info.pid else "")
        rows["Renders"] = str(self.engine.prerender.renders)
        rows["Cores"] = self.cores.describe()
        rows["Model"] = self._model_name()
        rows["Version"] = __version__
        if self.panel_pairing:
            rows["Pair"] = self.panel_pairing
        rows.update(self.midi.rows())
        rows.update(self.health.rows())
        return rows

    def about(self) -> dict[str, str]:
        return {"neurorack": __version__, "Model": self._model_name(), "Board": self.board_name,
                "Sounds": str(len(self.library.sounds())), "Licence": "MIT (code)"}

    def _model_name(self) -> str:
        info = self.renderer.info
        name = Path(info.model).parent.name if info.model else "?"
        return f"{name} ({info.parameters / 1000:.0f}k)" if info.parameters else name

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

    def select_program(self, number: int) -> None:
        """MIDI program change `number`: the library's sound at that place (the browser's order) is sound A."""
        names = [s.name for s in self.library.sounds()]
        if not 0 <= number < len(names):
            raise NeurorackError(f"program {number} has no sound (the library has {len(names)}: programs 0..{len(names) - 1})")
        self.select_sound("a", names[number])

    def midi_learn(self, target: str | None) -> None:
        """The next MIDI controller moved drives `target` (a descriptor or the morph); None stops."""
        self.midi.learn(target)

    def midi_forget(self, number: int) -> None:
        """MIDI CC `number` drives nothing from now on."""
        self.midi.forget(number)

    def _store_midi(self, config) -> None:
        self.settings.midi = config
        self._changed()
        self.save_if_rested(force=True)  # a learned controller is worth writing at once

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
        try:
            sound = self.library.add(name, trajectory, meta)
        except OSError as exc:  # a full or read-only data folder: the write was atomic, nothing changed
            raise NeurorackError(f"cannot save {name!r}: {exc.strerror or exc}; the library is as it was") from None
        log.info("saved the sound %r", sound.name)
        return sound.name

    def morph_now(self):
        """(sound A, sound B, the morph amount, the morph's trajectory): what gate 2 plays now,
        CVs on the morph included."""
        from .sounds.morph import morph

        amount = self.view().morph_now
        a, b = self.settings.sound_a, self.settings.sound_b
        return a, b, amount, morph(self.sound_trajectory(a), self.sound_trajectory(b), amount)

    def import_file(self, data: bytes, name: str, filename: str) -> list[str]:
        """A dropped file (the virtual panel) imported and scored as `sounds import` does."""
        from .ui.upload import import_upload

        lines = import_upload(data, name, filename, self.library.user_dir, self.renderer.info.model)
        self.library.reload()
        return lines

    def assign(self, number: int, assignment: CvAssignment) -> None:
        self.settings.assignments[number] = assignment
        self.engine.assign(number, assignment)
        self._changed()

    def store_calibration(self, number: int, calibration: Calibration) -> None:
        """The board reads CV `number` through `calibration` from now on; settings keep it."""
        self.board.set_calibration(number, calibration)
        self.settings.calibration[number] = calibration
        self._changed()
        self.save_if_rested(force=True)  # a calibration is worth writing at once

    def apply_setting(self, key: str, value) -> None:
        """Change a setting from the settings screen. The level applies at once; the others
        (voices, block size, model) when the module starts again."""
        if key == "board":
            raise NeurorackError("the board is chosen when the module starts (--board)")
        if key.startswith("midi."):  # validated by MidiConfig; applies at once
            self.settings.midi = self.midi.configure(replace(self.settings.midi, **{key[5:]: value}))
        elif key.startswith("audio."):
            setattr(self.settings.audio, key[6:], value)
        else:
            setattr(self.settings, key, value)
        if key == "level_db":
            self.engine.set_level(value)
        self._changed()

    # -- running ----------------------------------------------------------------------------------
    def render_stale(self) -> int:
        """Render what a control change left stale, here and now (offline renders, screen tours,
        start-up); live, the pre-render worker does this on its own thread."""
        return self.engine.prerender.update()

    def _changed(self) -> None:
        self._dirty_since = time.monotonic()

    def save_if_rested(self, force: bool = False) -> None:
        if not self.persist or self._dirty_since is None:
            return
        if force or time.monotonic() - self._dirty_since >= SAVE_AFTER_S:
            self._dirty_since = None
            try:
                save_settings(self.board_name, self.settings)
            except OSError as exc:
                log.error("cannot save settings: %s", exc)

    def close(self) -> None:
        """Stop the board, the audio and rendering, and save what changed."""
        for part in (self.midi.input, self.audio, self.board):
            if part is not None:
                part.close()
        self.engine.stop()
        self.renderer.stop()
        self.save_if_rested(force=True)
