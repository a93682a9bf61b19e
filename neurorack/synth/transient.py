"""Transient: a filtered, exponentially decaying click at a frame centre.

The frame grid smooths onsets over one hop (5 ms); the click gives impacts back
their sharp attack. ImpactSynth adds it to the frame whose centre sits on a
descriptor frame's time, so it lands unwindowed and on time.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .frames import table
from .grid import FrameGrid, band_interpolation, centre_shift, power_weights
from .scaling import exp_sigmoid, log_range


class Transient(nn.Module):
    def __init__(self, grid: FrameGrid, n_bands: int = 16):
        super().__init__()
        self.grid = grid
        self.n_raw = n_bands + 2  # spectral shape, gain, decay time
        # The frame-centre shift rides on the band-to-bin matrix.
        self.register_buffer("interp", table(band_interpolation(n_bands, grid) * centre_shift(grid)), persistent=False)
        theta = 2 * math.pi * torch.arange(grid.n_bins, dtype=torch.float64) / grid.n_fft
        self.register_buffer("cos", torch.cos(theta).float(), persistent=False)
        self.register_buffer("sin", torch.sin(theta).float(), persistent=False)
        self.register_buffer("alternating", table(centre_shift(grid)), persistent=False)
        # Mean square over one frame of n_fft samples = sum(|X|^2 * w) / n_fft.
        self.register_buffer("power_weights", table(power_weights(grid)) / grid.n_fft, persistent=False)

    def get_controls(self, raw: torch.Tensor) -> dict:
        shape = exp_sigmoid(raw[..., :-2]) @ self.interp
        return {"shape": shape * exp_sigmoid(raw[..., -2:-1]), "decay_s": log_range(raw[..., -1:], 2e-4, 8e-3)}

    def get_frames(self, controls: dict):
        """-> spectra (B, F, bins, 2) of one click per frame, and its mean power over one frame in
        each bin (B, F, bins)."""
        rho = torch.exp(-1.0 / (controls["decay_s"] * self.grid.sample_rate))  # (B, F, 1)
        # sum_{n < hop} (rho z)^n with z = exp(-i theta) = (1 - rho^hop (-1)^k) / (1 - rho z),
        # written out in real arithmetic.
        numerator = controls["shape"] * (1.0 - torch.exp(self.grid.hop * torch.log(rho)) * self.alternating)
        denominator = 1.0 - 2.0 * rho * self.cos + rho * rho
        q = numerator / denominator
        spectra = torch.stack([q * (1.0 - rho * self.cos), q * (-rho * self.sin)], dim=-1)
        # |1 - rho z|^2 = denominator, so |click|^2 = numerator^2 / denominator.
        return spectra, q * numerator * self.power_weights
