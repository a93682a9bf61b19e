"""`neurorack run`: the offline renderer (--record) through the real engine and model, the
module's controls, and the per-board settings it remembers."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from neurorack.errors import NeurorackError
from neurorack.hal.sim import SimEvent
from neurorack.assembly import ModuleOptions, assemble
from neurorack.runner import record
from neurorack.settings import Settings, load_run_config, load_settings, save_settings, settings_path

BLOCK = 128


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("NEURORACK_SOUNDS", str(tmp_path / "sounds"))


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "neurorack.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def events_file(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


PATCH = [
    {"t": 0.10, "gate": 1, "on": True}, {"t": 0.12, "gate": 1, "on": False},
    {"t": 0.60, "cv": 2, "volts": 4.0},
    {"t": 0.80, "gate": 1, "on": True},
    {"t": 1.40, "gate": 2, "on": True},
    {"t": 1.90, "encoder": 6},
    {"t": 2.00, "gate": 2, "on": True},
]


def test_record_is_deterministic_and_sample_accurate(tmp_path):
    events = events_file(tmp_path / "patch.jsonl", PATCH)
    outs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for out in outs:
        result = cli("run", "--board", "sim", "--events", events, "--record", out)
        assert result.returncode == 0, result.stderr
        assert "4 impacts" in result.stdout
    a, sr = sf.read(outs[0], dtype="float32")
    b, _ = sf.read(outs[1], dtype="float32")
    assert sr == 48000 and np.array_equal(a, b)
    onsets = [round(t * sr) + BLOCK for t in (0.10, 0.80, 1.40, 2.00)]
    assert np.flatnonzero(a)[0] == onsets[0]  # silence up to the first gate, plus one block
    assert np.abs(a[onsets[0]:onsets[0] + 480]).max() > 0.01
    # It stops once the last impact has died away, not at a fixed length.
    assert 2.0 < len(a) / sr < 2.0 + 10 and np.abs(a[-4800:]).max() < 0.01


def impact_at(audio, t, seconds=0.5):
    start = round(t * 48000) + BLOCK
    return audio[start:start + int(seconds * 48000)]


def test_cvs_morph_and_encoder_change_what_the_next_gate_plays(tmp_path):
    module = assemble(ModuleOptions(board="sim", persist=False, live=False))
    events = [SimEvent(0.1, "gate", 1, True), SimEvent(0.6, "cv", 2, 5.0), SimEvent(0.7, "gate", 1, True),
              SimEvent(1.3, "gate", 2, True), SimEvent(1.8, "encoder", 0, -10), SimEvent(1.9, "gate", 2, True),
              # Menu, Sounds, the next sound, "Set as A": the menus pick sounds.
              SimEvent(2.5, "button", 0, "press"), SimEvent(2.51, "button", 0, "press"),
              SimEvent(2.52, "encoder", 0, 1), SimEvent(2.53, "button", 0, "press"),
              SimEvent(2.54, "button", 0, "press"), SimEvent(2.6, "gate", 1, True)]
    audio = record(module, events, duration=3.2)
    plain, rich = impact_at(audio, 0.1, 0.4), impact_at(audio, 0.7, 0.4)
    assert not np.allclose(plain, rich, atol=1e-3)  # CV 2 (richness) moved the sound
    morph_mid, morph_zero = impact_at(audio, 1.3, 0.4), impact_at(audio, 1.9, 0.4)
    assert module.settings.morph == 0.0 and not np.allclose(morph_mid, morph_zero, atol=1e-3)
    # At morph 0, gate 2's impact is sound A with the same CVs: what gate 1 plays.
    one, two = module.engine.prerender.ready[1], module.engine.prerender.ready[2]
    assert module.settings.sound_a != "Snap"  # ...the sound A the menu picked
    assert np.allclose(two[:len(one)], one, atol=1e-4)
    assert module.engine.gates.sum() == 5


def test_duration_cuts_or_extends_the_recording():
    module = assemble(ModuleOptions(board="sim", persist=False, live=False))
    audio = record(module, [SimEvent(0.0, "gate", 1, True)], duration=0.5)
    assert len(audio) == 24000


@pytest.mark.parametrize("args, phrase", [
    (["--record", "x.wav"], "give --events FILE"),
    (["--board", "moon", "--events", "{events}", "--record", "x.wav"], "no board profile 'moon'"),
    (["--events", "{missing}", "--record", "x.wav"], "cannot read events file"),
    (["--board", "pi-mcp3208", "--events", "{events}", "--record", "x.wav"], "--events drives the simulated board"),
])
def test_bad_run_arguments_say_one_clear_line(tmp_path, args, phrase):
    events = events_file(tmp_path / "e.jsonl", PATCH[:1])
    args = [a.format(events=events, missing=tmp_path / "nope.jsonl") for a in args]
    result = cli("run", *args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert phrase in result.stderr and "Traceback" not in result.stderr


def test_settings_round_trip_and_survive_a_corrupt_file(tmp_path, caplog):
    settings = Settings(sound_a="Glass Ring", morph=0.3)
    settings.assignments[2] = settings.assignments[2].__class__("brightness", 0.5, 0.1)
    from neurorack.hal.cv import Calibration
    settings.calibration[4] = Calibration(1.01, -0.02)
    path = save_settings("sim", settings)
    back = load_settings("sim")
    assert back.to_json() == settings.to_json()
    path.write_text('{"sound_a": "Gl')  # a torn write from some other tool
    fresh = load_settings("sim")
    assert fresh.to_json() == Settings().to_json()
    assert path.with_name("sim.json.corrupt").read_text() == '{"sound_a": "Gl'
    assert any("moved to sim.json.corrupt" in r.getMessage() for r in caplog.records)


def test_run_config_overrides_and_bad_configs_are_named(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('sound_a = "Glass Ring"\nlevel_db = -3\n[audio]\nblock_size = 256\n[cv.2]\ntarget = "pitch"\n')
    module = assemble(ModuleOptions(board="sim", config=config, persist=False, live=False))
    assert module.engine.block_size == 256 and module.settings.sound_a == "Glass Ring"
    assert module.engine.snapshot().assignments[2].target == "pitch"
    config.write_text('[cv.2]\ntarget = "volume"\n')
    with pytest.raises(NeurorackError, match="run.toml: a CV can modulate"):
        assemble(ModuleOptions(board="sim", config=config, persist=False, live=False))
    config.write_text("[audio\n")
    with pytest.raises(NeurorackError, match="not valid TOML"):
        load_run_config(config)


def test_a_stored_sound_that_is_gone_falls_back(caplog):
    settings = Settings(sound_a="Deleted Sound")
    save_settings("sim", settings)
    module = assemble(ModuleOptions(board="sim", live=False))
    assert module.settings.sound_a == "Big Impact"
    assert any("'Deleted Sound' is not in the library" in r.getMessage() for r in caplog.records)


def test_calibrate_stores_per_board(tmp_path):
    result = cli("calibrate", "--board", "sim", "--input", "2", "--readings", "0.98", "3.04")
    assert result.returncode == 0, result.stderr
    stored = json.loads(settings_path("sim").read_text())["calibration"]["2"]
    assert stored["scale"] == pytest.approx(2 / 2.06) and stored["shift"] == pytest.approx(1 - 0.98 * 2 / 2.06)
    bad = cli("calibrate", "--board", "sim", "--input", "2", "--readings", "1.0", "1.01")
    assert bad.returncode == 1 and "differ by at least 0.1 V" in bad.stderr


def test_demo_patch_plays_both_gates_and_sweeps_every_cv(tmp_path):
    from neurorack.demo import play_patch, scripted_patch

    events = scripted_patch()
    assert {e["gate"] for e in events if "gate" in e} == {1, 2}
    assert {e["cv"] for e in events if "cv" in e} == {1, 2, 3, 4}
    play_patch(tmp_path, live_play=False)
    audio, sr = sf.read(tmp_path / "patch.wav", dtype="float32")
    first_gate = round(0.25 * sr) + BLOCK
    assert np.flatnonzero(audio)[0] == first_gate and np.abs(audio).max() <= 1.0
    # 24 impacts, each audible where it was scheduled
    starts = [round(e["t"] * sr) + BLOCK for e in events if e.get("on")]
    assert len(starts) == 24 and all(np.abs(audio[s:s + 2400]).max() > 0.01 for s in starts)
