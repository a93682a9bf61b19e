"""Shaping a sound by its handles, varying it, and saving a morph (sounds/shape.py)."""
import os

import numpy as np
import pytest

from neurorack import descriptors as D
from neurorack.sounds.library import SoundLibrary
from neurorack.sounds.match import nearest
from neurorack.sounds.morph import morph
from neurorack.sounds.shape import HANDLES, handles, reshape, vary


@pytest.fixture(scope="module")
def factory():
    return [s for s in SoundLibrary(os.devnull + "-none").sounds() if s.factory]


def close(handle, a, b):
    return abs(a - b) <= max(0.011, 0.04 * abs(a))  # a frame (10 ms), or 4 %


@pytest.mark.parametrize("steps", [-3, 3])
@pytest.mark.parametrize("handle", HANDLES, ids=lambda h: h.key)
def test_each_handle_moves_to_its_new_value_and_leaves_the_others(factory, handle, steps):
    for sound in factory:
        now = handles(sound.trajectory)
        target = handle.stepped(now.get(handle.key), steps)
        after = handles(reshape(sound.trajectory, now.with_value(handle.key, target)))
        assert close(handle, target, after.get(handle.key)), (sound.name, handle.key, target, after)
        for other in HANDLES:
            if other is not handle:
                assert close(other, now.get(other.key), after.get(other.key)), (sound.name, handle.key, other.key)


def test_handles_as_they_are_change_nothing(factory):
    for sound in factory:
        same = reshape(sound.trajectory, handles(sound.trajectory))
        assert np.allclose(same.curves, sound.trajectory.curves, atol=1e-6)
        assert np.array_equal(same.timbre, sound.trajectory.timbre)


def test_a_longer_attack_and_decay_lengthen_the_sound_and_stay_within_the_longest(factory):
    sub = next(s for s in factory if s.name == "Sub Boom").trajectory
    h = handles(sub)
    longer = reshape(sub, h.with_value("attack", 0.3).with_value("decay", h.decay * 2))
    assert longer.n_frames > sub.n_frames + 0.3 * D.FRAME_RATE
    assert handles(longer).attack == pytest.approx(0.3, abs=0.011)
    longest = reshape(sub, h.with_value("decay", 1e6))  # clamped to the handle's range and MAX_FRAMES
    assert longest.n_frames <= D.MAX_FRAMES


def test_a_pitch_drop_glides_down_over_the_decay(factory):
    ring = next(s for s in factory if s.name == "Glass Ring").trajectory
    before = handles(ring)
    target = before.pitch_drop + 6.0  # half an octave more: the curve stays inside the pitch scale
    dropped = reshape(ring, before.with_value("pitch_drop", target))
    assert handles(dropped).pitch_drop == pytest.approx(target, abs=0.05)
    glide = dropped.curves[:, D.INDEX["pitch"]] - ring.curves[:, D.INDEX["pitch"]]
    peak = int(np.argmax(ring.curves[:, D.INDEX["loudness"]]))
    assert np.all(glide[:peak + 1] == 0) and np.all(np.diff(glide) <= 1e-7)  # from the peak on, down
    assert glide[-1] == pytest.approx(-6.0 / 72, abs=1e-4)


def test_vary_is_repeatable_and_stays_near_the_sound(factory):
    for sound in factory:
        for seed in range(3):
            a, b = vary(sound.trajectory, seed), vary(sound.trajectory, seed)
            assert np.array_equal(a.curves, b.curves) and np.array_equal(a.timbre, b.timbre)
            assert not np.array_equal(a.curves, vary(sound.trajectory, seed + 100).curves)
            assert nearest(a, factory, top=1)[0].name == sound.name  # nearer it than any other sound
    assert np.array_equal(vary(factory[0].trajectory, 5, amount=0.0).timbre, factory[0].trajectory.timbre)


def test_a_morph_saved_as_a_sound_is_the_morph(factory, tmp_path):
    a, b = factory[0], factory[1]
    library = SoundLibrary(tmp_path)
    half = morph(a.trajectory, b.trajectory, 0.5)
    library.add("Half", half, {"morph": [a.name, b.name, 0.5]})
    again = SoundLibrary(tmp_path).get("half")
    assert np.allclose(again.trajectory.curves, half.curves, atol=1e-6) and again.meta["morph"][2] == 0.5
