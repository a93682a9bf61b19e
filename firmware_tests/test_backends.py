"""Inference backends: the exported decoder step, the numpy synthesiser, ONNX Runtime, the auto
chain and its reasons, the TensorRT engine cache, and what a bad file gets."""
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from neurorack import descriptors as D
from neurorack import load_model
from neurorack.errors import NeurorackError
from neurorack.model import backends as B
from neurorack.model.checkpoint import default_checkpoint, load_checkpoint, save_checkpoint
from neurorack.model.export import export, load_program
from neurorack.model.impact_model import ImpactModel, ModelConfig
from neurorack.model.streaming import HEAD_FRAMES
from neurorack.model.paths import checkpoint_sha256, default_models_dir, installed_models
from neurorack.sounds.library import SoundLibrary
from neurorack.synth import ImpactSynth
from neurorack.synth.numpy_synth import NumpyImpactSynth

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_checkpoint())[0]


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    return SoundLibrary(tmp_path_factory.mktemp("sounds")).sounds()


@pytest.fixture(scope="module")
def cpu():
    return load_model(backend="cpu", trace=False)


@pytest.fixture(scope="module")
def onnx():
    return load_model(backend="onnx", threads=1)


@pytest.fixture
def model_dir(tmp_path):
    """A copy of the shipped model folder, to break."""
    folder = tmp_path / "model"
    shutil.copytree(default_checkpoint().parent, folder)
    return folder


def decoder_raw(model, traj, sample_rate=48000):
    """The shipped decoder's raw controls for a trajectory: what the synthesiser really meets."""
    c = torch.from_numpy(traj.curves)[None]
    x = torch.cat([c, torch.from_numpy(traj.timbre)[None, None].expand(1, len(traj.curves), -1)], -1)
    with torch.inference_mode():
        raw, _ = model.decoder(x, model.decoder.initial_state(1))
    return raw, c


# -- the numpy synthesiser against the torch one (the definition) ------------------------------
@pytest.mark.parametrize("sample_rate", [48000, 16000, 96000])
def test_numpy_synth_renders_the_torch_synths_audio_on_the_models_controls(model, sounds, sample_rate):
    torch_synth, numpy_synth = ImpactSynth(sample_rate), NumpyImpactSynth(sample_rate)
    for sound in sounds:
        raw, c = decoder_raw(model, sound.trajectory)
        with torch.inference_mode():
            expected, _ = torch_synth(raw, c, torch_synth.initial_state(1))
        got, _ = numpy_synth.forward(raw[0].numpy(), c[0].numpy(), numpy_synth.initial_state())
        assert got.dtype == np.float32 and got.shape == expected[0].shape
        assert np.abs(got - expected[0].numpy()).max() <= 1e-4, sound.name


@pytest.mark.parametrize("sample_rate", [16000, 48000])
def test_the_noise_table_is_the_torch_noise_the_model_was_trained_on(sample_rate):
    """torch.randn's frames, sqrt-Hann windowed: the table holds them unwindowed (and scaled by
    sqrt(1/2)), and the window comes after the filter, so an unfiltered frame is the same."""
    from neurorack.synth.grid import NOISE_SEED, FrameGrid, centre_shift, noise_table, noise_window

    grid = FrameGrid(sample_rate)
    frames = torch.randn(1024, grid.n_fft, generator=torch.Generator().manual_seed(NOISE_SEED))
    expected = (frames * torch.hann_window(grid.n_fft, periodic=True).sqrt()).numpy()
    spectra = noise_table(grid) * centre_shift(grid)[:, None]  # time origin at the frame's start, as the synths
    got = np.fft.irfft(spectra[..., 0] + 1j * spectra[..., 1], n=grid.n_fft, axis=-1) * noise_window(grid)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_numpy_synth_streams_block_by_block_as_it_renders_at_once(model, sounds):
    synth = NumpyImpactSynth(48000)
    raw, c = decoder_raw(model, sounds[0].trajectory)
    raw, c = raw[0].numpy(), c[0].numpy()
    whole, _ = synth.forward(raw, c, synth.initial_state())
    state, pieces = synth.initial_state(), []
    for start in range(0, len(raw), 13):
        piece, state = synth.forward(raw[start:start + 13], c[start:start + 13], state)
        pieces.append(piece)
    assert np.abs(np.concatenate(pieces) - whole).max() <= 1e-6


