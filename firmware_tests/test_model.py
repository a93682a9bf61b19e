import numpy as np
import pytest
import torch

from neurorack import descriptors as D
from neurorack.errors import CheckpointError, DescriptorError
from neurorack.model.checkpoint import default_checkpoint, load_checkpoint, save_checkpoint
from neurorack.model.generator import load_model
from neurorack.model.impact_model import ImpactModel, ModelConfig


def test_parameter_budget(model):
    assert model.parameter_count() <= 1_000_000


def test_gradients_reach_every_decoder_weight(model, curves):
    model.train()
    c = torch.from_numpy(curves)[None]
    audio = model.render_aligned(c, torch.zeros(1, D.TIMBRE_BANDS))
    target = torch.randn_like(audio) * 0.05
    window = torch.hann_window(512)
    torch.nn.functional.l1_loss(torch.stft(audio, 512, window=window, return_complex=True).abs(),
                                torch.stft(target, 512, window=window, return_complex=True).abs()).backward()
    grads = [p.grad for p in model.decoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("block", [8, 25])
def test_model_streams_block_by_block(model, curves, block):
    c = torch.from_numpy(curves)[None]
    timbre = torch.randn(1, D.TIMBRE_BANDS) * 0.3
    with torch.inference_mode():
        whole, _ = model(c, timbre, model.initial_state(1))
        state, parts = model.initial_state(1), []
        for s in range(0, c.shape[1], block):
            part, state = model(c[:, s:s + block], timbre, state)
            parts.append(part)
    assert float((torch.cat(parts, 1) - whole).abs().max()) <= 1e-4


def test_decoder_streams_its_raw_controls(model, curves):
    x = torch.randn(1, 100, model.n_inputs)
    with torch.inference_mode():
        whole, _ = model.decoder(x, model.decoder.initial_state(1))
        state, parts = model.decoder.initial_state(1), []
        for s in range(0, 100, 1):
            part, state = model.decoder(x[:, s:s + 1], state)
            parts.append(part)
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-5)


def test_checkpoint_round_trip(tmp_path, model, curves):
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, meta={"note": "test"})
    again, payload = load_checkpoint(path)
    assert payload["meta"]["note"] == "test"
    c, t = torch.from_numpy(curves)[None], torch.zeros(1, D.TIMBRE_BANDS)
    with torch.inference_mode():
        assert torch.equal(model.render_aligned(c, t), again.render_aligned(c, t))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_bad_checkpoints_give_clear_errors(tmp_path, model):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    save_checkpoint(corrupt, model)
    corrupt.write_bytes(corrupt.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": torch.nn.Linear(3, 3).state_dict()}, foreign)
    with pytest.raises(CheckpointError, match="not a neurorack model"):
        load_checkpoint(foreign)
    other = tmp_path / "other.pt"
    save_checkpoint(other, ImpactModel(ModelConfig(channels=32)))
    payload = torch.load(other, weights_only=True)
    payload["config"]["channels"] = 64  # settings that no longer describe the weights
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match="do not fit this architecture"):
        load_checkpoint(other)


def test_shipped_model_loads_offline_and_renders(curves):
    assert default_checkpoint().is_file()
    gen = load_model()
    assert gen.n_parameters <= 1_000_000
    audio = gen.render(curves)
    assert audio.dtype == np.float32 and audio.shape == (48000,)
    assert np.all(np.isfinite(audio)) and 0 < np.max(np.abs(audio)) <= 1.0
    as_json = D.Trajectory(curves, np.zeros(D.TIMBRE_BANDS, np.float32)).to_json(48000)
    assert np.allclose(gen.render(as_json), audio, atol=1e-4)
    resampled = gen.render(curves, sample_rate=44100)
    assert abs(len(resampled) - 44100) <= 2


def test_render_rejects_bad_descriptors():
    gen = load_model()
    with pytest.raises(DescriptorError):
        gen.render(np.zeros((10, 5)))
    bad = np.full((10, 7), 0.5)
    bad[2, 1] = np.nan
    with pytest.raises(DescriptorError, match="NaN"):
        gen.render(bad)


def test_cpu_backend_traced_graph_matches_eager(model, curves):
    from neurorack.model.torch_backends import TorchBackend

    backend = TorchBackend(model, bucket=30)
    timbre = np.zeros(D.TIMBRE_BANDS, np.float32)
    first = backend.render(curves[:90], timbre, 48000)  # eager, length padded to 90 -> 90
    second = backend.render(curves[:90], timbre, 48000)  # traced now
    assert len(backend._graphs) == 1
    assert np.allclose(first, second, atol=1e-5) and first.shape == (90 * 480,)
    with torch.inference_mode():
        reference = model.render_aligned(torch.from_numpy(curves[:77])[None], torch.zeros(1, D.TIMBRE_BANDS))[0].numpy()
    assert np.allclose(backend.render(curves[:77], timbre, 48000), reference, atol=1e-5)  # padded 77 -> 90


