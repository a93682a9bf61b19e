"""Modal partials: inharmonic sinusoids with per-partial decay, placed straight into spectra.

Each partial k has frequency f0 * ratio_k (ratios monotonic, from stretched to
compressed to harmonic) and an amplitude that follows a one-pole modal decay
driven by an excitation. Instead of a sine per partial per sample, each frame
receives the 2L bins around the partial of a Hann-windowed sinusoid's spectrum
("FFT^-1" additive synthesis, Rodet & Depalle 1992); overlap-add of Hann frames
rebuilds a continuous sinusoid. Cost: K * 2L values per frame, not K * hop.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .frames import decaying_sum
from .grid import SYNTH_FRAME_RATE, FrameGrid
from .scaling import exp_sigmoid, log_range, t60_to_log_decay

KERNEL_HALF_WIDTH = 4  # bins each side of a partial: the first omitted Hann sidelobe is below -50 dB


class ModalPartials(nn.Module):
    def __init__(self, grid: FrameGrid, n_partials: int = 32):
        super().__init__()
        self.grid = grid
        self.n_partials = n_partials
        self.n_raw = 3 * n_partials  # excitation K, decay K, ratio steps K-1, gain 1
        offsets = torch.arange(-KERNEL_HALF_WIDTH + 1, KERNEL_HALF_WIDTH + 1, dtype=torch.float32)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("offset_index", 2.0 * (offsets + KERNEL_HALF_WIDTH), persistent=False)
        self.register_buffer("conj", torch.tensor([1.0, -1.0]), persistent=False)
        self.register_buffer("dc_fold", torch.tensor([2.0, 0.0]), persistent=False)
        # Schroeder phases: partials that start together do not pile up into one spike.
        k = np.arange(n_partials)
        self.register_buffer("start_phase", torch.tensor(np.pi * k * k / n_partials, dtype=torch.float64),
                             persistent=False)
        self.nyquist_guard_hz = grid.sample_rate / 2 - (KERNEL_HALF_WIDTH + 1) * grid.bin_hz

    def initial_state(self, batch: int) -> dict:
        return {
            "phase": self.start_phase.expand(batch, -1).clone(),
            "freq": torch.zeros(batch, self.n_partials, dtype=torch.float64, device=self.start_phase.device),
            "amp": torch.zeros(batch, self.n_partials, dtype=torch.float64, device=self.start_phase.device),
        }

    def get_controls(self, raw: torch.Tensor, f0_hz: torch.Tensor) -> dict:
        """raw (B, F, n_raw), f0 (B, F) Hz -> frequencies (Hz), excitation and per-frame log decay."""
        k = self.n_partials
        excitation, decay, steps, gain = raw[..., :k], raw[..., k:2 * k], raw[..., 2 * k:3 * k - 1], raw[..., -1:]
        step = 0.15 + 1.85 * torch.sigmoid(steps)  # 1.0 is harmonic
        ratios = torch.cat([torch.ones_like(step[..., :1]), 1.0 + torch.cumsum(step, dim=-1)], dim=-1)
        t60 = log_range(decay, 0.02, 12.0)
        return {
            "freqs": f0_hz.unsqueeze(-1) * ratios,
            "excitation": exp_sigmoid(excitation) * exp_sigmoid(gain),
            "log_decay": t60_to_log_decay(t60, SYNTH_FRAME_RATE),
        }

    def get_amplitudes(self, controls: dict, state: dict):
        """Modal amplitudes (B, F, K), their mean power (B, F), and the new amplitude state."""
        amp, amp_state = decaying_sum(controls["excitation"], controls["log_decay"], state["amp"])
        amp = amp * (controls["freqs"] < self.nyquist_guard_hz)  # removed above Nyquist, not aliased
        return amp, 0.5 * (amp * amp).sum(-1), amp_state

    def get_frames(self, controls: dict, amp: torch.Tensor, state: dict):
        """Frequencies and amplitudes (B, F, K) -> centred spectra (B, F, bins, 2), new phase state."""
        freqs = controls["freqs"]
        b, f, k = freqs.shape

        # Phase at each frame centre: trapezoidal integral of frequency, in float64.
        f64 = freqs.double()
        prev = torch.cat([state["freq"].unsqueeze(1), f64[:, :-1]], dim=1)
        step = math.pi * self.grid.hop * (prev + f64) / self.grid.sample_rate
        phase = torch.remainder(state["phase"].unsqueeze(1) + torch.cumsum(step, dim=1), 2 * math.pi)

        # Hann kernel W(x) = n/(2 pi) * sin(pi x) / (x (1 - x^2)) at x = o - frac, o an integer
        # offset from floor(centre). sin(pi (o - frac)) = -(-1)^o sin(pi frac), and the frame-centre
        # shift multiplies bin b = floor + o by (-1)^b: together one sign per partial, (-1)^floor,
        # and one sine per partial, not per bin. frac stays off 0 and 1, where the formula is 0/0
        # (a shift of at most 1e-4 bin).
        valid = freqs < self.nyquist_guard_hz
        centre = torch.where(valid, freqs, torch.zeros_like(freqs)) / self.grid.bin_hz
        base = torch.floor(centre)
        frac = (centre - base).clamp(1e-4, 1.0 - 1e-4)
        parity = 1.0 - 2.0 * torch.remainder(base, 2.0)
        scale = amp * parity * torch.sin(math.pi * frac) * (-self.grid.n_fft / (4 * math.pi))
        x = self.offsets - frac.unsqueeze(-1)  # (B, F, K, 2L)
        rational = 1.0 / (x - x * x * x)
        ph = phase.float()
        re = (scale * torch.cos(ph)).unsqueeze(-1) * rational
        im = (scale * torch.sin(ph)).unsqueeze(-1) * rational
        # Scatter into bins -L+1 .. n_bins-1 (real and imaginary interleaved), then fold the
        # negative bins back: a real signal's spectrum at bin k is P(k) + conj(P(-k)).
        idx = ((base * 2.0).unsqueeze(-1) + self.offset_index).long().reshape(b, f, -1)  # float: int64 adds are slow
        flat = torch.zeros(b, f, 2 * (self.grid.n_bins + KERNEL_HALF_WIDTH), dtype=re.dtype, device=re.device)
        flat.scatter_add_(-1, idx, re.reshape(b, f, -1))
        flat[..., 1:].scatter_add_(-1, idx, im.reshape(b, f, -1))  # imaginary parts sit one place on
        spec = flat.view(b, f, -1, 2)
        neg = spec[:, :, :KERNEL_HALF_WIDTH]  # bins -L .. -1 (index 0 is bin -L, never written)
        spec = spec[:, :, KERNEL_HALF_WIDTH:].clone()
        fold = neg.flip(2) * self.conj
        spec[:, :, 1:KERNEL_HALF_WIDTH + 1] += fold
        spec[:, :, 0] *= self.dc_fold
        return spec, {"phase": phase[:, -1], "freq": f64[:, -1]}
