"""The screens. Each draws itself and answers the three controls: ``turn(ui, steps)``,
``press(ui)``, ``back(ui)`` (a long press). They read the module's immutable view
(``ui.view``, ui/view.py) and act through ``ui.module``'s methods, never on the engine or the
hardware directly.
"""
from __future__ import annotations

import time

from ..engine.controls import TARGETS, CvAssignment
from ..hal.cv import CALIBRATION_POINTS, RANGES, Calibration
from ..hal.gates import JACKS
from .paint import ON, TITLE_H, Painter, font

GATE_FLASH_S = 0.15  # how long the gate marker stays lit after a trigger


class Screen:
    name = "screen"

    def draw(self, p: Painter, ui) -> None:
        raise NotImplementedError

    def turn(self, ui, steps: int) -> None:
        pass

    def press(self, ui) -> None:
        pass

    def back(self, ui) -> None:
        ui.pop()


class ListScreen(Screen):
    """A titled list with a cursor that scrolls."""

    title = ""

    def __init__(self):
        self.cursor = 0

    def entries(self, ui) -> list[tuple[str, str]]:
        raise NotImplementedError

    def turn(self, ui, steps: int) -> None:
        self.cursor = min(max(0, self.cursor + steps), max(0, len(self.entries(ui)) - 1))

    def draw(self, p: Painter, ui) -> None:
        entries = self.entries(ui)
        p.title(self.title, f"{self.cursor + 1}/{len(entries)}" if len(entries) > p.rows_visible() else "")
        visible = p.rows_visible()
        top = min(max(0, self.cursor - visible + 1), max(0, len(entries) - visible))
        for i, (label, value) in enumerate(entries[top:top + visible]):
            p.row(i, label, value, selected=top + i == self.cursor, editing=self.editing_row(top + i))

    def editing_row(self, index: int) -> bool:
        return False


class HomeScreen(Screen):
    """Sound A and B, the morph (a turn sets it), CV meters, gate activity, a problem badge."""

    name = "home"

    def draw(self, p: Painter, ui) -> None:
        view, now = ui.view, time.monotonic()
        meters_x = p.width - 34
        p.text((0, 0), "A", bold=True)
        p.text((11, 0), view.sound_a, width=meters_x - 14)
        p.text((0, 13), "B", bold=True)
        p.text((11, 13), view.sound_b, width=meters_x - 14)
        p.text((0, 27), "morph", size=9)
        p.bar((30, 29, meters_x - 6, 35), view.morph_now)
        p.draw.line((30 + (meters_x - 36) * view.morph, 37, 30 + (meters_x - 36) * view.morph, 38), fill=ON)
        for i, gate in enumerate(JACKS):  # gate activity: lit while high or just triggered
            x, y = 2 + 22 * i, 46
            lit = view.gate_on(gate) or now - ui.last_gate_at.get(gate, -1.0) < GATE_FLASH_S
            p.draw.ellipse((x, y, x + 9, y + 9), outline=ON, fill=ON if lit else None)
            p.text((x + 12, y - 1), str(int(gate)), size=9)
        for i, cv in enumerate(view.cvs):  # a vertical meter per CV input
            low, high = RANGES[cv.range]
            volts = cv.volts
            x = meters_x + 2 + 8 * i
            p.draw.rectangle((x, 2, x + 5, 52), outline=ON)
            fill_to = 52 - 50 * (min(high, max(low, volts)) - low) / (high - low)
            zero = 52 - 50 * (0 - low) / (high - low)
            top, bottom = sorted((fill_to, zero))
            if bottom - top >= 1:
                p.draw.rectangle((x, top, x + 5, bottom), fill=ON)
            p.text((x, 53), str(cv.number), size=9)
        badge = ui.badge()
        if badge:
            w = int(p.draw.textlength(badge, font=font(9, True))) + 4
            x = meters_x - 8 - w
            p.draw.rectangle((x, 45, x + w, 56), fill=ON)
            p.text((x + 2, 44), badge, size=9, bold=True, fill="black")

    def turn(self, ui, steps: int) -> None:
        ui.module.nudge_morph(steps)

    def press(self, ui) -> None:
        ui.push(MenuScreen(ui.spec))

    def back(self, ui) -> None:
        pass  # home is the root


