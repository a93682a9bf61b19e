"""A tiny but real training run: scan, skip broken files, cache, train, checkpoint, resume."""
import numpy as np
import soundfile as sf

from neurorack.model.checkpoint import load_checkpoint
from neurorack.train.data import load_files, scan
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
    first, broken = load_files(scan(data), cache)
    assert len(first) == 5 and len(broken) == 2
    victim = sorted(cache.iterdir())[0]
    victim.write_bytes(b"garbage")
    again, _ = load_files(scan(data), cache)
    assert all(np.array_equal(a.curves, b.curves) for a, b in zip(first, again))


def test_consistency_proxies_agree_with_the_analysis():
    """The training loss's torch descriptors must say what descriptors.analyze says."""
    import torch

    from conftest import sine, white_noise
    from neurorack import descriptors as D
    from neurorack.train import proxies

    clicks = np.zeros(48000, np.float32)
    clicks[::480] = 0.5
    signals = [sine(220.0), sine(3000.0), white_noise(), clicks, sine(500.0) + white_noise(db=-30)]
    for audio in signals:
        wanted = D.analyze(audio, 48000).curves[20:80]
        got = proxies.descriptors(torch.from_numpy(audio)[None], 101)[0, 20:80].numpy()
        for i, name in enumerate(proxies.CONTROLLED):
            assert abs(np.median(got[:, i]) - np.median(wanted[:, D.INDEX[name]])) < 0.06, name


def test_moved_descriptors_leave_the_recorded_half_alone():
    import torch

    from neurorack.train.loop import move_descriptors

    curves = torch.rand(6, 30, 7)
    moved = move_descriptors(curves, 3, np.random.default_rng(0))
    assert torch.equal(moved[:3], curves[:3])
    changed = (moved[3:] != curves[3:]).any(dim=1)  # (3 items, 7 descriptors)
    assert torch.all(changed.sum(-1) == 1)  # exactly one descriptor moved per item
    assert not changed[:, [0, 6]].any()  # never loudness or pitch


def test_checkpoint_records_no_machine_paths(tmp_path):
    from neurorack.train.loop import _recorded

    settings = TrainSettings(init=str(tmp_path / "deep" / "run2.pt"))
    assert _recorded(settings)["init"] == "run2.pt" and settings.init.endswith("deep/run2.pt")
