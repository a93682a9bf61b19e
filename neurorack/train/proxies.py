"""Differentiable stand-ins for the analysed descriptors, computed on rendered audio in torch.

They follow descriptors.analyze (same windows, frequency range and mappings) closely enough
to say "the render's brightness went up", which is what the consistency loss needs: renders
whose conditioning was moved away from any recording must still show the move. Pitch and
loudness are left out: the synthesiser applies them directly.
"""
from __future__ import annotations

import math

import torch

from .. import descriptors as D

SR = 48000
HOP = SR // D.FRAME_RATE
N_FFT = 4096  # 85 ms, as the analysis's 2048 at 24 kHz
SHORT = 2 * HOP  # 20 ms
MAX_HZ = 12000.0  # the analysis sees 0..12 kHz
CONTROLLED = ("percussivity", "noisiness", "tone_like", "richness", "brightness")


STRIDE = 2  # spectral and periodicity proxies on every second frame: the loss is a mean anyway


def _frames(audio: torch.Tensor, length: int, n: int, hop: int = HOP) -> torch.Tensor:
    padded = torch.nn.functional.pad(audio, (length // 2, length // 2 + hop * n))
    return padded.unfold(-1, length, hop)[:, :n]  # (B, n, length)


def _hold(x: torch.Tensor, n: int) -> torch.Tensor:
    """Every-second-frame values (B, m) back to n frames."""
    return x.repeat_interleave(STRIDE, dim=1)[:, :n]


def spectral(audio: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """Normalised noisiness, richness, brightness (B, n) of 48 kHz audio (B, samples)."""
    window = torch.hann_window(N_FFT, device=audio.device)
    m = -(-n // STRIDE)
    spec = torch.stft(audio, N_FFT, HOP * STRIDE, window=window, center=True, return_complex=True)[..., :m]
    freqs = torch.fft.rfftfreq(N_FFT, 1 / SR).to(audio.device)
    keep = freqs <= MAX_HZ
    power = spec.real[:, keep] ** 2 + spec.imag[:, keep] ** 2  # (B, bins, n)
    mag = torch.sqrt(power + 1e-20)
    f = freqs[keep][None, :, None]
    centroid = (f * mag).sum(1) / (mag.sum(1) + 1e-12)
    p = torch.clamp(power, min=1e-12)
    flatness_db = 10 * (torch.log(p).mean(1) - torch.log(p.mean(1))) / math.log(10)
    band = f >= 40.0
    lf = torch.log2(torch.clamp(f, min=1.0))
    w = (power + 1e-20) * band
    w = w / w.sum(1, keepdim=True)
    mean = (w * lf).sum(1, keepdim=True)
    spread = torch.sqrt(torch.clamp((w * (lf - mean) ** 2).sum(1), min=1e-12))
    scale = D.SCALES
    values = {
        "noisiness": (flatness_db - scale["noisiness"].low) / (scale["noisiness"].high - scale["noisiness"].low),
        "richness": spread / scale["richness"].high,
        "brightness": torch.log(torch.clamp(centroid, min=1.0) / scale["brightness"].low)
        / math.log(scale["brightness"].high / scale["brightness"].low),
    }
    # Clamped like the analysis: below 0 or above 1 the loss has nothing to say (zero gradient).
    return {k: _hold(torch.clamp(v, 0.0, 1.0), n) for k, v in values.items()}


def _analytic_power(audio: torch.Tensor) -> torch.Tensor:
    """|analytic signal|^2 (the Hilbert envelope squared), as scipy.signal.hilbert."""
    n = audio.shape[-1]
    h = torch.zeros(n, device=audio.device)
    h[0] = 1.0
    h[1:(n + 1) // 2] = 2.0
    if n % 2 == 0:
        h[n // 2] = 1.0
    analytic = torch.fft.ifft(torch.fft.fft(audio) * h)
    return analytic.real ** 2 + analytic.imag ** 2


def percussivity(audio: torch.Tensor, n: int) -> torch.Tensor:
    """1 - temporal flatness of the analytic envelope's energy over 16 sub-blocks of 20 ms."""
    envelope = _analytic_power(audio)
    sub = _frames(envelope, SHORT, n).reshape(audio.shape[0], n, 16, -1).mean(-1)
    mean = sub.mean(-1)
    geo = torch.exp(torch.log(sub + 1e-4 * mean.unsqueeze(-1) + 1e-20).mean(-1))
    return torch.clamp(1 - geo / (mean + 1e-20), 0, 1)


def tone_like(audio: torch.Tensor, n: int) -> torch.Tensor:
    """Peak of the unbiased normalised autocorrelation for lags of 0.5 to 25 ms, at 24 kHz as analysed."""
    half = 0.5 * (audio[:, 0::2] + audio[:, 1::2])  # 24 kHz: pairwise means are enough for a period
    sr, length = SR // 2, N_FFT // 2
    frames = _frames(half, length, -(-n // STRIDE), hop=sr * STRIDE // D.FRAME_RATE)
    frames = frames - frames.mean(-1, keepdim=True)
    spec = torch.fft.rfft(frames, n=2 * length)
    r = torch.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=2 * length)[..., : sr // 40 + 1]
    lags = torch.arange(sr // 2000, sr // 40 + 1, device=audio.device)
    unbiased = r[..., lags] * (length / (length - lags))
    return _hold(torch.clamp(unbiased.max(-1).values / (r[..., 0] + 1e-12), 0, 1), n)


def descriptors(audio: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n, 5) in CONTROLLED order."""
    spec = spectral(audio, n)
    values = {"percussivity": percussivity(audio, n), "tone_like": tone_like(audio, n), **spec}
    return torch.stack([values[name] for name in CONTROLLED], dim=-1)