class MenuScreen(ListScreen):
    name = "menu"

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.title = spec.title

    def entries(self, ui):
        return [(item["label"], "") for item in self.spec.items]

    def press(self, ui) -> None:
        item = self.spec.items[self.cursor]
        ui.push(SCREENS[item["screen"]](ui))


class BrowserScreen(ListScreen):
    """The sound library; a press offers: set as A, set as B, audition."""

    name = "browser"
    title = "Sounds"

    def __init__(self, ui):
        super().__init__()
        view = ui.view
        if view.sound_a in view.sounds:
            self.cursor = view.sounds.index(view.sound_a)

    @staticmethod
    def names(ui) -> tuple[str, ...]:
        return ui.view.sounds

    def entries(self, ui):
        v = ui.view
        return [(n, "A" if n == v.sound_a else "B" if n == v.sound_b else "") for n in v.sounds]

    def press(self, ui) -> None:
        ui.push(SoundActionsScreen(self.names(ui)[self.cursor]))


class SoundActionsScreen(ListScreen):
    name = "sound-actions"
    ACTIONS = ("Set as A", "Set as B", "Audition", "Similar sounds", "Shape", "Vary")

    def __init__(self, sound: str):
        super().__init__()
        self.sound = sound
        self.title = sound

    def entries(self, ui):
        return [(a, "") for a in self.ACTIONS]

    def press(self, ui) -> None:
        action = self.ACTIONS[self.cursor]
        if action == "Audition":
            ui.module.audition(self.sound)
            return  # stay: audition again, or pick
        if action in MAKERS:
            ui.push(MAKERS[action](ui, self.sound))
            return
        ui.module.select_sound("a" if action == "Set as A" else "b", self.sound)
        ui.pop()


class CvListScreen(ListScreen):
    name = "cv"
    title = "CV inputs"

    def entries(self, ui):
        out = []
        for cv in ui.view.cvs:
            a = cv.assignment
            out.append((f"CV{cv.number} {a.target if a else '-'}", f"{a.depth:+.2f}" if a else ""))
        return out

    def press(self, ui) -> None:
        ui.push(CvEditScreen(ui.view.cvs[self.cursor].number))


class FieldsScreen(ListScreen):
    """Rows of fields: a press starts or ends editing the selected one; a turn moves or edits."""

    def __init__(self):
        super().__init__()
        self.editing = False

    def editable(self, ui, index: int) -> bool:
        return True

    def edit(self, ui, index: int, steps: int) -> None:
        raise NotImplementedError

    def turn(self, ui, steps: int) -> None:
        if self.editing:
            self.edit(ui, self.cursor, steps)
        else:
            super().turn(ui, steps)

    def press(self, ui) -> None:
        self.editing = not self.editing and self.editable(ui, self.cursor)

    def back(self, ui) -> None:
        if self.editing:
            self.editing = False
        else:
            ui.pop()

    def editing_row(self, index: int) -> bool:
        return self.editing and index == self.cursor


