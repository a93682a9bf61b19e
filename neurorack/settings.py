"""What the module remembers per board: calibration, CV assignments, sounds, morph and level.

One JSON file per board in ``$NEURORACK_CONFIG`` or ``$XDG_CONFIG_HOME/neurorack/boards``
(~/.config/neurorack/boards/NAME.json), written atomically. A file that cannot be read is
moved aside (NAME.json.corrupt) with one log line, and the module starts from the defaults:
it keeps playing and the broken file stays for inspection.

A run config (``neurorack run --config FILE``, TOML) uses the same keys and overrides them
for that run, plus an [audio] table:

    sound_a = "snap"
    level_db = -6
    [audio]
    device = "default"
    sample_rate = 48000
    block_size = 128
    cpu = "auto"          # the audio process's core: "auto" (the last), "off", or a number
    [cv.2]
    target = "brightness"
    depth = 0.5
    [midi]                # engine/midi.py says what each means
    port = "all"          # "all", "off", "virtual", or (part of) a port's name
    channel = "omni"      # or 1..16
    root = 60             # the note that plays a sound at its own pitch
    takeover = "pickup"   # or "follow"
    [midi.cc.74]          # a CC drives a target ...
    target = "brightness"
    [midi.cc.21]          # ... or acts as a CV input ("off": no longer mapped)
    cv = 1
"""
from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .engine.controls import DEFAULT_ASSIGNMENTS, CvAssignment
from .engine.midi import CcMapping, MidiConfig
from .errors import NeurorackError
from .fileio import read_json, remove_stale_temps, set_aside, write_json
from .hal.cv import Calibration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)


@dataclass
class AudioSettings:
    device: str | int | None = None  # None: the system default
    sample_rate: int = 48000
    block_size: int = 128
    channels: int = 2
    cpu: str | int = "auto"  # the core the audio process runs on: "auto", "off" or a number (engine/cpus.py)


@dataclass
class Settings:
    sound_a: str = "snap"
    sound_b: str = "sub boom"
    morph: float = 0.5
    level_db: float = -6.0
    voices: int = 4
    model: str | None = None  # a folder name under the models folder, or a path; None: the shipped default
    assignments: dict[int, CvAssignment] = field(default_factory=lambda: dict(DEFAULT_ASSIGNMENTS))
    calibration: dict[int, Calibration] = field(default_factory=dict)
    audio: AudioSettings = field(default_factory=AudioSettings)
    midi: MidiConfig = field(default_factory=MidiConfig)

    def to_json(self) -> dict:
        return {
            "sound_a": self.sound_a, "sound_b": self.sound_b, "morph": self.morph,
            "level_db": self.level_db, "voices": self.voices, "model": self.model,
            "cv": {str(n): asdict(a) for n, a in sorted(self.assignments.items())},
            "calibration": {str(n): asdict(c) for n, c in sorted(self.calibration.items())},
            "audio": asdict(self.audio),
            "midi": {**{k: v for k, v in asdict(self.midi).items() if k != "cc"},
                     "cc": {str(n): {k: v for k, v in asdict(m).items() if v is not None}
                            for n, m in sorted(self.midi.cc.items())}},
        }

    def update(self, data: dict, source: str, strict: bool = True) -> None:
        """Apply the keys present in `data` (a settings file or run config); others stay.
        Every value is checked (type, finite, range); an unknown key is an error where a person
        wrote the file (`strict`, a run config) and one line where a program did (a newer version)."""
        try:
            _table(data, "the file")
            _check_keys(data, KEYS, "", strict)
            for key in ("sound_a", "sound_b"):
                if key in data:
                    setattr(self, key, _text(data[key], key))
            if "morph" in data:
                self.morph = min(1.0, max(0.0, _number(data["morph"], "morph")))
            if "level_db" in data:
                self.level_db = min(12.0, max(-80.0, _number(data["level_db"], "level_db")))
            if "model" in data:
                model = data["model"]
                self.model = None if model in (None, "", "default") else _text(model, "model")
            if "voices" in data:
                self.voices = _integer(data["voices"], "voices", 1, 16)
            for number, entry in _table(data.get("cv", {}), "cv").items():
                where = f"cv.{number}"
                _check_keys(_table(entry, where), ("target", "depth", "offset"), where + ".", True)
                self.assignments[_input(number, "cv")] = CvAssignment(
                    _text(entry.get("target"), where + ".target"), _number(entry.get("depth", 1.0), where + ".depth"),
                    _number(entry.get("offset", 0.0), where + ".offset"))
            for number, entry in _table(data.get("calibration", {}), "calibration").items():
                where = f"calibration.{number}"
                _check_keys(_table(entry, where), ("scale", "shift"), where + ".", True)
                try:
                    self.calibration[_input(number, "calibration")] = Calibration(
                        _number(entry.get("scale"), where + ".scale"), _number(entry.get("shift"), where + ".shift"))
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
            audio = _table(data.get("audio", {}), "audio")
            _check_keys(audio, AUDIO_KEYS, "audio.", strict)
            for key, low, high in (("sample_rate", 8000, 192000), ("block_size", 16, 8192), ("channels", 1, 8)):
                if key in audio:
                    setattr(self.audio, key, _integer(audio[key], f"audio.{key}", low, high))
            if "device" in audio:
                device = audio["device"]
                if device is not None and not isinstance(device, (str, int)) or isinstance(device, bool):
                    raise ValueError(f"audio.device must be a name or an index, not {device!r}")
                self.audio.device = device
            if "cpu" in audio:
                cpu = audio["cpu"]
                if cpu not in ("auto", "off") and not (isinstance(cpu, int) and not isinstance(cpu, bool) and cpu >= 0):
                    raise ValueError(f"audio cpu must be \"auto\", \"off\" or a core number, not {cpu!r}")
                self.audio.cpu = cpu
            if "midi" in data:
                self.midi = _midi(self.midi, _table(data["midi"], "midi"), strict)
        except (KeyError, TypeError, ValueError, AttributeError, NeurorackError) as exc:
            raise NeurorackError(f"{source}: {exc}") from None


