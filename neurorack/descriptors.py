"""The seven descriptor curves that condition the generator, and their analysis.

Every curve is sampled at ``FRAME_RATE`` frames per second (frame m is centred
at m / FRAME_RATE seconds) and normalised to [0, 1] by a fixed mapping from a
physical unit (see ``SCALES`` and docs/descriptors.md). The mapping is the same
for every file, so a value means the same thing everywhere, and it is
invertible: ``to_physical`` and ``from_physical``.

A per-sound *timbre code* (``TIMBRE_BANDS`` numbers: the sound's long-term
spectral envelope, level-independent) travels beside the curves.

>>> from neurorack.descriptors import to_physical
>>> float(to_physical("pitch", 0.5))   # MIDI note 60, middle C
60.0

Analysis needs librosa (the ``train`` extra); it is imported lazily so that the
runtime on the module, which only renders, does not pay for it.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import f0
from .errors import DescriptorError, SilentAudioError

log = logging.getLogger(__name__)

NAMES = ("loudness", "percussivity", "noisiness", "tone_like", "richness", "brightness", "pitch")
INDEX = {name: i for i, name in enumerate(NAMES)}
FRAME_RATE = 100
ANALYSIS_SR = 24000
HOP = ANALYSIS_SR // FRAME_RATE  # 240 samples, 10 ms
N_FFT = 2048  # spectral descriptors: 85 ms window, 11.7 Hz bins
PERIODICITY_LAGS = (ANALYSIS_SR // 2000, ANALYSIS_SR // 40)  # tone_like's lags in samples: 0.5 to 25 ms
F0_RANGE_HZ = (40.0, 2000.0)  # yin's search (from 30 Hz it takes sub-octaves of inharmonic rings for their period)
SUB_F0_HZ = 30.0  # and below it, where a tone is that low (the pitch scale starts at C1, 32.7 Hz)
SHORT_WIN = 480  # loudness and percussivity: 20 ms window
TIMBRE_BANDS = 16
# The longest trajectory anything reads, analyses or renders: 30 s (an impact is a few seconds).
# It bounds memory: a render holds ~40 KB per frame (130 MB here), an analysis ~7 MB per second.
MAX_SECONDS = 30
MAX_FRAMES = MAX_SECONDS * FRAME_RATE + 1  # analysis gives one frame more than the seconds (centred frames)
SILENCE_DB = -80.0  # peak below this: nothing to analyse


@dataclass(frozen=True)
class Scale:
    unit: str
    low: float
    high: float
    log: bool = False  # geometric rather than linear between low and high

    def to_physical(self, x):
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        if self.log:
            return self.low * (self.high / self.low) ** x
        return self.low + x * (self.high - self.low)

    def from_physical(self, v):
        v = np.asarray(v, dtype=np.float64)
        if self.log:
            x = np.log(np.maximum(v, 1e-12) / self.low) / math.log(self.high / self.low)
        else:
            x = (v - self.low) / (self.high - self.low)
        return np.clip(x, 0.0, 1.0)


SCALES = {
    "loudness": Scale("dBFS (frame RMS)", -80.0, 0.0),
    "percussivity": Scale("ratio (1 - temporal flatness of the 20 ms envelope)", 0.0, 1.0),
    "noisiness": Scale("dB (spectral flatness)", -60.0, 0.0),
    "tone_like": Scale("ratio (normalised autocorrelation peak)", 0.0, 1.0),
    "richness": Scale("octaves (power-weighted spread of log-frequency)", 0.0, 4.0),
    "brightness": Scale("Hz (spectral centroid)", 50.0, 12000.0, log=True),
    "pitch": Scale("MIDI note (yin f0)", 24.0, 96.0),
}


def to_physical(name: str, x):
    """Normalised value(s) in [0, 1] to the descriptor's physical unit."""
    return SCALES[name].to_physical(x)


def from_physical(name: str, v):
    """Physical value(s) to normalised [0, 1] (clipped)."""
    return SCALES[name].from_physical(v)


