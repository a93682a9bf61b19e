"""How near a render is to a recording: the MR-STFT distance every quality figure uses.

auraloss's MultiResolutionSTFTLoss with its defaults, both signals mono at 22.05 kHz and of the
original's length, as the Neurorack prototype was scored (docs/benchmarks.md, Quality). Needs the
'train' extra (auraloss, torch), imported when called.
"""
from __future__ import annotations

import numpy as np

EVAL_SR = 22050


def mrstft_distance(reference: np.ndarray, candidate: np.ndarray) -> float:
    import auraloss
    import torch

    n = len(reference)
    candidate = np.pad(candidate[:n], (0, max(0, n - len(candidate))))
    # auraloss's largest FFT is 2048 with reflect padding: clips shorter than that (a 40 ms hi-hat)
    # get the same silence appended to both signals.
    shortfall = max(0, 2048 - n)
    reference, candidate = np.pad(reference, (0, shortfall)), np.pad(candidate, (0, shortfall))
    loss = auraloss.freq.MultiResolutionSTFTLoss()
    with torch.no_grad():
        return float(loss(torch.from_numpy(candidate.astype(np.float32))[None, None],
                          torch.from_numpy(reference.astype(np.float32))[None, None]))


def resynthesis_distance(generator, audio: np.ndarray, sample_rate: int, trajectory) -> tuple[float, float]:
    """(MR-STFT of the render of `trajectory` against `audio`, MR-STFT of silence against it)."""
    from ..fileio import resample

    rendered = generator.render(trajectory, sample_rate=48000)
    reference = resample(audio, sample_rate, EVAL_SR)
    candidate = resample(rendered, 48000, EVAL_SR)
    return mrstft_distance(reference, candidate), mrstft_distance(reference, np.zeros_like(reference))
