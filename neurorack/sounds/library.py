"""The sound library: factory sounds shipped in the package, user sounds in a data folder.

Each sound is one JSON file (the analyse format, plus "name" and "meta"), written atomically:
a power cut leaves every file either as it was or as it became. A file that cannot be read is
skipped with a warning, so one bad file never takes the library down. The folders are read
once; the library's own writes keep that copy current, and ``reload()`` picks up changes that
another process made.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import descriptors as D
from ..errors import NeurorackError
from ..fileio import write_json

log = logging.getLogger(__name__)
FACTORY_DIR = Path(__file__).parent / "factory"
MAX_NAME = 24  # what the 128-pixel OLED shows in one line


@dataclass
class Sound:
    name: str
    trajectory: D.Trajectory
    meta: dict = field(default_factory=dict)
    factory: bool = False
    path: Path | None = None  # the file it was read from

    def to_json(self) -> dict:
        return {"name": self.name, "meta": self.meta, **self.trajectory.to_json(48000)}


def default_library_dir() -> Path:
    """$NEURORACK_SOUNDS, else $XDG_DATA_HOME/neurorack/sounds (~/.local/share/neurorack/sounds)."""
    if os.environ.get("NEURORACK_SOUNDS"):
        return Path(os.environ["NEURORACK_SOUNDS"])
    base = os.environ.get("XDG_DATA_HOME") or (Path.home() / ".local" / "share")
    return Path(base) / "neurorack" / "sounds"


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable() or "/" in name:
        raise NeurorackError(f"a sound name must be 1 to {MAX_NAME} printable characters without '/': {name!r}")
    return name


def file_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "sound"


class SoundLibrary:
    def __init__(self, user_dir=None, factory_dir=FACTORY_DIR):
        self.user_dir = Path(user_dir) if user_dir else default_library_dir()
        self.factory_dir = Path(factory_dir)
        self._by_name: dict[str, Sound] | None = None  # lower-cased name -> sound

    def _read_folder(self, folder: Path, factory: bool) -> dict[str, Sound]:
        sounds = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                obj = json.loads(path.read_text())
                name = check_name(obj["name"])
                sounds[name.lower()] = Sound(name, D.trajectory_from_json(obj, str(path)), obj.get("meta", {}), factory, path)
            except (OSError, ValueError, KeyError, TypeError, NeurorackError) as exc:
                log.warning("skipping unreadable sound file %s (%s)", path.name, exc)
        return sounds

    def _sounds(self) -> dict[str, Sound]:
        if self._by_name is None:
            # Factory sounds first; a user sound of the same name replaces a factory one.
            self._by_name = self._read_folder(self.factory_dir, True)
            self._by_name.update(self._read_folder(self.user_dir, False))
        return self._by_name

    def reload(self) -> None:
        self._by_name = None

    def sounds(self) -> list[Sound]:
        """Factory sounds, then the user's, each in name order."""
        return sorted(self._sounds().values(), key=lambda s: (not s.factory, s.name.lower()))

    def get(self, name: str) -> Sound:
        sound = self._sounds().get(name.strip().lower())
        if sound is None:
            raise NeurorackError(f"no sound named {name!r}")
        return sound

    def add(self, name: str, trajectory: D.Trajectory, meta: dict | None = None) -> Sound:
        """Write a user sound; one of the same name (any case) is replaced."""
        name = check_name(name)
        sounds = self._sounds()
        existing = sounds.get(name.lower())
        path = existing.path if existing and not existing.factory else self.user_dir / f"{file_stem(name)}.json"
        sound = Sound(name, trajectory, meta or {}, False, path)
        write_json(path, sound.to_json())
        for key in [k for k, other in sounds.items() if other.path == path]:
            del sounds[key]  # whatever that file held before is gone
        sounds[name.lower()] = sound
        return sound

    def remove(self, name: str) -> None:
        sound = self.get(name)
        if sound.factory:
            raise NeurorackError(f"{sound.name!r} is a factory sound and cannot be removed")
        sound.path.unlink()
        self.reload()  # a factory sound it replaced comes back

    def export(self, name: str, path) -> None:
        write_json(path, self.get(name).to_json())
