"""Screens that find and make sounds: Similar sounds, Shape, Vary, Save morph, and the name
entry they save through. Shape and Vary play what they make at once on gate 1 (the module's
preview) until a long press leaves them; saving writes a new library sound (atomically, under
a name entered with the encoder). They act through the module's methods, as every screen does.
"""
from __future__ import annotations

from dataclasses import asdict

from ..sounds.library import MAX_NAME
from ..sounds.shape import HANDLES, handles, reshape, vary
from . import screens
from .paint import ON, TITLE_H, Painter, font
from .screens import FieldsScreen, ListScreen, Screen

SIMILAR_COUNT = 8  # neighbours listed
DELETE, DONE = "DEL", "OK"
ALPHABET = (*" ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.#+&()", DELETE, DONE)
SAVE_ROW = "Save as…"


class NameEntryScreen(Screen):
    """A name, one character at a time: turn to pick a character (or DEL, or OK), press to take
    it; OK saves through `on_done(name)`, a long press cancels. It starts on OK with a free
    name filled in, so one press saves."""

    name = "name-entry"

    def __init__(self, title: str, initial: str, on_done):
        self.title, self.text, self.on_done = title, initial[:MAX_NAME], on_done
        self.index = ALPHABET.index(DONE)

    def draw(self, p: Painter, ui) -> None:
        p.title(self.title, f"{len(self.text)}/{MAX_NAME}")
        y = TITLE_H + 3
        shown = self.text + "_"
        while shown and p.draw.textlength(shown, font=font(11, True)) > p.width - 4:
            shown = shown[1:]  # the end of a long name, where the next character goes
        p.text((2, y), shown, bold=True)
        strip_y, gap = y + 17, 6
        f = font(11, True)
        labels = ["␣" if c == " " else c for c in ALPHABET]
        widths = [int(p.draw.textlength(label, font=f)) for label in labels]
        left = p.width // 2 - widths[self.index] // 2  # the chosen character in the middle, its neighbours around
        p.draw.rectangle((left - 3, strip_y - 1, left + widths[self.index] + 2, strip_y + 13), fill=ON)
        p.text((left, strip_y), labels[self.index], bold=True, fill="black")
        x = left - gap
        for i in range(self.index - 1, -1, -1):
            x -= widths[i]
            if x < 0:
                break
            p.text((x, strip_y), labels[i])
            x -= gap
        x = left + widths[self.index] + gap
        for i in range(self.index + 1, len(ALPHABET)):
            if x + widths[i] > p.width:
                break
            p.text((x, strip_y), labels[i])
            x += widths[i] + gap
        p.text((2, strip_y + 16), "press: take  hold: cancel", size=9)

    def turn(self, ui, steps: int) -> None:
        self.index = min(len(ALPHABET) - 1, max(0, self.index + steps))

    def press(self, ui) -> None:
        char = ALPHABET[self.index]
        if char == DELETE:
            self.text = self.text[:-1]
        elif char == DONE:
            self.on_done(self.text)  # a refused name (taken, '..'): the error, then back here
            ui.pop()
        elif len(self.text) < MAX_NAME:
            self.text += char


class SimilarScreen(ListScreen):
    """The library sounds nearest to one sound (sounds/match.py), nearest first, with the
    distance (0: the same, 100: opposite); a press offers the usual actions on one of them."""

    name = "similar"

    def __init__(self, ui, sound: str):
        super().__init__()
        self.sound = sound
        self.title = f"Like {sound}"
        self.matches = ui.module.similar_sounds(sound, SIMILAR_COUNT)

    def entries(self, ui):
        return [(m.name, f"{m.distance:.0f}") for m in self.matches] or [("(no other sounds)", "")]

    def draw(self, p: Painter, ui) -> None:
        super().draw(p, ui)
        if self.matches:  # why the selected one differs most, under the list
            p.text((2, p.height - 11), self.why(), size=9, width=p.width - 4)

    def why(self) -> str:
        return self.matches[self.cursor].parts[0].describe()

    def press(self, ui) -> None:
        if self.matches:
            ui.push(screens.SoundActionsScreen(self.matches[self.cursor].name))


