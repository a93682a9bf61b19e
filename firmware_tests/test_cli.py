"""The command line, end to end in a subprocess, including every bad input the issue lists."""
import json
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
import soundfile as sf
import torch

from neurorack import descriptors as D


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neurorack.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_clean_failure(result, *phrases):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("neurorack: error:")
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="module")
def impact_wav(tmp_path_factory):
    from neurorack.train.procedural import impact

    path = tmp_path_factory.mktemp("audio") / "impact.wav"
    audio, _ = impact(5, 3)
    sf.write(path, np.stack([audio, 0.5 * audio], axis=1), 48000)  # stereo on purpose
    return path


@pytest.fixture(scope="module")
def descriptor_json(impact_wav, tmp_path_factory):
    out = tmp_path_factory.mktemp("json") / "impact.json"
    result = run("analyze", impact_wav, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_console_script_is_declared():
    assert any(ep.name == "neurorack" and ep.value == "neurorack.cli:main" for ep in entry_points(group="console_scripts"))


def test_analyze_writes_the_documented_json_and_a_plot(impact_wav, tmp_path):
    out, plot = tmp_path / "d.json", tmp_path / "d.png"
    result = run("analyze", impact_wav, "--out", out, "--plot", plot)
    assert result.returncode == 0, result.stderr
    obj = json.loads(out.read_text())
    assert set(obj) >= {"sample_rate", "frame_rate", "names", "descriptors", "units"}
    assert obj["names"] == list(D.NAMES) and obj["sample_rate"] == 48000 and obj["frame_rate"] == 100
    lengths = {len(v) for v in obj["descriptors"].values()}
    assert len(lengths) == 1 and lengths.pop() > 100
    assert all(0.0 <= x <= 1.0 for v in obj["descriptors"].values() for x in v)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_and_resynth_write_48k_mono_wavs(descriptor_json, impact_wav, tmp_path):
    out = tmp_path / "r.wav"
    result = run("render", "--descriptors", descriptor_json, "--out", out, "--set", "brightness=0.8")
    assert result.returncode == 0, result.stderr
    audio, sr = sf.read(out)
    assert sr == 48000 and audio.ndim == 1 and np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    frames = len(json.loads(descriptor_json.read_text())["descriptors"]["loudness"])
    assert len(audio) == frames * 480
    out2 = tmp_path / "s.wav"
    result = run("resynth", impact_wav, "--out", out2)
    assert result.returncode == 0, result.stderr
    audio2, sr2 = sf.read(out2)
    assert sr2 == 48000 and audio2.ndim == 1 and np.max(np.abs(audio2)) > 0.01


def test_set_out_of_range_is_clamped_with_a_warning(descriptor_json, tmp_path):
    result = run("render", "--descriptors", descriptor_json, "--out", tmp_path / "x.wav", "--set", "pitch=1.5")
    assert result.returncode == 0
    assert "clamped" in result.stderr and (tmp_path / "x.wav").exists()


@pytest.fixture
def bad_files(tmp_path, descriptor_json):
    files = {}
    files["text"] = tmp_path / "notes.wav"
    files["text"].write_text("this is not audio")
    files["empty"] = tmp_path / "empty.wav"
    sf.write(files["empty"], np.zeros(0, np.float32), 48000)
    files["silent"] = tmp_path / "silent.wav"
    sf.write(files["silent"], np.zeros(48000, np.float32), 48000)
    good = json.loads(descriptor_json.read_text())
    nan = json.loads(json.dumps(good))
    files["nan"] = tmp_path / "nan.json"
    files["nan"].write_text(json.dumps(nan).replace(str(nan["descriptors"]["pitch"][5]), "NaN", 1))
    six = json.loads(json.dumps(good))
    del six["descriptors"]["tone_like"]
    six["names"].remove("tone_like")
    files["six"] = tmp_path / "six.json"
    files["six"].write_text(json.dumps(six))
    files["corrupt_ckpt"] = tmp_path / "corrupt.pt"
    files["corrupt_ckpt"].write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    files["foreign_ckpt"] = tmp_path / "foreign.pt"
    torch.save({"weights": torch.nn.Linear(2, 2).state_dict()}, files["foreign_ckpt"])
    return files


@pytest.mark.parametrize("command, phrase", [
    (["analyze", "{missing}", "--out", "{out_json}"], "no such file"),
    (["analyze", "{text}", "--out", "{out_json}"], "not a readable audio file"),
    (["analyze", "{empty}", "--out", "{out_json}"], "holds no audio samples"),
    (["analyze", "{silent}", "--out", "{out_json}"], "silent"),
    (["resynth", "{silent}", "--out", "{out_wav}"], "silent"),
    (["resynth", "{text}", "--out", "{out_wav}"], "not a readable audio file"),
    (["render", "--descriptors", "{missing}", "--out", "{out_wav}"], "no such file"),
    (["render", "--descriptors", "{nan}", "--out", "{out_wav}"], "NaN"),
    (["render", "--descriptors", "{six}", "--out", "{out_wav}"], "missing tone_like"),
    (["render", "--descriptors", "{text}", "--out", "{out_wav}"], "not valid JSON"),
    (["render", "--descriptors", "{json}", "--out", "{out_wav}", "--model", "{corrupt_ckpt}"], "corrupt"),
    (["render", "--descriptors", "{json}", "--out", "{out_wav}", "--model", "{foreign_ckpt}"], "not a neurorack model"),
    (["render", "--descriptors", "{json}", "--out", "{out_wav}", "--set", "volume=1"], "NAME=VALUE"),
    (["render", "--descriptors", "{json}", "--out", "{out_wav}", "--sample-rate", "0"], "outside 8000..192000"),
    (["train", "{missing}", "--out", "{out_ckpt}"], "no such folder"),
    (["train", "{tmp}", "--out", "{out_ckpt}"], "WAV"),
    (["train", "{audio_dir}", "--out", "{corrupt_ckpt}", "--resume"], "corrupt"),
    (["train", "{audio_dir}", "--out", "{foreign_ckpt}"], "not a neurorack model"),
])
def test_bad_input_fails_in_one_line_and_writes_nothing(bad_files, descriptor_json, impact_wav, tmp_path, command, phrase):
    impact_audio_dir = impact_wav.parent
    names = {**{k: str(v) for k, v in bad_files.items()}, "missing": str(tmp_path / "missing.wav"),
             "out_json": str(tmp_path / "out.json"), "out_wav": str(tmp_path / "out.wav"),
             "out_ckpt": str(tmp_path / "out.pt"), "json": str(descriptor_json), "tmp": str(tmp_path / "empty_dir"),
             "audio_dir": str(impact_audio_dir)}
    (tmp_path / "empty_dir").mkdir()
    result = run(*[part.format(**names) for part in command])
    assert_clean_failure(result, phrase)
    for out in ("out.json", "out.wav", "out.pt"):
        assert not (tmp_path / out).exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_render_set_turns_the_knob_it_sets(descriptor_json, tmp_path):
    """A descriptor given with --set is a knob turned (Trajectory.moved): it wins where it and a
    held one cannot both be met, as a CV turning it would."""
    from neurorack import load_model

    out = tmp_path / "n.wav"
    result = run("render", "--descriptors", descriptor_json, "--out", out, "--set", "noisiness=0.1", "--backend", "onnx")
    assert result.returncode == 0, result.stderr
    audio, _ = sf.read(out, dtype="float32")
    traj = D.load_trajectory(descriptor_json)
    curves = traj.curves.copy()
    curves[:, D.INDEX["noisiness"]] = 0.1
    moved = D.Trajectory.turned("noisiness")
    gen = load_model(backend="onnx")
    turned, held = gen.render(D.Trajectory(curves, traj.timbre, moved)), gen.render(D.Trajectory(curves, traj.timbre))
    assert np.abs(audio - turned).max() < 1e-3 < np.abs(held - turned).max()
