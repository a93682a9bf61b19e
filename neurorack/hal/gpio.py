"""Gates, encoder and button on GPIO edges, over a pin layer that owns each edge's moment.

As in gpiozero, the devices (``GateInput``, ``RotaryEncoder``, ``PushButton``) sit over a pin
layer that can be swapped, and the pin layer, not a device, says when an edge happened:

- ``LgpioPins``: lgpio's alerts (any Pi with the gpiochip character device; the Pi 5's RP1
  needs it). Each alert carries the kernel's timestamp of the interrupt, so an edge is placed
  where it happened however late lgpio's thread gets the GIL.
- ``RpiGpioPins``: the RPi.GPIO API (RPi.GPIO up to a Pi 4, Jetson.GPIO): the moment is read
  first thing in the library's callback.

``open_pins`` picks one for a profile's ``gpio``. Callbacks run on the GPIO library's thread:
they only read the level, take the moment and hand an event on, never render or block.

    pins = open_pins("rpi")
    gate = GateInput(pins, pin=17, gate=Gate.IMPACT, on_edge=engine.gate)
"""
from __future__ import annotations

import importlib
import logging
import time
from typing import Callable, Protocol

from ..errors import NeurorackError
from .gates import Gate, GateEdge

log = logging.getLogger(__name__)
GPIO_MODULES = {"rpi": "RPi.GPIO", "jetson": "Jetson.GPIO"}
PINCTRL_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")  # the header's gpiochip, Pi 5 to Pi 1
STAMP_TRUST_NS = 1_000_000_000  # a kernel stamp further than this from now is on another clock

OnEdge = Callable[[bool, int], None]  # (level, monotonic ns of the edge)


class Pins(Protocol):
    def setup_input(self, pin: int, pull_up: bool) -> None: ...
    def read(self, pin: int) -> bool: ...
    def watch(self, pin: int, on_edge: OnEdge) -> None: ...
    def unwatch(self, pin: int) -> None: ...


class RpiGpioPins:
    """Pins through the RPi.GPIO API (RPi.GPIO, Jetson.GPIO, rpi-lgpio share it)."""

    def __init__(self, module, clock=time.monotonic_ns):
        self.module, self.clock = module, clock

    def setup_input(self, pin: int, pull_up: bool) -> None:
        m = self.module
        m.setup(pin, m.IN, pull_up_down=m.PUD_UP if pull_up else m.PUD_DOWN)

    def read(self, pin: int) -> bool:
        return bool(self.module.input(pin))

    def watch(self, pin: int, on_edge: OnEdge) -> None:
        def edge(_channel):
            at = self.clock()  # first: the moment is the edge's, not the level read's
            on_edge(bool(self.module.input(pin)), at)
        self.module.add_event_detect(pin, self.module.BOTH, callback=edge)

    def unwatch(self, pin: int) -> None:
        self.module.remove_event_detect(pin)


class LgpioPins:
    """Pins through lgpio's alerts, each with the kernel's timestamp of the edge."""

    def __init__(self, lgpio, chip: int | None = None, clock=time.monotonic_ns, wall=time.time_ns):
        self.lgpio, self.clock, self.wall = lgpio, clock, wall
        self.chip = find_header_chip(lgpio) if chip is None else chip
        self.handle = lgpio.gpiochip_open(self.chip)
        if self.handle < 0:
            raise NeurorackError(f"cannot open /dev/gpiochip{self.chip}: {lgpio.error_text(self.handle)}")
        self._pulls: dict[int, int] = {}
        self._callbacks: dict[int, object] = {}

    def setup_input(self, pin: int, pull_up: bool) -> None:
        self._pulls[pin] = self.lgpio.SET_PULL_UP if pull_up else self.lgpio.SET_PULL_DOWN
        self._check(self.lgpio.gpio_claim_input(self.handle, pin, self._pulls[pin]), pin)

    def read(self, pin: int) -> bool:
        return bool(self.lgpio.gpio_read(self.handle, pin))

    def watch(self, pin: int, on_edge: OnEdge) -> None:
        lg = self.lgpio
        self._check(lg.gpio_claim_alert(self.handle, pin, lg.BOTH_EDGES, self._pulls.get(pin, 0)), pin)

        def alert(_chip, _gpio, level, stamp_ns):
            if level in (0, 1):  # 2 is a watchdog timeout, not an edge
                on_edge(bool(level), self.monotonic(stamp_ns))
        self._callbacks[pin] = lg.callback(self.handle, pin, lg.BOTH_EDGES, alert)

    def monotonic(self, stamp_ns: int) -> int:
        """The kernel's stamp on time.monotonic_ns()'s clock. The GPIO character device stamps on
        CLOCK_MONOTONIC, older kernels and some drivers on CLOCK_REALTIME: whichever clock the stamp
        is close to is its clock; a stamp close to neither is replaced by the moment of the call."""
        now = self.clock()
        if abs(now - stamp_ns) < STAMP_TRUST_NS:
            return min(stamp_ns, now)
        behind = self.wall() - stamp_ns
        if 0 <= behind < STAMP_TRUST_NS:
            return now - behind
        return now

    def unwatch(self, pin: int) -> None:
        callback = self._callbacks.pop(pin, None)
        if callback is not None:
            callback.cancel()
        self.lgpio.gpio_free(self.handle, pin)

    def _check(self, status: int, pin: int) -> None:
        if status is not None and status < 0:
            raise NeurorackError(f"GPIO {pin} on gpiochip{self.chip}: {self.lgpio.error_text(status)}")


