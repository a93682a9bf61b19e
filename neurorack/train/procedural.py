"""A procedural impact corpus the project may use freely: struck modal objects, noise bursts,
pitch-dropping booms, and layered cinematic hits, each with an optional synthetic room.

Deterministic: sound i of a corpus depends only on (seed, i).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 48000

# Modal frequency ratios of ideal objects (Fletcher & Rossing).
MODE_FAMILIES = {
    "string": lambda n, rng: np.arange(1, n + 1) * np.sqrt(1 + rng.uniform(0, 4e-4) * np.arange(1, n + 1) ** 2),
    "membrane": lambda n, rng: np.array([1.0, 1.594, 2.136, 2.296, 2.653, 2.918, 3.156, 3.501, 3.600, 3.652,
                                         4.060, 4.154, 4.229, 4.601, 4.832, 4.903, 5.131, 5.412, 5.673, 5.938])[:n],
    "bar": lambda n, rng: ((2 * np.arange(1, n + 1) + 1) / 3.0112) ** 2 * (1 + rng.normal(0, 0.01, n)),
    "plate": lambda n, rng: np.sort(1 + np.cumsum(rng.uniform(0.2, 1.2, n)) - rng.uniform(0.2, 1.2)),
    "bell": lambda n, rng: np.array([0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011, 4.166, 5.433, 6.796,
                                     8.215, 9.704, 11.25, 12.85, 14.5])[:n],
}
KINDS = ("modal", "noise_burst", "boom", "layered")


def envelope_decay(n: int, t60: float, attack_s: float = 0.0005) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    env = np.exp(-6.9078 * t / t60)
    attack = max(1, int(attack_s * SAMPLE_RATE))
    env[:attack] *= np.linspace(0, 1, attack)
    return env


def modal_hit(rng: np.random.Generator, n: int) -> np.ndarray:
    family = rng.choice(list(MODE_FAMILIES))
    n_modes = int(rng.integers(4, 17))
    ratios = MODE_FAMILIES[family](n_modes, rng)
    f0 = float(np.exp(rng.uniform(np.log(60), np.log(1500))))
    freqs = f0 * ratios / ratios[0]
    keep = freqs < 0.45 * SAMPLE_RATE
    freqs = freqs[keep]
    base_t60 = float(np.exp(rng.uniform(np.log(0.08), np.log(3.0))))
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    brightness = rng.uniform(0.3, 1.5)
    for i, f in enumerate(freqs):
        t60 = base_t60 / (1 + rng.uniform(0.2, 1.5) * i) ** 0.7  # higher modes die sooner
        amp = (i + 1) ** (-brightness) * rng.uniform(0.3, 1.0)
        out += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * envelope_decay(n, t60)
    return out + 0.3 * click(rng, n)


def click(rng: np.random.Generator, n: int) -> np.ndarray:
    length = int(rng.uniform(0.001, 0.01) * SAMPLE_RATE)
    c = np.zeros(n)
    c[:length] = rng.normal(0, 1, length) * np.exp(-np.arange(length) / (length / 4))
    return c


def noise_burst(rng: np.random.Generator, n: int) -> np.ndarray:
    from scipy import signal

    noise = rng.normal(0, 1, n)
    low, high = sorted(np.exp(rng.uniform(np.log(80), np.log(16000), 2)))
    high = max(high, low * 1.5)
    sos = signal.butter(2, [low, min(high, 0.45 * SAMPLE_RATE)], btype="band", fs=SAMPLE_RATE, output="sos")
    shaped = signal.sosfilt(sos, noise)
    return shaped * envelope_decay(n, float(np.exp(rng.uniform(np.log(0.03), np.log(1.5)))), rng.uniform(0.0003, 0.03))


def boom(rng: np.random.Generator, n: int) -> np.ndarray:
    f_start = rng.uniform(80, 400)
    f_end = rng.uniform(28, 70)
    drop = rng.uniform(0.02, 0.6)
    t = np.arange(n) / SAMPLE_RATE
    freq = f_end + (f_start - f_end) * np.exp(-t / drop)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    harmonics = sum(rng.uniform(0, 0.5) / k * np.sin(k * phase) for k in (2, 3))
    body = (np.sin(phase) + harmonics) * envelope_decay(n, rng.uniform(0.4, 3.5), rng.uniform(0.0005, 0.005))
    return body + rng.uniform(0.05, 0.5) * click(rng, n)


def room(rng: np.random.Generator, dry: np.ndarray) -> np.ndarray:
    """Exponentially decaying noise impulse response, darker as it decays."""
    from scipy import signal

    t60 = float(np.exp(rng.uniform(np.log(0.2), np.log(3.0))))
    length = min(len(dry), int(t60 * SAMPLE_RATE))
    ir = rng.normal(0, 1, length) * envelope_decay(length, t60, 0.002)
    ir = signal.sosfilt(signal.butter(1, rng.uniform(2000, 12000), fs=SAMPLE_RATE, output="sos"), ir)
    wet = signal.fftconvolve(dry, ir)[: len(dry)]
    wet *= np.sqrt(np.sum(dry ** 2) / (np.sum(wet ** 2) + 1e-12))
    return dry + rng.uniform(0.05, 0.6) * wet


def impact(seed: int, index: int) -> tuple[np.ndarray, str]:
    """One impact (mono float32 at 48 kHz, peak between -12 and -1 dBFS) and its kind."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    n = int(rng.uniform(0.8, 3.5) * SAMPLE_RATE)
    if kind == "modal":
        y = modal_hit(rng, n)
    elif kind == "noise_burst":
        y = noise_burst(rng, n)
    elif kind == "boom":
        y = boom(rng, n)
    else:
        parts = [boom(rng, n), noise_burst(rng, n), modal_hit(rng, n)]
        y = sum(p / (np.max(np.abs(p)) + 1e-9) * rng.uniform(0.2, 1.0) for p in parts)
    if rng.random() < 0.6:
        y = room(rng, y)
    y = y / (np.max(np.abs(y)) + 1e-12) * 10 ** (rng.uniform(-12, -1) / 20)
    fade = int(0.01 * SAMPLE_RATE)
    y[-fade:] *= np.linspace(1, 0, fade)
    return y.astype(np.float32), kind


def write_corpus(out_dir, count: int, seed: int = 0, progress=None) -> list[Path]:
    from ..fileio import write_wav

    out_dir = Path(out_dir)
    paths = []
    for i in range(count):
        y, kind = impact(seed, i)
        path = out_dir / f"{kind}_{seed}_{i:05d}.wav"
        write_wav(path, y, SAMPLE_RATE)
        paths.append(path)
        if progress:
            progress(i + 1)
    return paths