class CvEditScreen(FieldsScreen):
    """Target, depth and offset of one CV input; every change applies (and is stored) at once."""

    name = "cv-edit"
    FIELDS = ("target", "depth", "offset")

    def __init__(self, number: int):
        super().__init__()
        self.number = number
        self.title = f"CV {number}"

    def assignment(self, ui) -> CvAssignment:
        return ui.view.cv(self.number).assignment or CvAssignment("morph", 0.0)

    def entries(self, ui):
        a = self.assignment(ui)
        unit = "V" if a.target == "pitch" else ""
        return [("Target", a.target), ("Depth", f"{a.depth:+.2f}"), ("Offset", f"{a.offset:+.2f}{unit}")]

    def edit(self, ui, index: int, steps: int) -> None:
        a = self.assignment(ui)
        field = self.FIELDS[index]
        if field == "target":
            new = CvAssignment(TARGETS[(TARGETS.index(a.target) + steps) % len(TARGETS)], a.depth, a.offset)
        else:
            r = ui.spec.cv[field]
            value = min(r["max"], max(r["min"], round(getattr(a, field) + steps * r["step"], 4)))
            new = CvAssignment(a.target, value if field == "depth" else a.depth, value if field == "offset" else a.offset)
        ui.module.assign(self.number, new)


class CalibrationScreen(Screen):
    """Pick an input; apply 1 V, press; apply 3 V, press; press again to store."""

    name = "calibration"
    POINTS = CALIBRATION_POINTS

    def __init__(self, ui):
        self.inputs = [cv.number for cv in ui.view.cvs]
        self.index = 0
        self.step = 0  # 0: choose input, 1: at 1 V, 2: at 3 V, 3: result
        self.readings: list[float] = []
        self.result: Calibration | None = None

    @property
    def number(self) -> int:
        return self.inputs[self.index]

    def draw(self, p: Painter, ui) -> None:
        p.title("Calibrate", f"CV{self.number}")
        y = TITLE_H + 2
        if self.step == 0:
            p.text((2, y), f"Input: CV {self.number}", bold=True)
            p.text((2, y + 14), "turn: choose input", size=9)
            p.text((2, y + 26), "press: start", size=9)
        elif self.step in (1, 2):
            target = self.POINTS[self.step - 1]
            p.text((2, y), f"Apply {target:.3f} V", bold=True)
            p.text((2, y + 14), f"reads {ui.module.raw_volts(self.number):+.3f} V", size=10)
            p.text((2, y + 28), "then press", size=9)
        else:
            c = self.result
            p.text((2, y), f"scale {c.scale:.4f}", size=10)
            p.text((2, y + 13), f"shift {c.shift:+.4f} V", size=10)
            p.text((2, y + 28), "press: store  hold: cancel", size=9)

    def turn(self, ui, steps: int) -> None:
        if self.step == 0:
            self.index = (self.index + steps) % len(self.inputs)

    def press(self, ui) -> None:
        if self.step in (1, 2):
            self.readings.append(ui.module.raw_volts(self.number))
        if self.step == 2:
            low, high = self.readings
            self.readings, self.step = [], 1  # a pair that fails starts again at 1 V
            self.result = Calibration.from_two_points(low, high)  # ValueError: on screen
            self.step = 3
            return
        if self.step == 3:
            ui.module.store_calibration(self.number, self.result)
            ui.pop()
            return
        self.step += 1


class SettingsScreen(FieldsScreen):
    name = "settings"
    title = "Settings"

    def __init__(self, ui):
        super().__init__()
        self.fields = ui.spec.settings

    def entries(self, ui):
        out = []
        for f in self.fields:
            value = ui.module.setting(f["key"])
            text = "default" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
            # A * after the label: applies when the module starts again.
            out.append((f["label"] + ("*" if f.get("restart") else ""), text + (f" {f['unit']}" if "unit" in f else "")))
        return out

    def editable(self, ui, index: int) -> bool:
        return not self.fields[index].get("read_only")

    def edit(self, ui, index: int, steps: int) -> None:
        f = self.fields[index]
        value = ui.module.setting(f["key"])
        if "choices" in f:
            choices = ui.spec.choices(f)
            at = choices.index(value) if value in choices else 0
            new = choices[min(max(0, at + steps), len(choices) - 1)]
        else:
            new = min(f["max"], max(f["min"], value + steps * f["step"]))
            new = round(new, 4) if isinstance(f["step"], float) else int(new)
        ui.module.apply_setting(f["key"], new)


