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
    with pytest.raises(NeurorackError, match="exists"):
        lib.add("MY HIT", trajectory(3, 60, 0.5, 0.5))  # same name, any case: refused, unless asked
    lib.add("MY HIT", trajectory(3, 60, 0.5, 0.5), replace=True)
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
    lib.add("Sub Boom", trajectory(3, 40, 0.5, 0.5), replace=True)  # a user sound shadows the factory one
    assert not lib.get("Sub Boom").factory and lib.get("Sub Boom").trajectory.n_frames == 40
    lib.remove("Sub Boom")
    assert lib.get("Sub Boom").factory  # and the factory sound comes back


def test_names_that_once_shared_a_file_are_different_sounds(tmp_path):
    lib = SoundLibrary(tmp_path)
    names = ["Big Hit", "big_hit", "日本の音", "Ωμέγα", "🔥🔥", "ωμέγα-"]
    for i, name in enumerate(names):
        lib.add(name, trajectory(3, 40 + i, 0.5, 0.5))
    again = SoundLibrary(tmp_path)  # as read at the next boot
    for i, name in enumerate(names):
        assert again.get(name).name == name and again.get(name).trajectory.n_frames == 40 + i
    assert len(list(tmp_path.glob("*.json"))) == len(names)
    assert again.get("ΩΜΈΓΑ").name == "Ωμέγα"  # one sound, any case, in any script
    assert again.get("big hit").name == "Big Hit"


@pytest.mark.parametrize("name", [42, None, ["a"], {"x": 1}, "", "a" * 200, "tab\there", True])
def test_a_sound_file_with_a_bad_name_is_set_aside_and_the_rest_load(tmp_path, caplog, name):
    SoundLibrary(tmp_path).add("Good", trajectory(3, 50, 0.5, 0.5))
    obj = {"name": name, **trajectory(3, 50, 0.5, 0.5).to_json(48000)}
    (tmp_path / "odd.json").write_text(json.dumps(obj))
    with caplog.at_level(logging.WARNING):
        names = [s.name for s in SoundLibrary(tmp_path).sounds()]
    assert "Good" in names and len(names) == 9
    assert "odd.json set aside: field 'name'" in caplog.text and (tmp_path / "odd.json").exists()


@pytest.mark.parametrize("content, field", [
    ('[1, 2]', "expected a JSON object"),
    ('{"descriptors": {}}', "field 'name' is missing"),
    ('[' * 100000 + ']' * 100000, "nested too deeply"),
    ('{"name": "x", "meta": 3, "descriptors": {}}', "field 'meta'"),
    ('{"name": "x", "timbre": "warm", "descriptors": %s}', "'timbre' must be"),
    ('{"name": "x", "descriptors": %s, "timbre": [NaN]}', "NaN"),
    ('\xff\xfe', "not UTF-8"),
])
def test_every_kind_of_bad_sound_file_is_one_line(tmp_path, caplog, content, field):
    curves = json.dumps(trajectory(3, 20, 0.5, 0.5).to_json(48000)["descriptors"])
    (tmp_path / "bad.json").write_bytes(content.replace("%s", curves).encode("latin-1", "ignore")
                                        if content == '\xff\xfe' else content.replace("%s", curves).encode())
    with caplog.at_level(logging.WARNING):
        assert len(SoundLibrary(tmp_path).sounds()) == 8
    lines = [r.getMessage() for r in caplog.records if "bad.json" in r.getMessage()]
    assert len(lines) == 1 and field in lines[0], lines


def test_a_bad_sound_file_does_not_stop_list_screenshot_or_record(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "n.json").write_text(json.dumps({"name": 7, **trajectory(3, 20, 0.5, 0.5).to_json(48000)}))
    env = {**__import__("os").environ, "NEURORACK_SOUNDS": str(lib), "NEURORACK_CONFIG": str(tmp_path / "c")}
    events = tmp_path / "e.jsonl"
    events.write_text('{"t": 0.1, "gate": 1}\n')
    for args in (["sounds", "list"], ["screenshot", "--out", str(tmp_path / "shots")],
                 ["run", "--events", str(events), "--record", str(tmp_path / "o.wav"), "--duration", "0.5"]):
        result = subprocess.run([sys.executable, "-m", "neurorack.cli", *args], capture_output=True, text=True,
                                timeout=300, env=env)
        assert result.returncode == 0, result.stderr
        assert "n.json set aside: field 'name'" in result.stderr and "internal error" not in result.stderr


def test_a_sound_longer_than_the_limit_is_refused(tmp_path, caplog):
    long = trajectory(3, 20, 0.5, 0.5).to_json(48000)
    long["descriptors"] = {k: [0.5] * (D.MAX_FRAMES + 1) for k in long["descriptors"]}
    (tmp_path / "long.json").write_text(json.dumps({"name": "Long", **long}))
    with caplog.at_level(logging.WARNING):
        assert "Long" not in [s.name for s in SoundLibrary(tmp_path).sounds()]
    assert "longer than 30 s" in caplog.text
