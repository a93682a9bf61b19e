"""Notes in the pre-render worker (engine/prerender.py): a note is its gate's impact at another
pitch (1 V/oct); the notes played last stay rendered, a new one is rendered on arrival, and a
flood of new pitches is bounded. The 'model' marks each buffer with the pitch it was asked for."""
import numpy as np
import pytest

from neurorack import descriptors as D
from neurorack.engine.controls import CvAssignment
from neurorack.engine.engine import Engine
from neurorack.engine.prerender import NOTE_CACHE, NOTE_QUEUE
from neurorack.engine.renderers import FunctionRenderer

BLOCK = 128


def pitched_engine():
    renders = []

    def render(traj):
        renders.append(traj)
        audio = np.zeros(4800, np.float32)
        audio[0] = 0.9
        audio[1] = float(traj.curves[0, D.INDEX["pitch"]])
        return audio

    flat = D.Trajectory(np.full((25, 7), 0.5, np.float32), np.zeros(D.TIMBRE_BANDS, np.float32))
    engine = Engine(FunctionRenderer(render), lambda name: flat, "a", "b", block_size=BLOCK)
    engine.prerender.update()
    return engine, renders


def pitch_of(buffer):
    return float(buffer[1])


def test_a_note_renders_its_gates_impact_transposed_one_volt_per_octave():
    engine, _ = pitched_engine()
    played = []
    assert engine.prerender.note(1, 7, played.append) is False  # not rendered yet: on the worker
    engine.prerender.update()
    [buffer] = played
    assert pitch_of(buffer) == pytest.approx(0.5 + CvAssignment("pitch").amount(7 / 12))
    assert pitch_of(buffer) == pytest.approx(0.5 + 7 / 72)  # the 72-semitone axis


def test_the_root_note_is_the_gates_own_impact_and_costs_no_render():
    engine, renders = pitched_engine()
    played = []
    assert engine.prerender.note(2, 0, played.append) is True
    assert played == [engine.prerender.ready[2]] and len(renders) == 2  # the two gates' impacts only


def test_a_repeated_note_costs_no_model_compute():
    engine, renders = pitched_engine()
    played = []
    engine.prerender.note(1, -5, played.append)
    engine.prerender.update()
    count = len(renders)
    assert engine.prerender.note(1, -5, played.append) is True  # at once, from the cache
    engine.prerender.update()
    assert len(renders) == count and played[0] is played[1]


def test_kept_notes_follow_the_controls_and_only_the_last_ones_are_kept():
    engine, renders = pitched_engine()
    for s in range(1, NOTE_CACHE + 3):
        engine.prerender.note(1, s, lambda b: None)
        engine.prerender.update()
    kept = set(engine.prerender.notes)
    assert kept == {(1, s) for s in range(3, NOTE_CACHE + 3)}  # the oldest two dropped
    engine.cv(4, 1.0)  # CV 4 is the pitch: +1 octave on everything
    count = len(renders)
    engine.prerender.update()
    assert len(renders) == count + 2 + NOTE_CACHE  # both gates, then every kept note
    buffer = engine.prerender.notes[(1, 5)][1]
    assert pitch_of(buffer) == pytest.approx(0.5 + (12 + 5) / 72)


def test_a_flood_of_new_pitches_keeps_the_newest_and_counts_the_rest():
    engine, renders = pitched_engine()
    played = []
    for s in range(1, 41):
        engine.prerender.note(1, s, lambda b, s=s: played.append(s))
    engine.prerender.update()
    assert played == list(range(41 - NOTE_QUEUE, 41))
    assert engine.prerender.notes_dropped == 40 - NOTE_QUEUE


def test_a_note_plays_sample_accurately_with_its_velocity_gain():
    engine, _ = pitched_engine()
    engine.prerender.note(1, 0, lambda b: engine.ring.push(1, 300, b, 0.25))
    out = np.zeros(BLOCK * 6, np.float32)
    for k in range(6):
        engine.process(out[k * BLOCK:(k + 1) * BLOCK])
    onset = int(np.flatnonzero(out)[0])
    assert onset == 300 + BLOCK and out[onset] == pytest.approx(0.9 * 0.25 * engine.level)
