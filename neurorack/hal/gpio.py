"""Gates, encoder and button on GPIO edges, through the RPi.GPIO API.

RPi.GPIO (Pi up to 4), rpi-lgpio (Pi 5; installs as the same ``RPi.GPIO`` module) and
Jetson.GPIO share that API, so one implementation serves all three; ``open_gpio`` picks the
module. Edge callbacks run on the GPIO library's thread: they only time-stamp and hand an
event on (a queue or the engine's inbox), never render or block.

    gpio = open_gpio("rpi")
    gate = GateInput(gpio, pin=17, number=1, on_event=inbox.put)
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import NeurorackError

GPIO_MODULES = {"rpi": "RPi.GPIO", "jetson": "Jetson.GPIO"}


def open_gpio(backend: str):
    """Import and set up the GPIO module for a profile's `gpio` setting ("rpi" or "jetson")."""
    try:
        module = importlib.import_module(GPIO_MODULES[backend])
    except KeyError:
        raise NeurorackError(f"no GPIO library for {backend!r}") from None
    except (ImportError, RuntimeError) as exc:  # RPi.GPIO raises RuntimeError off a Pi
        raise NeurorackError(f"{GPIO_MODULES[backend]} cannot be used here ({exc}); "
                             f"install the '{'pi' if backend == 'rpi' else 'jetson'}' extra on the board") from None
    module.setwarnings(False)
    module.setmode(module.BCM if backend == "rpi" else module.BOARD)
    return module


@dataclass(frozen=True)
class GateEvent:
    gate: int
    on: bool
    t_ns: int  # time.monotonic_ns() at the edge


class GateInput:
    """A gate jack on a GPIO pin. The input stage inverts (a high gate pulls the pin low) unless
    ``active_low`` is False. A rising gate closer than ``debounce_ms`` to the last accepted one is
    dropped, so a bouncing contact or a 1 kHz gate storm cannot flood the engine; a falling gate
    is always taken, so the state read last is never lost to the debounce."""

    def __init__(self, gpio, pin: int, number: int, on_event: Callable[[GateEvent], None],
                 active_low: bool = True, debounce_ms: float = 1.0, clock=time.monotonic_ns):
        self.gpio, self.pin, self.number = gpio, pin, number
        self.on_event, self.active_low = on_event, active_low
        self.debounce_ns = int(debounce_ms * 1e6)
        self.clock = clock
        self._last_on_ns: int | None = None
        self._state = False
        self.dropped = 0
        gpio.setup(pin, gpio.IN, pull_up_down=gpio.PUD_UP if active_low else gpio.PUD_DOWN)
        gpio.add_event_detect(pin, gpio.BOTH, callback=self._edge)

    def _edge(self, _channel) -> None:
        now = self.clock()
        on = bool(self.gpio.input(self.pin)) != self.active_low
        if on == self._state:
            return  # a glitch too short to read back: no change
        if on and self._last_on_ns is not None and now - self._last_on_ns < self.debounce_ns:
            self.dropped += 1
            return
        self._state = on
        if on:
            self._last_on_ns = now
        self.on_event(GateEvent(self.number, on, now))

    def close(self) -> None:
        self.gpio.remove_event_detect(self.pin)


# Quadrature: index (previous AB << 2 | current AB) -> step. Invalid jumps (both lines changed) are 0.
_QUADRATURE = (0, -1, 1, 0, 1, 0, 0, -1, -1, 0, 0, 1, 0, 1, -1, 0)


class RotaryEncoder:
    """A mechanical encoder on two pins (A, B to ground, pull-ups). Calls ``on_turn(+1 | -1)``
    once per detent (four quadrature steps on the common 24-detent encoders)."""

    def __init__(self, gpio, pin_a: int, pin_b: int, on_turn: Callable[[int], None], steps_per_detent: int = 4):
        self.gpio, self.pin_a, self.pin_b = gpio, pin_a, pin_b
        self.on_turn, self.steps_per_detent = on_turn, steps_per_detent
        for pin in (pin_a, pin_b):
            gpio.setup(pin, gpio.IN, pull_up_down=gpio.PUD_UP)
        self._ab = self._read()
        self._count = 0
        for pin in (pin_a, pin_b):
            gpio.add_event_detect(pin, gpio.BOTH, callback=self._edge)

    def _read(self) -> int:
        return (int(self.gpio.input(self.pin_a)) << 1) | int(self.gpio.input(self.pin_b))

    def _edge(self, _channel) -> None:
        ab = self._read()
        self._count += _QUADRATURE[(self._ab << 2) | ab]
        self._ab = ab
        if abs(self._count) >= self.steps_per_detent:
            self.on_turn(1 if self._count > 0 else -1)
            self._count = 0


class PushButton:
    """The encoder's push button (to ground): ``on_press("press" | "long")`` on release."""

    def __init__(self, gpio, pin: int, on_press: Callable[[str], None], long_ms: float = 600.0,
                 debounce_ms: float = 20.0, clock=time.monotonic_ns):
        self.gpio, self.pin, self.on_press, self.clock = gpio, pin, on_press, clock
        self.long_ns, self.debounce_ns = int(long_ms * 1e6), int(debounce_ms * 1e6)
        self._down_ns: int | None = None
        gpio.setup(pin, gpio.IN, pull_up_down=gpio.PUD_UP)
        gpio.add_event_detect(pin, gpio.BOTH, callback=self._edge)

    def _edge(self, _channel) -> None:
        now = self.clock()
        pressed = not self.gpio.input(self.pin)
        if pressed and self._down_ns is None:
            self._down_ns = now
        elif not pressed and self._down_ns is not None:
            held = now - self._down_ns
            self._down_ns = None
            if held >= self.debounce_ns:
                self.on_press("long" if held >= self.long_ns else "press")
