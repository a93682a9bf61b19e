"""A sound file a browser sent (the virtual panel's drop) imported into the library.

It is the import `neurorack sounds import` does, run as that command in a child process at a
low priority: the analysis and the scoring render never take the audio process's time, its
GIL or its memory, the checks are the command's (not audio, empty, silent, over 30 s, a name
taken or reading like a path, a full disk) and a failure is the command's one line.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import NeurorackError
from ..fileio import AUDIO_SUFFIXES

MAX_UPLOAD = 16 << 20  # bytes: 30 s of 48 kHz stereo float WAV is 11.5 MB
IMPORT_TIMEOUT_S = 300.0  # a 30 s sample on a Pi: analysis, a render and its score
CHILD_NICE = 10  # below the module's own processes


def import_upload(data: bytes, name: str, filename: str, library_dir, model=None) -> list[str]:
    """Import `data` (the file's bytes, named `filename` by the browser) as the sound `name`;
    the lines the import printed (added, its score, a warning). NeurorackError: one line."""
    shown = Path(filename or "").name or "the file"
    suffix = Path(shown).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise NeurorackError(f"{shown}: neurorack imports {', '.join(s[1:].upper() for s in AUDIO_SUFFIXES)} files")
    if not data:
        raise NeurorackError(f"{shown} is empty")
    if len(data) > MAX_UPLOAD:
        raise NeurorackError(f"{shown} is {len(data) / 2 ** 20:.1f} MB; a dropped file is at most "
                             f"{MAX_UPLOAD >> 20} MB (30 s of audio is enough for an impact)")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(shown).stem).strip(".-")[:60] or "sample"
    with tempfile.TemporaryDirectory(prefix="neurorack-import-") as folder:
        path = Path(folder) / f"{stem}{suffix}"
        path.write_bytes(data)
        command = [sys.executable, "-m", "neurorack.cli", "sounds", "--library", str(library_dir),
                   "import", str(path), "--name", name]
        if model:
            command += ["--model", str(model)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, child.pid, CHILD_NICE)
        try:
            out, err = child.communicate(timeout=IMPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise NeurorackError(f"the import of {shown} took over {IMPORT_TIMEOUT_S:.0f} s and was stopped; "
                                 f"nothing was saved") from None
    err = err.replace(str(path), shown)
    if child.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        message = lines[-1] if lines else f"the import failed (exit {child.returncode})"
        raise NeurorackError(message.removeprefix("neurorack: error: "))
    return [line for line in (out + err).splitlines() if line.strip()]