def find_header_chip(lgpio, chips=range(8)) -> int:
    """The gpiochip of the 40-pin header (its label names the SoC's pin controller)."""
    for chip in chips:
        handle = lgpio.gpiochip_open(chip)
        if handle < 0:
            continue
        try:
            status, _lines, _name, label = lgpio.gpio_get_chip_info(handle)
        finally:
            lgpio.gpiochip_close(handle)
        if status >= 0 and label in PINCTRL_LABELS:
            return chip
    raise NeurorackError(f"no gpiochip labelled {' or '.join(PINCTRL_LABELS)}: is this a Raspberry Pi?")


def open_pins(backend: str) -> Pins:
    """The pin layer for a profile's `gpio` ("rpi" or "jetson"). On a Pi, lgpio where it is
    installed (kernel edge stamps; the only way on a Pi 5), RPi.GPIO otherwise."""
    if backend == "rpi":
        try:
            import lgpio
        except ImportError:
            lgpio = None
        if lgpio is not None:
            try:
                return LgpioPins(lgpio)
            except (NeurorackError, OSError, RuntimeError) as exc:  # lgpio without a usable chip
                log.info("lgpio: %s; using RPi.GPIO", exc)
    try:
        module = importlib.import_module(GPIO_MODULES[backend])
    except KeyError:
        raise NeurorackError(f"no GPIO library for {backend!r}") from None
    except (ImportError, RuntimeError) as exc:  # RPi.GPIO raises RuntimeError off a Pi
        raise NeurorackError(f"{GPIO_MODULES[backend]} cannot be used here ({exc}); "
                             f"install the '{'pi' if backend == 'rpi' else 'jetson'}' extra on the board") from None
    module.setwarnings(False)
    module.setmode(module.BCM if backend == "rpi" else module.BOARD)
    return RpiGpioPins(module)


class GateInput:
    """A gate jack on a GPIO pin. The input stage inverts (a high gate pulls the pin low) unless
    ``active_low`` is False. A rising gate closer than ``debounce_ms`` to the last accepted one is
    dropped, so a bouncing contact or a 1 kHz gate storm cannot flood the engine; a falling gate
    is always taken, so the state read last is never lost to the debounce."""

    def __init__(self, pins: Pins, pin: int, gate: Gate, on_edge: Callable[[GateEdge], None],
                 active_low: bool = True, debounce_ms: float = 1.0):
        self.pins, self.pin, self.gate = pins, pin, Gate(gate)
        self.on_edge, self.active_low = on_edge, active_low
        self.debounce_ns = int(debounce_ms * 1e6)
        self._last_on_ns: int | None = None
        self._state = False
        self.dropped = 0
        pins.setup_input(pin, pull_up=active_low)
        pins.watch(pin, self._edge)

    def _edge(self, level: bool, at_ns: int) -> None:
        on = level != self.active_low
        if on == self._state:
            return  # a glitch too short to read back: no change
        if on and self._last_on_ns is not None and at_ns - self._last_on_ns < self.debounce_ns:
            self.dropped += 1
            return
        self._state = on
        if on:
            self._last_on_ns = at_ns
        self.on_edge(GateEdge(self.gate, on, at_ns))

    def close(self) -> None:
        self.pins.unwatch(self.pin)


# Quadrature: index (previous AB << 2 | current AB) -> step. Invalid jumps (both lines changed) are 0.
_QUADRATURE = (0, -1, 1, 0, 1, 0, 0, -1, -1, 0, 0, 1, 0, 1, -1, 0)


class RotaryEncoder:
    """A mechanical encoder on two pins (A, B to ground, pull-ups). Calls ``on_turn(+1 | -1)``
    once per detent (four quadrature steps on the common 24-detent encoders)."""

    def __init__(self, pins: Pins, pin_a: int, pin_b: int, on_turn: Callable[[int], None], steps_per_detent: int = 4):
        self.pins, self.pin_a, self.pin_b = pins, pin_a, pin_b
        self.on_turn, self.steps_per_detent = on_turn, steps_per_detent
        for pin in (pin_a, pin_b):
            pins.setup_input(pin, pull_up=True)
        self._ab = self._read()
        self._count = 0
        for pin in (pin_a, pin_b):
            pins.watch(pin, self._edge)

    def _read(self) -> int:
        return (int(self.pins.read(self.pin_a)) << 1) | int(self.pins.read(self.pin_b))

    def _edge(self, _level: bool, _at_ns: int) -> None:
        ab = self._read()
        self._count += _QUADRATURE[(self._ab << 2) | ab]
        self._ab = ab
        if abs(self._count) >= self.steps_per_detent:
            self.on_turn(1 if self._count > 0 else -1)
            self._count = 0

    def close(self) -> None:
        for pin in (self.pin_a, self.pin_b):
            self.pins.unwatch(pin)


class PushButton:
    """The encoder's push button (to ground): ``on_press("press" | "long")`` on release."""

    def __init__(self, pins: Pins, pin: int, on_press: Callable[[str], None], long_ms: float = 600.0,
                 debounce_ms: float = 20.0):
        self.pins, self.pin, self.on_press = pins, pin, on_press
        self.long_ns, self.debounce_ns = int(long_ms * 1e6), int(debounce_ms * 1e6)
        self._down_ns: int | None = None
        pins.setup_input(pin, pull_up=True)
        pins.watch(pin, self._edge)

    def _edge(self, level: bool, at_ns: int) -> None:
        pressed = not level
        if pressed and self._down_ns is None:
            self._down_ns = at_ns
        elif not pressed and self._down_ns is not None:
            held = at_ns - self._down_ns
            self._down_ns = None
            if held >= self.debounce_ns:
                self.on_press("long" if held >= self.long_ns else "press")

    def close(self) -> None:
        self.pins.unwatch(self.pin)
