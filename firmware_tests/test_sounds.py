import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from neurorack import descriptors as D
from neurorack.errors import NeurorackError
from neurorack.sounds.library import SoundLibrary
from neurorack.sounds.morph import morph, onset_frame


def trajectory(onset: int, frames: int, pitch: float, bright: float) -> D.Trajectory:
    c = np.zeros((frames, 7), np.float32)
    c[onset:, 0] = np.linspace(0.9, 0.2, frames - onset)
    c[:, 5], c[:, 6], c[:, 3] = bright, pitch, 0.5
    return D.Trajectory(c, np.full(D.TIMBRE_BANDS, pitch, np.float32))


def test_morph_aligns_onsets_and_interpolates():
    a, b = trajectory(5, 100, pitch=0.2, bright=0.3), trajectory(20, 150, pitch=0.6, bright=0.7)
    assert onset_frame(a) == 5 and onset_frame(b) == 20
    half = morph(a, b, 0.5)
    assert onset_frame(half) == 20 and half.n_frames == 150
    assert half.curves[20, 0] == pytest.approx(0.9)  # both attacks land on the same frame
    assert np.allclose(half.curves[:, 6], 0.4) and np.allclose(half.timbre, 0.4)
    assert np.allclose(morph(a, b, 0.0).curves[15:115], a.curves)  # a, delayed to the common onset
    assert np.allclose(morph(a, b, 1.0).curves, b.curves)
    assert np.allclose(morph(a, b, 7.0).curves, b.curves) and np.allclose(morph(a, b, float("nan")).curves[15:115], a.curves)


def test_library_add_list_export_remove(tmp_path):
    lib = SoundLibrary(tmp_path / "user")
    factory = [s.name for s in lib.sounds() if s.factory]
    assert len(factory) == 8 and "Sub Boom" in factory
    lib.add("My Hit", trajectory(3, 50, 0.5, 0.5), {"source": "test"})
    assert lib.get("my hit").meta == {"source": "test"}
    lib.add("MY HIT", trajectory(3, 60, 0.5, 0.5))  # same name, any case: replaced
    assert lib.get("My Hit").trajectory.n_frames == 60 and len([s for s in lib.sounds() if not s.factory]) == 1
    lib.export("My Hit", tmp_path / "out.json")
    again = D.load_trajectory(tmp_path / "out.json")
    assert again.n_frames == 60 and json.loads((tmp_path / "out.json").read_text())["name"] == "MY HIT"
    lib.remove("my hit")
    with pytest.raises(NeurorackError, match="no sound named"):
        lib.get("My Hit")
    with pytest.raises(NeurorackError, match="factory sound"):
        lib.remove("Sub Boom")
    with pytest.raises(NeurorackError, match="sound name"):
        lib.add("a/b", trajectory(3, 50, 0.5, 0.5))
    assert not list((tmp_path / "user").glob(".*"))  # no temporary files left


def test_a_corrupt_file_is_skipped_not_fatal(tmp_path, caplog):
    SoundLibrary(tmp_path).add("Good", trajectory(3, 50, 0.5, 0.5))
    (tmp_path / "broken.json").write_text('{"name": "Broken", "descriptors": {"loudness": [0.1')  # cut by a power failure
    lib = SoundLibrary(tmp_path)  # as the module finds it at the next boot
    with caplog.at_level(logging.WARNING):
        names = [s.name for s in lib.sounds()]
    assert "Good" in names and "Broken" not in names and "broken.json" in caplog.text


def test_sounds_command_line(tmp_path):
    from neurorack.fileio import write_wav
    from neurorack.train.procedural import impact

    write_wav(tmp_path / "hit.wav", impact(9, 2)[0], 48000)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "neurorack.cli", "sounds", "--library", str(tmp_path / "lib"), *args],
                              capture_output=True, text=True, timeout=120)

    assert run("import", str(tmp_path / "hit.wav"), "--name", "Test Boom").returncode == 0
    listing = run("list").stdout
    assert "Test Boom" in listing and "user" in listing and "Sub Boom" in listing
    assert run("export", "Test Boom", str(tmp_path / "tb.json")).returncode == 0
    assert D.load_trajectory(tmp_path / "tb.json").n_frames > 50
    bad = run("remove", "Sub Boom")
    assert bad.returncode == 1 and "factory sound" in bad.stderr and "Traceback" not in bad.stderr
    assert run("remove", "test boom").returncode == 0 and "Test Boom" not in run("list").stdout


def test_library_reads_once_and_reloads_on_request(tmp_path):
    lib, other = SoundLibrary(tmp_path), SoundLibrary(tmp_path)
    assert len(lib.sounds()) == 8
    other.add("From Elsewhere", trajectory(3, 50, 0.5, 0.5))  # another process, same folder
    with pytest.raises(NeurorackError):
        lib.get("From Elsewhere")  # not re-read on every lookup
    lib.reload()
    assert lib.get("from elsewhere").name == "From Elsewhere"
    lib.add("Sub Boom", trajectory(3, 40, 0.5, 0.5))  # a user sound shadows the factory one
    assert not lib.get("Sub Boom").factory and lib.get("Sub Boom").trajectory.n_frames == 40
    lib.remove("Sub Boom")
    assert lib.get("Sub Boom").factory  # and the factory sound comes back
