"""The one f0 measure (f0.py): librosa's yin where a trough is under its threshold; where none
is, the candidate whose frequency the spectrum carries."""
import librosa
import numpy as np
import scipy.signal

from neurorack import descriptors as D
from neurorack import f0

RATE = D.ANALYSIS_SR
HOP = D.HOP


def rms(x):
    return np.sqrt(np.mean(x ** 2))


def partial_over_a_pulse_train(hz=600.0, seconds=1.0, train_db=-6.0, noise_db=-6.0, seed=0):
    """A partial (and its third harmonic) with a click every 10 ms and white noise, each at a
    level below the tone's: as a noisy render turned to 600 Hz, where the clicks are strong."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(2 * np.pi * 3 * hz * t)
    train = np.zeros_like(t)
    train[::HOP] = 1.0
    train = np.convolve(train, np.exp(-np.arange(48) / 8.0))[:len(t)]
    noise = rng.standard_normal(len(t))
    y = tone + train * rms(tone) / rms(train) * 10 ** (train_db / 20) + noise * rms(tone) * 10 ** (noise_db / 20)
    return y.astype(np.float32)


def boom_in_its_noise(hz=45.0, seconds=1.5, noise_db=-3.0, seed=0):
    """A low harmonic tone under low-passed noise (and some white): a cinematic boom."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 6))
    b, a = scipy.signal.butter(2, 400 / (RATE / 2))
    low = scipy.signal.lfilter(b, a, rng.standard_normal(len(t)))
    white = rng.standard_normal(len(t))
    y = tone + low * rms(tone) / rms(low) * 10 ** (noise_db / 20) + white * rms(tone) / rms(white) * 10 ** ((noise_db - 6) / 20)
    return y.astype(np.float32)


def librosa_yin(y):
    return librosa.yin(y, fmin=D.F0_RANGE_HZ[0], fmax=D.F0_RANGE_HZ[1], sr=RATE, frame_length=D.N_FFT, hop_length=HOP)


def arbitrated_yin(y, frames=None):
    n = len(librosa_yin(y))
    spectra = f0.PeakSpectra(y, RATE, HOP, np.arange(n) if frames is None else frames, 2 * D.N_FFT)
    return f0.yin(y, RATE, HOP, D.N_FFT, *D.F0_RANGE_HZ, spectra)


def no_trough_under_the_threshold(y):
    frames = librosa.util.frame(np.pad(y, D.N_FFT // 2), frame_length=D.N_FFT, hop_length=HOP)
    d = f0._cumulative_mean_normalized_difference(frames, RATE // 2000, RATE // 40)
    trough = librosa.util.localmin(d, axis=0)
    trough[0] = d[0] < d[1]
    return ~(trough & (d < f0.THRESHOLD)).any(axis=0)


def within(hz, target, cents):
    return np.abs(1200 * np.log2(hz / target)) < cents


def test_without_spectra_to_arbitrate_the_period_is_librosas_in_every_frame():
    # A noisy signal, most of whose frames have no trough under the threshold: yin's difference
    # function and its picks (first trough under it, else the lowest) are librosa's.
    for y in (partial_over_a_pulse_train(), boom_in_its_noise(), partial_over_a_pulse_train(noise_db=-30)):
        np.testing.assert_allclose(arbitrated_yin(y, frames=np.array([], int)), librosa_yin(y), rtol=1e-4)


def test_a_clear_tone_reads_as_librosas_yin_reads_it_even_with_spectra():
    y = partial_over_a_pulse_train(train_db=-100, noise_db=-40)
    assert not no_trough_under_the_threshold(y)[5:-5].any()
    np.testing.assert_allclose(arbitrated_yin(y), librosa_yin(y), rtol=1e-4)


def test_a_partial_over_noise_and_a_pulse_train_reads_the_partial_not_the_trains_period():
    y = partial_over_a_pulse_train()
    assert no_trough_under_the_threshold(y).mean() > 0.9  # yin is unsure everywhere here
    alone = librosa_yin(y)[5:-5]
    assert np.mean(within(alone, 100.0, 50)) > 0.9  # librosa takes the train's 10 ms period
    assert np.mean(within(arbitrated_yin(y)[5:-5], 600.0, 50)) > 0.95


def test_a_boom_in_its_noise_is_not_read_higher_than_yin_reads_it():
    # Where yin is unsure on a low tone, the spectrum's strongest peak is the tone's own: the
    # arbitration must not take a short noise lag for the period (an octave cost did).
    y = boom_in_its_noise()
    unsure = no_trough_under_the_threshold(y)
    assert unsure.mean() > 0.9
    ours, alone = arbitrated_yin(y), librosa_yin(y)
    assert np.mean(within(ours[unsure], 45.0, 100)) >= max(0.95, np.mean(within(alone[unsure], 45.0, 100)))


def test_the_analysis_reads_a_noisy_partial_turned_to_600_hz_at_600_hz():
    trajectory = D.analyze(partial_over_a_pulse_train(seconds=1.5), RATE)
    pitch = D.to_physical("pitch", trajectory.curves[10:-10, D.INDEX["pitch"]])
    assert np.mean(np.abs(pitch - librosa.hz_to_midi(600.0)) < 0.5) > 0.9
