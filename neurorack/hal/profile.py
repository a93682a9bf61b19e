"""Board profiles: hardware/NAME.toml, validated once, with one clear line per mistake."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..assets import asset_dir
from ..errors import NeurorackError
from .cv import RANGES, CvInput
from .gates import JACKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ADC_CHIPS = {"mcp3008": 8, "mcp3208": 8, "ads1015": 4, "ads1115": 4, "sim": 8}  # chip -> channels
GPIO_BACKENDS = ("rpi", "jetson", "sim")
DISPLAYS = ("ssd1306", "sh1106", "ssd1309", "ssd1322", "none")
# Audio outputs a board profile can name -> (what it is, whether it sits on I2S and so needs a
# device-tree overlay on a Pi). "default": the system's default output (desktop, sim board).
AUDIO_OUTPUTS = {
    "pcm5102a": ("PCM5102A I2S DAC", True),
    "wm8731": ("WM8731 I2S codec", True),
    "usb": ("USB audio interface", False),
    "default": ("the system's default output", False),
}
AUDIO_SERVERS = ("alsa", "jack")


class ProfileError(NeurorackError):
    """A board profile is missing, malformed or contradicts itself."""


@dataclass(frozen=True)
class AdcGateSpec:
    """A gate read on an ADC channel: module volts = (v_adc - offset) * gain; on above
    `on_volts`, off below `off_volts` (hysteresis, so a slow or noisy edge fires once)."""

    number: int
    channel: int
    gain: float = 1.0
    offset: float = 0.0
    on_volts: float = 2.0
    off_volts: float = 1.0


@dataclass(frozen=True)
class AudioOutputSpec:
    """The profile's [audio] table: the output hardware, its overlay, the ALSA device and how
    to reach it. Plain ALSA (sounddevice straight on the hardware device, 128-frame periods) is
    the module's default; "jack" plays through a running JACK server instead."""

    output: str = "default"
    overlay: str | None = None  # device-tree overlay (Pi: dtoverlay= in config.txt)
    device: str | None = None  # part of the output device's name (PortAudio's ALSA names), None: default
    server: str = "alsa"
    rt_priority: int = 70  # SCHED_FIFO priority the audio thread raises itself to; 0: leave it

    @property
    def device_spec(self) -> str | None:
        """What engine.audio.resolve_device takes for this output."""
        return "jack" if self.server == "jack" else self.device


@dataclass(frozen=True)
class BoardProfile:
    name: str
    gpio: str
    adc: dict
    cv: tuple[CvInput, ...]
    gates: dict[int, int]  # gate number -> GPIO pin (BCM numbering on a Pi, BOARD on a Jetson)
    adc_gates: dict = field(default_factory=dict)  # gate number -> AdcGateSpec (gates read on an ADC channel)
    encoder: dict = field(default_factory=dict)
    display: dict = field(default_factory=dict)
    source: str = ""
    audio: AudioOutputSpec = field(default_factory=AudioOutputSpec)
    model_backend: str = "auto"  # [model] backend: the inference backend's name (checked where it is opened)


def hardware_dir() -> Path:
    """$NEURORACK_HARDWARE, the checkout's hardware/ folder, or the installed copy."""
    return asset_dir("hardware", "NEURORACK_HARDWARE")


def available_profiles() -> list[str]:
    return sorted(p.stem for p in hardware_dir().glob("*.toml"))


