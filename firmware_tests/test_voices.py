
import numpy as np
import pytest
from conftest import traced_allocation

from neurorack.engine.voices import VoicePool


def run(pool, blocks, block=128):
    out, chunks = np.zeros(block, np.float32), []
    for _ in range(blocks):
        pool.mix(out)
        chunks.append(out.copy())
    return np.concatenate(chunks)


def test_a_voice_starts_at_its_sample_offset_and_ends_cleanly():
    pool = VoicePool(voices=4, block_size=128)
    impact = np.linspace(1.0, 0.1, 300).astype(np.float32)
    pool.trigger(impact, offset=37)
    audio = run(pool, 5)
    assert np.all(audio[:37] == 0) and np.allclose(audio[37:337], impact) and np.all(audio[337:] == 0)
    assert pool.active() == 0


def test_voices_sum_and_a_fifth_steals_the_oldest_with_a_5ms_fade():
    pool = VoicePool(voices=4, block_size=128, fade_samples=240)
    tone = np.full(48000, 0.2, np.float32)
    for _ in range(4):
        pool.trigger(tone)
    assert np.allclose(run(pool, 1), 0.8)
    pool.trigger(tone)  # no free voice: the oldest fades out while this one starts
    audio = run(pool, 4)
    assert pool.stolen == 1 and pool.active() == 4
    assert np.allclose(audio[240:], 0.8)  # after 5 ms: four voices again
    assert np.max(np.abs(np.diff(audio))) < 0.2 / 240 + 1e-6  # the fade is a ramp, not a step: no click


def test_retriggering_at_any_rate_stays_bounded():
    pool = VoicePool(voices=4, block_size=128, fade_samples=240)
    hit = np.linspace(0.25, 0.0, 24000).astype(np.float32)
    out = np.zeros(128, np.float32)
    peak = 0.0
    for i in range(1000):  # a gate every 128 samples (375 Hz), then every block twice
        pool.trigger(hit, offset=0)
        if i % 2:
            pool.trigger(hit, offset=64)
        pool.mix(out)
        peak = max(peak, float(np.max(np.abs(out))))
        assert pool.active() <= 8
    assert np.isfinite(peak) and peak <= 8 * 0.25 + 1e-6


def mixed_allocation(pool_class):
    """(peak, growth) in bytes of traced memory over 100 mixes; numpy's buffers are traced."""
    pool = pool_class(voices=4, block_size=1024)
    hit = np.linspace(0.25, 0.0, 200000).astype(np.float32)
    for k in range(6):
        pool.trigger(hit, offset=k * 10)  # playing and releasing voices both
    out = np.zeros(1024, np.float32)
    return traced_allocation(lambda: pool.mix(out), 100)


def test_mixing_allocates_no_array_memory():
    class WithTemporary(VoicePool):  # what the check must catch: one block-sized temporary
        def mix(self, out):
            super().mix(out)
            out += out * 0.0

    peak, growth = mixed_allocation(VoicePool)
    assert peak < 2048 and growth < 1024  # only the small view objects that slicing makes
    assert mixed_allocation(WithTemporary)[0] > 4096  # a 4 KB block temporary shows


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        VoicePool(voices=0)