KEYS = ("sound_a", "sound_b", "morph", "level_db", "voices", "model", "cv", "calibration", "audio", "midi")
AUDIO_KEYS = ("device", "sample_rate", "block_size", "channels", "cpu")
MIDI_KEYS = ("port", "api", "channel", "root", "split", "gate2_channel", "velocity", "takeover", "cc")


def _midi(midi: MidiConfig, table: dict, strict: bool) -> MidiConfig:
    """`midi` with the keys of `table` applied; MidiConfig checks the values (one-line errors)."""
    _check_keys(table, MIDI_KEYS, "midi.", strict)
    changes = {k: table[k] for k in MIDI_KEYS if k in table and k != "cc"}
    for key in ("split", "gate2_channel"):
        if changes.get(key, 0) in ("off", "none"):
            changes[key] = None
    cc = dict(midi.cc)
    for number, entry in _table(table.get("cc", {}), "midi.cc").items():
        where = f"midi.cc.{number}"
        text = str(number)
        if not (text.isascii() and text.isdigit() and 0 <= int(text) <= 127):
            raise ValueError(f"{where}: {number!r:.20} is not a controller number 0..127")
        if entry == "off":
            cc.pop(int(text), None)
            continue
        _check_keys(_table(entry, where), ("cv", "target", "depth", "offset"), where + ".", True)
        try:
            cc[int(text)] = CcMapping(
                cv=_integer(entry["cv"], where + ".cv", 1, 64) if "cv" in entry else None,
                target=_text(entry["target"], where + ".target") if "target" in entry else None,
                depth=_number(entry.get("depth", 1.0), where + ".depth"),
                offset=_number(entry.get("offset", 0.0), where + ".offset"))
        except NeurorackError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return replace(midi, **changes, cc=cc)


def _check_keys(table: dict, known, prefix: str, strict: bool) -> None:
    unknown = [k for k in table if k not in known]
    if unknown and strict:
        raise ValueError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(known)})")
    for key in unknown:
        log.warning("settings: ignoring unknown key %s%s (from another version?)", prefix, key)


def _table(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a table (an object of keys), not {type(value).__name__}")
    return value


def _text(value, key: str) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise ValueError(f"{key} must be text, not {value!r:.40}")
    return value


def _number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, not {value!r:.40}")
    return float(value)


def _integer(value, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key} must be a whole number {low}..{high}, not {value!r:.40}")
    return value


def _input(number, key: str) -> int:
    """A CV input number: a table key ("2") in TOML and JSON."""
    text = str(number)
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 64):
        raise ValueError(f"{key}: {number!r:.20} is not an input number 1..64")
    return int(text)


def settings_dir() -> Path:
    if os.environ.get("NEURORACK_CONFIG"):
        return Path(os.environ["NEURORACK_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or (Path.home() / ".config")
    return Path(base) / "neurorack" / "boards"


def settings_path(board: str) -> Path:
    return settings_dir() / f"{board}.json"


def load_settings(board: str) -> Settings:
    """The board's stored settings, or the defaults (a corrupt file is moved aside, not lost)."""
    settings = Settings()
    path = settings_path(board)
    remove_stale_temps(path.parent, path.name)
    if not path.exists():
        return settings
    try:
        settings.update(read_json(path, "a settings file"), path.name, strict=False)
    except NeurorackError as exc:
        try:
            aside = set_aside(path)
        except OSError as move:
            log.error("settings file %s is unreadable (%s) and cannot be moved aside (%s); starting from defaults",
                      path, exc, move.strerror)
            return Settings()
        log.error("settings file %s is unreadable (%s); moved to %s, starting from defaults", path, exc, aside.name)
        return Settings()
    return settings


def save_settings(board: str, settings: Settings) -> Path:
    path = settings_path(board)
    write_json(path, settings.to_json())
    return path


def load_run_config(path) -> dict:
    path = Path(path)
    try:
        if path.is_dir():
            raise NeurorackError(f"config {path} is a folder, not a TOML file")
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise NeurorackError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeurorackError(f"{path.name}: not valid TOML ({exc})") from None
    except RecursionError:
        raise NeurorackError(f"{path.name}: nested too deeply") from None
    return data
