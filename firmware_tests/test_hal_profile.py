import math

import pytest

from neurorack.hal.cv import Calibration, CvInput
from neurorack.hal.profile import ProfileError, available_profiles, load_profile, parse_profile


def test_every_shipped_profile_loads():
    names = available_profiles()
    assert {"pi-mcp3208", "pi-ads1115", "jetson-orin-nano", "sim"} <= set(names)
    for name in names:
        profile = load_profile(name)
        assert [cv.number for cv in profile.cv] == [1, 2, 3, 4]
        assert set(profile.gates) == {1, 2}
    assert load_profile("pi-mcp3208").adc["chip"] == "mcp3208"
    assert load_profile("jetson-orin-nano").gpio == "jetson"


def base():
    return {"gpio": "rpi", "adc": {"chip": "mcp3208"},
            "cv": [{"input": 1, "channel": 0}, {"input": 2, "channel": 1}],
            "gate": [{"input": 1, "pin": 17}, {"input": 2, "pin": 27}],
            "encoder": {"a": 5, "b": 6, "button": 13}}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["adc"].update(chip="mcp9999"), "unknown ADC chip 'mcp9999'"),
    (lambda d: d["gate"].__setitem__(1, {"input": 2, "pin": 17}), "pin 17 is used twice (gate 1 and gate 2)"),
    (lambda d: d["gate"].append({"input": 3, "pin": 22}), "gate input number 3 is not 1 or 2"),
    (lambda d: d["encoder"].update(button=27), "pin 27 is used twice (gate 2 and encoder button)"),
    (lambda d: d["cv"].append({"input": 3, "channel": 1}), "ADC channel 1 is used by CV inputs 2 and 3"),
    (lambda d: d["cv"].append({"input": 3, "channel": 8}), "channel 8 outside 0..7"),
    (lambda d: d.update(adc={"chip": "ads1115"}) or d["cv"].append({"input": 3, "channel": 5}), "outside 0..3"),
    (lambda d: d.update(gpio="arduino"), "gpio must be one of"),
    (lambda d: d.update(display={"driver": "lcd1602"}), "unknown display"),
])
def test_profile_mistakes_are_named(change, message):
    data = base()
    change(data)
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profile(data, "test.toml")


def test_missing_and_malformed_profiles(tmp_path):
    with pytest.raises(ProfileError, match="no board profile 'nope'"):
        load_profile("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[adc\nchip = 1")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(str(bad))


def test_bipolar_input_stage_round_trip_clamps_and_refuses_nan():
    cv = load_profile("pi-mcp3208").cv[0]
    for volts in (-5.0, -1.0, 0.0, 2.5, 5.0):
        adc = 1.65 - volts * 0.33  # what the op-amp stage puts on the pin
        assert cv.to_volts(adc) == pytest.approx(volts, abs=1e-3)
    assert cv.to_volts(-0.5) == 5.0 and cv.to_volts(4.0) == -5.0  # beyond the rails: clamped
    assert cv.to_volts(math.nan) is None  # not a reading: the bank ignores it and counts it


def test_two_point_calibration_corrects_scale_and_offset():
    # A stage whose resistors are 3 % off and whose offset is 40 mV off.
    raw = CvInput(1, 0, gain=1.0, offset=0.0)
    measured = {1.0: 1.0 * 1.03 + 0.04, 3.0: 3.0 * 1.03 + 0.04}
    cal = Calibration.from_two_points(measured[1.0], measured[3.0])
    calibrated = CvInput(1, 0, 1.0, 0.0, calibration=cal)
    for true in (-4.0, 0.0, 2.0, 4.5):
        assert calibrated.to_volts(true * 1.03 + 0.04) == pytest.approx(true, abs=1e-9)
    assert raw.to_volts(2.0 * 1.03 + 0.04) != pytest.approx(2.0, abs=0.01)
    with pytest.raises(ValueError, match="differ"):
        Calibration.from_two_points(1.0, 1.02)
    with pytest.raises(ValueError, match="scale by"):
        Calibration.from_two_points(1.0, 6.0)


def test_each_shipped_board_names_its_audio_output():
    tedium, dac, jetson, sim = (load_profile(n).audio for n in ("pi-mcp3208", "pi-ads1115", "jetson-orin-nano", "sim"))
    assert (tedium.output, tedium.overlay, tedium.server) == ("wm8731", "rpi-proto", "alsa")
    assert (dac.output, dac.overlay, dac.device_spec) == ("pcm5102a", "hifiberry-dac", "hifiberry")
    assert (jetson.output, jetson.overlay) == ("usb", None)
    assert (sim.output, sim.device_spec, sim.rt_priority) == ("default", None, 0)
    assert tedium.rt_priority == 70


def test_a_jack_server_is_the_profiles_choice_too():
    data = base()
    data["audio"] = {"output": "pcm5102a", "overlay": "hifiberry-dac", "device": "hifiberry", "server": "jack"}
    assert parse_profile(data).audio.device_spec == "jack"


@pytest.mark.parametrize("audio, message", [
    ({"output": "pcm5102"}, "[audio] output must be one of pcm5102a, wm8731, usb, default, not 'pcm5102'"),
    ({"output": "pcm5102a"}, "sits on I2S: name its device-tree overlay"),
    ({"output": "usb", "overlay": "hifiberry-dac"}, "a USB audio interface needs no overlay"),
    ({"output": "wm8731", "overlay": "rpi proto; rm"}, "is not a device-tree overlay name"),
    ({"output": "usb", "server": "pulse"}, "server must be one of alsa, jack"),
    ({"output": "usb", "rt_priority": 99}, "rt_priority must be 0..95"),
    ({"output": "usb", "device": ""}, "device must be part of an output device's name"),
    ({"output": "usb", "period": 128}, "unknown keys ['period']"),
])
def test_audio_output_mistakes_are_named(audio, message):
    data = base()
    data["audio"] = audio
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, "board.toml")
    assert str(caught.value).startswith("board.toml: ")
    assert message in str(caught.value)
