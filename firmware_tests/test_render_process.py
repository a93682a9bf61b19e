"""The render process: the model in a child, impacts in shared-memory slabs."""
import os
import signal

import numpy as np
from conftest import at_frame
import pytest

from neurorack import descriptors as D
from neurorack import load_model
from neurorack.engine.engine import Engine
from neurorack.engine.render_process import RenderProcess
from neurorack.engine.renderers import BuffersBusy
from neurorack.errors import NeurorackError
from neurorack.sounds.library import SoundLibrary


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return SoundLibrary(tmp_path_factory.mktemp("sounds"))


@pytest.fixture
def process():
    renderer = RenderProcess(48000, slabs=3, slab_seconds=4.0).start()
    yield renderer
    renderer.stop()


def render(renderer, traj):
    published = []
    renderer.render(traj, published.append)
    assert len(published) == 1
    return published[0]


def test_renders_the_samples_this_process_would(process, library):
    traj = library.get("Glass Ring").trajectory
    buffer = render(process, traj)
    # auto takes onnx here (no GPU): the torch-free runtime, within 1e-4 of torch on the CPU.
    assert np.allclose(buffer, load_model(backend="cpu", trace=False).render(traj), atol=1e-4)
    assert process.info.backend == "onnx" and process.info.parameters > 0
    assert [line.split(":")[0] for line in process.info.passed_over] == ["tensorrt", "cuda"]


def test_what_a_control_moves_reaches_the_child(process, library):
    """Trajectory.moved travels with the curves: the child lets the moved knob win, as here."""
    traj = library.get("Snap").trajectory
    curves = traj.curves.copy()
    curves[:, D.INDEX["noisiness"]] = 0.1
    moved = D.Trajectory.turned("noisiness")
    here = load_model(backend="onnx")
    held, turned = here.render(D.Trajectory(curves, traj.timbre)), here.render(D.Trajectory(curves, traj.timbre, moved))
    assert np.abs(held - turned).max() > 1e-2  # Snap's click gives way when noisiness is turned
    assert np.allclose(render(process, D.Trajectory(curves, traj.timbre, moved)), turned, atol=1e-6)


def test_the_cpu_backend_in_the_child_renders_as_torch_here(library):
    renderer = RenderProcess(48000, backend="cpu", slabs=2, slab_seconds=4.0).start()
    try:
        traj = library.get("Snap").trajectory
        # The child runs torch on one thread; summation order may differ from this process's.
        assert np.allclose(render(renderer, traj), load_model(backend="cpu", trace=False).render(traj), atol=1e-5)
        assert renderer.info.backend == "cpu"
    finally:
        renderer.stop()


def test_a_slab_is_reused_only_once_released(process, library):
    traj = library.get("Snap").trajectory
    held = [render(process, traj) for _ in range(3)]
    addresses = {b.__array_interface__["data"][0] for b in held}
    assert len(addresses) == 3  # three slabs, three places
    with pytest.raises(BuffersBusy):
        process.render(traj, lambda buffer: None)
    process.release(held[1])
    again = render(process, library.get("Sub Boom").trajectory)
    assert again.__array_interface__["data"][0] == held[1].__array_interface__["data"][0]
    assert np.array_equal(held[0], held[2])  # the slabs still playing were not touched


def test_a_dead_render_process_is_started_again(process, library, caplog):
    traj = library.get("Snap").trajectory
    first = render(process, traj).copy()
    os.kill(process._process.pid, signal.SIGKILL)
    with pytest.raises(NeurorackError, match="died and was started again"):
        process.render(traj, lambda buffer: None)
    assert process.restarts == 1 and any("render process died" in r.getMessage() for r in caplog.records)
    assert np.array_equal(render(process, traj), first)


def test_a_model_that_will_not_load_is_one_clear_error(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(NeurorackError, match="cannot load the model: .*model.pt"):
        RenderProcess(48000, model=bad, slabs=2, slab_seconds=1.0).start()
    assert set(os.listdir("/dev/shm")) == before  # the shared memory went with it


def test_an_impact_longer_than_a_slab_is_shortened_and_faded(library, caplog):
    renderer = RenderProcess(48000, slabs=2, slab_seconds=1.0).start()
    try:
        long = library.get("Snap").trajectory  # 3.47 s
        buffer = render(renderer, long)
        assert len(buffer) == 48000 and np.abs(buffer[-480:]).max() < np.abs(buffer[:4800]).max() / 100
        assert any("longer than the 1.0 s a buffer holds" in r.getMessage() for r in caplog.records)
    finally:
        renderer.stop()


def test_an_engine_plays_through_the_render_process(library):
    renderer = RenderProcess(48000, slabs=6, slab_seconds=4.0).start()
    engine = Engine(renderer, lambda n: library.get(n).trajectory, "Snap", "Sub Boom", block_size=128, offline=True)
    try:
        engine.prerender.update()
        engine.gate(at_frame(1, 0))
        playing = engine.prerender.ready[1]
        out = np.zeros(128 * 40, np.float32)
        for k in range(40):
            engine.process(out[k * 128:(k + 1) * 128])
        assert np.array_equal(out[128:], playing[:len(out) - 128])
        for volts in (1.0, 2.0, 3.0, 4.0, 5.0):  # more renders than free slabs: the playing one is kept
            engine.cv(2, volts)
            engine.prerender.update()
        assert engine.prerender.error is None
        expected = load_model(trace=False).render(library.get("Snap").trajectory)
        assert np.allclose(playing, expected, atol=1e-5)  # still the impact the voice started, untouched
    finally:
        engine.stop()
        renderer.stop()
