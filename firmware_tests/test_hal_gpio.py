"""The GPIO devices over the pin layer, which owns each edge's moment: RPi.GPIO's API (the moment
taken in the callback) and lgpio's alerts (the kernel's timestamp of the edge)."""
import pytest

from chips import FakeLgpio
from neurorack.errors import NeurorackError
from neurorack.hal.gates import Gate
from neurorack.hal.gpio import GateInput, LgpioPins, PushButton, RotaryEncoder, RpiGpioPins, find_header_chip, open_pins


class Clock:
    def __init__(self, ns=0):
        self.ns = ns

    def advance_ms(self, ms):
        self.ns += int(ms * 1e6)

    def __call__(self):
        return self.ns


def test_gate_edges_become_edges_stamped_by_the_pin_layer(gpio):
    clock, edges = Clock(), []
    GateInput(RpiGpioPins(gpio, clock=clock), 17, Gate.IMPACT, edges.append)
    assert gpio.levels[17] == 1  # pulled up: no gate
    clock.advance_ms(5)
    gpio.drive(17, 0)  # the transistor pulls low: gate high
    clock.advance_ms(10)
    gpio.drive(17, 1)
    assert [(e.gate, e.on, e.at_ns) for e in edges] == [(Gate.IMPACT, True, 5_000_000), (Gate.IMPACT, False, 15_000_000)]


def test_bounces_and_gate_storms_are_bounded(gpio):
    clock, events = Clock(), []
    gate = GateInput(RpiGpioPins(gpio, clock=clock), 27, Gate.MORPH, events.append, debounce_ms=1.0)
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


def test_an_lgpio_edge_carries_the_kernels_stamp_not_the_callbacks_moment():
    lg, clock = FakeLgpio(), Clock(ns=50_000_000_000)
    pins = LgpioPins(lg, clock=clock, wall=lambda: 1_700_000_000_000_000_000)
    edges = []
    gate = GateInput(pins, 17, Gate.IMPACT, edges.append)
    assert pins.chip == 0 and lg.levels[17] == 1  # the RP1's chip found by its label; pulled up
    edge_at = clock.ns
    clock.advance_ms(7)  # lgpio's thread got the GIL 7 ms after the interrupt
    lg.drive(17, 0, stamp_ns=edge_at)
    assert [(e.on, e.at_ns) for e in edges] == [(True, edge_at)]
    gate.close()
    assert 17 not in lg.alerts and 17 not in lg.claimed


def test_a_realtime_kernel_stamp_is_moved_onto_the_monotonic_clock():
    wall_now = 1_700_000_000_000_000_000
    pins = LgpioPins(FakeLgpio(), clock=Clock(ns=9_000_000_000), wall=lambda: wall_now)
    assert pins.monotonic(9_000_000_000 - 3_000_000) == 9_000_000_000 - 3_000_000  # monotonic already
    assert pins.monotonic(wall_now - 2_000_000) == 9_000_000_000 - 2_000_000  # CLOCK_REALTIME, 2 ms ago
    assert pins.monotonic(12345) == 9_000_000_000  # on neither clock: the moment of the call


def test_the_header_chip_is_found_by_its_label_and_a_board_without_one_is_a_clear_error():
    assert find_header_chip(FakeLgpio(labels=("rp1-other", "x", "pinctrl-bcm2711"))) == 2
    with pytest.raises(NeurorackError, match="no gpiochip labelled pinctrl-rp1"):
        find_header_chip(FakeLgpio(labels=("gpio-mockup",)))


def test_encoder_counts_detents_both_ways(gpio):
    turns = []
    RotaryEncoder(RpiGpioPins(gpio), 5, 6, turns.append)
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
    PushButton(RpiGpioPins(gpio, clock=clock), 13, presses.append)
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
        open_pins("jetson")
    with pytest.raises(NeurorackError, match="no GPIO library"):
        open_pins("arduino")
