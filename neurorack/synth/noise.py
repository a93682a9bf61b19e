"""Filtered noise: white noise frames shaped by band gains on a mel-spaced grid, windowed after."""
from __future__ import annotations

import torch
from torch import nn

from .frames import table
from .grid import FrameGrid, band_interpolation, centre_shift, noise_table, noise_window, power_weights
from .scaling import exp_sigmoid


class FilteredNoise(nn.Module):
    def __init__(self, grid: FrameGrid, n_bands: int = 32, table_frames: int = 1024):
        super().__init__()
        self.grid = grid
        self.n_raw = n_bands + 1  # band gains, overall gain
        self.table_frames = table_frames
        # Band gains to per-bin gains, each bin's column twice: the gains come out interleaved
        # like the (re, im) spectra they multiply, which avoids a slow broadcast.
        self.register_buffer("interp", table(band_interpolation(n_bands, grid)).repeat_interleave(2, dim=1), persistent=False)
        frames = table(noise_table(grid, table_frames)) * table(centre_shift(grid)).unsqueeze(-1)
        # Stored twice over, so that any run of up to table_frames frames is a slice, not a gather.
        self.register_buffer("table", torch.cat([frames, frames]), persistent=False)
        self.register_buffer("window", table(noise_window(grid)), persistent=False)  # after the filter: grid.noise_table
        self.register_buffer("power_weights", table(power_weights(grid)).repeat_interleave(2) / 2, persistent=False)

    def get_controls(self, raw: torch.Tensor) -> dict:
        """Per-bin magnitudes of the noise filter, (B, T, 2 * bins), each repeated for re and im."""
        return {"magnitude": (exp_sigmoid(raw[..., :-1]) @ self.interp) * exp_sigmoid(raw[..., -1:])}

    def frames_of_noise(self, frame_index: torch.Tensor, n_frames: int, offset: int = 0) -> torch.Tensor:
        """Unit noise spectra (n_frames, bins, 2) for absolute frames frame_index + offset onwards."""
        start = int(frame_index + offset) % self.table_frames
        if n_frames <= self.table_frames:
            return self.table[start:start + n_frames]
        return self.table[(start + torch.arange(n_frames, device=self.table.device)) % self.table_frames]

    def get_power(self, controls: dict) -> torch.Tensor:
        """Expected mean power (B, T) of the shaped noise."""
        mag = controls["magnitude"]
        return (mag * mag * self.power_weights).sum(-1)

    def bin_power(self, controls: dict) -> torch.Tensor:
        """Expected mean power of the shaped noise in each bin, (B, T, bins)."""
        mag = controls["magnitude"][..., ::2]
        return mag * mag * self.power_weights[::2] * 2

    def get_frames(self, controls: dict, noise: torch.Tensor, gain: torch.Tensor):
        """Noise spectra (F, bins, 2), gain (B, T, F // T) -> spectra (B, F, bins, 2); F a multiple of T."""
        mag = controls["magnitude"]
        b, t, width = mag.shape
        shaped = noise.view(t, -1, width) * (mag.unsqueeze(2) * gain.unsqueeze(-1))
        return shaped.view(b, -1, width // 2, 2)
