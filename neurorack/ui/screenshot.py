"""`neurorack screenshot`: a PNG of every screen reached, for the README, the docs and reviews.

Without an events file it takes a tour: home, the menu, each menu entry and the screens behind
it (sound actions, similar sounds, Shape and its name entry, Vary, a CV being edited, the
calibration steps, an error). With one, it applies
the file's events to the simulated board and keeps a picture each time the screen changes.
Pictures are drawn by a real luma device (``luma.core.device.dummy``, shaped as the profile's
display) and enlarged 4x. The module comes from the assembler (an offline sim module); the
tour drives it as a user would, through its events and its menus.
"""
from __future__ import annotations

from pathlib import Path

SCALE = 4


class Camera:
    def __init__(self, ui, device, out: Path):
        self.ui, self.device, self.out = ui, device, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.files: list[Path] = []

    def snap(self, name: str) -> Path:
        self.ui.render(self.device)
        image = self.device.image.convert("L")
        path = self.out / f"{len(self.files):02d}-{name}.png"
        image.resize((image.width * SCALE, image.height * SCALE), 0).save(path)  # 0: nearest
        self.files.append(path)
        return path


def tour(module, camera: Camera) -> None:
    ui = module.ui
    module.render_stale()
    for number, volts in ((1, 1.5), (2, 2.5), (3, -1.0), (4, 0.5)):  # the meters show something
        module.apply_event(_event("cv", number, volts))
    module.render_stale()
    module.apply_event(_event("gate", 1, True))  # the gate lamp lit
    module.apply_event(_event("midi", 0, (0x90, 64, 100)))  # MIDI activity: the MIDI and Status screens
    camera.snap("home")
    ui.press()
    camera.snap("menu")
    for index, item in enumerate(ui.spec.items):
        ui.screen.cursor = index
        ui.press()
        camera.snap(item["screen"])
        if item["screen"] == "browser":
            ui.press()
            camera.snap("sound-actions")
            _sound_making(ui, camera)
            ui.long_press()
        elif item["screen"] == "cv":
            ui.press()
            ui.press()  # edit the target
            ui.turn(1)
            camera.snap("cv-edit")
            ui.turn(-1)
            ui.long_press()
            ui.long_press()
        elif item["screen"] == "calibration":
            module.apply_event(_event("cv", 1, 0.98))
            ui.press()
            camera.snap("calibration-1v")
            ui.press()
            module.apply_event(_event("cv", 1, 3.03))
            camera.snap("calibration-3v")
            ui.press()
            camera.snap("calibration-result")
            ui.long_press()
            ui.press()  # the wizard again, and the same reading twice: a forgotten patch cable
            ui.press()
            ui.press()
            ui.press()
            camera.snap("error")
            ui.long_press()
            ui.long_press()
            continue
        elif item["screen"] == "midi":
            ui.press()  # Learn
            camera.snap("midi-learn")
            ui.turn(5)  # brightness
            ui.press()
            camera.snap("midi-learn-wait")
            module.apply_event(_event("midi", 0, (0xB0, 74, 64)))  # the controller moved
            camera.snap("midi-learned")
            ui.press()
        elif item["screen"] == "settings":
            ui.press()
            camera.snap("settings-edit")
            ui.long_press()
        ui.long_press()


def follow(module, camera: Camera, events) -> None:
    """Apply `events` in order; a picture at the start and whenever the screen changes."""
    module.render_stale()
    camera.snap("-".join(module.ui.path()))
    last = module.ui.path()
    for event in events:
        module.apply_event(event)
        if event.kind != "gate":
            module.render_stale()
        if module.ui.path() != last or event.kind in ("encoder", "button"):
            last = module.ui.path()
            camera.snap(last[-1])


def _event(kind: str, number: int, value):
    from ..hal.sim import SimEvent

    return SimEvent(0.0, kind, number, value)


def screenshots(module, device, out, events=None) -> list[Path]:
    """`module`: an offline sim module; `device`: the luma device to draw on (its screen's shape)."""
    camera = Camera(module.ui, device, out)
    if events is None:
        tour(module, camera)
    else:
        follow(module, camera, events)
    return camera.files


def _sound_making(ui, camera: Camera) -> None:
    """From a sound's actions: its similar sounds, Shape (a handle being edited, the name entry,
    cancelled: nothing is saved) and Vary; back on the actions after."""
    actions = ui.screen
    for action in ("Similar sounds", "Shape", "Vary"):
        actions.cursor = actions.ACTIONS.index(action)
        ui.press()
        camera.snap(ui.screen.name)
        if action == "Shape":
            ui.press()  # edit the attack
            ui.turn(5)
            camera.snap("shape-edit")
            ui.long_press()
            ui.turn(len(ui.screen.entries(ui)))  # down to "Save as…"
            ui.press()
            camera.snap("name-entry")
            ui.long_press()  # cancel
        ui.long_press()
