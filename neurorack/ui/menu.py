"""The menu: a stack of screens driven by the encoder and its button, and the data it is built from.

The encoder turns, presses and long presses arrive on board threads; the display loop draws
on its own thread. Both go through ``Ui``'s lock, which nothing on the audio path ever takes.
A screen action that fails puts its error on screen; a press or a long press returns to the
screen before.

The module hands the UI itself: screens read ``module.view()`` (ui/view.py), taken once per
frame as ``ui.view``, and act only through the module's methods. Nothing here imports the module.

>>> ui = Ui(module)
>>> ui.press(); ui.turn(1); ui.press()      # menu, second item, enter
>>> ui.render(device)                        # draw the current screen on a luma device
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

from ..errors import NeurorackError
from ..model.paths import installed_models
from .paint import Painter, ui_dir
from ..hal.gates import JACKS
from .screens import SCREENS, ErrorScreen, HomeScreen, Screen
from .view import ModuleView

log = logging.getLogger(__name__)
BADGE_HOLD_S = 10.0  # an xrun badge stays this long after the last xrun


@dataclass
class MenuSpec:
    """ui/menu.toml: the main menu's items, the settings fields, the CV editor's ranges."""

    title: str
    items: list[dict]
    settings: list[dict]
    cv: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> "MenuSpec":
        path = Path(path) if path else ui_dir() / "menu.toml"
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise NeurorackError(f"cannot read the menu {path}: {exc}") from None
        items = data.get("item", [])
        unknown = [i.get("screen") for i in items if i.get("screen") not in SCREENS]
        if unknown or not items:
            raise NeurorackError(f"{path.name}: unknown screens {unknown}; known: {', '.join(SCREENS)}")
        return cls(data.get("title", "Menu"), items, data.get("setting", []), data.get("cv", {}))

    def choices(self, setting: dict) -> list:
        choices = setting["choices"]
        if choices == "models":
            return [None, *(m for m in installed_models() if m != "default")]
        return list(choices)


class Ui:
    def __init__(self, module, spec: MenuSpec | None = None):
        self.module = module
        self.spec = spec or MenuSpec.load()
        self.stack: list[Screen] = [HomeScreen()]
        self.lock = threading.RLock()
        self.changes = 0  # bumps on every control: the display loop redraws at once
        self.last_gate_at: dict[int, float] = {}
        self._gate_counts: dict[int, int] = {}
        self._xruns_seen, self._xrun_at = 0, -BADGE_HOLD_S
        self._view: ModuleView | None = None

    @property
    def view(self) -> ModuleView:
        """The module as this frame (or this action) sees it."""
        return self._view if self._view is not None else self.module.view()

    @property
    def screen(self) -> Screen:
        return self.stack[-1]

    def path(self) -> list[str]:
        return [s.name for s in self.stack]

    def push(self, screen: Screen) -> None:
        self.stack.append(screen)

    def pop(self) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    # -- controls (board threads) ---------------------------------------------------------------
    def turn(self, steps: int) -> None:
        self._act(lambda s: s.turn(self, steps))

    def press(self) -> None:
        self._act(lambda s: s.press(self))

    def long_press(self) -> None:
        self._act(lambda s: s.back(self))

    def button(self, kind: str) -> None:
        """The encoder's button: "press" or "long" (a board's sink)."""
        self.long_press() if kind == "long" else self.press()

    def _act(self, action) -> None:
        with self.lock:
            try:
                action(self.screen)
            except Exception as exc:  # a failed action is shown, and the module keeps playing
                log.error("menu: %s", exc)
                self.push(ErrorScreen(str(exc) or type(exc).__name__))
            self.changes += 1

    # -- drawing (display thread) ---------------------------------------------------------------
    def badge(self) -> str:
        """A short problem marker for the home screen: a problem now (render, audio, ADC,
        display), or xruns in the last few seconds."""
        view = self.view
        if view.error:
            return "ERR"
        if view.xruns > self._xruns_seen:
            self._xruns_seen, self._xrun_at = view.xruns, time.monotonic()
        return "XRUN" if time.monotonic() - self._xrun_at < BADGE_HOLD_S else ""

    def _watch_gates(self, view: ModuleView) -> None:
        now = time.monotonic()
        for gate in JACKS:
            count = view.gate_counts[gate]
            if count != self._gate_counts.get(gate, 0):
                self._gate_counts[gate] = count
                self.last_gate_at[gate] = now

    def draw(self, draw, size: tuple[int, int]) -> None:
        with self.lock:
            self._view = self.module.view()
            try:
                self._watch_gates(self._view)
                self.screen.draw(Painter(draw, size), self)
            finally:
                self._view = None

    def frame(self, device):
        """The current screen as a PIL image in the device's mode and size."""
        from PIL import Image, ImageDraw

        image = Image.new(device.mode, device.size)
        self.draw(ImageDraw.Draw(image), device.size)
        return image

    def render(self, device) -> None:
        """Draw the current screen on a luma device."""
        device.display(self.frame(device))


class DisplayLoop:
    """Draws the UI at a capped frame rate on its own thread; a display that fails is logged
    once and retried, and the module plays on."""

    def __init__(self, ui: Ui, device, fps: float = 15.0, retry_s: float = 5.0, refresh_s: float = 2.0):
        self.ui, self.device, self.period, self.retry_s = ui, device, 1.0 / fps, retry_s
        self.refresh_s = refresh_s
        self.frames = 0  # frames drawn
        self.sent = 0  # frames sent to the panel: only what changed, and every `refresh_s` regardless
        self.problem: str | None = None
        self.errors = 0  # frames the panel did not take
        self._shown: bytes | None = None
        self._shown_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def draw_once(self) -> bool:
        # An unchanged frame is not sent: a 1-bit panel takes the whole frame each time (1 KB,
        # ~25 ms of I2C at 400 kHz). A panel that glitched (a knock, a brown-out) is put right
        # within `refresh_s` anyway.
        try:
            image = self.ui.frame(self.device)
            data, now = image.tobytes(), time.monotonic()
            if data != self._shown or now - self._shown_at >= self.refresh_s:
                self.device.display(image)
                self._shown, self._shown_at = data, now
                self.sent += 1
        except OSError as exc:  # the bus stopped answering (a loose cable, a dead panel)
            self.errors += 1
            if self.problem is None:
                log.error("display stopped answering (%s); the module keeps playing", exc)
            self.problem = str(exc)
            self._shown = None  # what it shows is unknown: send the next frame whole
            return False
        if self.problem is not None:
            log.warning("display is back")
            self.problem = None
        self.frames += 1
        return True

    def start(self) -> "DisplayLoop":
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ok = self.draw_once()
            self._stop.wait(self.period if ok else self.retry_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
