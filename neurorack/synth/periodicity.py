"""tone_like's estimate from a frame's parts, for the knob's solve (knobs.enforce).

The analysis's tone_like is the peak of a frame's normalised autocorrelation over lags of
0.5 to 25 ms (descriptors._periodicity). An autocorrelation is its power spectrum's cosine
transform, so it can be estimated from the controls, as the other knobs' measures are: a
partial of power p at f gives p cos(2 pi f tau); a synthesis bin's noise, spread evenly over
its bin_hz, gives its power times cos(2 pi f tau) sinc(bin_hz tau). Noise that spreads over
many bins decorrelates within a few lags; partials do not.

The noise's level is solved: more noise is less periodic wherever the noise's own
autocorrelation peaks lower than the rest's, as on a snare or a bright impact. Where the noise
holds its power below a few hundred hertz (a kick's), it reads periodic itself, and more of it
cannot lower tone_like: there its colour is whitened first (knobs._solve_tone).

Written for numpy and torch alike (``xp``), in float64, as knobs.py.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .. import descriptors as D
from .xp import take_along

TOP_HZ = D.ANALYSIS_SR / 2
# A partial's cosine at lag c + l is cos(c) cos(l) - sin(c) sin(l): made at 24 coarse lags and 25
# fine ones, then summed over the partials by a matrix product, in place of a cosine per
# partial per lag (589 lags: a 25-frame head's solve took 2.4 times the other knobs' then).
FINE_LAGS = 25


def lag_tables(bin_freqs: np.ndarray, bin_hz: float) -> dict:
    """The analysis's lags, split as coarse + fine (seconds), and each synthesis bin's noise
    autocorrelation at every lag."""
    low, high = D.PERIODICITY_LAGS
    n = high + 1 - low
    lags = np.arange(low, high + 1) / D.ANALYSIS_SR
    bins = np.cos(2 * math.pi * bin_freqs[:, None] * lags) * np.sinc(bin_hz * lags)
    coarse = (low + FINE_LAGS * np.arange(-(-n // FINE_LAGS))) / D.ANALYSIS_SR
    return {"tone_coarse_lags": coarse, "tone_fine_lags": np.arange(FINE_LAGS) / D.ANALYSIS_SR,
            "tone_bin_lags": bins}


class Periodicity:
    """A frame's estimated aperiodicity (1 - tone_like) as its noise's power is scaled by exp(x).

    part_freqs, part_power (..., K): the partials as shaped; moving (..., bins): the noise's
    power per bin, with the tail it feeds; fixed (..., bins): the click's and the rest of the
    tail's, all within the analysed band. Aperiodicity rises with the noise where the noise is
    the less periodic part, so the solve (knobs._newton) sees a rising measure, as the flatness's."""

    def __init__(self, xp, t, part_freqs, part_power, moving, fixed):
        self.xp = xp
        self.bin_lags = bin_lags = t["tone_bin_lags"]
        power = part_power * (part_freqs <= TOP_HZ)
        w = (2 * math.pi) * part_freqs[..., :, None]  # (..., K, 1)
        coarse, fine = w * t["tone_coarse_lags"], w * t["tone_fine_lags"]
        p = power[..., :, None]
        partials = ((p * xp.cos(coarse)).swapaxes(-1, -2) @ xp.cos(fine)
                    - (p * xp.sin(coarse)).swapaxes(-1, -2) @ xp.sin(fine))  # (..., coarse, fine)
        partials = partials.reshape(partials.shape[:-2] + (-1,))[..., :bin_lags.shape[-1]]
        self.fixed = fixed @ bin_lags + partials
        self.moving = moving @ bin_lags
        self.fixed_0 = power.sum(-1)[..., None] + fixed.sum(-1)[..., None] + 1e-30
        self.moving_0 = moving.sum(-1)[..., None] + 1e-30
        # ln of the rest's power over the noise's: the bounds of the noise's level (NOISE_RANGE)
        self.relative = xp.log(self.fixed_0 / self.moving_0)

    def moved(self, moving):
        """The same frame with other noise (..., bins): the partials' part is not made again."""
        other = copy.copy(self)
        other.moving, other.moving_0 = moving @ self.bin_lags, moving.sum(-1)[..., None] + 1e-30
        other.relative = self.xp.log(self.fixed_0 / other.moving_0)
        return other

    def __call__(self, x):
        """-> 1 - the estimated tone_like at x, and its slope in x."""
        xp = self.xp
        lam = xp.exp(x)
        total = self.fixed_0 + lam * self.moving_0
        r = self.fixed + lam * self.moving
        peak = xp.argmax(r, -1)[..., None]
        tone = take_along(xp, r, peak) / total
        slope = lam * (take_along(xp, self.moving, peak) - tone * self.moving_0) / total
        return 1.0 - tone, -slope
