"""Drawing helpers for a small screen: the shipped fonts, rows, bars, inverted highlights.

Layout is in pixels of a 128x64 panel (a title of 12 px, then rows of 13 px); wider panels
(256x64) use the extra width for longer names. Colours are "white" on black: luma maps them to
lit pixels on 1-bit panels and to full grey on the SSD1322.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ..assets import asset_dir

TITLE_H = 12
ROW_H = 13
ON, OFF = "white", "black"


def ui_dir() -> Path:
    """$NEURORACK_UI, the checkout's ui/ folder, or the installed copy (menus, fonts, the panel page)."""
    return asset_dir("ui", "NEURORACK_UI")


@lru_cache(maxsize=None)
def font(size: int = 11, bold: bool = False):
    name = "DejaVuSansCondensed-Bold.ttf" if bold else "DejaVuSansCondensed.ttf"
    try:
        return ImageFont.truetype(str(ui_dir() / "fonts" / name), size)
    except OSError:  # a checkout without the fonts still draws, in Pillow's own font
        return ImageFont.load_default()


class Painter:
    """Wraps a PIL ImageDraw with the few things screens draw."""

    def __init__(self, draw, size: tuple[int, int]):
        self.draw, (self.width, self.height) = draw, size

    def text(self, xy, text: str, size: int = 11, bold: bool = False, fill=ON, width: int | None = None) -> None:
        f = font(size, bold)
        if width is not None:
            text = self.fit(text, width, f)
        self.draw.text(xy, text, font=f, fill=fill)

    def fit(self, text: str, width: int, f=None) -> str:
        """`text` cut with an ellipsis to fit `width` pixels."""
        f = f or font()
        if self.draw.textlength(text, font=f) <= width:
            return text
        while text and self.draw.textlength(text + "…", font=f) > width:
            text = text[:-1]
        return text + "…"

    def title(self, text: str, right: str = "") -> None:
        self.draw.rectangle((0, 0, self.width - 1, TITLE_H - 1), fill=ON)
        right_w = int(self.draw.textlength(right, font=font(10))) + 2 if right else 0
        self.text((2, 0), text, size=10, bold=True, fill=OFF, width=self.width - 4 - right_w)
        if right:
            self.text((self.width - right_w, 0), right, size=10, fill=OFF)

    def row(self, index: int, label: str, value: str = "", selected: bool = False, editing: bool = False) -> None:
        """Row `index` under the title; the selected row is inverted, a value being edited boxed."""
        y = TITLE_H + 1 + index * ROW_H
        fg = OFF if selected else ON
        if selected:
            self.draw.rectangle((0, y, self.width - 1, y + ROW_H - 1), fill=ON)
        value_w = int(self.draw.textlength(value, font=font())) + 4 if value else 0
        self.text((3, y), label, fill=fg, width=self.width - 8 - value_w)
        if value:
            x = self.width - value_w
            if editing:
                self.draw.rectangle((x - 2, y + 1, self.width - 2, y + ROW_H - 2), outline=fg)
            self.text((x, y), value, fill=fg)

    def bar(self, box, amount: float, centre: float | None = None) -> None:
        """A horizontal meter in `box` filled to `amount` (0..1), from `centre` if given (bipolar)."""
        x0, y0, x1, y1 = box
        self.draw.rectangle(box, outline=ON)
        amount = min(1.0, max(0.0, amount))
        start = x0 + (x1 - x0) * (centre if centre is not None else 0.0)
        end = x0 + (x1 - x0) * amount
        lo, hi = sorted((start, end))
        if hi - lo >= 1:
            self.draw.rectangle((lo, y0, hi, y1), fill=ON)
        if centre is not None:
            self.draw.line((start, y0 - 1, start, y1 + 1), fill=ON)

    def rows_visible(self) -> int:
        return (self.height - TITLE_H - 1) // ROW_H
