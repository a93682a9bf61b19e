"""Statistical late reverb: exponentially decaying noise that follows the dry spectrum.

A late reverberant tail is Gaussian noise whose power in each band decays
exponentially (Polack's model). Here the tail's band power integrates the dry
signal's band power through a per-band one-pole decay, and is realised with
noise frames that are independent of the dry noise. Cheap (no convolution),
differentiable, and streamable: its state is one power value per band.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import descriptors as D
from .frames import decaying_sum, table
from .grid import FrameGrid, band_interpolation, band_pooling
from .scaling import exp_sigmoid, log_range, t60_to_log_decay

DESCRIPTOR_RATE = D.FRAME_RATE


class StatisticalReverb(nn.Module):
    def __init__(self, grid: FrameGrid, n_bands: int = 8):
        super().__init__()
        self.grid = grid
        self.n_bands = n_bands
        self.n_raw = n_bands + 1  # decay time per band, wet gain
        # Pools |X|^2 from interleaved (re, im) pairs: each bin's row appears twice.
        pool = table(band_pooling(n_bands, grid)).T.repeat_interleave(2, dim=0) / grid.hop
        self.register_buffer("pool", pool.contiguous(), persistent=False)
        self.register_buffer("interp", table(band_interpolation(n_bands, grid)).repeat_interleave(2, dim=1), persistent=False)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.n_bands, dtype=torch.float64, device=self.pool.device)

    def get_controls(self, raw: torch.Tensor) -> dict:
        t60 = log_range(raw[..., :-1], 0.1, 8.0)
        return {"log_decay": t60_to_log_decay(t60, DESCRIPTOR_RATE, power=True), "wet": exp_sigmoid(raw[..., -1:], 0.5)}

    def get_frames(self, controls: dict, dry: torch.Tensor, noise_frames: torch.Tensor, state: torch.Tensor):
        """Controls (B, T, .), dry spectra (B, F, bins, 2), unit noise spectra (F, bins, 2), F a multiple
        of T -> reverb spectra (B, F, bins, 2), new state. The tail's power moves at the control rate
        and is shared by the synthesis frames of each control frame: it changes slowly anyway."""
        b, t = controls["wet"].shape[:2]
        # Noise frames have E|N|^2 = hop per bin, so |dry|^2 / hop is power in noise-gain units.
        squares = (dry * dry).view(b, t, -1, dry.shape[2] * 2).mean(dim=2)
        tail, state = decaying_sum((squares @ self.pool) * controls["wet"], controls["log_decay"], state)
        gain = torch.sqrt(tail @ self.interp + 1e-12)  # (B, T, 2 * bins), interleaved like the spectra
        wet = noise_frames.view(t, -1, gain.shape[-1]) * gain.unsqueeze(2)
        return wet.view(b, -1, noise_frames.shape[1], 2), state
