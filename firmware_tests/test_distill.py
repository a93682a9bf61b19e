"""Distillation: a smaller decoder learns the shipped one's controls on a tiny real dataset."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from neurorack.errors import NeurorackError
from neurorack.model.checkpoint import default_checkpoint, load_checkpoint
from neurorack.model.impact_model import ImpactModel, ModelConfig
from neurorack.train.data import SegmentSampler, load_files, scan
from neurorack.train.distill import DistillObjective, DistillSettings, distill, load_teacher
from neurorack.train.loop import TrainSettings
from neurorack.train.procedural import write_corpus

TEACHER = str(default_checkpoint())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    write_corpus(root / "data", 4, seed=5)
    return root / "data", root / "cache"


def fixed_batch(data, cache, frames=40):
    examples, _ = load_files(scan(data), cache)
    curves, audio, timbre = (torch.from_numpy(a) for a in SegmentSampler(examples, frames, seed=9).batch(4))
    return curves, audio, timbre


def objective_on(model, batch, render_weight=0.0):
    teacher = load_teacher(TEACHER)
    loss = DistillObjective(teacher, DistillSettings(TEACHER, 1.0, render_weight), TrainSettings(consistency_weight=0), "cpu")
    with torch.no_grad():
        return float(loss(model.eval(), *batch, 2))


def test_distillation_lowers_the_students_distance_to_the_teacher(corpus, tmp_path):
    data, cache = corpus
    settings = TrainSettings(epochs=1, steps_per_epoch=100, batch_size=4, segment_frames=40, learning_rate=1e-2,
                             consistency_weight=0, threads=1)
    out = tmp_path / "student.pt"
    lines = []
    distill(data, out, settings, DistillSettings(TEACHER, render_weight=0.0), cache, channels=8, echo=lines.append)
    torch.manual_seed(settings.seed)  # fit seeds torch before it builds the fresh student: the same start
    fresh = ImpactModel(ModelConfig(channels=8))
    student, payload = load_checkpoint(out)
    batch = fixed_batch(data, cache)
    before, after = objective_on(fresh, batch), objective_on(student, batch)
    assert after < 0.7 * before, (before, after)
    assert student.config.channels == 8 and student.config.dilations == load_teacher(TEACHER).config.dilations
    assert payload["meta"]["distillation"]["teacher"] == "default/model.pt"  # no machine's path in the file
    assert any("teacher" in line and "144924 parameters" in line for line in lines)

    # Second phase: the render's spectral distance to the teacher's, from the first phase's weights.
    settings = TrainSettings(epochs=1, steps_per_epoch=2, batch_size=2, segment_frames=40, learning_rate=1e-3,
                             consistency_weight=0, threads=1, init=str(out))
    second = tmp_path / "student2.pt"
    distill(data, second, settings, DistillSettings(TEACHER, render_weight=1.0), cache, echo=lines.append)
    _, payload = load_checkpoint(second)
    assert np.isfinite(payload["meta"]["history"][0]["train_loss"])
    assert payload["meta"]["distillation"]["render_weight"] == 1.0


def test_a_student_checkpoint_loads_with_load_model_and_renders(corpus, tmp_path, curves):
    import neurorack

    data, cache = corpus
    out = tmp_path / "student.pt"
    settings = TrainSettings(epochs=1, steps_per_epoch=1, batch_size=2, segment_frames=30, threads=1)
    distill(data, out, settings, DistillSettings(TEACHER, render_weight=0.0), cache, channels=16,
            dilations=[1, 2, 4, 8], echo=lambda _: None)
    gen = neurorack.load_model(out)
    audio = gen.render(curves)
    assert audio.shape == (48000,) and audio.dtype == np.float32 and np.all(np.isfinite(audio))
    assert np.abs(audio).max() > 0
    assert gen.n_parameters < neurorack.load_model().n_parameters / 4


def test_an_init_of_another_size_is_refused(corpus, tmp_path):
    data, cache = corpus
    out = tmp_path / "student.pt"
    settings = TrainSettings(epochs=1, steps_per_epoch=1, batch_size=2, segment_frames=30, threads=1)
    distill(data, out, settings, DistillSettings(TEACHER, render_weight=0.0), cache, channels=8, echo=lambda _: None)
    settings.init = str(out)
    with pytest.raises(NeurorackError, match="8 channels.*asked for 16 channels"):
        distill(data, tmp_path / "b.pt", settings, DistillSettings(TEACHER), cache, channels=16, echo=lambda _: None)


@pytest.mark.parametrize("weights, phrase", [
    ({"controls_weight": float("nan")}, "controls weight must be a finite number"),
    ({"render_weight": -1.0}, "render weight must be a finite number >= 0"),
    ({"controls_weight": 0.0, "render_weight": 0.0}, "at least one loss weight"),
])
def test_bad_distillation_weights_are_named(weights, phrase):
    with pytest.raises(NeurorackError, match=phrase):
        DistillSettings(TEACHER, **weights)


def test_model_settings_refuse_a_decoder_of_no_width():
    with pytest.raises(ValueError, match="channels must be whole numbers 1..1024"):
        ModelConfig(channels=0)
    with pytest.raises(ValueError, match="dilations must be"):
        ModelConfig(dilations=[1, 0])


def cli(*args):
    return subprocess.run([sys.executable, "-m", "neurorack.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("extra, phrase", [
    (["--distill-from", "no/such/teacher.pt", "--channels", "32"], "no such checkpoint: no/such/teacher.pt"),
    (["--distill-from", TEACHER, "--channels", "32", "--lr", "nan"], "argument --lr: nan is outside"),
    (["--distill-from", TEACHER, "--channels", "0"], "argument --channels: 0 is outside 1..1024"),
    (["--distill-from", TEACHER, "--channels", "-4"], "argument --channels: -4 is outside 1..1024"),
    (["--distill-from", TEACHER, "--channels", "8", "--dilations", "1", "0"], "argument --dilations: 0 is outside 1..1024"),
    (["--distill-from", TEACHER], "needs the student's size"),
    (["--distill-from", TEACHER, "--channels", "8", "--render-weight", "inf"], "argument --render-weight: inf is outside"),
])
def test_distill_cli_names_the_mistake_and_writes_nothing(corpus, tmp_path, extra, phrase):
    data, cache = corpus
    out = tmp_path / "student.pt"
    result = cli("train", data, "--out", out, "--cache", cache, "--epochs", "1", *extra)
    assert result.returncode == (2 if phrase.startswith("argument") else 1)  # 2: a usage error, as argparse
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurorack: error:") and phrase in lines[0], result.stderr
    assert not out.exists()


def test_distill_cli_trains_a_student_end_to_end(corpus, tmp_path):
    data, cache = corpus
    out = tmp_path / "student.pt"
    result = cli("train", data, "--out", out, "--cache", cache, "--distill-from", TEACHER, "--channels", "8",
                 "--render-weight", "0", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
                 "--segment-frames", "30", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "validation loss" in result.stdout
    model, payload = load_checkpoint(out)
    assert model.config.channels == 8 and payload["meta"]["settings"]["consistency_weight"] == 0.0


def test_render_bench_times_a_student_beside_its_teacher(corpus, tmp_path):
    from neurorack.bench.speed import bench_render_side_by_side

    data, cache = corpus
    out = tmp_path / "student.pt"
    settings = TrainSettings(epochs=1, steps_per_epoch=1, batch_size=2, segment_frames=30, threads=1)
    distill(data, out, settings, DistillSettings(TEACHER, render_weight=0.0), cache, channels=8, echo=lambda _: None)
    result = bench_render_side_by_side([TEACHER, out], repeats=4, rounds=2, cold_starts=1)
    first, second = result["summary"]["models"]
    assert (first["channels"], second["channels"]) == (64, 8)
    assert first["parameters"] == 144924 and second["parameters"] < first["parameters"] / 10
    assert first["render_time_vs_first"] == 1.0 and second["render_time_vs_first"] > 0
    assert all(m["render_ms_median"] > 0 and m["eager_decoder_ms_median"] > 0 and m["cold_start_s_median"] > 0
               for m in (first, second))
    assert result["summary"]["renders_per_model"] == 4
