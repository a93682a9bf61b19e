"""The torch side of the frame grid: recurrences and overlap-add (grid.py has the tables).

Spectra are float tensors (..., bins, 2) of real and imaginary parts; they
become complex only for the inverse FFT (torch's CPU kernels for complex
elementwise arithmetic are several times slower than for float).

The synthesiser works in the frequency domain: each block adds its frames'
spectra, and one inverse FFT with 50 % overlap-add turns the sum into audio.
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
