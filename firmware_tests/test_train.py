"""A tiny but real training run: scan, skip broken files, cache, train, checkpoint, resume."""
import numpy as np
import soundfile as sf

from neurorack.model.checkpoint import load_checkpoint
from neurorack.train.data import load_folder
from neurorack.train.loop import TrainSettings, train
from neurorack.train.procedural import impact, write_corpus


def make_folder(root):
    write_corpus(root / "proc", 4, seed=3)
    sub = root / "other rates"
    sub.mkdir()
    audio, _ = impact(3, 9)
    sf.write(sub / "at44k.flac", audio[::2], 24000)  # another format and rate
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sf.write(root / "silent.aiff", np.zeros(4800, np.float32), 48000)
    return root


def test_train_resume_and_cache(tmp_path):
    data = make_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    out = tmp_path / "ckpt" / "model.pt"
    settings = TrainSettings(epochs=1, steps_per_epoch=2, batch_size=2, segment_frames=40, threads=1)
    lines = []
    result = train(data, out, settings, cache, echo=lines.append)
    skipped = {p.split("/")[-1] for p in result["skipped"]}
    assert skipped == {"broken.wav", "silent.aiff"}
    assert any("skipped broken file" in line and "broken.wav" in line for line in lines)
    assert any("validation loss" in line for line in lines)
    model, payload = load_checkpoint(out)
    assert payload["training"]["epoch"] == 1 and len(payload["meta"]["history"]) == 1
    assert np.isfinite(payload["meta"]["history"][0]["valid_loss"])
    cached = sorted(cache.iterdir())
    assert len(cached) == 5  # four corpus files and the FLAC; broken ones are not cached

    settings.epochs = 2
    result = train(data, out, settings, cache, resume=True, echo=lines.append)
    model, payload = load_checkpoint(out)
    assert payload["training"]["epoch"] == 2 and [h["epoch"] for h in payload["meta"]["history"]] == [1, 2]
    assert sorted(cache.iterdir()) == cached  # nothing analysed twice


def test_cache_is_used_and_rebuilt_when_damaged(tmp_path):
    data = make_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    first, broken = load_folder(data, cache)
    assert len(first) == 5 and len(broken) == 2
    victim = sorted(cache.iterdir())[0]
    victim.write_bytes(b"garbage")
    again, _ = load_folder(data, cache)
    assert all(np.array_equal(a.curves, b.curves) for a, b in zip(first, again))
