"""What the synthesiser enforces of three knobs: brightness, noisiness, percussivity.

Loudness is enforced per frame (the dry mix is scaled to the requested RMS). These three are
enforced per descriptor frame too, on the decoder's spectra before the loudness gain, each to
within a band of its setting (inside it the decoder's render stands):

- **brightness**: a spectral tilt, amplitude gain 2^(a v) with v the octaves from 1 kHz, on
  partials, noise and click alike; a is solved (Newton) so that the estimated centroid
  (magnitude-weighted, as the analysis takes it) comes within the band;
- **noisiness**: the noise's level relative to the rest, solved so that the spectral flatness
  of the mix, estimated at the analysis's resolution, comes within the band; above 0.5 the
  noise's own colour and its share of the tilt also fade out (at 1: white);
- **percussivity**: a floor on the click's share of each frame's power, from a model of the
  analysis's envelope measure (two clicks among the 16 sub-blocks of its 20 ms window).

The estimates are computed from the controls (each partial's power at its frequency, each
bin's noise and click power, the reverb tail they feed at its steady level), not from audio:
a few passes over K + bins numbers per frame. Richness and tone_like stay learned. Written
once for numpy and torch (``xp`` is either module, arrays in float64): the two synthesisers
share it, so they cannot disagree; torch calls it without gradient (the solved gains are
constants to the network, as the loudness gain's target is).
"""
from __future__ import annotations

import math

import numpy as np

from .. import descriptors as D

LN2 = math.log(2.0)
ANALYSIS_TOP_HZ = D.ANALYSIS_SR / 2  # the analysis sees nothing above this
LOW_HZ = 40.0  # richness counts from here (descriptors._log_frequency_spread)
TILT = (-1.0, 4.0)  # a: amplitude gain per octave, in doublings: -6 to +24 dB/oct (darker tilts make a
# dominant low partial splatter, and the analysis then hears the render brighter, not darker)
TILT_STEPS = 6
# Each knob is met to within a band (in its own normalised units): inside it the decoder's own
# render stands (it learned the recordings, and the estimates here are approximate); outside
# it the knob pulls the render to the band's edge. 0.2: narrower bands (0.1 measured) undo
# what the decoder does for richness and tone_like, which move the spectrum's tilt and noise
# too (richness's span fell from 0.16 to 0.09, tone_like's from 0.40 to 0.28).
BRIGHTNESS_BAND = 0.2 * math.log(D.SCALES["brightness"].high / D.SCALES["brightness"].low)  # in ln Hz
NOISINESS_BAND = 0.2 * (D.SCALES["noisiness"].high - D.SCALES["noisiness"].low) * math.log(10.0) / 10.0  # ln flatness
PERCUSSIVITY_BAND = 0.25
NOISE_RANGE = (1e-6, 1e3)  # the noise's power relative to the rest's, at most
PARTIAL_BINS = 3  # analysis bins a partial's main lobe fills (Hann, 2048 points)
NOISE_STEPS = 6
MIN_SLOPE = 0.1  # of the flatness's log per log of noise power (pure noise: 1)
WHITEN_FROM = 0.5
FLOOR = 10 ** (-56 / 10)  # every analysis bin's floor relative to the mean power: a rendered sine measures -56 dB
EULER_GAMMA = 0.5772156649015329  # E[log] of an exponential variable is log(mean) - gamma
CLICK_BLOCKS = 2  # sub-blocks the clicks of one analysis window fill
MAX_CLICK_GAIN = 1e14  # power: a decoder may have switched its click off (to -140 dB)


def _percussivity_of_share(share, blocks: int = CLICK_BLOCKS):
    """The analysis's percussivity (1 - temporal flatness over 16 sub-blocks of 20 ms) of a frame
    whose power is a steady body plus the clicks (one per 10 ms) holding `share` of it, spread
    over `blocks` of the sub-blocks."""
    body = (1.0 - share) / 16.0
    click = share / blocks + body
    return 1.0 - 16.0 * np.exp((blocks * np.log(click) + (16 - blocks) * np.log(np.maximum(body, 1e-300))) / 16.0)