def load_profile(name_or_path: str) -> BoardProfile:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = hardware_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise ProfileError(f"no board profile {name_or_path!r}; available: {', '.join(available_profiles())}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path.name}: not valid TOML ({exc})") from None
    except (OSError, RecursionError) as exc:
        raise ProfileError(f"{path.name}: cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    return parse_profile(data, path.name)


def parse_profile(data: dict, source: str = "profile") -> BoardProfile:
    """Validate a profile's tables; any mistake (a wrong type included) is one ProfileError."""
    try:
        return _parse_profile(data, source)
    except ProfileError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ProfileError(f"{source}: a value has the wrong type or form ({type(exc).__name__}: {exc})") from None


def _number(value, what: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{source}: {what} must be a finite number, not {value!r:.40}")
    return float(value)


def _parse_profile(data: dict, source: str) -> BoardProfile:
    def fail(message):
        raise ProfileError(f"{source}: {message}")

    gpio = data.get("gpio", "sim")
    if gpio not in GPIO_BACKENDS:
        fail(f"gpio must be one of {', '.join(GPIO_BACKENDS)}, not {gpio!r}")
    adc = dict(data.get("adc", {}))
    chip = adc.get("chip")
    if chip not in ADC_CHIPS:
        fail(f"unknown ADC chip {chip!r}; known: {', '.join(ADC_CHIPS)}")

    cvs, seen_inputs, seen_channels = [], set(), {}
    for entry in data.get("cv", []):
        number, channel = entry.get("input"), entry.get("channel")
        if number in seen_inputs:
            fail(f"CV input {number} is defined twice")
        if not isinstance(channel, int) or not 0 <= channel < ADC_CHIPS[chip]:
            fail(f"CV input {number}: channel {channel!r} outside 0..{ADC_CHIPS[chip] - 1} of the {chip}")
        if channel in seen_channels:
            fail(f"ADC channel {channel} is used by CV inputs {seen_channels[channel]} and {number}")
        rng = entry.get("range", "bipolar")
        if rng not in RANGES:
            fail(f"CV input {number}: range must be one of {', '.join(RANGES)}")
        seen_inputs.add(number)
        seen_channels[channel] = number
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 64:
            fail(f"CV input number {number!r} is not 1..64")
        cvs.append(CvInput(number, channel, _number(entry.get("gain", 1.0), f"CV input {number}: gain", source),
                           _number(entry.get("offset", 0.0), f"CV input {number}: offset", source), rng))

    pins: dict[int, str] = {}

    def claim(pin, what):
        if not isinstance(pin, int) or pin < 0:
            fail(f"{what}: pin {pin!r} is not a GPIO number")
        if pin in pins:
            fail(f"pin {pin} is used twice ({pins[pin]} and {what})")
        pins[pin] = what

    gates, adc_gates = {}, {}
    for entry in data.get("gate", []):
        number = entry.get("input")
        if isinstance(number, bool) or not isinstance(number, int) or number not in JACKS:
            fail(f"gate input number {number!r} is not {' or '.join(str(int(g)) for g in JACKS)} "
                 f"(gate 1 fires an impact, gate 2 the morph)")
        if number in gates or number in adc_gates:
            fail(f"gate {number} is defined twice")
        if "channel" in entry:  # a gate on an ADC channel, with Schmitt thresholds
            channel = entry["channel"]
            if not isinstance(channel, int) or not 0 <= channel < ADC_CHIPS[chip]:
                fail(f"gate {number}: channel {channel!r} outside 0..{ADC_CHIPS[chip] - 1} of the {chip}")
            if channel in seen_channels:
                fail(f"ADC channel {channel} is used by CV input {seen_channels[channel]} and gate {number}")
            spec = AdcGateSpec(number, channel, *(_number(entry.get(key, default), f"gate {number}: {key}", source)
                                                  for key, default in (("gain", 1.0), ("offset", 0.0),
                                                                       ("on_volts", 2.0), ("off_volts", 1.0))))
            if spec.off_volts >= spec.on_volts:
                fail(f"gate {number}: off_volts must be below on_volts (the Schmitt hysteresis)")
            seen_channels[channel] = f"gate {number}"
            adc_gates[number] = spec
            continue
        claim(entry.get("pin"), f"gate {number}")
        gates[number] = entry["pin"]
    encoder = dict(data.get("encoder", {}))
    for key in ("a", "b", "button"):
        if key in encoder:
            claim(encoder[key], f"encoder {key}")
    display = dict(data.get("display", {"driver": "none"}))
    if display.get("driver", "none") not in DISPLAYS:
        fail(f"unknown display {display.get('driver')!r}; known: {', '.join(DISPLAYS)}")
    model = data.get("model", {})
    backend = model.get("backend", "auto") if isinstance(model, dict) else None
    if not isinstance(backend, str):
        fail("[model] backend must be a backend's name, e.g. \"onnx\"")
    return BoardProfile(data.get("name", source), gpio, adc, tuple(cvs), gates, adc_gates, encoder, display, source,
                        parse_audio_output(data.get("audio", {}), gpio, fail), backend)


def parse_audio_output(table: dict, gpio: str, fail) -> AudioOutputSpec:
    """The [audio] table (output, overlay, device, server, rt_priority), checked."""
    known = {"output", "overlay", "device", "server", "rt_priority"}
    if not isinstance(table, dict):
        fail("[audio] must be a table")
    if set(table) - known:
        fail(f"[audio] has unknown keys {sorted(set(table) - known)}; known: {', '.join(sorted(known))}")
    output = table.get("output", "default")
    if output not in AUDIO_OUTPUTS:
        fail(f"[audio] output must be one of {', '.join(AUDIO_OUTPUTS)}, not {output!r}")
    what, on_i2s = AUDIO_OUTPUTS[output]
    overlay = table.get("overlay")
    if overlay is not None and not (isinstance(overlay, str) and overlay.replace("-", "").replace("_", "").isalnum()):
        fail(f"[audio] overlay {overlay!r} is not a device-tree overlay name (like \"hifiberry-dac\")")
    if on_i2s and gpio == "rpi" and not overlay:
        fail(f"[audio] the {what} sits on I2S: name its device-tree overlay (overlay = ...)")
    if overlay and not on_i2s:
        fail(f"[audio] a {what} needs no overlay; remove overlay = {overlay!r}")
    device = table.get("device")
    if device is not None and (not isinstance(device, str) or not device.strip()):
        fail(f"[audio] device must be part of an output device's name, not {device!r}")
    server = table.get("server", "alsa")
    if server not in AUDIO_SERVERS:
        fail(f"[audio] server must be one of {', '.join(AUDIO_SERVERS)}, not {server!r}")
    priority = table.get("rt_priority", 70)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 95:
        fail(f"[audio] rt_priority must be 0..95 (the unit's LimitRTPRIO), not {priority!r}")
    return AudioOutputSpec(output, overlay, device, server, priority)
