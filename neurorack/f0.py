"""The one f0 measure: yin for the period, arbitrated by the spectrum where yin is unsure, and
refined to the nearest spectral peak. The analysis's pitch (descriptors.analyze) and the pitch
benches (bench/cv.f0_per_frame) both read f0 here.

yin (de Cheveigné and Kawahara 2002, as librosa computes it) takes the first trough of its
cumulative mean normalised difference d' under a threshold (0.1). Where no trough is under it,
librosa takes the lowest, and under noise the lowest is often a long lag that the tone's period
only divides: a 600 Hz partial over noise and a 100 Hz pulse train read 100 Hz, although the
spectrum's strongest peak is at 600 Hz. There (only), the troughs within ``SLACK`` of the lowest
are yin's candidates, and the one whose frequency carries the strongest spectral peak wins if it
stands ``ARBITER_DB`` over the lowest's: yin proposes periods, the spectrum says which is heard.
(An octave cost instead, preferring short lags, read the impacts' booms 11–25 times too high in
their noise; docs/benchmarks.md, Control, "The pitch analysis".) Where a trough is under the threshold
the period is librosa.yin's.
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.1  # yin's absolute threshold (librosa's default)
SLACK = 0.3  # yin's candidates where none is under it: troughs within this of the lowest d'
ARBITER_DB = 6.0  # a candidate replaces the lowest where its spectral peak is this much stronger
REFINE_CENTS = 60  # yin's own error is a fraction of this


class PeakSpectra:
    """Magnitude spectra of some frames (centred every `hop` samples), on a periodic Hann window of
    `frame` samples zero-padded four times: where yin's candidates are arbitrated and its period
    refined to a peak. On 170 ms at 24 kHz a C1's second harmonic lies six bins away, and a
    parabola through the log magnitude reads a sine within a fifth of a cent from C1."""

    def __init__(self, y: np.ndarray, rate: int, hop: int, frames: np.ndarray, frame: int):
        self.n_fft = 4 * frame
        self.bin_hz = rate / self.n_fft
        frames = np.asarray(frames, dtype=np.int64)
        self.frames = frames[frames * hop < len(y)]
        self.row = {int(m): r for r, m in enumerate(self.frames)}
        window = np.hanning(frame + 1)[:frame]  # periodic, as librosa's
        padded = np.pad(np.asarray(y, np.float64), frame // 2)
        blocks = padded[self.frames[:, None] * hop + np.arange(frame)] * window
        self.magnitude = np.abs(np.fft.rfft(blocks, self.n_fft, axis=1))

    def _span(self, hz):
        """The bins within REFINE_CENTS of `hz` (an array or one value), at least two either side."""
        centre = np.asarray(hz, np.float64) / self.bin_hz
        low = np.minimum(np.floor(centre * 2 ** (-REFINE_CENTS / 1200)), np.round(centre) - 2).astype(np.int64)
        high = np.maximum(np.ceil(centre * 2 ** (REFINE_CENTS / 1200)), np.round(centre) + 2).astype(np.int64)
        return low, high

    def levels(self, m: int, hz: np.ndarray) -> np.ndarray:
        """The strongest magnitude within REFINE_CENTS of each of `hz` in frame m (0 outside the spectrum)."""
        spectrum = self.magnitude[self.row[m]]
        low, high = self._span(hz)
        low, high = np.maximum(low, 1), np.minimum(high, len(spectrum) - 1)
        span = low[:, None] + np.arange(max(int((high - low).max(initial=0)) + 1, 1))
        inside = span <= high[:, None]
        return np.where(inside, spectrum[np.where(inside, span, 0)], 0.0).max(axis=1, initial=0.0)

    def refine(self, guess_hz: np.ndarray, within_db: float | None = None) -> np.ndarray:
        """Per frame, the frequency of the spectral peak nearest the guess, within REFINE_CENTS;
        NaN where the frame was not transformed, the guess is NaN, no peak lies inside that span,
        or (given `within_db`) the peak is further than that below the frame's strongest.

        yin finds the period (which partial is the fundamental) and the peak gives its frequency:
        yin alone reads low tones sharp (a 41 Hz sine 16 cents, at 24 kHz with 2048-sample frames:
        the frame holds few periods), and an inharmonic upper partial pulls it."""
        out = np.full(len(guess_hz), np.nan)
        for m in self.frames[self.frames < len(guess_hz)]:
            guess = guess_hz[m]
            if not np.isfinite(guess):
                continue
            spectrum = self.magnitude[self.row[int(m)]]
            low, high = (int(x) for x in self._span(guess))
            if low < 1 or high >= len(spectrum) - 1:
                continue
            k = low + int(np.argmax(spectrum[low:high + 1]))
            if k in (low, high):  # the span's edge: no peak inside it
                continue
            if within_db is not None and spectrum[k] < spectrum.max() * 10 ** (-within_db / 20):
                continue
            a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
            curvature = a - 2 * b + c
            out[m] = (k + (0.5 * (a - c) / curvature if curvature < 0 else 0.0)) * self.bin_hz
        return out


def yin(y: np.ndarray, rate: int, hop: int, frame_length: int, fmin: float, fmax: float,
        spectra: PeakSpectra) -> np.ndarray:
    """f0 (Hz) per centred frame, as librosa.yin (zero-padded, `frame_length`-sample frames), but
    arbitrated by `spectra` on its frames where no trough is under the threshold (module doc)."""
    import librosa

    frames = librosa.util.frame(np.pad(y, frame_length // 2), frame_length=frame_length, hop_length=hop)
    min_period = int(np.floor(rate / fmax))
    max_period = min(int(np.ceil(rate / fmin)), frame_length - 1)
    d = _cumulative_mean_normalized_difference(frames, min_period, max_period)
    trough = librosa.util.localmin(d, axis=0)
    trough[0] = d[0] < d[1]
    lags = min_period + np.arange(len(d))[:, None] + _parabolic_shifts(d)
    under = trough & (d < THRESHOLD)
    found = under.any(axis=0)
    lowest = np.argmin(d, axis=0)
    columns = np.arange(d.shape[1])
    f0 = rate / lags[np.where(found, np.argmax(under, axis=0), lowest), columns]
    for m in spectra.frames[spectra.frames < len(f0)]:
        if found[m]:
            continue
        candidates = np.flatnonzero(trough[:, m] & (d[:, m] <= d[lowest[m], m] + SLACK))
        if len(candidates) < 2:
            continue
        hz = rate / lags[candidates, m]
        levels = spectra.levels(int(m), np.append(hz, f0[m]))  # the candidates', then the lowest's
        best = int(np.argmax(levels[:-1]))
        if levels[best] > levels[-1] * 10 ** (ARBITER_DB / 20):
            f0[m] = hz[best]
    return f0


def _cumulative_mean_normalized_difference(frames: np.ndarray, min_period: int, max_period: int) -> np.ndarray:
    """yin's d' (its equation 8), (max_period - min_period + 1, n_frames), as librosa computes it
    (librosa.yin does not hand it out): d(k) = 2 (r(0) - r(k)) - sum of the first k squares."""
    import librosa

    acf = librosa.autocorrelate(frames, max_size=max_period + 1, axis=0)
    energy = np.cumsum(frames * frames, axis=0)
    d = np.zeros((max_period + 1, frames.shape[1]), frames.dtype)
    d[1:] = 2 * (acf[0:1] - acf[1:max_period + 1]) - energy[:max_period]
    mean = np.cumsum(d[1:], axis=0) / np.arange(1, max_period + 1, dtype=frames.dtype)[:, None]
    return d[min_period:] / (mean[min_period - 1:] + np.finfo(frames.dtype).tiny)


def _parabolic_shifts(d: np.ndarray) -> np.ndarray:
    """The offset of the parabola's optimum through each lag and its neighbours (0 at the ends, and
    where it would leave them), as librosa's."""
    a, b, c = d[:-2], d[1:-1], d[2:]
    curvature = a - 2 * b + c
    half_slope = 0.5 * (c - a)
    shifts = np.zeros_like(d)
    inside = np.abs(half_slope) < np.abs(curvature)
    shifts[1:-1] = np.where(inside, -half_slope / np.where(inside, curvature, 1), 0)
    return shifts
