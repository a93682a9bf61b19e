"""The benches' one f0 measure (bench/cv.f0_per_frame), checked on tones of known frequency."""
import librosa
import numpy as np
import pytest

from neurorack.bench.cv import F0_RANGE_HZ, YIN_FRAME, f0_per_frame

RATE = 48000
SECONDS = np.arange(2 * RATE) / RATE


def cents(measured, hz):
    return 1200 * np.log2(measured / hz)


@pytest.mark.parametrize("hz", [32.7, 43.7, 80.3, 220.0, 1000.0, 2000.0])
def test_a_sine_is_read_within_a_fifth_of_a_cent_from_c1_to_c7(hz):
    f0 = f0_per_frame(np.sin(2 * np.pi * hz * SECONDS), RATE, 200)
    assert np.all(np.abs(cents(f0[20:180], hz)) < 0.2)


def test_it_reads_the_low_sines_that_yin_alone_reads_sharp():
    # yin's 4096-sample frame holds under four periods of 33 Hz: it reads about 20 cents sharp,
    # which is as much as the 1 V/oct target's tolerance four times over.
    y = np.sin(2 * np.pi * 33.0 * SECONDS)
    yin = librosa.yin(y, fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=RATE, frame_length=YIN_FRAME, hop_length=480)
    assert np.median(cents(yin[20:180], 33.0)) > 10
    assert abs(np.median(cents(f0_per_frame(y, RATE, 200)[20:180], 33.0))) < 0.2


def test_an_inharmonic_upper_partial_does_not_pull_the_fundamental():
    hz = 37.0
    y = np.sin(2 * np.pi * hz * SECONDS) + 0.5 * np.sin(2 * np.pi * 2 * hz * SECONDS) + 0.3 * np.sin(2 * np.pi * 2.785 * hz * SECONDS)
    assert abs(np.median(cents(f0_per_frame(y, RATE, 200)[20:180], hz))) < 0.5


def test_quiet_frames_have_no_f0():
    y = np.sin(2 * np.pi * 110.0 * SECONDS)
    y[RATE:] *= 1e-3  # 60 dB down: below the 30 dB the measure keeps
    f0 = f0_per_frame(y, RATE, 200)
    assert np.isfinite(f0[20:90]).all() and np.isnan(f0[110:190]).all()