class StatusScreen(ListScreen):
    name = "status"
    title = "Status"

    def entries(self, ui):
        return list(ui.module.status().items())


class MidiScreen(ListScreen):
    """MIDI: learn a controller, then every controller and what it drives; the input's state."""

    name = "midi"
    title = "MIDI"

    def entries(self, ui):
        midi = ui.view.midi
        where = ", ".join(midi.ports) or ("waiting" if midi.on else "off")
        rows = [("Learn", ">"), ("In", where), ("Last", ("* " if midi.active else "") + (midi.last or "-"))]
        return rows + [(f"CC{number}", target) for number, target in midi.controllers.items()]

    def press(self, ui) -> None:
        if self.cursor == 0:
            ui.push(MidiLearnScreen())


class MidiLearnScreen(ListScreen):
    """MIDI learn: pick a target, press, move a controller; it drives the target from then on
    (stored for this board). A long press while waiting cancels."""

    name = "midi-learn"
    title = "MIDI learn"

    def __init__(self):
        super().__init__()
        self.target: str | None = None  # what we wait for a controller for
        self.learned: str | None = None

    def entries(self, ui):
        return [(target, "") for target in TARGETS]

    def draw(self, p: Painter, ui) -> None:
        midi = ui.view.midi
        if self.target is not None and midi.learning is None and self.learned is None:
            number = next((n for n, t in reversed(list(midi.controllers.items())) if t == self.target), None)
            self.learned = f"CC{number}" if number is not None else "?"
        if self.target is None:
            return super().draw(p, ui)
        p.title(self.title)
        if self.learned is None:
            p.text((2, TITLE_H + 2), f"Target: {self.target}", size=10)
            p.text((2, TITLE_H + 16), "Move a controller", size=10, bold=True)
            p.text((2, TITLE_H + 30), "hold: cancel", size=9)
        else:
            p.text((2, TITLE_H + 2), f"{self.learned} -> {self.target}", size=10, bold=True)
            p.text((2, TITLE_H + 18), "stored; press: done", size=9)

    def press(self, ui) -> None:
        if self.target is None:
            self.target = TARGETS[self.cursor]
            ui.module.midi_learn(self.target)
        elif self.learned is not None:
            ui.pop()

    def back(self, ui) -> None:
        if self.target is not None and self.learned is None:
            ui.module.midi_learn(None)
        ui.pop()


class AboutScreen(ListScreen):
    name = "about"
    title = "About"

    def entries(self, ui):
        return list(ui.module.about().items())


class ErrorScreen(Screen):
    """What went wrong, until a press or a long press returns to the menu."""

    name = "error"

    def __init__(self, message: str):
        self.message = message

    def draw(self, p: Painter, ui) -> None:
        p.title("Error")
        words, lines, line = self.message.split(), [], ""
        for word in words:  # wrap to the panel's width
            trial = f"{line} {word}".strip()
            if line and p.draw.textlength(trial, font=font(10)) > p.width - 4:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
        for i, text in enumerate(lines[:4]):
            p.text((2, TITLE_H + 1 + i * 12), text, size=10)

    def press(self, ui) -> None:
        ui.pop()


# Screens that find and make sounds build on the ones above. Imported as a module and reached
# when called, so that either file may be imported first.
from . import sound_screens  # noqa: E402

MAKERS = {  # what a sound's actions open
    "Similar sounds": lambda ui, sound: sound_screens.SimilarScreen(ui, sound),
    "Shape": lambda ui, sound: sound_screens.ShapeScreen(ui, sound),
    "Vary": lambda ui, sound: sound_screens.VaryScreen(ui, sound),
}
SCREENS = {"browser": BrowserScreen, "cv": lambda ui: CvListScreen(), "calibration": CalibrationScreen,
           "save-morph": lambda ui: sound_screens.save_morph_screen(ui), "settings": SettingsScreen,
           "status": lambda ui: StatusScreen(), "about": lambda ui: AboutScreen(), "midi": lambda ui: MidiScreen()}
