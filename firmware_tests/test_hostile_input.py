"""Hostile and careless input, the way a user gives it: odd command-line numbers, outputs that
cannot be written, corrupt or wrongly typed files. Each ends in one clear line, and nothing
written before is lost."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from neurorack import fileio
from neurorack.errors import NeurorackError
from neurorack.settings import Settings, load_settings, save_settings, settings_path

FACTORY = "neurorack/sounds/factory/snap.json"


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("NEURORACK_SOUNDS", str(tmp_path / "sounds"))


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "neurorack.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def one_clear_line(result, phrase):
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("usage:")
             and not line.startswith("  ")]
    assert result.returncode in (1, 2), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and phrase in lines[0], result.stderr


@pytest.mark.parametrize("args, phrase", [
    (["run", "--osc-port", "70000"], "--osc-port: 70000 is outside 0..65535"),
    (["run", "--osc-port", "-1"], "--osc-port: -1 is outside"),
    (["run", "--panel", "99999"], "--panel: 99999 is outside"),
    (["run", "--duration", "nan"], "--duration: nan is outside"),
    (["run", "--duration", "-3"], "--duration: -3 is outside"),
    (["run", "--duration", "inf"], "--duration: inf is outside"),
    (["run", "--duration", "1e300", "--record", "{tmp}/x.wav", "--events", "{events}"], "--duration: 1e300 is outside"),
    (["run", "--duration", "900", "--record", "{tmp}/x.wav", "--events", "{events}"], "--record renders at most 600 s"),
    (["run", "--panel-host", "0.0.0.0"], "--panel-host offers the virtual panel: give --panel too"),
    (["train", "{tmp}", "--out", "{tmp}/m.pt", "--lr", "nan"], "--lr: nan is outside"),
    (["train", "{tmp}", "--out", "{tmp}/m.pt", "--consistency", "inf"], "--consistency: inf is outside"),
    (["train", "{tmp}", "--out", "{tmp}/m.pt", "--batch-size", "1000000000000"], "--batch-size: 1000000000000 is outside"),
    (["train", "{tmp}", "--out", "{tmp}/m.pt", "--segment-frames", "100000000"], "--segment-frames: 100000000 is outside"),
    (["train", "{tmp}", "--out", "{tmp}/m.pt", "--emphasis", "pitch=-5"], "the weight must be 0..1000"),
    (["train", "{tmp}", "--out", "{tmp}/m.pt", "--epochs", "1e9"], "--epochs: '1e9' is not a whole number"),
    (["dataset", "procedural", "{tmp}/p", "--count", "100000000000"], "--count: 100000000000 is outside"),
    (["render", "--descriptors", FACTORY, "--out", "{tmp}/o.wav", "--sample-rate", "0"], "--sample-rate: 0 is outside"),
    (["calibrate", "--board", "sim", "--input", "0", "--readings", "1", "3"], "--input: 0 is outside"),
    (["calibrate", "--board", "sim", "--input", "2", "--readings", "nan", "3"], "--readings: nan is outside"),
    (["bench", "render", "--repeats", "10000000000"], "--repeats: 10000000000 is outside"),
    (["bench", "soak", "--minutes", "nan"], "--minutes: nan is outside"),
    (["bench", "latency", "--gap", "-1"], "--gap: -1 is outside"),
])
def test_numeric_extremes_in_arguments_are_one_clear_line(tmp_path, args, phrase):
    events = tmp_path / "e.jsonl"
    events.write_text('{"t": 0.1, "gate": 1}\n')
    one_clear_line(cli(*[a.format(tmp=tmp_path, events=events) for a in args]), phrase)


@pytest.mark.parametrize("out, phrase", [
    ("{tmp}", "it is a folder"),
    ("{tmp}/a-file/x.wav", "a-file is a file, not a folder"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, out, phrase):
    (tmp_path / "a-file").write_text("keep me")
    out = out.format(tmp=tmp_path)
    t0 = time.monotonic()
    for args in (["render", "--descriptors", FACTORY, "--out", out],
                 ["analyze", FACTORY.replace(".json", ".wav"), "--out", out],
                 ["sounds", "export", "Snap", out]):
        one_clear_line(cli(*args), phrase)
    assert (tmp_path / "a-file").read_text() == "keep me"
    assert time.monotonic() - t0 < 60


def test_a_read_only_place_is_refused_before_the_work(tmp_path):
    """A folder without write permission; as root (which permissions do not stop), a read-only
    file system, as a module's read-only root would be."""
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        os.chmod(ro, 0o555)
        try:
            one_clear_line(cli("render", "--descriptors", FACTORY, "--out", ro / "o.wav"), "Permission denied")
        finally:
            os.chmod(ro, 0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(reason=f"root without the right to mount here, so no read-only place to test: {mounted.stderr.decode().strip()}")
    try:
        one_clear_line(cli("render", "--descriptors", FACTORY, "--out", ro / "o.wav"), "Read-only file system")
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_a_screenshot_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "shots").write_text("")
    one_clear_line(cli("screenshot", "--out", tmp_path / "shots"), "it is a file, not a folder")