def _share_table(n: int = 201) -> np.ndarray:
    """The click share that gives each percussivity 0, 1/(n-1), ... 1 (its inverse, tabulated)."""
    shares = np.linspace(0.0, 1.0 - 1e-9, 20001)
    return np.interp(np.linspace(0.0, 1.0, n), _percussivity_of_share(shares), shares)


SHARE_TABLE = _share_table()


class KnobTables:
    """The fixed numbers of one frame grid (numpy; torch's synthesiser keeps them as buffers)."""

    def __init__(self, grid, n_reverb_bands: int = 8):
        from .grid import MAX_BAND_HZ, band_interpolation, band_pooling, mel

        f = grid.bin_freqs()
        self.bin_hz = float(grid.bin_hz)
        self.n_bins = int(grid.n_bins)
        self.bin_v = _octaves(np, f)  # the gain's variable at each bin
        self.bin_freqs = f
        self.in_band = (f <= ANALYSIS_TOP_HZ).astype(np.float64)
        # Analysis bins (24 kHz, 2048 points) per synthesis bin, and a noise bin's magnitude
        # weight in the centroid relative to a partial's amplitude (a partial of amplitude A
        # sums to A * N / 2 over its Hann lobe; noise of power P over bin_hz gives Rayleigh
        # magnitudes of mean sqrt(pi/4 * P / bin_hz * sr/2 * 3N/8) in each analysis bin).
        n = D.N_FFT
        self.per_bin = grid.bin_hz / (D.ANALYSIS_SR / n)
        self.noise_magnitude = self.per_bin * math.sqrt(math.pi / 4 * D.ANALYSIS_SR / 2 * 3 * n / 8 / grid.bin_hz) / (n / 2)
        self.counts = self.per_bin * self.in_band
        self.n_analysis_bins = float(self.counts.sum())
        self.share_table = SHARE_TABLE
        # The reverb's bands (reverb.py): pooling of bin powers, and the same hat functions
        # evaluated at any frequency (centres uniform in mel), for the partials.
        self.reverb_pool = band_pooling(n_reverb_bands, grid).T.astype(np.float64)  # (bins, bands)
        self.reverb_interp = band_interpolation(n_reverb_bands, grid).astype(np.float64)  # (bands, bins)
        self.reverb_centres = np.linspace(mel(40.0), mel(MAX_BAND_HZ), n_reverb_bands)
        self.reverb_width = float(self.reverb_centres[1] - self.reverb_centres[0]) if n_reverb_bands > 1 else 1.0
        self.reverb_norm = 1.0 / np.maximum(band_interpolation(n_reverb_bands, grid).astype(np.float64).sum(1), 1e-9)
        self.n_band = int((f <= ANALYSIS_TOP_HZ).sum())  # bins 0 .. n_band - 1 are analysed
        self.reverb_interp_band = np.ascontiguousarray(self.reverb_interp[:, :self.n_band])

    def arrays(self) -> dict:
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}


def _octaves(xp, f):
    """Octaves from 1 kHz of frequencies clamped to the analysed band (the shape's variable)."""
    return xp.log(f.clip(LOW_HZ, ANALYSIS_TOP_HZ) / 1000.0) / LN2


def _cat(xp, a, b):
    return xp.concatenate([a, xp.broadcast_to(b, a.shape[:-1] + b.shape[-1:])], axis=-1)


def _index(xp, x):
    return x.long() if hasattr(x, "long") else x.astype(np.int64)


def _take(xp, x, idx):
    return xp.take_along_dim(x, idx, -1) if hasattr(xp, "take_along_dim") else xp.take_along_axis(x, idx, -1)