def test_a_traced_graph_renders_other_sounds_of_its_length_as_eager_does():
    """The shipped model, with knobs turned far (the solve moves frames): the graph is traced on
    one trajectory and must render a different one of the same length as eager does. (A trace of
    the whole render froze the knobs' data-dependent rows and rendered NaN.)"""
    from neurorack.model.torch_backends import TorchBackend

    backend = TorchBackend(load_model(backend="cpu").backend.model, bucket=100)
    timbre = np.zeros(D.TIMBRE_BANDS, np.float32)
    rng = np.random.default_rng(0)
    first, other = (rng.random((300, 7)).astype(np.float32) for _ in range(2))  # every knob far from the render somewhere
    backend.render(first, timbre, 48000)
    backend.render(first, timbre, 48000)  # traced now, on `first`
    assert len(backend._graphs) == 1
    for c in (first, other):
        with torch.inference_mode():
            eager = backend.model.render_aligned(torch.from_numpy(c)[None], torch.zeros(1, D.TIMBRE_BANDS))[0].numpy()
        traced = backend.render(c, timbre, 48000)
        assert np.isfinite(traced).all() and np.abs(eager).max() > 1e-3
        assert np.allclose(traced, eager, atol=1e-5)


def test_atomic_writes_get_ordinary_file_modes(tmp_path, model):
    import os
    import stat

    from neurorack.fileio import write_json

    write_json(tmp_path / "new.json", {"a": 1})
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o666 & ~mask
    os.chmod(tmp_path / "new.json", 0o640)
    write_json(tmp_path / "new.json", {"a": 2})  # replacing keeps the file's mode
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640


def test_render_into_plays_the_head_first_and_equals_render(curves):
    gen = load_model(trace=False)
    whole = gen.render(curves)
    out = np.full(len(whole) + 100, 7.0, np.float32)  # stale samples a head-first render must not leave
    seen = {}

    def on_head(n):
        seen["n"], seen["copy"] = n, out[:n].copy()

    n = gen.render_into(curves, out, on_head=on_head, head_frames=25)
    assert n == seen["n"] == len(whole) == gen.n_samples(curves)
    head = 25 * 480
    # When the head is announced it is final, and the rest is silence, not the buffer's old contents.
    # (To float rounding: one-shot renders synthesise in one call, head-first in two.)
    assert np.allclose(seen["copy"][:head], whole[:head], atol=1e-6) and not seen["copy"][head:].any()
    assert np.allclose(out[:n], whole, atol=1e-6) and (out[n:] == 7.0).all()
    with pytest.raises(Exception, match="does not fit"):
        gen.render_into(curves, np.zeros(100, np.float32))


def test_render_into_keeps_a_loud_impact_under_full_scale(curves):
    gen = load_model(trace=False)
    loud = curves.copy()
    loud[:, 0] = 1.0  # 0 dBFS RMS: peaks above full scale
    out = np.zeros(gen.n_samples(loud), np.float32)
    gen.render_into(loud, out)
    assert 0.9 < np.abs(out).max() <= 1.0


def test_a_swell_louder_than_its_head_is_turned_down_before_full_scale_not_clipped(curves):
    """A whoosh: its head (0.25 s) nearly silent, its peak later and above full scale. The gain
    falls over the piece where it swells, from the last piece's gain, and holds: the render is
    the one-shot one times a gain that never rises, and no sample reaches full scale."""
    gen = load_model(backend="onnx", threads=1)
    swell = curves.copy()
    swell[:, 0] = np.concatenate([np.full(30, 0.05), np.ones(70)])  # quiet for 0.3 s, then 0 dBFS RMS
    raw = gen.backend.render(swell, np.zeros(16, np.float32), 48000)
    assert np.abs(raw[:25 * 480]).max() < 0.1 and np.abs(raw).max() > 1.2  # the head sets no gain
    out = np.zeros(len(raw), np.float32)
    gen.render_into(D.Trajectory(swell, np.zeros(16, np.float32)), out, head_frames=25)
    assert 0.99 < np.abs(out).max() <= 0.999 + 1e-6  # turned down to its peak, never clipped
    heard = np.abs(raw) > 1e-2
    gain = out[heard] / raw[heard]
    assert np.allclose(gain[: int(heard[:25 * 480].sum())], 1.0, atol=1e-4)  # the head as rendered
    assert (np.diff(gain) <= 1e-4).all() and gain[-1] == pytest.approx(0.999 / np.abs(raw).max(), rel=1e-4)
