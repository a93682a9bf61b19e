"""The engine: CV assignments, the gate ring and stream clock, the pre-render worker, scheduling.

Most tests use the shipped model through the sound library, as the module does; a few use a
render function that returns a marked buffer, where the question is where a buffer lands."""
import gc
import threading
import time
import weakref

import numpy as np
import pytest
from conftest import at_frame, traced_allocation

from neurorack import descriptors as D
from neurorack import load_model
from neurorack.engine.controls import DEFAULT_ASSIGNMENTS, ControlState, CvAssignment, modulate
from neurorack.engine.engine import Engine
from neurorack.engine.events import GateRing, StreamClock
from neurorack.engine.renderers import FunctionRenderer, LocalRenderer
from neurorack.errors import NeurorackError
from neurorack.hal.gates import Gate, GateEdge
from neurorack.sounds.library import SoundLibrary

BLOCK = 128


@pytest.fixture(scope="module")
def generator():
    return load_model(threads=1, trace=False)


@pytest.fixture
def library(tmp_path):
    return SoundLibrary(tmp_path / "sounds")


def test_default_assignments_are_morph_richness_noisiness_pitch():
    assert {n: a.target for n, a in DEFAULT_ASSIGNMENTS.items()} == {
        1: "morph", 2: "richness", 3: "noisiness", 4: "pitch"}


def test_cv_amounts_bipolar_unipolar_and_one_volt_per_octave():
    assert CvAssignment("richness").amount(5.0, "bipolar") == pytest.approx(1.0)
    assert CvAssignment("richness").amount(-2.5, "bipolar") == pytest.approx(-0.5)
    assert CvAssignment("brightness", depth=0.5, offset=0.1).amount(10.0, "unipolar") == pytest.approx(0.6)
    pitch = CvAssignment("pitch")
    # 1 V = 12 semitones on the 72-semitone normalised pitch axis.
    assert pitch.amount(1.0) == pytest.approx(12 / 72)
    assert pitch.amount(-2.0) == pytest.approx(-24 / 72)
    with pytest.raises(NeurorackError, match="can modulate"):
        CvAssignment("volume")


def test_control_state_sums_cvs_into_shifts_and_morph():
    state = ControlState("a", "b", morph=0.25)
    state.volts = {1: 2.5, 2: -5.0, 3: 1.0, 4: 1.0}
    request = state.request()
    assert request.morph == pytest.approx(0.75)
    assert request.shifts[D.INDEX["richness"]] == pytest.approx(-1.0)
    assert request.shifts[D.INDEX["noisiness"]] == pytest.approx(0.2)
    assert request.shifts[D.INDEX["pitch"]] == pytest.approx(12 / 72)
    state.assignments[2] = CvAssignment("morph", depth=1.0)  # two CVs on the morph add up, and the result is clamped
    assert state.request().morph == 0.0


def test_modulate_shifts_whole_curves_and_clips(curves):
    traj = D.Trajectory(curves, np.zeros(D.TIMBRE_BANDS, np.float32))
    shifts = np.zeros(7)
    shifts[D.INDEX["richness"]] = 0.8
    out = modulate(traj, shifts)
    r = D.INDEX["richness"]
    assert np.allclose(out.curves[:, r], np.minimum(curves[:, r] + 0.8, 1.0))
    assert np.array_equal(np.delete(out.curves, r, axis=1), np.delete(curves, r, axis=1))
    # and it says what it moved, so the synthesiser lets that knob win (synth/knobs.py)
    assert out.moved[r] == pytest.approx(0.8) and sum(out.moved) == pytest.approx(0.8)
    assert modulate(traj, np.zeros(7)).moved == ()


def test_stream_clock_maps_time_to_frames_and_never_runs_past_the_block():
    now = [0]
    clock = StreamClock(48000, BLOCK, clock=lambda: now[0])
    assert clock.frame_now() == 0  # before the first block
    now[0] = 1_000_000_000
    clock.begin_block(4800)
    now[0] += 1_000_000  # 1 ms later: 48 frames into the block
    assert clock.frame_now() == 4848
    now[0] += 50_000_000  # the next callback is late: stamps stay inside the block being computed
    assert clock.frame_now() == 4800 + BLOCK - 1


