"""The screen: a luma device chosen by the board profile's ``[display]``.

Device classes (what the pixels mean) are luma.oled's; the serial interface (I2C or SPI, how
bytes travel) is luma.core's, swappable for a fake in tests, as in luma's own tests. The ``sim``
board draws into ``luma.core.device.dummy``, a real luma device that keeps the image.

>>> device = open_display({"driver": "ssd1306", "interface": "i2c", "bus": 1, "address": 0x3C})
"""
from __future__ import annotations

from ..errors import NeurorackError

GREYSCALE = {"ssd1322"}  # 4-bit grey; the others are 1-bit


def simulated_screen(spec: dict | None = None):
    """luma's dummy device (a real luma device that keeps the image) shaped as the profile's
    display: the sim board's screen, the virtual panel's and the screenshots'."""
    from luma.core.device import dummy

    spec = spec or {}
    driver = spec.get("driver", "sh1106")
    return dummy(width=int(spec.get("width", 128)), height=int(spec.get("height", 64)),
                 mode="RGB" if driver in GREYSCALE else "1")


def open_display(spec: dict, serial=None):
    """A luma device for the profile's display spec, or None when it has none (driver "none").

    `serial`: a luma serial interface to use instead of opening the bus (tests)."""
    driver = spec.get("driver", "none")
    if driver == "none":
        return None
    width, height = int(spec.get("width", 128)), int(spec.get("height", 64))
    interface = spec.get("interface", "i2c")
    if interface == "emulated" and serial is None:
        return simulated_screen(spec)
    try:
        from luma.oled import device as oled
    except ImportError as exc:
        raise NeurorackError(f"the display needs luma.oled ({exc}); run `make setup`") from None
    classes = {"ssd1306": oled.ssd1306, "sh1106": oled.sh1106, "ssd1309": oled.ssd1309, "ssd1322": oled.ssd1322}
    if driver not in classes:
        raise NeurorackError(f"unknown display {driver!r}; known: {', '.join(classes)}")
    if serial is None:
        serial = _open_serial(interface, spec)
    return classes[driver](serial, width=width, height=height, rotate=int(spec.get("rotate", 0)))


def _open_serial(interface: str, spec: dict):
    from luma.core.interface.serial import i2c, spi

    if interface == "i2c":
        return i2c(port=int(spec.get("bus", 1)), address=int(spec.get("address", 0x3C)))
    if interface == "spi":
        return spi(port=int(spec.get("bus", 0)), device=int(spec.get("device", 0)),
                   gpio_DC=int(spec.get("dc", 24)), gpio_RST=int(spec.get("reset", 25)))
    raise NeurorackError(f"display interface {interface!r}: use i2c, spi or emulated")