def test_broken_model_files_are_one_clear_line(tmp_path):
    import torch

    from neurorack.model.checkpoint import read_checkpoint

    (tmp_path / "empty.pt").write_bytes(b"")
    payload = read_checkpoint("models/default/model.pt")
    for name, key, value in (("huge", "channels", 10 ** 7), ("text", "n_partials", "32"),
                             ("deep", "dilations", [1] * 10 ** 4)):
        bad = {**payload, "config": {**payload["config"], key: value}}
        torch.save(bad, tmp_path / f"{name}.pt")
    for name, phrase in (("empty", "is empty (0 bytes)"), ("huge", "channels must be whole numbers 1..1024"),
                         ("text", "n_partials must be whole numbers"), ("deep", "dilations must be a list of 1..64")):
        one_clear_line(cli("render", "--descriptors", FACTORY, "--out", tmp_path / "o.wav",
                           "--model", tmp_path / f"{name}.pt"), phrase)


@pytest.mark.parametrize("change, phrase", [
    ({"descriptors": {"loudness": [0.5] * 100001}}, "longer than 30 s"),
    ({"timbre": "warm"}, "'timbre' must be 16 finite numbers"),
    ({"timbre": {"a": 1}}, "'timbre' must be 16 finite numbers"),
    ({"descriptors": {"loudness": ["0.5"]}}, "descriptor values must be numbers"),
])
def test_wrong_types_and_lengths_in_a_descriptor_file_are_one_line(tmp_path, change, phrase):
    obj = json.loads(open(FACTORY).read())
    for key, value in change.items():
        if key == "descriptors":
            obj["descriptors"] = {k: value["loudness"] for k in obj["descriptors"]}
        else:
            obj[key] = value
    (tmp_path / "d.json").write_text(json.dumps(obj))
    one_clear_line(cli("render", "--descriptors", tmp_path / "d.json", "--out", tmp_path / "o.wav"), phrase)
    assert not (tmp_path / "o.wav").exists()


def test_a_long_recording_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", 8000, 1, "PCM_16") as f:  # 40 s, written in pieces
        for _ in range(40):
            f.write(np.zeros(8000, np.int16))
    for args in (["analyze", path, "--out", tmp_path / "d.json"], ["resynth", path, "--out", tmp_path / "o.wav"],
                 ["sounds", "import", path, "--name", "Long"]):
        one_clear_line(cli(*args), "is 40 s long; neurorack analyses at most 30 s")


# ----------------------------------------------------------------------------- settings files

@pytest.mark.parametrize("content, phrase", [
    ('{"calibration": {"2": {"scale": 1.0, "shift": NaN}}}', "NaN is not a number JSON allows"),
    ('{"calibration": {"2": {"scale": 1.0, "shift": 1e400}}}', "calibration.2.shift must be a finite number"),
    ('{"calibration": {"2": {"scale": 50, "shift": 0}}}', "a calibration scales by 0.5..2"),
    ('{"level_db": "loud"}', "level_db must be a finite number"),
    ('{"morph": true}', "morph must be a finite number"),
    ('{"voices": "4"}', "voices must be a whole number 1..16"),
    ('{"voices": 100000000}', "voices must be a whole number 1..16"),
    ('{"cv": {"2": {"target": "pitch", "depth": "1"}}}', "cv.2.depth must be a finite number"),
    ('{"cv": {"abc": {"target": "pitch"}}}', "is not an input number"),
    ('{"cv": [1, 2]}', "cv must be a table"),
    ('{"audio": {"block_size": 1e9}}', "audio.block_size must be a whole number 16..8192"),
    ('{"sound_a": 5}', "sound_a must be text"),
    ('[' * 100000 + ']' * 100000, "nested too deeply"),
    ('[1, 2]', "must be a table"),
])
def test_a_settings_file_that_fails_validation_is_set_aside_naming_the_field(caplog, content, phrase):
    path = settings_path("sim")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    settings = load_settings("sim")
    assert settings.to_json() == Settings().to_json()
    lines = [r.getMessage() for r in caplog.records if "sim.json" in r.getMessage()]
    assert len(lines) == 1 and phrase in lines[0] and "moved to sim.json.corrupt" in lines[0], lines
    assert path.with_name("sim.json.corrupt").read_text() == content