@dataclass
class Trajectory:
    """Descriptor curves (T, 7), normalised, plus the sound's timbre code."""

    curves: np.ndarray
    timbre: np.ndarray  # (TIMBRE_BANDS,), zeros when unknown
    # How far a control (a CV, a MIDI CC) moves each descriptor in this render, NAMES order; ()
    # for none. Not a sound's property and never saved: the synthesiser lets a moved knob win
    # where two cannot both be met (synth/knobs.py).
    moved: tuple = ()

    @staticmethod
    def turned(*names: str) -> tuple:
        """The `moved` of a render in which these descriptors are turned all the way."""
        unknown = set(names) - set(NAMES)
        if unknown:
            raise ValueError(f"no descriptor named {', '.join(sorted(unknown))}")
        return tuple(1.0 if name in names else 0.0 for name in NAMES)

    @property
    def n_frames(self) -> int:
        return int(self.curves.shape[0])

    @property
    def duration(self) -> float:
        return self.n_frames / FRAME_RATE

    def to_json(self, sample_rate: int) -> dict:
        return {
            "sample_rate": int(sample_rate),
            "frame_rate": FRAME_RATE,
            "names": list(NAMES),
            "descriptors": {n: [round(float(v), 6) for v in self.curves[:, i]] for i, n in enumerate(NAMES)},
            "units": {n: {"unit": s.unit, "min": s.low, "max": s.high, "scale": "log" if s.log else "linear"}
                      for n, s in SCALES.items()},
            "timbre": [round(float(v), 6) for v in self.timbre],
        }


