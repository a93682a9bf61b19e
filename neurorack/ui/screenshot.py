"""`neurorack screenshot`: a PNG of every screen reached, for the README, the docs and reviews.

Without an events file it takes a tour: home, the menu, each menu entry and the screens behind
it (sound actions, a CV being edited, the calibration steps, an error). With one, it applies
the file's events to the simulated board and keeps a picture each time the screen changes.
Pictures are drawn by a real luma device (``luma.core.device.dummy``) and enlarged 4x.
"""
from __future__ import annotations

from pathlib import Path

SCALE = 4


class Camera:
    def __init__(self, module, out: Path, width: int = 128, height: int = 64):
        from luma.core.device import dummy

        self.module, self.out = module, Path(out)
        self.device = dummy(width=width, height=height, mode="1")
        self.out.mkdir(parents=True, exist_ok=True)
        self.files: list[Path] = []

    def snap(self, name: str) -> Path:
        self.module.ui.render(self.device)
        image = self.device.image.convert("L")
        path = self.out / f"{len(self.files):02d}-{name}.png"
        image.resize((image.width * SCALE, image.height * SCALE), 0).save(path)  # 0: nearest
        self.files.append(path)
        return path


def tour(module, camera: Camera, board) -> None:
    ui = module.ui
    module.engine.prerender.update()
    for number, volts in ((1, 1.5), (2, 2.5), (3, -1.0), (4, 0.5)):  # the meters show something
        board.apply(_event("cv", number, volts))
    module.engine.prerender.update()
    module.gate(1, True, frame=0)  # the gate lamp lit
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
            board.apply(_event("cv", 1, 0.98))
            ui.press()
            camera.snap("calibration-1v")
            ui.press()
            board.apply(_event("cv", 1, 3.03))
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
        elif item["screen"] == "settings":
            ui.press()
            camera.snap("settings-edit")
            ui.long_press()
        ui.long_press()


def follow(module, camera: Camera, board, events) -> None:
    """Apply `events` in order; a picture at the start and whenever the screen changes."""
    module.engine.prerender.update()
    camera.snap("-".join(module.ui.path()))
    last = module.ui.path()
    for event in events:
        board.apply(event, frame=0 if event.kind == "gate" else None)
        if event.kind != "gate":
            module.engine.prerender.update()
        if module.ui.path() != last or event.kind in ("encoder", "button"):
            last = module.ui.path()
            camera.snap(last[-1])


def _event(kind: str, number: int, value):
    from ..hal.sim import SimEvent

    return SimEvent(0.0, kind, number, value)


def screenshots(board_name: str, out, events=None, model=None) -> list[Path]:
    from ..hal.sim import SimBoard
    from ..module import Module

    module = Module.create(board_name, model=model, persist=False, live=False)
    try:
        board = SimBoard(module.profile, module, module.settings.calibration)
        module.board = board
        spec = module.profile.display
        camera = Camera(module, out, int(spec.get("width", 128)), int(spec.get("height", 64)))
        if events is None:
            tour(module, camera, board)
        else:
            follow(module, camera, board, events)
        return camera.files
    finally:
        module.close()
