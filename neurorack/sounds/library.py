"""The sound library: factory sounds shipped in the package, user sounds in a data folder.

Each sound is one JSON file (the analyse format, plus "name" and "meta"), written atomically:
a power cut leaves every file either as it was or as it became. A file that cannot be read is
set aside with one line naming the file and the field (it stays on disk, untouched), so one
bad file never takes the library down. The folders are read once; the library's own writes
keep that copy current, and ``reload()`` picks up changes that another process made.

A sound's identity is its name, compared without regard to case (Unicode case folding, NFC):
"Big Hit" and "big hit" are one sound, "Big Hit" and "big_hit" two. A new sound's file is
named by a readable ASCII slug plus a hash of its identity (``big-hit-3f2a9c1d0e.json``), so
two different names never share a file, and names in any script ("日本の音", "Ωμέγα") work.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .. import descriptors as D
from ..errors import NeurorackError
from ..fileio import read_json, remove_stale_temps, write_json

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


def check_name(name, new: bool = False) -> str:
    """A valid name, normalised. A `new` name (one being saved) also may not hold a backslash
    or '..', which read like a path; names already on disk keep the rule they were saved under."""
    if not isinstance(name, str):
        raise NeurorackError(f"a sound name must be text, not {type(name).__name__}")
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        raise NeurorackError("a sound name cannot be empty")
    if len(name) > MAX_NAME or not name.isprintable() or "/" in name:
        raise NeurorackError(f"a sound name must be 1 to {MAX_NAME} printable characters without '/': {name!r}")
    if new and ("\\" in name or ".." in name):
        raise NeurorackError(f"a sound name cannot hold '\\' or '..' (they read like a path): {name!r}")
    return name


def name_key(name: str) -> str:
    """What makes two names the same sound."""
    return unicodedata.normalize("NFC", name.strip()).casefold()


def slug(name: str) -> str:
    """The name in ASCII letters, digits and dashes, to read (several names share one)."""
    ascii_ = unicodedata.normalize("NFKD", name_key(name)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_).strip("-")[:MAX_NAME] or "sound"


def file_stem(name: str) -> str:
    """A file name no other name shares: the slug to read, a hash of the identity to differ."""
    return f"{slug(name)}-{hashlib.sha256(name_key(name).encode()).hexdigest()[:10]}"


def sound_from_json(obj, path: Path, factory: bool) -> Sound:
    """One library file's contents; NeurorackError naming the field that is wrong."""
    if not isinstance(obj, dict):
        raise NeurorackError("expected a JSON object")
    if "name" not in obj:
        raise NeurorackError("field 'name' is missing")
    try:
        name = check_name(obj["name"])
    except NeurorackError as exc:
        raise NeurorackError(f"field 'name': {exc}") from None
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise NeurorackError(f"field 'meta' must be an object, not {type(meta).__name__}")
    return Sound(name, D.trajectory_from_json(obj, "descriptors"), meta, factory, path)


class SoundLibrary:
    def __init__(self, user_dir=None, factory_dir=FACTORY_DIR):
        self.user_dir = Path(user_dir) if user_dir else default_library_dir()
        self.factory_dir = Path(factory_dir)
        self._by_name: dict[str, Sound] | None = None  # name_key -> sound

    def _read_folder(self, folder: Path, factory: bool) -> dict[str, Sound]:
        sounds: dict[str, Sound] = {}
        if not folder.is_dir():
            return sounds
        if not factory:
            remove_stale_temps(folder)  # left by writes a power cut interrupted
        for path in sorted(folder.glob("*.json")):
            try:
                sound = sound_from_json(read_json(path, "a sound file"), path, factory)
            except NeurorackError as exc:
                log.warning("sound file %s set aside: %s", path.name, str(exc).replace(f"{path}: ", ""))
                continue
            key = name_key(sound.name)
            if key in sounds:
                log.warning("sound file %s set aside: %s already holds the sound %r",
                            path.name, sounds[key].path.name, sound.name)
                continue
            sounds[key] = sound
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
        return sorted(self._sounds().values(), key=lambda s: (not s.factory, name_key(s.name)))

    def get(self, name: str) -> Sound:
        sound = self._sounds().get(name_key(name)) if isinstance(name, str) else None
        if sound is None:
            raise NeurorackError(f"no sound named {name!r}")
        return sound

    def check_new(self, name, replace: bool = False) -> str:
        """The name, normalised, if a new sound may take it (before any work is spent on it)."""
        name = check_name(name, new=True)
        existing = self._sounds().get(name_key(name))
        if existing and not replace:
            kind = "a factory sound" if existing.factory else "a sound"
            raise NeurorackError(f"{kind} named {existing.name!r} exists; choose another name"
                                 + ("" if existing.factory else " (or replace it)"))
        return name

    def free_name(self, base: str) -> str:
        """`base`, or `base 2`, `base 3`, ... : the first name no sound has (cut to fit MAX_NAME)."""
        base = unicodedata.normalize("NFC", str(base).replace("/", " ").replace("\\", " ")).strip()
        while ".." in base:
            base = base.replace("..", ".")
        base = base[:MAX_NAME].strip() or "Sound"
        taken = self._sounds()
        if name_key(base) not in taken:
            return base
        for n in range(2, 10_000):
            suffix = f" {n}"
            name = base[:MAX_NAME - len(suffix)].rstrip() + suffix
            if name_key(name) not in taken:
                return name
        raise NeurorackError(f"no free name like {base!r}")

    def add(self, name: str, trajectory: D.Trajectory, meta: dict | None = None, replace: bool = False) -> Sound:
        """Write a user sound. A name that exists (any case; a factory sound's too) is refused
        unless `replace`: then a user sound of that name is overwritten, a factory one shadowed.
        The write is atomic: a full disk or a power cut leaves the library as it was."""
        name = self.check_new(name, replace)
        sounds = self._sounds()
        existing = sounds.get(name_key(name))
        path = existing.path if existing and not existing.factory else self.user_dir / f"{file_stem(name)}.json"
        sound = Sound(name, trajectory, meta or {}, False, path)
        write_json(path, sound.to_json())
        for key in [k for k, other in sounds.items() if other.path == path]:
            del sounds[key]  # whatever that file held before is gone
        sounds[name_key(name)] = sound
        return sound

    def remove(self, name: str) -> None:
        sound = self.get(name)
        if sound.factory:
            raise NeurorackError(f"{sound.name!r} is a factory sound and cannot be removed")
        sound.path.unlink()
        self.reload()  # a factory sound it replaced comes back

    def export(self, name: str, path) -> None:
        write_json(path, self.get(name).to_json())