def enforce(xp, t: dict, curves, part_freqs, part_power, noise_power, click_power, reverb_ratio):
    """The gains that make a frame meet its brightness, noisiness and percussivity.

    curves (..., 7) normalised; part_freqs, part_power (..., K) in Hz and mean power (0 for a
    partial that is off or above Nyquist); noise_power, click_power (..., bins) per bin;
    reverb_ratio (..., reverb bands): the tail's steady power per unit of dry power. All float64.
    Returns amplitude gains for the partials (..., K), for the click's bins (..., bins: the
    tilt), for the noise's bins (..., bins: tilt, colour and level), and the click's extra
    amplitude gain (..., 1).
    """
    scale = D.SCALES["brightness"]
    brightness_hz = scale.low * (scale.high / scale.low) ** curves[..., 5:6]
    share = _click_share(xp, t, curves[..., 1:2])
    noisiness = curves[..., 2:3]
    flat_db = D.SCALES["noisiness"].low + (D.SCALES["noisiness"].high - D.SCALES["noisiness"].low) * noisiness
    part_v = _octaves(xp, part_freqs)
    seen = (part_freqs <= ANALYSIS_TOP_HZ) * 1.0
    # The solves see the analysed band only (bins up to 12 kHz; above, every weight is 0).
    nb = t["n_band"]
    tb = {**t, **{k: t[k][:nb] for k in ("bin_v", "bin_freqs", "in_band", "counts")}, "n_bins": nb}
    v = _cat(xp, part_v, tb["bin_v"])
    freqs = _cat(xp, part_freqs.clip(0.0, ANALYSIS_TOP_HZ), tb["bin_freqs"])
    # The tail follows the dry band by band, so it is estimated once, untilted, in two parts:
    # what the noise feeds (moves with the noise's gain) and what partials and click feed.
    hats = _reverb_hats(xp, t, part_freqs)

    def tail(partials, bins):
        pooled = (partials[..., :, None] * hats).sum(-2) + bins @ t["reverb_pool"]
        return (reverb_ratio * pooled) @ t["reverb_interp_band"]  # in the band only

    # Above WHITEN_FROM the noise's own colour and its share of the tilt fade out (at 1: white):
    # coloured or tilted noise cannot be as flat as the upper settings ask. There noisiness
    # takes precedence over brightness (a dark sound made very noisy gets brighter).
    whiten = ((noisiness - WHITEN_FROM) / (1.0 - WHITEN_FROM)).clip(0.0, 1.0)
    log_noise = xp.log(noise_power + 1e-30)
    log_mean = (t["counts"] * log_noise).sum(-1)[..., None] / t["n_analysis_bins"]
    colour_gain = xp.exp(-0.5 * whiten * (log_noise - log_mean))
    noise_power = noise_power * colour_gain ** 2
    noise_tail = tail(part_power * 0.0, noise_power)
    fixed_tail = tail(part_power, click_power)
    noise_band, click_band = noise_power[..., :nb], click_power[..., :nb]

    def magnitudes(noise_gain, click_gain):
        broad = (noise_band + noise_tail) * noise_gain ** 2 + click_band * click_gain ** 2 + fixed_tail
        return _cat(xp, xp.sqrt(2.0 * part_power) * seen, tb["noise_magnitude"] * xp.sqrt(broad) * tb["in_band"])

    ones = xp.ones_like(curves[..., :1])
    tilt = _solve_tilt(xp, v, freqs, magnitudes(ones, ones), brightness_hz, xp.zeros_like(ones), TILT_STEPS)
    noise_gain = _solve_noise(xp, tb, tilt, tilt * (1.0 - whiten), part_v, part_freqs, part_power, noise_band + noise_tail,
                              click_band + fixed_tail, flat_db, ones, NOISE_STEPS)
    click_gain = _click_gain(xp, t, tilt, part_v, part_power, noise_power * noise_gain ** 2, click_power, share)
    tilt = _solve_tilt(xp, v, freqs, magnitudes(noise_gain, click_gain), brightness_hz, tilt, TILT_STEPS // 2)
    noise_tilt = tilt * (1.0 - whiten)
    noise_gain = _solve_noise(xp, tb, tilt, noise_tilt, part_v, part_freqs, part_power, noise_band + noise_tail,
                              click_band * click_gain ** 2 + fixed_tail, flat_db, noise_gain, NOISE_STEPS // 2)
    noise_bin_gain = xp.exp(LN2 * noise_tilt * t["bin_v"]) * colour_gain * noise_gain
    return xp.exp(LN2 * tilt * part_v), xp.exp(LN2 * tilt * t["bin_v"]), noise_bin_gain, click_gain


def reverb_ratio(xp, wet, log_decay):
    """The reverb's steady tail power per unit of dry power in each band (reverb.py's one-pole
    sum: wet / (1 - decay)), capped where a very long tail would make it huge."""
    return (wet / (1.0 - xp.exp(log_decay)).clip(1e-2, None)).clip(0.0, 100.0)


def _reverb_hats(xp, t, freqs):
    """(..., K, bands): each partial's weight in each reverb band's pooled power."""
    m = xp.log(1.0 + freqs / 700.0) * (2595.0 / math.log(10.0))
    m = m.clip(float(t["reverb_centres"][0]), float(t["reverb_centres"][-1]))
    return (1.0 - xp.abs(m[..., None] - t["reverb_centres"]) / t["reverb_width"]).clip(0.0, 1.0) * t["reverb_norm"]


def _solve_tilt(xp, v, freqs, magnitude, centroid_hz, tilt, steps):
    """Newton on the tilt a (amplitude gain 2^(a v)) so the magnitude-weighted centroid meets
    centroid_hz. d centroid / d a = ln 2 * Cov(f, v) >= 0: the centroid rises with the tilt."""
    ln_target = xp.log(centroid_hz.clip(60.0, 11000.0))
    magnitude = magnitude / (magnitude.sum(-1)[..., None] + 1e-300)
    ln_target = _into_band(xp, xp.log(_centroid(xp, magnitude, freqs, v, tilt)), ln_target, BRIGHTNESS_BAND)
    for _ in range(steps):
        m = magnitude * xp.exp(LN2 * tilt * v)
        total = m.sum(-1)[..., None] + 1e-300
        c = (m * freqs).sum(-1)[..., None] / total + 1e-9
        slope = LN2 * ((m * freqs * v).sum(-1)[..., None] / total - c * (m * v).sum(-1)[..., None] / total) / c
        step = (xp.log(c) - ln_target) / slope.clip(1e-3, None)
        tilt = (tilt - step.clip(-1.0, 1.0)).clip(*TILT)
    return tilt


def _centroid(xp, magnitude, freqs, v, tilt):
    m = magnitude * xp.exp(LN2 * tilt * v)
    return (m * freqs).sum(-1)[..., None] / (m.sum(-1)[..., None] + 1e-300) + 1e-9


def _into_band(xp, current, target, width):
    """The nearest value to `current` within `width` of `target`: where the decoder already
    renders close to the setting, the knob leaves its render alone."""
    return xp.minimum(xp.maximum(current, target - width), target + width)


def _solve_noise(xp, t, tilt, noise_tilt, part_v, part_freqs, part_power, noise_power, click_power, flat_db, gain, steps):
    """Newton on the noise's log power gain so the estimated spectral flatness meets flat_db.

    Flatness = geometric / arithmetic mean of the power over the analysis's bins (0..12 kHz):
    each synthesis bin stands for `per_bin` analysis bins of its noise (and click) power, and
    each partial below 12 kHz fills PARTIAL_BINS of them on top of the noise there."""
    bin_g2 = xp.exp(2 * LN2 * tilt * t["bin_v"])
    part_g2 = xp.exp(2 * LN2 * tilt * part_v)
    seen = (part_freqs <= ANALYSIS_TOP_HZ) * 1.0
    noise = noise_power * xp.exp(2 * LN2 * noise_tilt * t["bin_v"]) * t["in_band"] / t["per_bin"] + 1e-30  # per analysis bin
    click = click_power * bin_g2 * t["in_band"] / t["per_bin"]
    lobe = part_power * part_g2 * seen / PARTIAL_BINS
    noise_at, click_at = _at(xp, t, noise, part_freqs), _at(xp, t, click, part_freqs)
    total_noise = (noise * t["counts"]).sum(-1)[..., None]
    total_fixed = (click * t["counts"]).sum(-1)[..., None] + (lobe * PARTIAL_BINS).sum(-1)[..., None]
    n = t["n_analysis_bins"]
    ln_target = flat_db * (math.log(10.0) / 10.0)
    # The noise may go from NOISE_RANGE[0] to NOISE_RANGE[1] of the rest's power, whatever the
    # network gave it: a tonal sound's decoder gives almost none, and a high setting needs some.
    relative = xp.log((total_fixed + 1e-30) / (total_noise + 1e-30))
    low, high = relative + math.log(NOISE_RANGE[0]), relative + math.log(NOISE_RANGE[1])
    x = xp.minimum(xp.maximum(xp.log(gain * gain), low), high)

    def flatness(x):
        lam = xp.exp(x)
        mean = (lam * total_noise + total_fixed) / n
        floor = lam * noise + click + FLOOR * mean
        floor_at = lam * noise_at + click_at + FLOOR * mean
        log_geo = ((t["counts"] * xp.log(floor)).sum(-1)[..., None]
                   + PARTIAL_BINS * (xp.log(floor_at + lobe) - xp.log(floor_at)).sum(-1)[..., None]) / n - EULER_GAMMA
        return log_geo - xp.log(mean)

    ln_target = _into_band(xp, flatness(xp.zeros_like(x)), ln_target, NOISINESS_BAND)
    for _ in range(steps):
        lam = xp.exp(x)
        mean = (lam * total_noise + total_fixed) / n
        floor = lam * noise + click + FLOOR * mean
        floor_at = lam * noise_at + click_at + FLOOR * mean
        log_geo = ((t["counts"] * xp.log(floor)).sum(-1)[..., None]
                   + PARTIAL_BINS * (xp.log(floor_at + lobe) - xp.log(floor_at)).sum(-1)[..., None]) / n - EULER_GAMMA
        ln_flat = log_geo - xp.log(mean)
        d_geo = ((t["counts"] * lam * noise / floor).sum(-1)[..., None]
                 + PARTIAL_BINS * (lam * noise_at / (floor_at + lobe) - lam * noise_at / floor_at).sum(-1)[..., None]) / n
        d_mean = lam * total_noise / (lam * total_noise + total_fixed)
        # The slope's floor damps the steps where the noise hardly moves the flatness (the rest's
        # floor rules): there the answer would be ill-conditioned, and backends that differ in
        # their last bits would render different noise.
        slope = (d_geo - d_mean).clip(MIN_SLOPE, None)
        x = xp.minimum(xp.maximum(x - ((ln_flat - ln_target) / slope).clip(-1.0, 1.0), low), high)
    return xp.exp(0.5 * x)


def _at(xp, t, per_bin, freqs):
    """Per-bin values (..., bins) read at frequencies (..., K), linearly between bins: a partial
    that crosses a bin's edge changes nothing abruptly (nor do a backend's last-bit differences)."""
    pos = (freqs / t["bin_hz"]).clip(0.0, t["n_bins"] - 1.0)
    low = xp.floor(pos).clip(0.0, t["n_bins"] - 2.0)
    frac = pos - low
    i = _index(xp, low)
    return _take(xp, per_bin, i) * (1.0 - frac) + _take(xp, per_bin, i + 1) * frac


def _click_share(xp, t, percussivity):
    """The floor on the click's share: the share that gives PERCUSSIVITY_BAND less than the
    setting (settings up to the band ask for no click at all)."""
    table = t["share_table"]
    pos = (percussivity - PERCUSSIVITY_BAND).clip(0.0, 1.0) * (len(table) - 1)
    i = _index(xp, xp.floor(pos).clip(0, len(table) - 2))
    frac = pos - i
    return table[i] * (1.0 - frac) + table[i + 1] * frac


def _click_gain(xp, t, tilt, part_v, part_power, noise_power, click_power, share):
    """The click's amplitude gain (>= 1) that lifts its share of the frame's power to `share`."""
    bin_g2 = xp.exp(2 * LN2 * tilt * t["bin_v"])
    body = (part_power * xp.exp(2 * LN2 * tilt * part_v)).sum(-1)[..., None] + (noise_power * bin_g2).sum(-1)[..., None]
    click = (click_power * bin_g2).sum(-1)[..., None] + 1e-30
    wanted = share / (1.0 - share).clip(1e-6, None) * body / click
    return xp.sqrt(wanted.clip(1.0, MAX_CLICK_GAIN))