def test_numpy_synth_follows_torch_on_strongly_driven_random_controls():
    """Every block driven hard, partials above Nyquist, and a render longer than the 1024-frame
    noise table. Off the model's controls the two exp() implementations differ by an ulp in a
    partial's frequency, and its phase integrates that over 6 s: samples drift apart by ~1e-3,
    while the level of every 10 ms agrees to 1e-3 of itself."""
    torch.manual_seed(3)
    torch_synth, numpy_synth = ImpactSynth(48000), NumpyImpactSynth(48000)
    t = 600
    raw = torch.randn(1, t, torch_synth.n_raw)
    curves = torch.rand(1, t, len(D.NAMES))
    curves[..., D.INDEX["loudness"]] *= 0.8
    with torch.inference_mode():
        expected, _ = torch_synth(raw, curves, torch_synth.initial_state(1))
    expected = expected[0].numpy()
    got, _ = numpy_synth.forward(raw[0].numpy(), curves[0].numpy(), numpy_synth.initial_state())
    assert np.abs(got[:4800] - expected[:4800]).max() <= 1e-4  # the first 0.1 s: no drift yet
    assert np.abs(got - expected).max() <= 5e-3

    def level(x):
        return np.sqrt(np.mean(x.reshape(-1, 480).astype(np.float64) ** 2, axis=1))

    audible = level(expected) > 1e-3
    assert np.abs(level(got)[audible] / level(expected)[audible] - 1).max() <= 1e-3


# -- the exported decoder step ----------------------------------------------------------------
def run_blocks(step_fn, model, curves, timbre, block):
    """Curves (T, 7) through a decoder step block by block; raw (T, n_raw)."""
    n = len(curves)
    padded = np.concatenate([curves, np.repeat(curves[-1:], -n % block, axis=0)])
    past = torch.cat(model.decoder.initial_state(1), dim=1).numpy()
    out = []
    for start in range(0, len(padded), block):
        raw, past = step_fn(padded[None, start:start + block], timbre[None], past)
        out.append(np.asarray(raw)[0])
    return np.concatenate(out)[:n]


def test_onnx_step_run_block_by_block_equals_the_torch_decoder(model, sounds, tmp_path):
    import onnxruntime as ort

    export(default_checkpoint(), tmp_path / "d.onnx", block=16)
    session = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    traj = sounds[1].trajectory
    expected, _ = decoder_raw(model, traj)

    def step(curves, timbre, past):
        return session.run(None, dict(zip(names, [curves, timbre, past])))

    got = run_blocks(step, model, traj.curves, traj.timbre, 16)
    assert np.abs(got - expected[0].numpy()).max() <= 1e-4
    assert [i.shape for i in session.get_inputs()][0] == [1, 16, 7]  # static shapes


def test_exported_program_step_equals_the_torch_decoder(model, sounds, tmp_path):
    info = export(default_checkpoint(), tmp_path / "d.pt2", "exported-program", block=32)
    program, recorded = load_program(tmp_path / "d.pt2")
    assert recorded == info and recorded["model_sha256"] == checkpoint_sha256(default_checkpoint())
    module = program.module()
    traj = sounds[2].trajectory
    expected, _ = decoder_raw(model, traj)

    def step(curves, timbre, past):
        with torch.inference_mode():
            out = module(torch.from_numpy(curves), torch.from_numpy(timbre), torch.from_numpy(past))
        return [o.numpy() for o in out]

    got = run_blocks(step, model, traj.curves, traj.timbre, 32)
    assert np.abs(got - expected[0].numpy()).max() <= 1e-4