def test_a_second_corrupt_settings_file_does_not_overwrite_the_first_one_kept(caplog):
    path = settings_path("sim")
    path.parent.mkdir(parents=True)
    for n, text in enumerate(("{first", "{second", "{third")):
        path.write_text(text)
        load_settings("sim")
    assert path.with_name("sim.json.corrupt").read_text() == "{first"
    assert path.with_name("sim.json.corrupt.2").read_text() == "{second"
    assert path.with_name("sim.json.corrupt.3").read_text() == "{third"


def test_a_nan_calibration_from_another_tool_is_never_written_back(caplog):
    path = settings_path("sim")
    path.parent.mkdir(parents=True)
    path.write_text('{"level_db": -3, "calibration": {"2": {"scale": 1.0, "shift": NaN}}}')
    settings = load_settings("sim")
    assert settings.calibration == {}
    save_settings("sim", settings)
    assert "NaN" not in path.read_text()


def test_unknown_keys_in_a_run_config_are_errors_and_in_stored_settings_one_line(tmp_path, caplog):
    from neurorack.assembly import ModuleOptions, assemble

    config = tmp_path / "run.toml"
    config.write_text('sound_a = "Snap"\nlevle_db = -3\n')
    with pytest.raises(NeurorackError, match="run.toml: unknown key levle_db"):
        assemble(ModuleOptions(board="sim", config=config, persist=False, live=False))
    config.write_text('[audio]\nblok_size = 64\n')
    with pytest.raises(NeurorackError, match="unknown key audio.blok_size"):
        assemble(ModuleOptions(board="sim", config=config, persist=False, live=False))
    path = settings_path("sim")
    path.parent.mkdir(parents=True)
    path.write_text('{"level_db": -3, "from_the_future": 1}')
    assert load_settings("sim").level_db == -3
    assert any("ignoring unknown key from_the_future" in r.getMessage() for r in caplog.records)
    config.write_text('[[audio]]\nx = 1\n')
    with pytest.raises(NeurorackError, match="audio must be a table"):
        assemble(ModuleOptions(board="sim", config=config, persist=False, live=False))


# ----------------------------------------------------------------------------- atomic writes

def test_stale_temporary_files_of_interrupted_writes_are_cleaned_up(tmp_path):
    stale = tmp_path / ".sim.json.abc123.tmp"
    fresh = tmp_path / ".sim.json.def456.tmp"  # a write in progress elsewhere, just begun
    other = tmp_path / ".other.json.xyz.tmp"
    for p in (stale, fresh, other):
        p.write_text("half")
    old = time.time() - 2 * fileio.STALE_TMP_S
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    fileio.write_json(tmp_path / "sim.json", {"a": 1})
    assert not stale.exists() and fresh.exists() and other.exists()  # only that file's, only old ones
    from neurorack.sounds.library import SoundLibrary

    SoundLibrary(tmp_path).sounds()  # reading a folder cleans up all of its stale ones
    assert not other.exists() and fresh.exists()


def test_folders_made_for_a_write_are_synced_into_their_parents(tmp_path, monkeypatch):
    synced = []
    real = fileio._fsync_dir
    monkeypatch.setattr(fileio, "_fsync_dir", lambda folder: (synced.append(folder), real(folder)))
    fileio.write_json(tmp_path / "a" / "b" / "c.json", {})
    assert tmp_path in synced and tmp_path / "a" in synced and tmp_path / "a" / "b" in synced


@pytest.mark.parametrize("toml, phrase", [
    ('adc = {chip = "sim"}\ncv = [{input = 1, channel = 0, gain = "x"}]', "CV input 1: gain must be a finite number"),
    ('adc = {chip = "sim"}\ncv = [{input = 1, channel = 0, gain = nan}]', "gain must be a finite number"),
    ('adc = {chip = "sim"}\ncv = [1, 2]', "wrong type"),
    ('adc = {chip = "sim"}\ngate = [{input = "one", pin = 5}]', "gate input number 'one' is not 1 or 2"),
    ('adc = {chip = "sim"}\ncv = [{input = 99999999999, channel = 0}]', "is not 1..64"),
    ('adc = "sim"', "wrong type"),
])
def test_a_board_profile_with_wrong_types_is_one_clear_line(tmp_path, toml, phrase):
    path = tmp_path / "odd.toml"
    path.write_text(toml)
    one_clear_line(cli("run", "--board", path, "--duration", "1"), phrase)