def trajectory_from_array(curves, timbre=None, source: str = "descriptors") -> Trajectory:
    """Validate a (T, 7) array: finite, right width; out-of-range values are clamped with a warning."""
    try:
        arr = np.asarray(curves, dtype=np.float64)
    except (TypeError, ValueError):
        raise DescriptorError(f"{source}: descriptor values must be numbers") from None
    if arr.ndim == 2 and arr.shape[0] > MAX_FRAMES:
        raise DescriptorError(f"{source}: {arr.shape[0]} frames is longer than {MAX_SECONDS} s "
                              f"({MAX_FRAMES} frames), the longest impact neurorack renders")
    if arr.ndim != 2 or arr.shape[1] != len(NAMES):
        raise DescriptorError(f"{source}: expected shape (frames, {len(NAMES)}) in the order "
                              f"{', '.join(NAMES)}; got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise DescriptorError(f"{source}: the trajectory has no frames")
    if not np.all(np.isfinite(arr)):
        bad = [NAMES[i] for i in range(arr.shape[1]) if not np.all(np.isfinite(arr[:, i]))]
        raise DescriptorError(f"{source}: NaN or infinite values in {', '.join(bad)}")
    outside = [NAMES[i] for i in range(arr.shape[1]) if arr[:, i].min() < 0 or arr[:, i].max() > 1]
    if outside:
        log.warning("%s: values outside [0, 1] clamped in %s", source, ", ".join(outside))
    try:
        t = np.zeros(TIMBRE_BANDS) if timbre is None else np.asarray(timbre, dtype=np.float64)
    except (TypeError, ValueError):
        t = np.zeros(0)
    if t.shape != (TIMBRE_BANDS,) or not np.all(np.isfinite(t)):
        raise DescriptorError(f"{source}: 'timbre' must be {TIMBRE_BANDS} finite numbers")
    return Trajectory(np.clip(arr, 0.0, 1.0).astype(np.float32), np.clip(t, -3, 3).astype(np.float32))


def trajectory_from_json(obj: dict, source: str = "descriptors") -> Trajectory:
    """Read the analyse JSON format (see docs/descriptors.md)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("descriptors"), dict):
        raise DescriptorError(f"{source}: not a descriptor file (no 'descriptors' object)")
    rate = obj.get("frame_rate", FRAME_RATE)
    if rate != FRAME_RATE:
        raise DescriptorError(f"{source}: frame_rate {rate} is not supported (expected {FRAME_RATE})")
    curves = obj["descriptors"]
    missing = [n for n in NAMES if n not in curves]
    unknown = [n for n in curves if n not in NAMES]
    if missing or unknown:
        raise DescriptorError(f"{source}: expected the {len(NAMES)} descriptors {', '.join(NAMES)}"
                              + (f"; missing {', '.join(missing)}" if missing else "")
                              + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    lengths = {len(curves[n]) if isinstance(curves[n], list) else -1 for n in NAMES}
    if len(lengths) != 1 or -1 in lengths:
        raise DescriptorError(f"{source}: every descriptor must be a list of the same length")
    if lengths.pop() > MAX_FRAMES:
        raise DescriptorError(f"{source}: longer than {MAX_SECONDS} s ({MAX_FRAMES} frames), "
                              f"the longest impact neurorack renders")
    try:
        arr = np.array([[_number(v) for v in curves[n]] for n in NAMES], dtype=np.float64).T
    except (TypeError, ValueError):
        raise DescriptorError(f"{source}: descriptor values must be numbers") from None
    return trajectory_from_array(arr, obj.get("timbre"), source)


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    return float(value)


def load_trajectory(path) -> Trajectory:
    path = Path(path)
    if not path.exists():
        raise DescriptorError(f"no such file: {path}")
    if path.is_dir():
        raise DescriptorError(f"{path} is a folder, not a descriptor file")
    try:
        obj = json.loads(path.read_text(), parse_constant=lambda c: float("nan"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DescriptorError(f"{path} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    except RecursionError:
        raise DescriptorError(f"{path}: nested too deeply") from None
    except OSError as exc:
        raise DescriptorError(f"cannot read {path}: {exc.strerror or exc}") from None
    return trajectory_from_json(obj, str(path))


# ----------------------------------------------------------------------------- analysis

def analyze(audio: np.ndarray, sample_rate: int) -> Trajectory:
    """Analyse mono audio into normalised descriptor curves and a timbre code.

    Raises SilentAudioError when the peak is below -80 dBFS.
    """
    import warnings

    with warnings.catch_warnings():
        # Clips shorter than one 85 ms window are zero-padded by the centred frames; that is fine.
        warnings.filterwarnings("ignore", message="n_fft=.* is too large for input signal")
        return _analyze(audio, sample_rate)


def _analyze(audio: np.ndarray, sample_rate: int) -> Trajectory:
    import librosa
    import scipy.signal

    from .fileio import resample

    if len(audio) > MAX_SECONDS * sample_rate:
        raise DescriptorError(f"{len(audio) / sample_rate:.0f} s of audio: neurorack analyses at most {MAX_SECONDS} s")
    y = resample(np.asarray(audio, dtype=np.float32), sample_rate, ANALYSIS_SR)
    if y.size == 0 or not np.all(np.isfinite(y)):
        raise DescriptorError("audio is empty or not finite")
    if np.max(np.abs(y)) < 10 ** (SILENCE_DB / 20):
        raise SilentAudioError("the audio is silent (peak below -80 dBFS): nothing to analyse")
    n = 1 + len(y) // HOP

    # Short frames (20 ms) for level and envelope shape.
    rms = librosa.feature.rms(y=y, frame_length=SHORT_WIN, hop_length=HOP, center=True)[0][:n]
    loud_db = 20 * np.log10(np.maximum(rms, 1e-9))
    percussivity = _percussivity(y, n, scipy.signal)

    # Long frames (85 ms) for spectral shape and pitch.
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True))[:, :n]
    power = mag ** 2
    freqs = librosa.fft_frequencies(sr=ANALYSIS_SR, n_fft=N_FFT)
    flat_db = 10 * np.log10(np.maximum(librosa.feature.spectral_flatness(S=mag, power=2.0, amin=1e-12)[0], 1e-12))
    centroid = librosa.feature.spectral_centroid(S=mag, freq=freqs)[0]
    spread = _log_frequency_spread(power, freqs)
    periodicity = _periodicity(y, n, librosa)

    # Frames far below the sound's peak carry no reliable shape: hold the nearest
    # audible value, and say "not percussive, not tonal" there.
    audible = loud_db >= min(max(-70.0, loud_db.max() - 50.0), loud_db.max())  # the loudest frame always counts
    tonal = audible & (periodicity > 0.5)
    pitch_midi = librosa.hz_to_midi(np.maximum(_f0(y, tonal, n), 1.0))
    if tonal.any():
        pitch_midi = _hold_nearest(pitch_midi, tonal)
    else:
        pitch_midi = np.full(n, np.median(pitch_midi[audible]))

    curves = np.stack([
        from_physical("loudness", loud_db),
        np.where(audible, percussivity, 0.0),
        from_physical("noisiness", _hold_nearest(flat_db, audible)),
        np.where(audible, np.clip(periodicity, 0, 1), 0.0),
        from_physical("richness", _hold_nearest(spread, audible)),
        from_physical("brightness", _hold_nearest(centroid, audible)),
        from_physical("pitch", pitch_midi),
    ], axis=1)
    if not np.all(np.isfinite(curves)):  # never hand NaN on: renders and JSON files would carry it
        raise DescriptorError("analysis produced non-finite descriptors")
    return Trajectory(curves.astype(np.float32), timbre_code(power, librosa))


def _f0(y: np.ndarray, tonal: np.ndarray, n: int) -> np.ndarray:
    """f0 per frame (f0.py: yin, arbitrated and refined by the spectrum on the tonal frames, the
    only ones the pitch curve keeps; elsewhere yin's alone)."""
    spectra = f0.PeakSpectra(y, ANALYSIS_SR, HOP, np.flatnonzero(tonal), 2 * N_FFT)
    yin = f0.yin(y, ANALYSIS_SR, HOP, N_FFT, *F0_RANGE_HZ, spectra)[:n]
    refined = spectra.refine(yin)
    hz = np.where(np.isfinite(refined), refined, yin)
    # A tone below 40 Hz reads at yin's floor: there (only), a second search from 30 Hz, taken
    # where a peak stands at the period it finds, within 12 dB of the frame's strongest. (One
    # search from 30 Hz everywhere takes sub-octaves of inharmonic rings for their period.)
    at_floor = tonal & (yin < F0_RANGE_HZ[0] * 2 ** (2 / 12))
    if at_floor.any():
        deep = f0.yin(y, ANALYSIS_SR, HOP, N_FFT, SUB_F0_HZ, F0_RANGE_HZ[1], spectra)[:n]
        sub = spectra.refine(np.where(at_floor & (deep < F0_RANGE_HZ[0]), deep, np.nan), within_db=12.0)
        hz = np.where(np.isfinite(sub), sub, hz)
    return hz


def timbre_code(power: np.ndarray, librosa) -> np.ndarray:
    """Long-term spectral envelope in 16 mel bands, in units of 20 dB around its own mean.

    Level-independent (the mean is removed), so it says 'what colour', never 'how loud'.
    """
    fb = librosa.filters.mel(sr=ANALYSIS_SR, n_fft=N_FFT, n_mels=TIMBRE_BANDS, fmin=40.0, fmax=11000.0, norm=None)
    bands_db = 10 * np.log10(np.maximum(fb @ power.sum(axis=1), 1e-12))
    code = (bands_db - bands_db.mean()) / 20.0
    return np.clip(code, -3.0, 3.0).astype(np.float32)


def _percussivity(y, n, signal_mod) -> np.ndarray:
    """1 - temporal flatness of the Hilbert envelope's energy in 16 sub-blocks of a 20 ms window.

    A click concentrates its energy in one sub-block (near 1); a steady tone or
    broadband noise spreads it evenly (near 0). The envelope, not the waveform,
    so that a low sine's own oscillation does not count as a transient.
    """
    env = np.abs(signal_mod.hilbert(y.astype(np.float64))) ** 2
    padded = np.pad(env, (SHORT_WIN // 2, SHORT_WIN // 2 + HOP * n))
    idx = np.arange(n)[:, None] * HOP + np.arange(SHORT_WIN)[None, :]
    sub = padded[idx].reshape(n, 16, SHORT_WIN // 16).mean(axis=2)
    mean = sub.mean(axis=1)
    geo = np.exp(np.log(sub + 1e-4 * mean[:, None] + 1e-20).mean(axis=1))
    return np.clip(1.0 - geo / (mean + 1e-20), 0.0, 1.0)


def _periodicity(y, n, librosa) -> np.ndarray:
    """Peak of the unbiased normalised autocorrelation for lags of 0.5 to 25 ms (40 Hz to 2 kHz)."""
    frames = librosa.util.frame(np.pad(y, (N_FFT // 2, N_FFT // 2)), frame_length=N_FFT, hop_length=HOP)[:, :n]
    frames = frames - frames.mean(axis=0, keepdims=True)
    lag_min, lag_max = PERIODICITY_LAGS
    r = librosa.autocorrelate(frames, max_size=lag_max + 1, axis=0)
    unbiased = r[lag_min:] * (N_FFT / (N_FFT - np.arange(lag_min, lag_max + 1)))[:, None]
    return np.max(unbiased, axis=0) / np.maximum(r[0], 1e-12)


def _log_frequency_spread(power, freqs) -> np.ndarray:
    keep = freqs >= 40.0
    lf = np.log2(freqs[keep])[:, None]
    p = power[keep] + 1e-20
    w = p / p.sum(axis=0, keepdims=True)
    mean = (w * lf).sum(axis=0)
    return np.sqrt(np.maximum((w * (lf - mean) ** 2).sum(axis=0), 0.0))


def _hold_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid frames by the nearest valid frame's value."""
    if valid.all() or not valid.any():
        return values
    idx = np.flatnonzero(valid)
    pos = np.searchsorted(idx, np.arange(len(values)))
    left = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    right = idx[np.clip(pos, 0, len(idx) - 1)]
    frames = np.arange(len(values))
    nearest = np.where(np.abs(frames - left) <= np.abs(right - frames), left, right)
    return values[nearest]
