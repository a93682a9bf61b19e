import pytest

from neurorack.errors import NeurorackError
from neurorack.hal.gpio import GateInput, PushButton, RotaryEncoder, open_gpio


class Clock:
    def __init__(self):
        self.ns = 0

    def advance_ms(self, ms):
        self.ns += int(ms * 1e6)

    def __call__(self):
        return self.ns


def test_gate_edges_become_timestamped_events(gpio):
    clock, events = Clock(), []
    GateInput(gpio, 17, 1, events.append, clock=clock)
    assert gpio.levels[17] == 1  # pulled up: no gate
    clock.advance_ms(5)
    gpio.drive(17, 0)  # the transistor pulls low: gate high
    clock.advance_ms(10)
    gpio.drive(17, 1)
    assert [(e.gate, e.on, e.t_ns) for e in events] == [(1, True, 5_000_000), (1, False, 15_000_000)]


def test_bounces_and_gate_storms_are_bounded(gpio):
    clock, events = Clock(), []
    gate = GateInput(gpio, 27, 2, events.append, debounce_ms=1.0, clock=clock)
    for _ in range(5):  # contact bounce: 5 toggles within 0.5 ms
        gpio.drive(27, 0)
        clock.advance_ms(0.05)
        gpio.drive(27, 1)
        clock.advance_ms(0.05)
    assert [e.on for e in events] == [True, False]  # one trigger, and the final state is off
    events.clear()
    clock.advance_ms(10)
    for _ in range(1000):  # a 10 kHz square wave for 0.1 s
        gpio.drive(27, 0)
        clock.advance_ms(0.05)
        gpio.drive(27, 1)
        clock.advance_ms(0.05)
    triggers = [e for e in events if e.on]
    assert 90 <= len(triggers) <= 101  # one trigger per millisecond at most
    assert gate.dropped >= 890 and not events[-1].on


def test_encoder_counts_detents_both_ways(gpio):
    turns = []
    RotaryEncoder(gpio, 5, 6, turns.append)
    # One line changes per quadrature step; AB goes 11 01 00 10 11 clockwise, 11 10 00 01 11 back.
    clockwise = [(5, 0), (6, 0), (5, 1), (6, 1)]
    counter = [(6, 0), (5, 0), (6, 1), (5, 1)]
    for _ in range(3):
        for pin, level in clockwise:
            gpio.drive(pin, level)
    for _ in range(2):
        for pin, level in counter:
            gpio.drive(pin, level)
    gpio.drive(5, 0)  # half a detent, then back: no turn
    gpio.drive(5, 1)
    assert turns == [1, 1, 1, -1, -1]


def test_button_press_and_long_press(gpio):
    clock, presses = Clock(), []
    PushButton(gpio, 13, presses.append, clock=clock)
    gpio.drive(13, 0)
    clock.advance_ms(120)
    gpio.drive(13, 1)
    gpio.drive(13, 0)
    clock.advance_ms(900)
    gpio.drive(13, 1)
    gpio.drive(13, 0)
    clock.advance_ms(2)  # a bounce, not a press
    gpio.drive(13, 1)
    assert presses == ["press", "long"]


def test_missing_gpio_library_is_a_clear_error():
    with pytest.raises(NeurorackError, match="Jetson.GPIO cannot be used here"):
        open_gpio("jetson")
    with pytest.raises(NeurorackError, match="no GPIO library"):
        open_gpio("arduino")