@pytest.mark.parametrize("name", installed_models())
def test_every_shipped_onnx_file_is_the_export_of_the_checkpoint_beside_it(name):
    import onnxruntime as ort

    files = B.ModelFiles.find(default_models_dir() / name)
    meta = ort.InferenceSession(str(files.onnx), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta["neurorack.model_sha256"] == checkpoint_sha256(files.checkpoint)
    assert json.loads(meta["neurorack.config"]) == load_checkpoint(files.checkpoint)[0].config.to_dict()


def test_export_refuses_what_it_cannot_write_with_one_line(tmp_path):
    with pytest.raises(NeurorackError, match="is a folder"):
        export(default_checkpoint(), tmp_path)
    with pytest.raises(NeurorackError, match="--int8 quantises an ONNX export"):
        export(default_checkpoint(), tmp_path / "x.pt2", "exported-program", int8=True)
    with pytest.raises(NeurorackError, match="block is 1 to 1000"):
        export(default_checkpoint(), tmp_path / "x.onnx", block=0)
    with pytest.raises(NeurorackError, match="no such checkpoint"):
        export(tmp_path / "none.pt", tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


# -- the onnx backend ---------------------------------------------------------------------------
def test_onnx_backend_renders_what_the_cpu_backend_renders(cpu, onnx, sounds):
    assert onnx.backend.name == "onnx" and onnx.n_parameters == cpu.n_parameters
    for sound in sounds:
        a, b = cpu.render(sound.trajectory), onnx.render(sound.trajectory)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4, sound.name


def test_onnx_backend_renders_what_the_cpu_backend_renders_with_a_knob_at_either_end(cpu, onnx, sounds):
    """The knobs' solves at their hardest (a held spread against a turned one, a curvature
    spreading a low sound, the click giving way to a turned noisiness, the noise levelled for a
    turned tone_like) must not magnify the decoders' last-bit differences into two renders. The
    knob is marked moved, as a CV turns it."""
    for sound in sounds:
        for name in ("brightness", "richness", "noisiness", "percussivity", "tone_like"):
            moved = D.Trajectory.turned(name)
            for level in (0.1, 0.9):
                curves = sound.trajectory.curves.copy()
                curves[:, D.INDEX[name]] = level
                traj = D.Trajectory(curves, sound.trajectory.timbre, moved)
                a, b = cpu.render(traj), onnx.render(traj)
                assert np.abs(a - b).max() <= 1e-4, (sound.name, name, level)


def test_onnx_backend_renders_head_first_the_samples_of_a_one_shot_render(onnx, sounds):
    traj = sounds[3].trajectory
    whole = onnx.render(traj)
    out = np.zeros(len(whole), np.float32)
    heads = []
    head = HEAD_FRAMES * 480  # the module's head
    onnx.render_into(traj, out, on_head=lambda n: heads.append(out[:n].copy()))
    assert np.allclose(out, whole, atol=1e-6) and np.allclose(heads[0][:head], whole[:head], atol=1e-6)
    assert not heads[0][head:].any()  # announced with the rest still silence: it plays while that renders


def assert_each_piece_as_long_as_all_before_it(pieces, head_frames=25, samples_per_frame=480):
    """The head is its frames' worth; each piece after it at most as long as all before it."""
    lengths = [len(p) for p in pieces]
    assert lengths[0] == head_frames * samples_per_frame and 0 not in lengths
    assert all(n <= sum(lengths[:i]) + samples_per_frame for i, n in enumerate(lengths[1:], 1)), lengths


def test_a_long_impact_renders_in_pieces_each_as_long_as_all_before_it_and_joins_exactly(cpu, onnx, sounds):
    """Each piece renders while those before it play: the rest of a long impact in one piece was
    still rendering when its head had played out (a gap of silence, docs/benchmarks.md)."""
    traj = sounds[3].trajectory
    at = np.linspace(0, len(traj.curves) - 1, 600)  # the sound stretched to 6 s
    curves = np.stack([np.interp(at, np.arange(len(traj.curves)), c) for c in traj.curves.T], 1)
    long = D.Trajectory(curves.astype(np.float32), traj.timbre)
    for gen in (onnx, cpu):
        pieces = list(gen.backend.render_chunks(long.curves, long.timbre, 48000, 25))
        assert len(pieces) == 6  # 0.25 s, then 26, 52, 104, 208 frames and the last 184
        assert_each_piece_as_long_as_all_before_it(pieces)
        whole = gen.backend.render(long.curves, long.timbre, 48000)
        assert np.abs(np.concatenate(pieces) - whole).max() <= 1e-5, gen.backend.name


def test_onnx_backend_renders_at_other_rates_and_lengths_as_torch(cpu, onnx):
    """Random curves ask the knobs for what no sound has (a 0.9 percussivity on a 0.1 brightness,
    every frame different): the solved spectral tilts reach +-3.5 doublings per octave, which
    magnify the decoders' last-bit differences (ONNX Runtime's kernels, torch's) a few times.
    Real sounds stay within 1e-4 (the test above)."""
    rng = np.random.default_rng(5)
    for frames in (1, 2, 63, 64, 65, 300):
        curves = rng.uniform(0.1, 0.9, (frames, 7)).astype(np.float32)
        for rate in (48000, 44100, 96000):
            a, b = cpu.render(curves, rate), onnx.render(curves, rate)
            assert a.shape == b.shape and np.abs(a - b).max() <= 3e-4, (frames, rate)


def test_int8_export_loads_and_stays_close_to_float(tmp_path, onnx, sounds):
    shutil.copy(default_checkpoint(), tmp_path / "model.pt")
    export(tmp_path / "model.pt", tmp_path / "decoder.onnx", int8=True)
    int8 = load_model(tmp_path, backend="onnx", threads=1)
    assert (tmp_path / "decoder.onnx").stat().st_size < 0.5 * B.ModelFiles.find(None).onnx.stat().st_size
    a, b = onnx.render(sounds[0].trajectory), int8.render(sounds[0].trajectory)
    # int8 weights move the controls, not the loudness (enforced per frame): same level, other detail
    assert abs(np.sqrt(np.mean(a ** 2)) / np.sqrt(np.mean(b ** 2)) - 1) < 0.1


def test_no_process_of_a_module_on_the_onnx_backend_maps_libtorch(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from neurorack.assembly import ModuleOptions, assemble
        module = assemble(ModuleOptions(board="sim", library={str(tmp_path)!r}, backend="onnx", persist=False))
        child = module.renderer.info.pid
        maps = open("/proc/self/maps").read() + open(f"/proc/{{child}}/maps").read()
        print(module.renderer.info.backend, "torch" in sys.modules, "libtorch" in maps or "libc10" in maps)
        module.close()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["onnx", "False", "False"]


# -- choosing a backend: names, auto, reasons ------------------------------------------------------
def test_auto_takes_onnx_here_and_says_why_it_passed_over_the_gpu_backends():
    if CUDA:
        pytest.skip(reason="this machine has a CUDA GPU: auto takes a GPU backend (deploy/check-gpu.sh tests that)")
    gen = load_model(backend="auto", threads=1)
    assert gen.backend.name == "onnx"
    reasons = dict(line.split(": ", 1) for line in gen.backend.passed_over)
    assert list(reasons) == ["tensorrt", "cuda"]
    assert "torch_tensorrt is not installed" in reasons["tensorrt"]
    assert "no NVIDIA GPU" in reasons["cuda"]


def test_auto_falls_back_to_torch_when_the_onnx_file_is_missing(model_dir):
    if CUDA:
        pytest.skip(reason="this machine has a CUDA GPU: auto takes a GPU backend before onnx")
    (model_dir / "decoder.onnx").unlink()
    gen = load_model(model_dir, backend="auto", threads=1, trace=False)
    assert gen.backend.name == "cpu"
    assert any(line.startswith("onnx: ") and "decoder.onnx not found" in line for line in gen.backend.passed_over)


def test_an_unknown_backend_name_is_one_clear_line():
    with pytest.raises(NeurorackError, match="unknown inference backend 'coreml'; choose one of auto, tensorrt"):
        load_model(backend="coreml")


@pytest.mark.parametrize("content, reason", [
    (b"", "corrupt or not an ONNX model"),
    (b"\x08\x07garbage that is no protobuf" * 10, "corrupt or not an ONNX model"),
])
def test_a_corrupt_onnx_file_is_refused_in_one_line(model_dir, content, reason):
    (model_dir / "decoder.onnx").write_bytes(content)
    with pytest.raises(B.BackendUnavailable, match=reason) as err:
        load_model(model_dir, backend="onnx")
    assert "\n" not in str(err.value)


def test_an_onnx_model_that_is_not_a_decoder_export_is_refused(model_dir):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), model_dir / "decoder.onnx")
    with pytest.raises(B.BackendUnavailable, match="is not a neurorack decoder export"):
        load_model(model_dir, backend="onnx")


def test_an_onnx_file_exported_from_another_checkpoint_is_refused(model_dir, tmp_path):
    other = ImpactModel(ModelConfig(channels=16, dilations=[1, 2]))  # another architecture, too
    save_checkpoint(tmp_path / "other.pt", other)
    export(tmp_path / "other.pt", model_dir / "decoder.onnx")
    with pytest.raises(B.BackendUnavailable, match="exported from another checkpoint than .*model.pt: export it again"):
        load_model(model_dir, backend="onnx")
    (model_dir / "model.pt").unlink()  # alone, the export renders what it was exported from
    assert load_model(model_dir / "decoder.onnx", backend="onnx").n_parameters == other.parameter_count()


def test_a_torch_backend_with_a_corrupt_checkpoint_lets_auto_go_on(model_dir):
    (model_dir / "model.pt").write_bytes(b"not a zip")
    with pytest.raises(B.BackendUnavailable, match="corrupt or not a torch checkpoint"):
        load_model(model_dir, backend="cpu")


def test_a_board_profile_names_its_backend_and_a_wrong_name_is_refused(tmp_path):
    from neurorack.hal.profile import ProfileError, load_profile, parse_profile
    from neurorack.assembly import ModuleOptions, assemble

    assert load_profile("pi-mcp3208").model_backend == "onnx"
    assert load_profile("sim").model_backend == "auto"
    with pytest.raises(ProfileError, match=r"\[model\] backend must be a backend's name"):
        parse_profile({"adc": {"chip": "sim"}, "model": {"backend": 3}}, "x.toml")
    profile = tmp_path / "odd.toml"
    profile.write_text('gpio = "sim"\n[adc]\nchip = "sim"\n[model]\nbackend = "tpu"\n')
    with pytest.raises(NeurorackError, match="odd.toml: \\[model\\] backend 'tpu' is not one of auto"):
        assemble(ModuleOptions(board=str(profile), library=tmp_path, persist=False, live=False))


# -- TensorRT: the engine cache, with only the builder's outermost call replaced --------------------
def fake_build(calls):
    """Stands in for compile_engine (torch-tensorrt's dynamo compile): the same step, exported and
    saved by torch.export, so loading, the cache and rendering run for real."""
    def build(step, inputs, fp16, path):
        calls.append(fp16)
        torch.export.save(torch.export.export(step, inputs, strict=False), str(path))
    return build


def trt_key(**changes):
    key = {"model_sha256": checkpoint_sha256(default_checkpoint()), "gpu": "Orin (nvgpu)", "capability": "8.7",
           "tensorrt": "10.3.0", "torch_tensorrt": "2.5.0", "precision": "fp32", "block": 64}
    return {**key, **changes}


def test_tensorrt_engine_is_built_once_cached_and_renders_as_torch(model, cpu, sounds, tmp_path):
    from neurorack.model.tensorrt_backend import EngineCache, TensorRTBackend

    calls = []
    cache = EngineCache(tmp_path)
    first = TensorRTBackend(model, trt_key(), cache, device="cpu", build=fake_build(calls))
    second = TensorRTBackend(model, trt_key(), cache, device="cpu", build=fake_build(calls))
    assert calls == [False]  # built once; the second start loaded the cached engine
    engines = sorted(p.name for p in tmp_path.iterdir())
    assert engines == [f"{EngineCache.stem(trt_key())}.ep", f"{EngineCache.stem(trt_key())}.json"]
    traj = sounds[4].trajectory
    assert np.abs(second.render(traj.curves, traj.timbre, 48000) - cpu.render(traj)).max() <= 1e-4
    pieces = list(first.render_chunks(traj.curves, traj.timbre, 48000, 25))
    assert_each_piece_as_long_as_all_before_it(pieces)
    assert np.abs(np.concatenate(pieces) - cpu.render(traj)).max() <= 1e-4


def test_tensorrt_engine_is_rebuilt_for_another_gpu_or_tensorrt_and_the_stale_one_removed(model, tmp_path):
    from neurorack.model.tensorrt_backend import EngineCache, TensorRTBackend

    calls = []
    cache = EngineCache(tmp_path)
    TensorRTBackend(model, trt_key(), cache, device="cpu", build=fake_build(calls))
    TensorRTBackend(model, trt_key(tensorrt="10.4.0"), cache, device="cpu", build=fake_build(calls))
    TensorRTBackend(model, trt_key(gpu="Orin Nano 8GB"), cache, device="cpu", build=fake_build(calls))
    assert len(calls) == 3
    names = {p.name for p in tmp_path.iterdir()}
    assert f"{EngineCache.stem(trt_key(tensorrt='10.4.0'))}.ep" in names  # the other GPU's engine stays
    assert f"{EngineCache.stem(trt_key())}.ep" not in names  # superseded on this GPU: gone


def test_a_corrupt_or_foreign_tensorrt_engine_is_rebuilt_with_one_line(model, tmp_path, caplog):
    from neurorack.model.tensorrt_backend import EngineCache, TensorRTBackend

    calls = []
    cache = EngineCache(tmp_path)
    TensorRTBackend(model, trt_key(), cache, device="cpu", build=fake_build(calls))
    stem = EngineCache.stem(trt_key())
    (tmp_path / f"{stem}.ep").write_bytes(b"torn by a power cut")
    TensorRTBackend(model, trt_key(), cache, device="cpu", build=fake_build(calls))
    assert "is unreadable" in caplog.text and len(calls) == 2
    record = json.loads((tmp_path / f"{stem}.json").read_text())
    (tmp_path / f"{stem}.json").write_text(json.dumps({**record, "capability": "7.2"}))  # copied from a Xavier
    TensorRTBackend(model, trt_key(), cache, device="cpu", build=fake_build(calls))
    assert "was built for something else" in caplog.text and len(calls) == 3


def test_a_tensorrt_build_that_fails_leaves_no_engine_behind(model, tmp_path):
    from neurorack.model.tensorrt_backend import EngineCache, TensorRTBackend

    def failing(step, inputs, fp16, path):
        path.write_bytes(b"half an engine")
        raise RuntimeError("TensorRT ran out of workspace")

    with pytest.raises(RuntimeError, match="workspace"):
        TensorRTBackend(model, trt_key(), EngineCache(tmp_path), device="cpu", build=failing)
    assert not list(tmp_path.iterdir())


# -- on a GPU (deploy/check-gpu.sh runs these there) ---------------------------------------------
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (none on this machine); deploy/check-gpu.sh runs it")
def test_cuda_backend_renders_what_the_cpu_backend_renders(cpu, sounds):
    cuda = load_model(backend="cuda")
    for sound in sounds:
        assert np.abs(cuda.render(sound.trajectory) - cpu.render(sound.trajectory)).max() <= 1e-4, sound.name


@pytest.mark.skipif(not CUDA or B.importlib.util.find_spec("torch_tensorrt") is None,
                    reason="needs torch_tensorrt and a CUDA GPU (none here); deploy/check-gpu.sh runs it")
def test_tensorrt_backend_builds_on_this_gpu_and_renders_close_to_torch(cpu, sounds, tmp_path):
    fp32 = load_model(backend="tensorrt", cache_dir=tmp_path, fp16=False)
    fp16 = load_model(backend="tensorrt", cache_dir=tmp_path, fp16=True)
    for sound in sounds:
        reference = cpu.render(sound.trajectory)
        assert np.abs(fp32.render(sound.trajectory) - reference).max() <= 1e-3, sound.name
        # FP16 moves the partials' frequencies by ~1e-3 of themselves, and phases drift: compare
        # the level per 10 ms (loudness is enforced) rather than samples.
        a, b = fp16.render(sound.trajectory), reference
        frames = lambda x: np.sqrt(np.mean(x[: len(x) // 480 * 480].reshape(-1, 480) ** 2, axis=1) + 1e-10)
        loud = frames(b) > 1e-3
        assert np.abs(20 * np.log10(frames(a)[loud] / frames(b)[loud])).max() <= 1.0, sound.name


def test_the_head_first_bench_times_every_piece_of_each_long_impact(onnx):
    from neurorack.bench.backends import head_first

    rows = head_first({"onnx": onnx}, rounds=1)["onnx"]
    assert len(rows) == 6 and all(r["pieces"] == 8 for r in rows.values())  # 10 s: 8 frames, then 9, 18 ... 1001
    for row in rows.values():  # a margin is ready-before-played: never more than the head's 80 ms
        assert row["head_plays_ms"] == 80 and row["worst_margin_ms"] < 80 and row["whole_rest_ready_after_head_ms"] > 0
