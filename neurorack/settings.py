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
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .engine.controls import DEFAULT_ASSIGNMENTS, CvAssignment
from .errors import NeurorackError
from .fileio import write_json
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

    def to_json(self) -> dict:
        return {
            "sound_a": self.sound_a, "sound_b": self.sound_b, "morph": self.morph,
            "level_db": self.level_db, "voices": self.voices, "model": self.model,
            "cv": {str(n): asdict(a) for n, a in sorted(self.assignments.items())},
            "calibration": {str(n): asdict(c) for n, c in sorted(self.calibration.items())},
            "audio": asdict(self.audio),
        }

    def update(self, data: dict, source: str) -> None:
        """Apply the keys present in `data` (a settings file or run config); others stay."""
        try:
            for key in ("sound_a", "sound_b"):
                if key in data:
                    setattr(self, key, str(data[key]))
            if "morph" in data:
                self.morph = min(1.0, max(0.0, float(data["morph"])))
            if "level_db" in data:
                self.level_db = min(12.0, float(data["level_db"]))
            if "model" in data:
                self.model = None if data["model"] in (None, "", "default") else str(data["model"])
            if "voices" in data:
                self.voices = int(data["voices"])
                if not 1 <= self.voices <= 16:
                    raise ValueError("voices must be 1..16")
            for number, entry in data.get("cv", {}).items():
                self.assignments[int(number)] = CvAssignment(
                    entry["target"], float(entry.get("depth", 1.0)), float(entry.get("offset", 0.0)))
            for number, entry in data.get("calibration", {}).items():
                self.calibration[int(number)] = Calibration(float(entry["scale"]), float(entry["shift"]))
            audio = data.get("audio", {})
            for key in ("sample_rate", "block_size", "channels"):
                if key in audio:
                    setattr(self.audio, key, int(audio[key]))
            if "device" in audio:
                self.audio.device = audio["device"]
            if "cpu" in audio:
                cpu = audio["cpu"]
                if cpu not in ("auto", "off") and not (isinstance(cpu, int) and cpu >= 0):
                    raise ValueError(f"audio cpu must be \"auto\", \"off\" or a core number, not {cpu!r}")
                self.audio.cpu = cpu
        except (KeyError, TypeError, ValueError, AttributeError, NeurorackError) as exc:
            raise NeurorackError(f"{source}: {exc}") from None
        if not 8000 <= self.audio.sample_rate <= 192000 or not 16 <= self.audio.block_size <= 8192:
            raise NeurorackError(f"{source}: sample_rate must be 8000..192000 and block_size 16..8192")


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
    if not path.exists():
        return settings
    try:
        settings.update(json.loads(path.read_text()), path.name)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, NeurorackError) as exc:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
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
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise NeurorackError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeurorackError(f"{path.name}: not valid TOML ({exc})") from None
    return data