def test_an_edge_is_stamped_at_its_own_moment_when_the_board_knows_it():
    now = [1_000_000_000]
    clock = StreamClock(48000, BLOCK, clock=lambda: now[0])
    clock.begin_block(4800)
    now[0] += 2_000_000  # handled 2 ms after the block began ...
    arrived = 1_000_000_000 - 1_000_000  # ... but it arrived 1 ms before the block began
    assert clock.frame_at(arrived) == 4800 - 48
    assert clock.frame_at(now[0] - 500_000) == 4800 + 72  # 1.5 ms into the block
    assert clock.frame_at(None) == clock.frame_now() == 4800 + 96
    assert clock.frame_at(arrived - 1_000_000_000) == 4800 - BLOCK  # never earlier than a block back


def test_a_gate_that_arrived_before_its_handling_sounds_where_it_arrived():
    engine, _ = marked_engine()
    engine.prerender.update()
    out = np.zeros(BLOCK * 4, np.float32)
    before = time.monotonic_ns()
    engine.process(out[:BLOCK])  # block 0 begins about now
    time.sleep(0.005)  # handled two blocks' time later ...
    engine.gate(GateEdge(Gate.IMPACT, True, before + 1_000_000))  # ... than its arrival, ~1 ms into block 0
    for k in range(1, 4):
        engine.process(out[k * BLOCK:(k + 1) * BLOCK])
    onset = int(np.flatnonzero(out)[0])
    assert BLOCK + 40 <= onset <= BLOCK + 48  # one block after its moment (the block began just after `before`)


def test_gate_ring_is_fifo_and_drops_rather_than_blocks_when_full():
    ring = GateRing(capacity=4)
    buffers = [np.full(3, i, np.float32) for i in range(6)]
    assert all(ring.push(1, i * 10, buffers[i]) for i in range(4))
    assert not ring.push(2, 99, buffers[4]) and ring.dropped == 1
    assert ring.peek_stamp() == 0
    gate, stamp, buffer, gain = ring.pop()
    assert (gate, stamp, gain) == (1, 0, 1.0) and buffer is buffers[0]
    assert ring.push(2, 50, buffers[5])
    assert [ring.pop()[1] for _ in range(4)] == [10, 20, 30, 50] and ring.peek_stamp() is None


def marked_engine(**kwargs):
    """An engine whose 'model' renders a buffer of 0.25 s marked with the request it came from."""
    renders = []

    def render(traj):
        renders.append(traj)
        audio = np.zeros(12000, np.float32)
        audio[0] = 0.9
        audio[1] = float(traj.curves[0, D.INDEX["richness"]])
        return audio

    flat = D.Trajectory(np.full((25, 7), 0.5, np.float32), np.zeros(D.TIMBRE_BANDS, np.float32))
    engine = Engine(FunctionRenderer(render), lambda name: flat, "a", "b", block_size=BLOCK, **kwargs)
    return engine, renders


def run_blocks(engine, blocks):
    out = np.zeros(blocks * BLOCK, np.float32)
    for k in range(blocks):
        engine.process(out[k * BLOCK:(k + 1) * BLOCK])
    return out


def test_a_gate_sounds_exactly_one_block_after_its_stamp():
    engine, _ = marked_engine(offline=True)
    engine.prerender.update()
    for stamp in (0, 200, 777):
        engine.gate(at_frame(1, stamp))
    out = run_blocks(engine, 10)
    onsets = np.flatnonzero(out == np.float32(0.9))
    assert list(onsets) == [BLOCK, 200 + BLOCK, 777 + BLOCK]


def test_a_gate_before_the_first_render_is_counted_not_played():
    engine, _ = marked_engine(offline=True)
    engine.gate(at_frame(1, 0))
    assert engine.not_ready == 1 and not run_blocks(engine, 3).any()


