"""Reading audio, and atomic writes for every file that matters.

An atomic write goes to a temporary file in the destination folder, is flushed
to disk, then renamed over the destination: a power cut leaves either the old
file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from .errors import AudioFileError, NeurorackError

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")
STALE_TMP_S = 600.0  # a temporary file this old was left by an interrupted write
MAX_JSON_BYTES = 32 << 20  # a settings, sound or descriptor file is a few KB; refuse the absurd


def _read_umask() -> int:
    # Read once, at import: os.umask can only be read by setting it, which races with threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    _make_folders(path.parent)
    remove_stale_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file private (0600); give it the mode a plain open() would have.
    os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _make_folders(folder: Path) -> None:
    """mkdir -p, with each new folder's entry synced into its parent (a power cut keeps it)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            new.mkdir()
        _fsync_dir(new.parent)


def remove_stale_temps(folder: Path, name: str = "*") -> int:
    """Delete temporary files that interrupted atomic writes of `name` (all: "*") left in
    `folder`, once they are STALE_TMP_S old (a write in progress elsewhere is younger)."""
    removed = 0
    now = time.time()
    with contextlib.suppress(OSError):
        for tmp in folder.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime >= STALE_TMP_S:
                    tmp.unlink()
                    removed += 1
    return removed


def check_output(path: str | os.PathLike, folder: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: a folder where a file goes
    (or a file where a folder goes), a path under a file, or a place without write access."""
    path = Path(path)
    if not folder and path.is_dir():
        raise NeurorackError(f"cannot write {path}: it is a folder")
    if folder and path.exists() and not path.is_dir():
        raise NeurorackError(f"cannot write into {path}: it is a file, not a folder")
    ancestor = path if folder and path.is_dir() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NeurorackError(f"cannot write {path}: {ancestor} is a file, not a folder")
    try:  # a real probe: access() says yes to root on a read-only filesystem
        fd, probe = tempfile.mkstemp(prefix=".neurorack-probe.", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise NeurorackError(f"cannot write {path}: {ancestor}: {exc.strerror}") from None
    return path


def set_aside(path: Path) -> Path:
    """Rename a file that failed validation to NAME.corrupt (NAME.corrupt.2, ... when that is
    taken: an earlier one kept aside is never overwritten); returns the new path."""
    for n in range(1, 1000):
        aside = path.with_name(path.name + (".corrupt" if n == 1 else f".corrupt.{n}"))
        if not aside.exists():
            os.rename(path, aside)
            _fsync_dir(path.parent)
            return aside
    raise OSError(0, f"{path}: 999 files already set aside")


def read_json(path: str | os.PathLike, what: str = "file"):
    """A JSON file's value, or NeurorackError naming the file: unreadable, over
    MAX_JSON_BYTES, not UTF-8, not JSON, or nested too deeply. NaN/Infinity are refused."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise NeurorackError(f"{path}: {what} is over {MAX_JSON_BYTES >> 20} MB")
        text = path.read_text(encoding="utf-8")
        return json.loads(text, parse_constant=_no_constants)
    except OSError as exc:
        raise NeurorackError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise NeurorackError(f"{path}: {what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise NeurorackError(f"{path}: {what} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise NeurorackError(f"{path}: {what} is nested too deeply") from None
    except ValueError as exc:  # _no_constants
        raise NeurorackError(f"{path}: {what}: {exc}") from None


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _fsync_dir(folder: Path) -> None:
    # The rename itself lives in the directory entry; sync it so it survives a power cut.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=1)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio as a 24-bit WAV, atomically. Refuses non-finite audio."""
    import soundfile as sf

    audio = np.asarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(audio)):
        raise AudioFileError(f"refusing to write {path}: the audio holds NaN or infinite samples")
    with atomic_open(path, "wb") as f:
        sf.write(f, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_24")


def read_audio(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 (channels averaged). Raises AudioFileError, also for
    a file longer than `max_seconds`, before reading it (memory stays bounded)."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"no such file: {path}")
    if path.is_dir():
        raise AudioFileError(f"{path} is a folder, not an audio file")
    try:
        if max_seconds is not None:
            info = sf.info(str(path))
            if info.frames > max_seconds * info.samplerate:
                raise AudioFileError(f"{path} is {info.frames / info.samplerate:.0f} s long; neurorack analyses "
                                     f"at most {max_seconds:g} s (trim it to the impact)")
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except AudioFileError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioFileError(f"{path} is not a readable audio file ({_first_line(exc)})") from None
    if audio.shape[0] == 0:
        raise AudioFileError(f"{path} holds no audio samples")
    mono = audio.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise AudioFileError(f"{path} holds NaN or infinite samples")
    return mono, int(sr)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (libsoxr); a no-op when the rates match."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
