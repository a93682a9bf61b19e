"""The frame grid that every synthesis block shares, and the small DSP pieces they reuse.

Spectra are float tensors (..., bins, 2) of real and imaginary parts; they
become complex only for the inverse FFT (torch's CPU kernels for complex
elementwise arithmetic are several times slower than for float).

The synthesiser works in the frequency domain: each block adds its frames'
spectra, and one inverse FFT with 50 % overlap-add turns the sum into audio.
Frame j covers samples [j*hop, j*hop + 2*hop) and is centred at (j + 1) * hop;
spectra are built with the time origin at the frame centre (zero-phase), so a
Hann-windowed partial has a real window kernel.
"""
from __future__ import annotations

import numpy as np
import torch

SYNTH_FRAME_RATE = 200  # 5 ms hops: two synthesis frames per descriptor frame
MAX_BAND_HZ = 20000.0


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


def decaying_sum(x: torch.Tensor, log_decay: torch.Tensor, state: torch.Tensor, chunk: int = 128):
    """y[t] = exp(log_decay[t]) * y[t-1] + x[t] along dim 1, starting from y[-1] = state.

    A first-order recurrence solved with cumulative sums (no Python loop per
    frame), in float64 and in chunks so exp(-cumsum) cannot overflow as long as
    log_decay >= -2. Returns (y as x.dtype, last y in float64).
    """
    xs, ls = x.double(), log_decay.double()
    outs = []
    for start in range(0, x.shape[1], chunk):
        cum = torch.cumsum(ls[:, start:start + chunk], dim=1)
        y = torch.exp(cum) * (state.unsqueeze(1) + torch.cumsum(xs[:, start:start + chunk] * torch.exp(-cum), dim=1))
        state = y[:, -1]
        outs.append(y)
    return torch.cat(outs, dim=1).to(x.dtype), state


def mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def band_interpolation(n_bands: int, grid: FrameGrid, low_hz: float = 40.0) -> torch.Tensor:
    """(n_bands, n_bins) matrix: band gains to bin gains, linear between mel-spaced band centres.

    Band centres are fixed in Hz (40 Hz to 20 kHz), not in bins, so a model
    renders the same colour at any sample rate.
    """
    centres = np.linspace(mel(low_hz), mel(MAX_BAND_HZ), n_bands)
    bins = mel(grid.bin_freqs())
    eye = np.eye(n_bands)
    m = np.stack([np.interp(bins, centres, eye[b]) for b in range(n_bands)])
    return torch.tensor(m, dtype=torch.float32)


def band_pooling(n_bands: int, grid: FrameGrid) -> torch.Tensor:
    """(n_bands, n_bins) matrix: weighted mean of bin powers per band (rows sum to 1)."""
    m = band_interpolation(n_bands, grid)
    return m / m.sum(dim=1, keepdim=True).clamp_min(1e-9)


def noise_table(grid: FrameGrid, n_frames: int = 1024, seed: int = 20261121) -> torch.Tensor:
    """Spectra of sqrt-Hann windowed unit white noise, zero-phase framed.

    sqrt-Hann frames at 50 % overlap are power complementary, so shaped noise
    keeps its power through overlap-add. Deterministic: the same every process.
    """
    gen = torch.Generator().manual_seed(seed)
    window = torch.hann_window(grid.n_fft, periodic=True).sqrt()
    frames = torch.randn(n_frames, grid.n_fft, generator=gen) * window
    return torch.view_as_real(torch.fft.rfft(torch.fft.ifftshift(frames, dim=-1), dim=-1))


def centre_shift(grid: FrameGrid) -> torch.Tensor:
    """(-1)^k: multiplying a spectrum by it moves the time origin from the frame start to its centre."""
    return 1.0 - 2.0 * (torch.arange(grid.n_bins) % 2).float()


def power_weights(grid: FrameGrid) -> torch.Tensor:
    """w with sum(w * |X|^2) = (1/n) * sum over the full spectrum: the mean of |X|^2 over all n bins."""
    w = torch.full((grid.n_bins,), 2.0)
    w[0] = w[-1] = 1.0
    return w / grid.n_fft


def frames_to_audio(spectra: torch.Tensor, tail: torch.Tensor, grid: FrameGrid):
    """(B, F, bins, 2) centred spectra -> (B, F*hop) samples and the pending tail (B, hop)."""
    frames = torch.fft.irfft(torch.view_as_complex(spectra.contiguous()), n=grid.n_fft, dim=-1)
    return overlap_add(frames, tail)


def overlap_add(frames: torch.Tensor, tail: torch.Tensor):
    """(B, F, 2*hop) frames at 50 % overlap -> (B, F*hop) samples, and the pending tail (B, hop)."""
    hop = frames.shape[-1] // 2
    previous = torch.cat([tail.unsqueeze(1), frames[:, :-1, hop:]], dim=1)
    out = frames[:, :, :hop] + previous
    return out.reshape(frames.shape[0], -1), frames[:, -1, hop:]
