"""Tone matching (sounds/match.py) and importing a sample with its resynthesis score."""
import os
import subprocess
import sys

import numpy as np
import pytest

from neurorack import descriptors as D
from neurorack.errors import NeurorackError
from neurorack.fileio import write_wav
from neurorack.sounds.importing import POOR_MRSTFT, import_sample
from neurorack.sounds.library import SoundLibrary
from neurorack.sounds.make_factory import FACTORY
from neurorack.sounds.match import compare, nearest
from neurorack.train.procedural import SAMPLE_RATE, impact


def cli(*args, library):
    return subprocess.run([sys.executable, "-m", "neurorack.cli", "sounds", "--library", str(library), *args],
                          capture_output=True, text=True, timeout=300)


def one_clear_line(result, phrase):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and phrase in lines[0], result.stderr


def gated_tone(seconds=0.8, sr=48000):
    """A tone chopped on and off 13 times a second: a sound the impact model renders poorly."""
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * 300 * t) * (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 13 * t)))).astype(np.float32)


@pytest.fixture(scope="module")
def factory():
    return [s for s in SoundLibrary(os.devnull + "-none").sounds() if s.factory]


@pytest.fixture(scope="module")
def generator():
    from neurorack import load_model

    return load_model(None)


def test_a_factory_sounds_own_analysis_ranks_it_first_among_the_factory_sounds(factory):
    for name, seed, index in FACTORY:
        audio, _ = impact(seed, index)
        matches = nearest(D.analyze(audio, SAMPLE_RATE), factory, top=len(factory))
        assert matches[0].name == name and matches[0].distance < 0.5, (name, matches[:2])
        assert [m.distance for m in matches] == sorted(m.distance for m in matches)


def test_a_rerendered_copy_of_a_library_sound_ranks_at_its_own_place(factory, generator, tmp_path):
    library = SoundLibrary(tmp_path)
    audio, _ = impact(9, 2)  # a user sound beside the factory ones
    library.add("My Boom", D.analyze(audio, SAMPLE_RATE))
    for sound in library.sounds():
        copy = D.analyze(generator.render(sound.trajectory, sample_rate=48000), 48000)
        matches = nearest(copy, library.sounds(), top=3)
        assert matches[0].name == sound.name, (sound.name, [(m.name, round(m.distance, 1)) for m in matches])
        assert matches[0].distance < matches[1].distance


def test_the_distance_is_zero_for_a_sound_symmetric_and_says_what_differs(factory):
    a = factory[0].trajectory
    assert compare(a, a)[0] == pytest.approx(0.0, abs=1e-9)
    for other in factory[1:]:
        assert compare(a, other.trajectory)[0] == pytest.approx(compare(other.trajectory, a)[0])
        assert 0 < compare(a, other.trajectory)[0] <= 100
    brighter = a.curves.copy()
    brighter[:, D.INDEX["brightness"]] = np.clip(brighter[:, D.INDEX["brightness"]] + 0.25, 0, 1)
    distance, parts = compare(a, D.Trajectory(brighter, a.timbre))
    assert parts[0].name == "brightness" and parts[0].difference == pytest.approx(0.25, abs=0.02)
    assert all(p.difference < 1e-6 for p in parts[1:])
    assert distance == pytest.approx(100 * 0.25 / 8, abs=0.3)  # one part of eight
    assert parts[0].here.endswith("Hz") and parts[0].here != parts[0].there


def test_a_sound_is_not_its_own_similar_sound(factory):
    names = [m.name for m in nearest(factory[0].trajectory, factory, top=10, exclude=factory[0].name.upper())]
    assert factory[0].name not in names and len(names) == len(factory) - 1