class _MakerScreen(FieldsScreen):
    """A screen that makes a sound from `source` and plays it on gate 1 while it is open."""

    def __init__(self, ui, source: str):
        super().__init__()
        self.source = source
        self.original = ui.module.sound_trajectory(source)
        self.current = self.original
        ui.module.preview(self.current)

    def made(self, ui, trajectory) -> None:
        self.current = trajectory
        ui.module.preview(trajectory)

    def meta(self) -> dict:
        raise NotImplementedError

    def save_name(self, ui) -> str:
        raise NotImplementedError

    def press(self, ui) -> None:
        if self.entries(ui)[self.cursor][0] == SAVE_ROW:
            ui.push(NameEntryScreen("Save as", ui.module.free_name(self.save_name(ui)),
                                    lambda name: ui.module.save_sound(name, self.current, self.meta())))
        else:
            super().press(ui)

    def editable(self, ui, index: int) -> bool:
        return self.entries(ui)[index][0] != SAVE_ROW

    def back(self, ui) -> None:
        if self.editing:
            self.editing = False
            return
        ui.module.preview(None)  # gate 1 plays sound A again
        ui.pop()


class ShapeScreen(_MakerScreen):
    """A sound's six handles (sounds/shape.py): press a row to edit it, turn to move it; each
    step plays at once on gate 1. "Save as…" keeps the result as a new sound."""

    name = "shape"

    def __init__(self, ui, source: str):
        super().__init__(ui, source)
        self.title = f"Shape {source}"
        self.values = handles(self.original)

    def entries(self, ui):
        return [(h.label, h.shown(self.values.get(h.key))) for h in HANDLES] + [(SAVE_ROW, "")]

    def edit(self, ui, index: int, steps: int) -> None:
        h = HANDLES[index]
        self.values = self.values.with_value(h.key, h.stepped(self.values.get(h.key), steps))
        self.made(ui, reshape(self.original, self.values))

    def meta(self) -> dict:
        return {"shaped_from": self.source, "handles": {k: round(v, 4) for k, v in asdict(self.values).items()}}

    def save_name(self, ui) -> str:
        return f"{self.source} shaped"


class VaryScreen(_MakerScreen):
    """Variations of a sound, one per seed: edit the seed and turn for the next one (it plays at
    once on gate 1); the amount scales how far they stray. The same seed gives the same sound."""

    name = "vary"
    AMOUNT_STEP, AMOUNT_MAX = 0.25, 3.0

    def __init__(self, ui, source: str):
        super().__init__(ui, source)
        self.title = f"Vary {source}"
        self.seed, self.amount = 1, 1.0
        self.made(ui, vary(self.original, self.seed, self.amount))

    def entries(self, ui):
        return [("Seed", str(self.seed)), ("Amount", f"{self.amount * 100:.0f}%"), (SAVE_ROW, "")]

    def edit(self, ui, index: int, steps: int) -> None:
        if index == 0:
            self.seed = max(0, self.seed + steps)
        else:
            self.amount = min(self.AMOUNT_MAX, max(self.AMOUNT_STEP, self.amount + steps * self.AMOUNT_STEP))
        self.made(ui, vary(self.original, self.seed, self.amount))

    def meta(self) -> dict:
        return {"varied_from": self.source, "seed": self.seed, "amount": self.amount}

    def save_name(self, ui) -> str:
        return f"{self.source} v{self.seed}"


def save_morph_screen(ui) -> NameEntryScreen:
    """The menu's "Save morph": the morph of A and B that gate 2 plays as the screen opens (the
    morph heard), saved as a new sound under the name entered."""
    a, b, amount, trajectory = ui.module.morph_now()
    base = f"{a[:9].strip()}-{b[:9].strip()} {amount * 100:.0f}"
    meta = {"morph": {"a": a, "b": b, "amount": round(amount, 4)}}
    return NameEntryScreen(f"Save morph {amount * 100:.0f}%", ui.module.free_name(base),
                           lambda name: ui.module.save_sound(name, trajectory, meta))
