"""A hardware board from its profile, over emulated chips: the real drivers, the CV poller,
calibration, Schmitt gates on ADC channels, and an ADC that stops answering."""
import pytest

from chips import FakeADS1x15, FakeMCP3x08
from neurorack.hal.board import HardwareBoard, SchmittGate
from neurorack.hal.cv import Calibration
from neurorack.hal.gpio import RpiGpioPins
from neurorack.hal.profile import AdcGateSpec, ProfileError, load_profile, parse_profile
from test_sim import Recorder


def adc_volts_for(module_volts):
    """The pi-mcp3208 input stage: v_adc = 1.65 - v_in * 0.33."""
    return 1.65 - module_volts * 0.33


def test_cvs_are_read_scaled_calibrated_and_passed_on_when_they_move(gpio):
    chip = FakeMCP3x08(bits=12, vref=3.3, volts={0: adc_volts_for(0.0), 1: adc_volts_for(2.0),
                                                  2: adc_volts_for(-4.0), 3: adc_volts_for(1.0)})
    sink = Recorder()
    board = HardwareBoard(load_profile("pi-mcp3208"), sink, {4: Calibration(1.02, -0.01)}, pins=RpiGpioPins(gpio), adc_bus=chip)
    board.poll_once()
    volts = {n: v for kind, n, v in sink.calls}
    assert volts[2] == pytest.approx(2.0, abs=0.005) and volts[3] == pytest.approx(-4.0, abs=0.005)
    assert volts[4] == pytest.approx(1.02 * 1.0 - 0.01, abs=0.005)
    # The real MCP3208 protocol was spoken: one 3-byte transfer per channel.
    assert chip.sent[:4] == [[0x06, 0x00, 0x00], [0x06, 0x40, 0x00], [0x06, 0x80, 0x00], [0x06, 0xC0, 0x00]]
    sink.calls.clear()
    board.poll_once()
    assert sink.calls == []  # nothing moved: the engine is not woken
    chip.volts[1] = adc_volts_for(2.5)
    board.poll_once()
    assert sink.calls == [("cv", 2, pytest.approx(2.5, abs=0.005))]


def test_an_adc_that_stops_answering_holds_the_last_values_and_says_so_once(gpio, caplog):
    chip = FakeMCP3x08(volts={1: adc_volts_for(1.0)})
    sink = Recorder()
    board = HardwareBoard(load_profile("pi-mcp3208"), sink, pins=RpiGpioPins(gpio), adc_bus=chip)
    board.poll_once()
    sink.calls.clear()
    chip.fail = True
    for _ in range(5):
        board.poll_once()
    assert sink.calls == [] and board.adc_errors == 5
    assert sum("SPI transfer" in r.getMessage() for r in caplog.records) == 1
    chip.fail = False
    board.poll_once()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_gpio_gates_encoder_and_button_reach_the_sink(gpio):
    sink = Recorder()
    HardwareBoard(load_profile("pi-mcp3208"), sink, pins=RpiGpioPins(gpio), adc_bus=FakeMCP3x08())
    gpio.drive(17, 0)  # the input stage inverts: a high gate pulls the pin low
    gpio.drive(27, 0)
    gpio.drive(17, 1)
    assert sink.calls == [("gate", 1, True), ("gate", 2, True), ("gate", 1, False)]


def test_gates_on_an_ads1115_channel_with_schmitt_thresholds(gpio):
    data = {"name": "t", "gpio": "rpi", "adc": {"chip": "ads1115"},
            "cv": [{"input": 1, "channel": 0}],
            "gate": [{"input": 1, "channel": 3, "gain": 2.0, "on_volts": 2.5, "off_volts": 1.0}]}
    profile = parse_profile(data, "t.toml")
    chip = FakeADS1x15(volts={0: 0.5, 3: 0.0}, busy_reads=0)
    sink = Recorder()
    board = HardwareBoard(profile, sink, pins=RpiGpioPins(gpio), adc_bus=chip)
    states = []
    for adc in (0.0, 1.0, 1.3, 1.1, 0.8, 0.6, 0.4, 1.4):  # module volts: 0, 2, 2.6, 2.2, 1.6, 1.2, 0.8, 2.8
        chip.volts[3] = adc
        sink.calls.clear()
        board.poll_once()
        states += [c[2] for c in sink.calls if c[0] == "gate"]
    assert states == [True, False, True]  # hysteresis: 2.2 and 1.2 V change nothing


def test_schmitt_gate_needs_hysteresis():
    gate = SchmittGate(AdcGateSpec(1, 0, on_volts=2.0, off_volts=1.0))
    assert [gate.update(v) for v in (0.5, 1.5, 2.1, 1.5, 2.5, 0.9)] == [None, None, True, None, None, False]
    with pytest.raises(ProfileError, match="off_volts must be below on_volts"):
        parse_profile({"gpio": "rpi", "adc": {"chip": "ads1115"},
                       "gate": [{"input": 1, "channel": 2, "on_volts": 1.0, "off_volts": 1.0}]}, "x.toml")
    with pytest.raises(ProfileError, match="ADC channel 0 is used by CV input 1 and gate 2"):
        parse_profile({"gpio": "rpi", "adc": {"chip": "ads1115"}, "cv": [{"input": 1, "channel": 0}],
                       "gate": [{"input": 2, "channel": 0}]}, "x.toml")
