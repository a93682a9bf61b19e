"""The frame grid every synthesis block shares, and its fixed tables, without torch.

Both synthesisers use these: the torch one (training, the torch backends) and the numpy
one (the torch-free runtime, ``synth/numpy_synth.py``), so the two cannot drift apart in
their constants, band matrices or noise.

Frame j covers samples [j*hop, j*hop + 2*hop) and is centred at (j + 1) * hop; spectra are
built with the time origin at the frame centre (zero-phase), so a Hann-windowed partial has
a real window kernel.
"""
from __future__ import annotations

import numpy as np

SYNTH_FRAME_RATE = 200  # 5 ms hops: two synthesis frames per descriptor frame
MAX_BAND_HZ = 20000.0
NOISE_SEED = 20261121


class FrameGrid:
    """Sample rate, hop, FFT size and bin frequencies of the synthesis frames.

    >>> g = FrameGrid(48000)
    >>> g.hop, g.n_fft, g.n_bins, g.bin_hz
    (240, 480, 241, 100.0)
    """

    def __init__(self, sample_rate: int = 48000):
        if sample_rate % SYNTH_FRAME_RATE:
            raise ValueError(f"sample rate {sample_rate} is not a multiple of {SYNTH_FRAME_RATE} Hz")
        self.sample_rate = int(sample_rate)
        self.hop = self.sample_rate // SYNTH_FRAME_RATE
        self.n_fft = 2 * self.hop
        self.n_bins = self.hop + 1
        self.bin_hz = self.sample_rate / self.n_fft

    def bin_freqs(self) -> np.ndarray:
        return np.arange(self.n_bins) * self.bin_hz


def mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def band_interpolation(n_bands: int, grid: FrameGrid, low_hz: float = 40.0) -> np.ndarray:
    """(n_bands, n_bins) float32 matrix: band gains to bin gains, linear between mel-spaced centres.

    Band centres are fixed in Hz (40 Hz to 20 kHz), not in bins, so a model renders the same
    colour at any sample rate.
    """
    centres = np.linspace(mel(low_hz), mel(MAX_BAND_HZ), n_bands)
    bins = mel(grid.bin_freqs())
    eye = np.eye(n_bands)
    return np.stack([np.interp(bins, centres, eye[b]) for b in range(n_bands)]).astype(np.float32)


def band_pooling(n_bands: int, grid: FrameGrid) -> np.ndarray:
    """(n_bands, n_bins) float32 matrix: weighted mean of bin powers per band (rows sum to 1)."""
    m = band_interpolation(n_bands, grid)
    return (m / np.maximum(m.sum(axis=1, keepdims=True), 1e-9)).astype(np.float32)


def torch_normal_stream(seed: int, n: int) -> np.ndarray:
    """The first n values (n a multiple of 16) that ``torch.randn`` draws from a CPU generator
    seeded with `seed`, without torch: MT19937 seeded as torch seeds it, 24-bit uniforms, and
    Box-Muller over blocks of 16 (the first 8 uniforms give the radii, the last 8 the angles)
    as torch's normal_fill does. The shipped models were trained on this noise: a decoder learns
    the very frames it heard, and other noise of the same power costs ~0.03 MR-STFT (measured)."""
    bits = np.random.MT19937(0)
    bits._legacy_seeding(seed)  # init_genrand(seed), as std::mt19937 and torch's generator
    uniform = (bits.random_raw(n) & 0xFFFFFF).astype(np.float64).reshape(-1, 16) * 2.0 ** -24
    radius = np.sqrt(-2.0 * np.log(1.0 - uniform[:, :8]))
    theta = 2.0 * np.pi * uniform[:, 8:]
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1).reshape(-1)


def noise_table(grid: FrameGrid, n_frames: int = 1024, seed: int = NOISE_SEED) -> np.ndarray:
    """(n_frames, bins, 2) float32 spectra of unit white noise frames, zero-phase framed, scaled
    by sqrt(1/2) so that each bin's mean power is what a sqrt-Hann windowed frame's was (hop).

    The noise is windowed after it is filtered (noise_window, in the synthesisers' overlap-add):
    a filter applied to an already windowed frame spreads it to the frame's edges, which then
    splatter, and no noise fell faster than 6 dB per octave whatever the filter asked (9 to 18 dB
    per octave measured 6; windowed after, 18 measures 11.6, the limit a sine window's sidelobes
    set). For a flat filter the two are the same frames (within 5e-7). The same in every process
    and in both synthesisers.
    """
    n = grid.n_fft
    frames = torch_normal_stream(seed, n_frames * n).reshape(n_frames, n) * np.sqrt(0.5)
    spectra = np.fft.rfft(np.fft.ifftshift(frames, axes=-1), axis=-1)
    return np.stack([spectra.real, spectra.imag], axis=-1).astype(np.float32)


def noise_window(grid: FrameGrid) -> np.ndarray:
    """(n_fft,) float32: the window the filtered noise frames take before overlap-add, sqrt(2) x
    a periodic sqrt-Hann: power complementary at 50 % overlap, so shaped noise keeps its power."""
    n = grid.n_fft
    return (np.sqrt(2.0) * np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))).astype(np.float32)


def centre_shift(grid: FrameGrid) -> np.ndarray:
    """(-1)^k: multiplying a spectrum by it moves the time origin from the frame start to its centre."""
    return (1.0 - 2.0 * (np.arange(grid.n_bins) % 2)).astype(np.float32)


def power_weights(grid: FrameGrid) -> np.ndarray:
    """w with sum(w * |X|^2) = (1/n) * sum over the full spectrum: the mean of |X|^2 over all n bins."""
    w = np.full(grid.n_bins, 2.0, dtype=np.float32)
    w[0] = w[-1] = 1.0
    return w / grid.n_fft