def test_a_cv_change_reaches_the_next_gate_and_not_the_one_before():
    engine, renders = marked_engine(offline=True)
    engine.prerender.update()
    engine.gate(at_frame(1, 0))
    engine.cv(2, 2.5)  # richness +0.5
    engine.prerender.update()
    engine.gate(at_frame(1, BLOCK * 4))
    out = run_blocks(engine, 8)
    assert out[BLOCK + 1] == pytest.approx(0.5)  # rendered before the change
    assert out[BLOCK * 5 + 1] == pytest.approx(1.0)  # 0.5 + 0.5 after it
    assert engine.gates[1] == 2


def test_gate_2_plays_the_morph_and_only_what_changed_is_rendered_again(generator, library):
    engine = Engine(LocalRenderer(generator), lambda n: library.get(n).trajectory, "Snap", "Sub Boom",
                    block_size=BLOCK)
    engine.prerender.update()
    first = dict(engine.prerender.ready)
    assert engine.prerender.renders == 2 and not np.array_equal(first[1][:4800], first[2][:4800])
    engine.set_morph(0.9)  # the morph concerns gate 2 alone
    assert engine.prerender.update() == 1
    assert engine.prerender.ready[1] is first[1] and engine.prerender.ready[2] is not first[2]
    engine.set_morph(0.9)  # nothing a render depends on moved: no render at all
    assert engine.prerender.update() == 0


def test_a_failing_render_keeps_the_last_good_impact():
    engine, _ = marked_engine()
    engine.prerender.update()
    good = engine.prerender.ready[1]
    engine.prerender._sounds = lambda name: (_ for _ in ()).throw(NeurorackError("sound file vanished"))
    engine.set_sounds("gone")
    engine.prerender.update()
    assert engine.prerender.ready[1] is good and "sound file vanished" in engine.prerender.error


def test_the_worker_renders_in_the_background():
    engine, _ = marked_engine()
    engine.start()
    try:
        assert engine.prerender.wait_ready(timeout=10)
        engine.cv(2, 5.0)
        assert engine.prerender.wait_ready(timeout=10)
        assert engine.prerender.ready[1][1] == pytest.approx(1.0)
    finally:
        engine.stop()


def test_the_audio_callback_never_frees_a_buffer():
    """A voice's buffer outlives the voice until the worker lets it go: freeing memory is the
    worker's job, never the callback's."""
    engine, _ = marked_engine(offline=True)
    engine.prerender.update()
    engine.gate(at_frame(1, 0))
    played = weakref.ref(engine.prerender.ready[1])
    engine.cv(2, 1.0)
    engine.prerender.update()  # a new impact replaces the playing one
    run_blocks(engine, 200)  # the voice finishes inside the callback
    gc.collect()
    assert engine.voices.active() == 0 and played() is not None
    engine.prerender.update()  # the worker's release pass
    gc.collect()
    assert played() is None


def test_process_allocates_no_array_memory_even_under_a_gate_storm():
    engine, _ = marked_engine(offline=True)
    engine.prerender.update()
    out = np.zeros(BLOCK, np.float32)
    for k in range(20):
        engine.gate(at_frame(1 + k % 2, k * 16))
    engine.process(out)
    peak, _ = traced_allocation(lambda: engine.process(out), 200)
    assert peak < 4096  # a block of float32 is 512 bytes; a copy of a buffer 48 KB


def test_gate_storm_from_two_threads_loses_no_state_and_keeps_playing():
    engine, _ = marked_engine()
    engine.prerender.update()

    def storm(gate):
        for i in range(3000):
            engine.gate(GateEdge(Gate(gate), i % 2 == 0))

    threads = [threading.Thread(target=storm, args=(g,)) for g in (1, 2)]
    out = np.zeros(BLOCK, np.float32)
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        engine.process(out)
    for t in threads:
        t.join()
    for _ in range(100):
        engine.process(out)
    accepted = int(engine.gates.sum())
    assert accepted + engine.ring.dropped == 3000 and len(engine.ring) == 0
    assert engine.voices.active() <= 2 * 4 and np.isfinite(out).all()
    assert not engine.gate_on[1] and not engine.gate_on[2]  # the last edge (off) is what it reads
