"""The torch side of the frame grid: recurrences and overlap-add (grid.py has the tables).

Spectra are float tensors (..., bins, 2) of real and imaginary parts; they
become complex only for the inverse FFT (torch's CPU kernels for complex
elementwise arithmetic are several times slower than for float).

The synthesiser works in the frequency domain: each block adds its frames'
spectra, and inverse FFTs with 50 % overlap-add turn the sums into audio (one for the partials
and click, one for the noise and reverb, which are windowed after it: grid.noise_table).
"""
from __future__ import annotations

import torch

from .grid import SYNTH_FRAME_RATE, FrameGrid  # noqa: F401  (re-exported: the synth's grid)


def table(array) -> torch.Tensor:
    """A fixed table of grid.py (numpy) as a float32 tensor."""
    return torch.from_numpy(array).float()


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


def frames_to_audio(spectra: torch.Tensor, noise: torch.Tensor, window: torch.Tensor, tail: torch.Tensor, grid: FrameGrid):
    """(B, F, bins, 2) centred spectra of the partials and click, and of the noise and reverb
    (windowed by `window` after their inverse FFT: grid.noise_table) -> (B, F*hop) samples and the
    pending tail (B, hop)."""
    def inverse(x):
        return torch.fft.irfft(torch.view_as_complex(x.contiguous()), n=grid.n_fft, dim=-1)

    return overlap_add(inverse(spectra) + inverse(noise) * window, tail)


def overlap_add(frames: torch.Tensor, tail: torch.Tensor):
    """(B, F, 2*hop) frames at 50 % overlap -> (B, F*hop) samples, and the pending tail (B, hop)."""
    hop = frames.shape[-1] // 2
    previous = torch.cat([tail.unsqueeze(1), frames[:, :-1, hop:]], dim=1)
    out = frames[:, :, :hop] + previous
    return out.reshape(frames.shape[0], -1), frames[:, -1, hop:]