def test_match_prints_the_nearest_sounds_with_distance_and_why(tmp_path):
    write_wav(tmp_path / "boom.wav", impact(21, 2)[0], SAMPLE_RATE)  # Sub Boom's source
    result = cli("match", str(tmp_path / "boom.wav"), "--top", "3", library=tmp_path / "lib")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and "boom.wav" in lines[0]
    assert lines[1].split()[:3] == ["1.", "Sub", "Boom"] and float(lines[1].split()[3]) < 0.5
    assert " vs " in lines[2] or "apart" in lines[2]  # the why: descriptor values side by side
    assert cli("export", "Glass Ring", str(tmp_path / "ring.json"), library=tmp_path / "lib").returncode == 0
    result = cli("match", str(tmp_path / "ring.json"), "--top", "1", library=tmp_path / "lib")  # descriptor JSON
    assert result.returncode == 0 and result.stdout.splitlines()[1].split()[:4] == ["1.", "Glass", "Ring", "0.0"]


def test_import_scores_the_models_resynthesis_of_the_sample(tmp_path, generator):
    path = tmp_path / "hit.wav"
    write_wav(path, impact(9, 2)[0], 48000)
    library = SoundLibrary(tmp_path / "lib")
    imported = import_sample(library, path, "Hit", lambda: generator)
    assert imported.mrstft < min(POOR_MRSTFT, imported.silence_mrstft) and not imported.poor
    assert library.get("Hit").meta == {"source": "hit.wav", "mrstft": round(imported.mrstft, 4)}
    assert not any(line.startswith("warning") for line in imported.lines())
    write_wav(tmp_path / "gated.wav", gated_tone(), 48000)
    poor = import_sample(library, tmp_path / "gated.wav", "Gated", lambda: generator)
    assert poor.mrstft > POOR_MRSTFT and poor.poor
    assert poor.lines()[-1].startswith("warning: the model reproduces this sample poorly")


def test_import_on_the_command_line_prints_the_score_and_warns_when_poor(tmp_path):
    write_wav(tmp_path / "gated.wav", gated_tone(), 48000)
    result = cli("import", str(tmp_path / "gated.wav"), "--name", "Gated", library=tmp_path / "lib")
    assert result.returncode == 0, result.stderr
    assert "added 'Gated'" in result.stdout and "resynthesis MR-STFT" in result.stdout
    assert result.stderr.strip().startswith("warning: the model reproduces this sample poorly")


def write_ten_minutes(path):
    import soundfile as sf

    sf.write(str(path), np.zeros(600 * 8000, np.int16), 8000, subtype="PCM_16")  # 9.6 MB, 600 s


@pytest.mark.parametrize("make, phrase", [
    (lambda p: p.write_text("this is not audio\n" * 100), "is not a readable audio file"),
    (lambda p: p.write_bytes(b""), "is not a readable audio file"),
    (lambda p: __import__("soundfile").write(str(p), np.zeros((0, 1), np.float32), 48000), "holds no audio samples"),
    (write_ten_minutes, "is 600 s long; neurorack analyses at most 30 s"),
    (lambda p: write_wav(p, np.zeros(48000, np.float32), 48000), "the audio is silent"),
])
def test_a_bad_file_to_match_or_import_is_one_clear_line_and_nothing_is_written(tmp_path, make, phrase):
    path = tmp_path / "in.wav"
    make(path)
    library = tmp_path / "lib"
    SoundLibrary(library).add("Kept", SoundLibrary(os.devnull + "-none").get("Snap").trajectory)
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    one_clear_line(cli("match", str(path), library=library), phrase)
    one_clear_line(cli("import", str(path), "--name", "New", library=library), phrase)
    assert {p.name: p.read_bytes() for p in library.iterdir()} == before


@pytest.mark.parametrize("name, phrase", [
    ("Kept", "a sound named 'Kept' exists"),
    ("kept", "a sound named 'Kept' exists"),
    ("Sub Boom", "a factory sound named 'Sub Boom' exists"),
    ("a/b", "without '/'"),
    ("../up", "without '/'"),
    ("..", "cannot hold '\\' or '..'"),
    ("x..y", "cannot hold '\\' or '..'"),
    ("back\\slash", "cannot hold '\\' or '..'"),
    ("   ", "a sound name cannot be empty"),
])
def test_an_import_under_a_name_that_is_taken_or_reads_like_a_path_is_refused(tmp_path, name, phrase):
    write_wav(tmp_path / "hit.wav", impact(9, 2)[0], 48000)
    library = tmp_path / "lib"
    SoundLibrary(library).add("Kept", SoundLibrary(os.devnull + "-none").get("Snap").trajectory)
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    one_clear_line(cli("import", str(tmp_path / "hit.wav"), "--name", name, "--no-score", library=library), phrase)
    assert {p.name: p.read_bytes() for p in library.iterdir()} == before
    assert not (tmp_path / "up").exists()


def test_replace_overwrites_a_user_sound_of_that_name(tmp_path):
    write_wav(tmp_path / "hit.wav", impact(9, 2)[0], 48000)
    library = tmp_path / "lib"
    SoundLibrary(library).add("Kept", SoundLibrary(os.devnull + "-none").get("Snap").trajectory)
    result = cli("import", str(tmp_path / "hit.wav"), "--name", "KEPT", "--replace", "--no-score", library=library)
    assert result.returncode == 0, result.stderr
    assert "resynthesis not scored" in result.stdout
    sound = SoundLibrary(library).get("kept")
    assert sound.name == "KEPT" and sound.meta["source"] == "hit.wav" and len(list(library.glob("*.json"))) == 1


@pytest.fixture
def small_disk(tmp_path):
    """A real 320 KB file system (tmpfs), as a module's nearly full SD card."""
    if os.geteuid() != 0:
        pytest.skip(reason="only root can mount a small file system to fill")
    place = tmp_path / "disk"
    place.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(place)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(reason=f"root without the right to mount here: {mounted.stderr.decode().strip()}")
    try:
        yield place
    finally:
        subprocess.run(["umount", str(place)], check=True)


def test_a_full_data_folder_loses_nothing(tmp_path, small_disk):
    library = small_disk / "sounds"
    snap = SoundLibrary(os.devnull + "-none").get("Snap").trajectory
    SoundLibrary(library).add("Kept", snap)
    before = {p.name: p.read_bytes() for p in library.iterdir()}
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk to its last block
        with pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 4096)
    write_wav(tmp_path / "hit.wav", impact(9, 2)[0], 48000)
    for args in (("--name", "New"), ("--name", "Kept", "--replace")):
        one_clear_line(cli("import", str(tmp_path / "hit.wav"), *args, "--no-score", library=library),
                       "No space left on device")
        assert {p.name: p.read_bytes() for p in library.iterdir()} == before  # no half file, no temporary
    lib = SoundLibrary(library)
    with pytest.raises(OSError):
        lib.add("Kept", D.Trajectory(snap.curves[:50], snap.timbre), replace=True)
    assert lib.get("Kept").trajectory.n_frames == snap.n_frames  # the library in memory kept it too
    assert SoundLibrary(library).get("Kept").trajectory.n_frames == snap.n_frames
    with pytest.raises(NeurorackError):
        lib.get("New")


def test_without_auraloss_the_curves_are_imported_and_the_score_is_said_missing(tmp_path, generator, monkeypatch):
    """A torch-free runtime (a Pi's) has no auraloss: the import still works, and says so."""
    monkeypatch.setitem(sys.modules, "auraloss", None)  # `import auraloss` fails as where it is not installed
    write_wav(tmp_path / "hit.wav", impact(9, 2)[0], 48000)
    imported = import_sample(SoundLibrary(tmp_path / "lib"), tmp_path / "hit.wav", "Hit", lambda: generator)
    assert imported.mrstft is None and not imported.poor
    assert imported.lines()[1] == "resynthesis not scored: auraloss is not installed (the 'train' extra)"
    assert SoundLibrary(tmp_path / "lib").get("Hit").meta == {"source": "hit.wav"}
