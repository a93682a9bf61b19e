"""What the synthesiser enforces of the knobs: brightness, richness, noisiness, percussivity,
and tone_like where a control turns it.

Loudness is enforced per frame (the dry mix is scaled to the requested RMS). These four are
enforced per descriptor frame too, on the decoder's spectra before the loudness gain, each to
within a band of its setting (inside it the decoder's render stands):

- **brightness and richness**: a spectral shape, amplitude gain 2^(a v + b (v - c)^2) with v
  the octaves from 1 kHz: a tilt a and a curvature b (about the frame's mean octave to gather,
  about the middle of the spectrum's extent to spread), solved together (Levenberg-Marquardt,
  from the cheapest of a few shapes) so that the estimated centroid (magnitude-weighted, as the
  analysis takes it) and the estimated spread (power-weighted std of log2 frequency from 40 Hz,
  as the analysis takes it, each partial through its Hann lobe over the analysis's bins) come
  within their bands; where both cannot, the knob turned further from the decoder's render
  wins. Partials and the reverb tail take all of the shape; the noise takes the tilt only,
  NOISE_DARK times over where it darkens (its curvature fought the noisiness knob), the click
  the tilt and the curvature above the centre;
- **noisiness**: the noise's level relative to the rest, solved so that the spectral flatness
  of the mix, estimated at the analysis's resolution, comes within the band; above 0.5 the
  noise's own colour and its share of the tilt also fade out (at 1: white);
- **percussivity**: the click's share of each frame's power held between two bounds, from a
  model of the analysis's envelope measure (the clicks fill three of the 16 sub-blocks of
  its 20 ms window): a floor for high settings and a ceiling for low ones;
- **tone_like**, turned only: the noise's level again, solved so that the estimated peak of the
  autocorrelation (periodicity.py) comes within TONE_BAND of the setting; where the level alone
  cannot lower it (noise held low reads periodic itself: a kick's), the noise is whitened too.

Where two knobs cannot both be met, the one a control moves wins (``moved``, _precedence): a
turned noisiness quiets the click as well as the noise (brightness and richness held), a
turned richness keeps the noise at the level its spread counted on (noisiness held), a turned
brightness wins over a held richness in the shape, a held brightness asks at least a turned
pitch's fundamental, and a turned tone_like levels and whitens the noise for itself (noisiness
held; the estimate in periodicity.py: more noise, and whiter, is less periodic). The curves alone
cannot say which knob is turned; the engine marks what its CVs and MIDI controls shift. A sound's
own tone_like stays learned.

Above a setting of 0.5 the band below it narrows, to nothing at 0.9 (_trusted): recordings
seldom go there, so the decoder's render is not trusted there. At the low end of brightness and
richness the band above a setting narrows the same way (_trusted_above).

The estimates are computed from the controls (each partial's power at its frequency, each
bin's noise and click power, the reverb tail they feed at its steady level), not from audio:
a few passes over K + bins numbers per frame. Written once for numpy
and torch (``xp`` is either module, arrays in float64): the two synthesisers share it, so
they cannot disagree; torch calls it without gradient (the solved gains are constants to the
network, as the loudness gain's target is).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import descriptors as D
from .periodicity import Periodicity, lag_tables
from .xp import as_index, take_along

LN2 = math.log(2.0)
ANALYSIS_TOP_HZ = D.ANALYSIS_SR / 2  # the analysis sees nothing above this
LOW_HZ = 40.0  # richness counts from here (descriptors._log_frequency_spread)
# Each knob is met to within a band (in its own normalised units): inside it the decoder's own
# render stands (it learned the recordings, and the estimates here are approximate); outside
# it the knob pulls the render to the band's edge. Measured on the ten impacts (MR-STFT, 1.36
# with the bands all at 0.2 and percussivity's at 0.25): brightness 0.15 costs nothing,
# richness 0.1 or percussivity 0.15 cost 0.06 each, richness 0.15 or percussivity 0.2 0.015.
BRIGHTNESS_BAND = 0.15 * math.log(D.SCALES["brightness"].high / D.SCALES["brightness"].low)  # in ln Hz
RICHNESS_BAND = 0.2 * (D.SCALES["richness"].high - D.SCALES["richness"].low)  # octaves
NOISINESS_BAND = 0.2 * (D.SCALES["noisiness"].high - D.SCALES["noisiness"].low) * math.log(10.0) / 10.0  # ln flatness
PERCUSSIVITY_BAND = 0.25
TRUSTED_UP_TO, FULLY_ENFORCED = 0.5, 0.9  # the band below a setting narrows between these (_trusted)
# And the band above a low setting narrows (_trusted_above): (trusted down to, narrowest at, the
# share of the band left there). With both, on 14 bases, brightness span 0.560 -> 0.604 and
# richness 0.518 -> 0.536 (7 -> 9 bases at 0.5); the ten impacts' MR-STFT 1.3845 -> 1.3875.
# Richness only from 0.15: recordings do go lower (low booms, the impacts' onsets: 0.1-0.2), and
# there the decoder's render is worth keeping (the impacts' MR-STFT with it narrowed from 0.5,
# 0.3, 0.2, 0.15 to nothing: 1.3941, 1.3924, 1.3889, 1.3863). Brightness from 0.5 spanned 0.62,
# but then the two backends rendered random curves 8.4e-4 apart (3e-4 allowed).
BRIGHTNESS_ABOVE = (0.3, 0.1, 0.3)
RICHNESS_ABOVE = (0.15, 0.1, 0.3)
NOISINESS_FIRST = 0.8  # from here the two bands above widen again, whole at FULLY_ENFORCED (enforce)
# The shape. a: amplitude gain per octave, in doublings: -9 to +24 dB/oct. (The first knobs
# stopped at -6: darker, a dominant low partial splattered and the analysis heard it brighter.
# Today -9 measures darker: MRTNWVE's brightness span 0.467 -> 0.501, Snap's through the module
# 0.349 -> 0.540, the impacts' MR-STFT as it was. -12 read Sub Boom pitched up 5 V eight
# semitones flat, the fundamental tilted down under the low noise; -9 reads it where -6 did.)
# b: per octave squared from the centre, up to 2: a low boom spreads only by lifting partials the
# decoder left far down. MRTNWVE's richness span 0.291 with a bound of 1 and 0.331 with 2, in
# steps of 0.4 (0.271 in steps of 0.35; the other 13 bases within 0.01). Steps of 0.5 reached
# 0.341, but on one frame of Sub Boom, richness at 0.9, they took the two backends' last-bit
# differences down two paths (renders 2.3e-4 apart).
TILT = (-1.5, 4.0)
CURVE = (-1.0, 2.0)
# Where the shape darkens (a < 0) the noise takes NOISE_DARK times its tilt: the partials stop at
# -9 dB/oct (above; -6 when this was measured), the noise, windowed after its filter
# (grid.noise_table), need not, and at -6 dB/oct a noisy sound reads brightness 0.6 at the darkest. Brightness span on 14 bases with
# 1, 2, 3, 5: 0.481, 0.514, 0.541, 0.560 (7, 8, 10, 12 bases at 0.5); MR-STFT on the impacts
# 1.3850 with 1, 1.3845 with 5.
NOISE_DARK = 5.0
TILT_STEP, CURVE_STEP = 1.0, 0.4  # the most a and b move in one step
EXTENT = 1e-4  # the spectrum's extent: every element within 40 dB of its strongest, in power
# Where Levenberg-Marquardt starts: the cheapest of these shapes (a, b) and the flat one. From the
# flat one alone the descent stopped at local minima that met neither target (richness span 0.314
# on 14 bases, 0.400 from a grid of 25). No shape darkens while it gathers, nor tilts alone: on a
# noisy snare the estimate took a brightening tilt for a narrower spread, and the analysis heard
# the opposite (the first 11: richness 0.432 and brightness 0.362 against 0.426 and 0.350 for 25).
# The next four spread hard: from the first 11, frames of a low tonal sound asked for richness 0.9
# stopped near b = 0.45 at twice the cost a grid found at b = 0.6-1 (span 0.497 -> 0.516 with them).
# (-0.5, 0.1) darkens: without it, on frames where darkening also narrows (two low partials over a
# falling noise floor, richness held high), brightness 0.1 was solved by brightening, at a
# higher cost than the dark side's (ACEAURA's brightness span 0.457 -> 0.501, 13 -> 14 bases;
# with (-0.5, 0) a 1e-7 nudge moved a random frame's gains 64 %, with (-1, 0) the two synthesisers
# rendered apart, and (-0.5, -0.15), gathering, left a loud click's share nearly whole at
# percussivity 0). And (-0.5, 1) is where a grid found the cheapest shape on 92 % of ABSB's frames
# at richness 0.9, where the descent from the others stopped at up to 8 times the cost: with the
# noise's level kept (a turned richness, _precedence), its span 0.31 -> 0.51. Then (1, 0.6) and a
# grid that spreads hard (b 0.8-1.5, a -0.75-1.25): with partials counted through their lobes
# (_partial_lobes), the low booms' frames at richness 0.9 stopped at up to ten times the cost a
# grid found (ABSB, half its audible frames); at 0.9, 160 BPM 0.66 -> 0.80 with (1, 0.6) -> 0.82
# with the grid, ABSB 0.60 -> 0.62 -> 0.75, MRTNWVE 0.63 -> 0.66 -> 0.75. The starts are chosen by
# their costs alone (_start), so 34 cost little more than 18 did with their derivatives.
START_SHAPES = ((0.0, -0.4), (0.0, -0.15), (0.0, 0.1), (0.0, 0.2), (0.0, 0.35), (0.5, 0.1), (0.5, 0.2), (1.0, 0.2),
                (0.5, 0.35), (1.0, 0.35), (2.0, 0.35), (0.0, 0.6), (0.5, 0.6), (0.0, 1.0), (-1.0, 1.0), (-0.5, 0.1),
                (-0.5, 1.0), (1.0, 0.6)) + tuple((a, b) for b in (0.8, 1.2, 1.5) for a in (-0.75, -0.25, 0.25, 0.75, 1.25))
# Steps after the start: 12. (8 gave richness 0.483 of span instead of 0.497 on 14 bases, for 0.8x
# the solve's time, but left frames unconverged, whose gains then moved 1.1 % with a 1e-7 nudge of
# the inputs; steps of at most 0.1 in b gave a span of 0.24 instead of 0.37 on 6 bases.)
SHAPE_STEPS = 12
START_BATCH = 1024  # rows x start shapes evaluated at once (_start): about 25 MB of float64 at the most
DAMPING = 0.1  # Levenberg-Marquardt's first damping, in squared band units
# Relative cost over which a step is taken in part (and two starts blended). 1e-3 until the lobes:
# then Big Impact's frames with tone_like turned, where the held brightness and richness cannot
# both be met, sat in a flat valley where half-taken steps walked with the backends' last bits
# (renders 1.4e-4 apart, 1e-4 allowed); 3e-4 or 1e-4: 4e-5 at most over the factory sounds, 3e-3: 5e-4.
ACCEPT_RAMP = 3e-4
# A small cost on the shape itself (a and 4 b, in band units squared): where the two targets
# cannot both be met the cost is flat along a valley, and without it the answer wandered there with
# the last bits of the inputs (a 1e-7 nudge moved 1 frame in 400 by 5 %; with it, by 0.1 % at most),
# and the spans were a little smaller (richness 0.33 instead of 0.35, brightness 0.417, not 0.422).
RIDGE, CURVE_SCALE = 0.2, 4.0
# Where brightness and richness cannot both be met (a low tonal sound spreads only by gaining
# highs), richness's miss counts this many times brightness's, in band units: there the richness
# knob brightens (1 instead of 3: richness span 0.19 instead of 0.24 on 6 bases, brightness 0.43, not 0.41).
RICHNESS_WEIGHT = 3.0
# And each miss counts (1 + DRIVE x) times more, x the distance in bands from the decoder's own
# render to the setting (the two then divided by the larger): the knob being turned wins over the
# one held where the sound already is (on 14 bases, richness span 0.400 -> 0.426 with DRIVE 1,
# 0.430 with 3; brightness 0.344 -> 0.350 either way).
DRIVE = 1.0
# And where brightness is moved by a control and richness held, richness's miss counts HELD_WEIGHT
# times (in its residual: squared, a ninth), so the turned knob wins (_precedence): ACEAURA at
# brightness 0.1 solved half its frames by brightening, to keep its spread (span 0.495 -> 0.615).
# Not the other way: richness already weighs RICHNESS_WEIGHT times, and with a held brightness
# lighter still, the tilt swung between frames (Glass Ring through the module at -5 V: a = 0 and
# -0.5 on alternate frames, each narrow, read 0.26 wide, not 0.13, the analysis's window mixing them).
HELD_WEIGHT = 1.0 / 3.0
ANALYSIS_BIN_HZ = D.ANALYSIS_SR / D.N_FFT
# Richness sees a partial where the analysis does: its Hann main lobe (four bins) over the analysis
# bins from 40 Hz (the first at 46.9 Hz). Counted whole at its own octave from 40 Hz up and not
# at all below, a 35-40 Hz boom, whose lobe fills the 47 Hz bin and rules the analysis's spread,
# was left out of the estimate: on 160 BPM's frames estimated at 0.88 of richness, 0.28-0.45 measured.
FIRST_COUNTED_BIN = math.ceil(LOW_HZ / ANALYSIS_BIN_HZ)
LOBE_OFFSETS = np.arange(-1.0, 3.0)  # the bins floor(f / bin) - 1 .. + 2: the main lobe, |x| < 2 bins
# The click's shares of the tilt and of the curvature, which it takes above the centre only:
# a click with a lifted low end rings over more of the analysis's sub-blocks (percussivity 0.9
# measured 0.43 instead of 0.56), and its high end is what brightens a tonal sound.
CLICK_TILT, CLICK_CURVE = 1.0, 1.0
NOISE_RANGE = (1e-6, 1e3)  # the noise's power relative to the rest's, at most
PARTIAL_BINS = 3  # analysis bins a partial's main lobe fills (Hann, 2048 points)
NOISE_STEPS = 6
# Precedence between knobs that cannot both be met, from which ones a control is moving (the
# `moved` of a render: how far a CV or MIDI control shifts each descriptor, in normalised units;
# from MOVED_FULL on, all the way). The curves alone cannot tell a held knob from a turned one.
MOVED_FULL = 0.2  # 1 V at depth 1
CLICK_GIVES_WAY = (0.2, 0.4)  # noisiness settings from which the percussivity's floor on the click holds (_gives_way)
CLICK_STEP = 2.0  # the most the click's log power moves in one step of _quiet_click
MIN_SLOPE = 0.1  # of the flatness's log per log of noise power (pure noise: 1)
# tone_like, solved on the noise's level where it is turned (_solve_tone): its band, the steps,
# and the slopes (of 1 - tone_like per log of noise power) below which the steps are damped,
# and below which they shrink to none (a kick's own noise is as periodic as its partials).
TONE_BAND = 0.1
TONE_STEPS = 8
TONE_MIN_SLOPE, TONE_STALL = 0.05, 0.005
TONE_WHITEN = 0.2  # tone_like left above its band by the level alone, at which the noise is whitened all the way
WHITEN_FROM = 0.5
FLOOR = 10 ** (-56 / 10)  # every analysis bin's floor relative to the mean power: a rendered sine measures -56 dB
EULER_GAMMA = 0.5772156649015329  # E[log] of an exponential variable is log(mean) - gamma
CLICK_BLOCKS = 3  # sub-blocks the clicks of one analysis window fill (2: the span was 0.02 lower)
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
        self.lobe_offsets = LOBE_OFFSETS.astype(np.float64)
        # The analysis bins (from 40 Hz) each synthesis bin covers: their mean octave from 1 kHz
        # and its variance (richness's variable), and the share of the bin they are.
        af = np.arange(1, n // 2 + 1) * (D.ANALYSIS_SR / n)
        af = af[af >= LOW_HZ]
        owner = np.rint(af / grid.bin_hz).astype(np.int64)
        lv = np.log2(af / 1000.0)
        count = np.bincount(owner, minlength=self.n_bins)[:self.n_bins].astype(np.float64)
        mean = np.bincount(owner, lv, minlength=self.n_bins)[:self.n_bins] / np.maximum(count, 1)
        square = np.bincount(owner, lv * lv, minlength=self.n_bins)[:self.n_bins] / np.maximum(count, 1)
        nominal = np.full(self.n_bins, self.per_bin)
        nominal[0] /= 2  # bin 0 covers 0 to 50 Hz
        self.bin_counted = np.minimum(count / nominal, 1.0) * self.in_band
        self.bin_lv = np.where(count > 0, mean, self.bin_v)
        self.bin_lv_var = np.maximum(square - mean * mean, 0.0) * self.bin_counted
        self.reverb_interp_band = np.ascontiguousarray(self.reverb_interp[:, :self.n_band])
        tone = lag_tables(f, self.bin_hz)
        self.tone_coarse_lags, self.tone_fine_lags, self.tone_bin_lags = (
            tone["tone_coarse_lags"], tone["tone_fine_lags"], tone["tone_bin_lags"])

    def arrays(self) -> dict:
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}


def _octaves(xp, f):
    """Octaves from 1 kHz of frequencies clamped to the analysed band (the shape's variable)."""
    return xp.log(f.clip(LOW_HZ, ANALYSIS_TOP_HZ) / 1000.0) / LN2


def _cat(xp, a, b):
    return xp.concatenate([a, xp.broadcast_to(b, a.shape[:-1] + b.shape[-1:])], axis=-1)


def band_tables(t: dict) -> dict:
    """The tables as the solves see them: the analysed band only (bins up to 12 kHz; above, every
    weight is 0)."""
    nb = t["n_band"]
    banded = ("bin_v", "bin_freqs", "in_band", "counts", "bin_lv", "bin_lv_var", "bin_counted", "tone_bin_lags")
    return {**t, **{k: t[k][:nb] for k in banded}, "n_bins": nb}


class Precedence(NamedTuple):
    """How much each knob goes first over another it cannot be met with, each 0..1, from a
    render's `moved`: the moved knob over the held one."""
    noise: float = 0.0  # noisiness over brightness and richness
    richness: float = 0.0  # richness over noisiness
    tone: float = 0.0  # tone_like over noisiness
    brightness_shape: float = 0.0  # brightness over richness, in the shape (HELD_WEIGHT)
    pitch: float = 0.0  # pitch over brightness: a held brightness rises to the fundamental


def _precedence(moved) -> Precedence:
    if len(moved) == 0:
        return Precedence()
    m = [min(1.0, abs(float(x)) / MOVED_FULL) for x in moved]
    noisiness, richness, brightness = m[D.INDEX["noisiness"]], m[D.INDEX["richness"]], m[D.INDEX["brightness"]]
    tone_like = m[D.INDEX["tone_like"]]
    return Precedence(noisiness * (1.0 - max(brightness, richness)), richness * (1.0 - noisiness),
                      tone_like * (1.0 - noisiness), brightness * (1.0 - richness), m[D.INDEX["pitch"]] * (1.0 - brightness))


def enforce(xp, t: dict, curves, part_freqs, part_power, noise_power, click_power, reverb_ratio, moved=()):
    """The gains that make a frame meet its brightness, richness, noisiness and percussivity.

    curves (..., 7) normalised; part_freqs, part_power (..., K) in Hz and mean power (0 for a
    partial that is off or above Nyquist); noise_power, click_power (..., bins) per bin;
    reverb_ratio (..., reverb bands): the tail's steady power per unit of dry power. All float64.
    moved: per descriptor (NAMES order), how far a control moves it in this render (() for none:
    every knob held, as a sound's own curves are); it decides which knob wins where two cannot
    both be met (_precedence).
    Returns amplitude gains for the partials (..., K), for the click's bins (..., bins: its
    share of the shape), for the noise's bins (..., bins: tilt, colour and level), and the
    click's extra amplitude gain (..., 1).
    """
    scale = D.SCALES["brightness"]
    ln_centroid = math.log(scale.low) + math.log(scale.high / scale.low) * curves[..., 5:6]
    rich = D.SCALES["richness"]
    spread = rich.low + (rich.high - rich.low) * curves[..., 4:5]
    share = _click_share(xp, t, curves[..., 1:2])
    noisiness = curves[..., 2:3]
    flat_db = D.SCALES["noisiness"].low + (D.SCALES["noisiness"].high - D.SCALES["noisiness"].low) * noisiness
    part_v = _octaves(xp, part_freqs)
    seen = (part_freqs <= ANALYSIS_TOP_HZ) * 1.0
    nb = t["n_band"]
    tb = band_tables(t)
    # The tail follows the dry band by band, so it is estimated once, unshaped, in two parts:
    # what the noise feeds (moves with the noise's gain) and what partials and click feed.
    hats = _reverb_hats(xp, t, part_freqs)

    def tail(partials, bins):
        pooled = (partials[..., :, None] * hats).sum(-2) + bins @ t["reverb_pool"]
        return (reverb_ratio * pooled) @ t["reverb_interp_band"]  # in the band only

    # Above WHITEN_FROM the noise's own colour and its share of the shape fade out (at 1: white):
    # coloured or shaped noise cannot be as flat as the upper settings ask. There noisiness
    # takes precedence over brightness and richness (a dark sound made very noisy gets brighter).
    whiten = ((noisiness - WHITEN_FROM) / (1.0 - WHITEN_FROM)).clip(0.0, 1.0)
    noise_k = 1.0 - whiten
    colour_gain = xp.exp(-0.5 * whiten * _colour(xp, t, noise_power))
    noise_power = noise_power * colour_gain ** 2
    noise_tail = tail(part_power * 0.0, noise_power)
    fixed_tail = tail(part_power, click_power)
    noise_band, click_band = noise_power[..., :nb] + noise_tail, click_power[..., :nb]

    shape = _Shape(xp, tb, part_v, part_freqs, part_power * seen, noise_k)
    ones = xp.ones_like(curves[..., :1])
    # The shape first, on the decoder's noise and click; then the noise's level, the click's
    # share, and the noise's level again with the click as it now is. (Solving the shape again
    # after them cost percussivity 0.045 of span for 0.03 of richness, and its answer was so
    # sensitive to the last bits of the inputs that the two backends rendered apart.)
    # How much of brightness's and richness's bands the decoder keeps, under and over the setting;
    # over it, all of it again where the noise is nearly white (noisiness's precedence, above: held
    # low, the two pulled a whitened kick back down, its noisiness span 0.568 -> 0.446). Not from
    # WHITEN_FROM: a crash holds noisiness 0.75-0.8 of its own, and its richness must still narrow.
    relax = ((noisiness - NOISINESS_FIRST) / (FULLY_ENFORCED - NOISINESS_FIRST)).clip(0.0, 1.0)
    leeway = ((_trusted(curves[..., 5:6]), xp.maximum(_trusted_above(curves[..., 5:6], *BRIGHTNESS_ABOVE), relax)),
              (_trusted(curves[..., 4:5]), xp.maximum(_trusted_above(curves[..., 4:5], *RICHNESS_ABOVE), relax)))
    first = _precedence(moved)
    if first.pitch > 0.0:
        # Pitch moved, brightness held: the brightness asked is at least the fundamental's. A dark
        # kick played at C6 darkened at the most, its tone buried under its own low noise, and
        # the analysis read its pitch at 35 Hz (7 of its 40 frames).
        ln_f0 = math.log(440.0) + (D.SCALES["pitch"].low - 69.0 + (D.SCALES["pitch"].high - D.SCALES["pitch"].low)
                                   * curves[..., 6:7]) * (LN2 / 12.0)
        ln_centroid = ln_centroid + first.pitch * (ln_f0 - ln_centroid).clip(0.0, None)
    a, b = shape.solve(noise_band, click_band, fixed_tail, ln_centroid, spread, leeway, first, SHAPE_STEPS)
    part_s, bin_s = shape.log2_gains(a, b)

    def shaped(power, log2_gain):
        return power * xp.exp(2 * LN2 * log2_gain)

    part_shaped, tail_shaped = shaped(part_power, part_s), shaped(fixed_tail, bin_s)
    noise_shaped, click_shaped = shaped(noise_band, shape.noise_log2_gains(a, b)), shaped(click_band, shape.click_log2_gains(a, b))
    noise_below = _trusted(noisiness)
    noise_gain = _solve_noise(xp, tb, part_freqs, part_shaped, noise_shaped, click_shaped + tail_shaped, flat_db, noise_below,
                              ones, NOISE_STEPS)
    click_gain = _click_gain(xp, part_shaped, noise_shaped * noise_gain ** 2, click_shaped, share)
    noise_gain = _solve_noise(xp, tb, part_freqs, part_shaped, noise_shaped, click_shaped * click_gain ** 2 + tail_shaped,
                              flat_db, noise_below, noise_gain, NOISE_STEPS // 2)
    noise_first, richness_first, tone_first = first.noise, first.richness, first.tone
    if richness_first > 0.0:
        # Richness moved, noisiness held: the noise keeps the level the shape's spread counted on
        # (a low boom whose partials start high spreads only through its low noise, which the held
        # noisiness took away: ABSB at richness 0.9 measured 0.47, not 0.67).
        noise_gain = noise_gain ** (1.0 - richness_first)
        click_gain = (click_gain ** (1.0 - richness_first)
                      * _click_gain(xp, part_shaped, noise_shaped * noise_gain ** 2, click_shaped, share) ** richness_first)
    if noise_first > 0.0:
        # Noisiness moved, brightness and richness held: the click, which is white, gives way too
        # (ACEAURA held at 0.1 measured 0.57 with the noise gone). Not when they are moved as well:
        # on a tonal sound the click is what brightens and spreads.
        clicked, noise_now = click_shaped * click_gain ** 2, noise_shaped * noise_gain ** 2
        floor = (_click_floor(xp, part_shaped, noise_now, clicked, share) * _gives_way(noisiness)).clip(0.0, 1.0)
        click_gain = click_gain * _quiet_click(xp, tb, part_freqs, part_shaped, noise_now, clicked, tail_shaped, flat_db,
                                               1.0 - noise_first * (1.0 - floor), NOISE_STEPS)
    noise_shape_gain = xp.exp(LN2 * shape.noise_log2_gains(a, b, t["bin_v"]))
    if tone_first > 0.0:
        # tone_like moved, noisiness held: the noise's level, and where that is not enough its
        # colour, are solved for tone_like instead (periodicity.py). The curves alone would never
        # ask it: a sound's own tone_like and noisiness agree with each other, a turned one need not.
        tone_gain, tone_colour = _solve_tone(xp, tb, part_freqs, part_shaped, noise_shaped * noise_gain ** 2,
                                             click_shaped * click_gain ** 2 + tail_shaped, curves[..., 3:4],
                                             _colour(xp, t, noise_power * noise_shape_gain ** 2))
        noise_gain = noise_gain * tone_gain ** tone_first
        colour_gain = colour_gain * tone_colour ** tone_first
    noise_bin_gain = noise_shape_gain * colour_gain * noise_gain
    return xp.exp(LN2 * part_s), xp.exp(LN2 * shape.click_log2_gains(a, b, t["bin_v"])), noise_bin_gain, click_gain


class _Shape:
    """The spectral shape, amplitude gain 2^(a v + b (v - c)^2) with v the octaves from 1 kHz and
    c fixed from the decoder's own spectrum: a tilt a for brightness and a curvature b for
    richness (b < 0 gathers the power around the frame's power-weighted mean octave, b > 0
    spreads it to both ends of its extent, about their middle; see _centre). Partials and the
    reverb tail take all of it, the noise (1 - whiten) of the tilt (NOISE_DARK times where it
    darkens), the click CLICK_TILT of the tilt and CLICK_CURVE of the curvature above c. a and b
    are solved together so that the estimated centroid (magnitude-weighted, as the analysis takes it) and
    the estimated spread (power-weighted std of log2 frequency from 40 Hz, as the analysis takes
    it) come within their bands of the settings."""

    def __init__(self, xp, tb, part_v, part_freqs, part_power, noise_k):
        self.xp, self.part_v, self.bin_v, self.part_power, self.noise_k = xp, part_v, tb["bin_v"], part_power, noise_k
        self.v = _cat(xp, part_v, tb["bin_v"])
        self.freqs = _cat(xp, part_freqs.clip(0.0, ANALYSIS_TOP_HZ), tb["bin_freqs"])
        # The spread's variable: the mean octave of the analysis bins a partial's lobe fills, and of
        # those a synthesis bin covers, with their own spread (a 100 Hz bin at 100 Hz spans 1.6
        # octaves), and the share of each that the analysis counts (from 40 Hz).
        part_counted, part_lv, part_within = _partial_lobes(xp, tb, part_freqs)
        self.lv = _cat(xp, part_lv, tb["bin_lv"])
        self.within = _cat(xp, part_within, tb["bin_lv_var"])
        self.counted = _cat(xp, part_counted, tb["bin_counted"])
        self.magnitude = _cat(xp, xp.ones_like(part_v) * math.sqrt(2.0), tb["noise_magnitude"] * tb["in_band"])
        self.centre(xp.zeros_like(part_v[..., :1]), xp.zeros_like(part_v[..., :1]))

    def centre(self, c, c_spread):
        self.c, self.c_spread = c, c_spread

    def _centre(self, b):
        """The curvature's centre: the frame's mean octave to gather (b < 0), the middle of the
        spectrum's extent to spread (b > 0), so that both its ends gain alike (about the mean, which
        sits near a low sound's fundamental, the far end alone gained and the spread fell)."""
        return self.xp.where(b > 0.0, self.c_spread, self.c)

    def rows(self, idx):
        """The same shape for some frames only (leading axes flattened)."""
        out = _Shape.__new__(_Shape)
        out.xp, out.bin_v = self.xp, self.bin_v
        for name in ("part_v", "part_power", "noise_k", "v", "freqs", "lv", "within", "counted", "magnitude", "ln_target",
                     "spread_target", "w_c", "w_s"):
            x = getattr(self, name)
            setattr(out, name, x.reshape(-1, x.shape[-1])[idx])
        out.centre(self.c.reshape(-1, 1)[idx], self.c_spread.reshape(-1, 1)[idx])
        return out

    def log2_gains(self, a, b, bin_v=None):
        """The log2 amplitude gains of the partials and of the tail's bins (all of the shape)."""
        c, v = self._centre(b), self.bin_v if bin_v is None else bin_v
        return a * self.part_v + b * (self.part_v - c) ** 2, a * v + b * (v - c) ** 2

    def noise_log2_gains(self, a, b, bin_v=None):
        return self.noise_k * _noise_tilt(self.xp, a)[0] * (self.bin_v if bin_v is None else bin_v)

    def click_log2_gains(self, a, b, bin_v=None):
        c, v = self._centre(b), self.bin_v if bin_v is None else bin_v
        return CLICK_TILT * a * v + CLICK_CURVE * b * (v - c).clip(0.0, None) ** 2

    def _powers(self, noise, click, fixed, a, b, derivatives=True):
        """Each element's power (partials, then bins), and how its log2 amplitude moves with a and
        with b, power-weighted (sum over its parts of power * d gain / d a, and / d b; () without
        derivatives)."""
        xp = self.xp
        c = self._centre(b)
        part_curve, bin_curve = (self.part_v - c) ** 2, (self.bin_v - c) ** 2
        qp = self.part_power * xp.exp((2 * LN2) * (a * self.part_v + b * part_curve))
        tilt = xp.exp((2 * LN2) * a * self.bin_v)
        curve = xp.exp((2 * LN2) * b * bin_curve)
        qf = fixed * tilt * curve
        noise_a, noise_slope = _noise_tilt(xp, a)
        qn = noise * xp.exp((2 * LN2) * self.noise_k * noise_a * self.bin_v)
        qc = click * xp.exp((2 * LN2) * self.click_log2_gains(a, b))
        if not derivatives:
            return _cat(xp, qp, qn + qc + qf), ()
        d_a = _cat(xp, qp * self.part_v, (self.noise_k * noise_slope * qn + qf + CLICK_TILT * qc) * self.bin_v)
        d_b = _cat(xp, qp * part_curve, (qf + (CLICK_CURVE * (self.bin_v > c)) * qc) * bin_curve)
        return _cat(xp, qp, qn + qc + qf), (d_a, d_b)

    def _measures(self, power, moves):
        """ln centroid, spread (octaves) and their derivatives in a and b; the mean octave."""
        xp = self.xp
        m = self.magnitude * xp.sqrt(power)
        mf = m * self.freqs
        total, f_total = m.sum(-1)[..., None] + 1e-300, mf.sum(-1)[..., None] + 1e-300
        ln_c = xp.log(f_total / total)
        w = power * self.counted
        w_total = w.sum(-1)[..., None] + 1e-300
        mean = (w * self.lv).sum(-1)[..., None] / w_total
        dev = (self.lv - mean) ** 2 + self.within
        var = (w * dev).sum(-1)[..., None] / w_total
        std = xp.sqrt(var + 1e-12)
        d_c, d_s = [], []
        if not moves:
            return ln_c, d_c, std, d_s, mean
        inverse = 1.0 / (power + 1e-300)
        spread_weight = self.counted * (dev - var)  # w * d = counted * moves, as d = moves / power
        for move in moves:
            d = move * inverse
            d_c.append(LN2 * ((mf * d).sum(-1)[..., None] / f_total - (m * d).sum(-1)[..., None] / total))
            d_s.append(LN2 * (move * spread_weight).sum(-1)[..., None] / w_total / std)
        return ln_c, d_c, std, d_s, mean

    def targets(self, noise, click, fixed, ln_centroid, spread, leeway, first):
        """Sets the centre and the targets (the nearest to the decoder's own render within each
        band) and returns each frame's cost there: 0 where the render already meets both. A held
        richness's miss counts HELD_WEIGHT as much where brightness is moved (`first`)."""
        xp = self.xp
        zero = xp.zeros_like(self.c)
        power, moves = self._powers(noise, click, fixed, zero, zero)
        ln_c, _, std, _, mean = self._measures(power, moves)
        self.ln_target = _into_band(xp, ln_c, ln_centroid, BRIGHTNESS_BAND, *leeway[0])
        self.spread_target = _into_band(xp, std, spread, RICHNESS_BAND, *leeway[1])
        # The spectrum's extent (elements within 40 dB of its strongest): its middle is where
        # the curvature spreads from.
        w = power * self.counted
        present = w >= EXTENT * xp.amax(w, -1)[..., None]
        lo = xp.amin(xp.where(present, self.lv, self.lv * 0.0 + 1e3), -1)[..., None]
        hi = xp.amax(xp.where(present, self.lv, self.lv * 0.0 - 1e3), -1)[..., None]
        self.centre(mean.clip(_octaves_of(LOW_HZ), _octaves_of(ANALYSIS_TOP_HZ)),
                    (0.5 * (lo + hi)).clip(_octaves_of(LOW_HZ), _octaves_of(ANALYSIS_TOP_HZ)))
        # The knob turned furthest from the decoder's own render weighs most (DRIVE), divided by
        # the larger, so the cost keeps its scale against the ridge and the damping
        # (unscaled, the answer wandered along the valley with the inputs' last bits: the two
        # backends rendered a sound with richness at 0.9 up to 5e-3 apart, instead of 1e-5).
        drive_c = 1.0 + DRIVE * xp.abs(ln_c - ln_centroid) / BRIGHTNESS_BAND
        drive_s = 1.0 + DRIVE * xp.abs(std - spread) / RICHNESS_BAND
        larger = xp.maximum(drive_c, drive_s)
        self.w_c = drive_c / larger / BRIGHTNESS_BAND
        self.w_s = RICHNESS_WEIGHT * drive_s / larger / RICHNESS_BAND * (1.0 - (1.0 - HELD_WEIGHT) * first.brightness_shape)
        r1, r2 = (ln_c - self.ln_target) * self.w_c, (std - self.spread_target) * self.w_s
        return r1 * r1 + r2 * r2

    def solve(self, noise, click, fixed, ln_centroid, spread, leeway, first, steps):
        """-> a, b for every frame. Frames that already meet both targets keep a = b = 0 and are
        left out of the iterations (the answer there is exactly 0 with or without them)."""
        xp = self.xp
        cost = self.targets(noise, click, fixed, ln_centroid, spread, leeway, first)
        moving = _flat_nonzero(xp, cost.reshape(-1) > 0.0)
        a = xp.zeros_like(cost).reshape(-1, 1)
        b = xp.zeros_like(a)
        if len(moving):
            some = self.rows(moving)
            a_some, b_some = some.iterate(*(x.reshape(-1, x.shape[-1])[moving] for x in (noise, click, fixed)), steps)
            a[moving], b[moving] = a_some, b_some
        return a.reshape(cost.shape), b.reshape(cost.shape)

    def iterate(self, noise, click, fixed, steps):
        xp = self.xp
        a, b, state = self._start(noise, click, fixed)
        damping = xp.ones_like(a) * DAMPING
        for _ in range(steps):
            # Levenberg-Marquardt on both residuals, in units of each band: a step that does not
            # lower their squares is refused and the damping raised (the spread saturates, and a
            # plain Newton step on it overshoots and comes back).
            cost, (r1, r2), (j11, j12, j21, j22) = state
            ridge_b = RIDGE * CURVE_SCALE ** 2
            h11, h12, h22 = j11 * j11 + j21 * j21 + damping + RIDGE, j11 * j12 + j21 * j22, j12 * j12 + j22 * j22 + damping + ridge_b
            g1, g2 = j11 * r1 + j21 * r2 + RIDGE * a, j12 * r1 + j22 * r2 + ridge_b * b
            det = h11 * h22 - h12 * h12
            a_new = (a - ((h22 * g1 - h12 * g2) / det).clip(-TILT_STEP, TILT_STEP)).clip(*TILT)
            b_new = (b - ((h11 * g2 - h12 * g1) / det).clip(-CURVE_STEP, CURVE_STEP)).clip(*CURVE)
            new = self._residuals(noise, click, fixed, a_new, b_new)
            # Taken or refused on a ramp, not a cliff: a step whose cost ties the current one
            # within ACCEPT_RAMP is taken in part, so the answer is continuous in the controls
            # (the two backends differ in their last bits, and a cliff would render them apart).
            taken = (0.5 + (cost - new[0]) / (2.0 * ACCEPT_RAMP * cost + 1e-30)).clip(0.0, 1.0)
            a, b = a + taken * (a_new - a), b + taken * (b_new - b)
            state = _blend(state, new, taken)
            damping = damping * (4.0 - taken * (4.0 - 1.0 / 3.0))
        return a, b

    def _start(self, noise, click, fixed):
        """The cheapest of a few shapes, for Levenberg-Marquardt to start from: the cost is not
        convex (a spread that gathers at one end first, then at both), and from a flat shape
        the descent stopped at a local minimum that met neither knob. The shapes are evaluated
        together, a leading axis of them at a time (START_BATCH rows in all), and chosen in turn:
        the same numbers as one by one, in an eighteenth of the array operations (a head's solve is
        their overhead more than their arithmetic)."""
        xp = self.xp
        zero = xp.zeros_like(self.c)
        shapes = ((0.0, 0.0),) + START_SHAPES
        group = max(1, START_BATCH // max(int(zero.shape[0]), 1))
        a = b = cost = None
        for at in range(0, len(shapes), group):
            tries = shapes[at:at + group]
            a_try, b_try = xp.stack([zero + s[0] for s in tries]), xp.stack([zero + s[1] for s in tries])
            costs = self._cost(noise, click, fixed, a_try, b_try)
            for g in range(len(tries)):
                if cost is None:
                    a, b, cost = a_try[g], b_try[g], costs[g]
                    continue
                # On a ramp, as the steps below: two shapes whose costs tie within ACCEPT_RAMP are
                # blended, so the start does not jump with the inputs' last bits.
                taken = (0.5 + (cost - costs[g]) / (2.0 * ACCEPT_RAMP * cost + 1e-30)).clip(0.0, 1.0)
                a, b = a + taken * (a_try[g] - a), b + taken * (b_try[g] - b)
                cost = cost + taken * (costs[g] - cost)
        # The costs alone choose (no derivatives: a third of the work); the descent's state is
        # taken once, where the start is.
        return a, b, self._residuals(noise, click, fixed, a, b)

    def _cost(self, noise, click, fixed, a, b):
        ln_c, _, std, _, _ = self._measures(*self._powers(noise, click, fixed, a, b, derivatives=False))
        r1, r2 = (ln_c - self.ln_target) * self.w_c, (std - self.spread_target) * self.w_s
        return r1 * r1 + r2 * r2 + RIDGE * (a * a + (CURVE_SCALE * b) ** 2)

    def _residuals(self, noise, click, fixed, a, b):
        ln_c, (caa, cab), std, (sa, sb), _ = self._measures(*self._powers(noise, click, fixed, a, b))
        r1, r2 = (ln_c - self.ln_target) * self.w_c, (std - self.spread_target) * self.w_s
        cost = r1 * r1 + r2 * r2 + RIDGE * (a * a + (CURVE_SCALE * b) ** 2)
        return cost, (r1, r2), (caa * self.w_c, cab * self.w_c, sa * self.w_s, sb * self.w_s)


def _partial_lobes(xp, t, freqs):
    """Each partial (..., K, in Hz) as richness's analysis sees it: the share of its power in the
    analysis bins from 40 Hz, and the mean and variance of their octaves from 1 kHz, over its Hann
    main lobe (power at x bins off: (sinc x / 2 + (sinc(x - 1) + sinc(x + 1)) / 4)^2, zero from 2
    bins, so the bins taken can change with the frequency without a jump)."""
    pos = freqs / ANALYSIS_BIN_HZ
    k = xp.floor(pos)[..., None] + t["lobe_offsets"]
    x = k - pos[..., None]
    power = (0.5 * xp.sinc(x) + 0.25 * (xp.sinc(x - 1.0) + xp.sinc(x + 1.0))) ** 2
    counted = power * (k >= FIRST_COUNTED_BIN)
    total, seen = power.sum(-1), counted.sum(-1)
    lv = xp.log(k.clip(FIRST_COUNTED_BIN, None) * (ANALYSIS_BIN_HZ / 1000.0)) / LN2
    weights = counted / (seen[..., None] + 1e-30)
    mean = (weights * lv).sum(-1)
    variance = (weights * (lv - mean[..., None]) ** 2).sum(-1)
    return seen / (total + 1e-30), xp.where(seen > 0.0, mean, _octaves(xp, freqs)), variance


def _noise_tilt(xp, a):
    """The noise's tilt for the shape's a (NOISE_DARK times as steep where it darkens), and its
    slope in a."""
    slope = 1.0 + (NOISE_DARK - 1.0) * (a < 0.0)
    return a * slope, slope


def _blend(state, new, taken):
    """A solve's state (cost, residuals, Jacobian) moved `taken` of the way to another's."""
    cost = state[0] + taken * (new[0] - state[0])
    return (cost, [y + taken * (x - y) for x, y in zip(new[1], state[1])],
            [y + taken * (x - y) for x, y in zip(new[2], state[2])])


def _flat_nonzero(xp, mask):
    return np.flatnonzero(mask) if xp is np else xp.nonzero(mask).reshape(-1)


def _octaves_of(hz: float) -> float:
    return math.log(hz / 1000.0) / LN2


def reverb_ratio(xp, wet, log_decay):
    """The reverb's steady tail power per unit of dry power in each band (reverb.py's one-pole
    sum: wet / (1 - decay)), capped where a very long tail would make it huge."""
    return (wet / (1.0 - xp.exp(log_decay)).clip(1e-2, None)).clip(0.0, 100.0)


def _reverb_hats(xp, t, freqs):
    """(..., K, bands): each partial's weight in each reverb band's pooled power."""
    m = xp.log(1.0 + freqs / 700.0) * (2595.0 / math.log(10.0))
    m = m.clip(float(t["reverb_centres"][0]), float(t["reverb_centres"][-1]))
    return (1.0 - xp.abs(m[..., None] - t["reverb_centres"]) / t["reverb_width"]).clip(0.0, 1.0) * t["reverb_norm"]


def _into_band(xp, current, target, width, below=1.0, above=1.0):
    """The nearest value to `current` within `width` of `target` (`below` times it underneath,
    `above` times it over): where the decoder already renders close to the setting, the knob
    leaves its render alone."""
    return xp.minimum(xp.maximum(current, target - below * width), target + above * width)


def _trusted(setting):
    """How much of its band a setting leaves the decoder underneath it: all of it up to
    TRUSTED_UP_TO, none from FULLY_ENFORCED. Above, recordings seldom go (of the impacts' and the
    kits' audible frames, 99 % have percussivity below 0.58), so the decoder never learned
    there, and a render below the setting is pulled up to it."""
    return 1.0 - ((setting - TRUSTED_UP_TO) / (FULLY_ENFORCED - TRUSTED_UP_TO)).clip(0.0, 1.0)


def _trusted_above(setting, trusted_down_to, narrowest_at, left):
    """How much of its band a low setting leaves the decoder over it: all of it from
    `trusted_down_to`, `left` of it from `narrowest_at` down (BRIGHTNESS_ABOVE, RICHNESS_ABOVE)."""
    return left + (1.0 - left) * ((setting - narrowest_at) / (trusted_down_to - narrowest_at)).clip(0.0, 1.0)


class _Flatness:
    """The estimated log spectral flatness of a frame as one of its parts' power moves.

    Powers as shaped (per bin; partials as they are). Flatness = geometric / arithmetic mean of
    the power over the analysis's bins (0..12 kHz): each synthesis bin stands for `per_bin`
    analysis bins of its moving and fixed power, and each partial below 12 kHz fills
    PARTIAL_BINS of them on top. `moving` is scaled by exp(x)."""

    def __init__(self, xp, t, part_freqs, part_power, moving, fixed):
        self.xp, self.t = xp, t
        seen = (part_freqs <= ANALYSIS_TOP_HZ) * 1.0
        self.moving = moving * t["in_band"] / t["per_bin"] + 1e-30  # per analysis bin
        self.fixed = fixed * t["in_band"] / t["per_bin"]
        self.lobe = part_power * seen / PARTIAL_BINS
        self.moving_at, self.fixed_at = _at(xp, t, self.moving, part_freqs), _at(xp, t, self.fixed, part_freqs)
        self.total_moving = (self.moving * t["counts"]).sum(-1)[..., None]
        self.total_fixed = (self.fixed * t["counts"]).sum(-1)[..., None] + (self.lobe * PARTIAL_BINS).sum(-1)[..., None]
        # ln of the fixed parts' power over the moving part's
        self.relative = xp.log((self.total_fixed + 1e-30) / (self.total_moving + 1e-30))

    def __call__(self, x):
        """-> the log flatness at x, and its slope in x."""
        xp, t, n = self.xp, self.t, self.t["n_analysis_bins"]
        lam = xp.exp(x)
        mean = (lam * self.total_moving + self.total_fixed) / n
        floor = lam * self.moving + self.fixed + FLOOR * mean
        floor_at = lam * self.moving_at + self.fixed_at + FLOOR * mean
        log_geo = ((t["counts"] * xp.log(floor)).sum(-1)[..., None]
                   + PARTIAL_BINS * (xp.log(floor_at + self.lobe) - xp.log(floor_at)).sum(-1)[..., None]) / n - EULER_GAMMA
        d_geo = ((t["counts"] * lam * self.moving / floor).sum(-1)[..., None]
                 + PARTIAL_BINS * (lam * self.moving_at / (floor_at + self.lobe)
                                   - lam * self.moving_at / floor_at).sum(-1)[..., None]) / n
        d_mean = lam * self.total_moving / (lam * self.total_moving + self.total_fixed)
        return log_geo - xp.log(mean), d_geo - d_mean

    def solve(self, x, ln_target, low, high, steps, limit=1.0):
        return _newton(self.xp, self, x, ln_target, low, high, steps, limit, MIN_SLOPE)


def _newton(xp, measure, x, target, low, high, steps, limit, min_slope, stall=0.0):
    """Newton on x, within [low, high], toward target, in steps of at most `limit`, for a measure
    (x -> value, slope) that rises with x. The slope's floor damps the steps where x hardly moves
    the measure (the rest rules): there the answer would be ill-conditioned, and backends that
    differ in their last bits would render different noise. Below `stall` of slope the steps
    shrink in proportion, to none where the slope is 0 or wrong: x is not driven to a bound where
    it does not move the measure at all."""
    x = xp.minimum(xp.maximum(x, low), high)
    for _ in range(steps):
        value, slope = measure(x)
        step = ((value - target) / slope.clip(min_slope, None)).clip(-limit, limit)
        if stall > 0.0:
            step = step * (slope / stall).clip(0.0, 1.0)
        x = xp.minimum(xp.maximum(x - step, low), high)
    return x


def _colour(xp, t, power):
    """ln of each bin's power over the bins' geometric mean in the analysed band (..., bins)."""
    log_power = xp.log(power + 1e-30)
    return log_power - (t["counts"] * log_power).sum(-1)[..., None] / t["n_analysis_bins"]


def _solve_tone(xp, tb, part_freqs, part_power, noise_power, fixed_power, tone_like, colour):
    """The noise's further amplitude gain that brings the estimated tone_like to within TONE_BAND
    of the setting, the noise kept within NOISE_RANGE of the rest's power, and a gain per bin
    (..., bins) that whitens it where its level alone cannot: noise gathered below a few hundred
    hertz reads periodic itself (a kick's), white noise decorrelates within the first lag.
    noise_power, fixed_power in the band (tb); colour (..., all bins): the noise's (_colour), whose
    flattening keeps each bin's place and the geometric mean (the level then follows)."""
    aperiodicity = Periodicity(xp, tb, part_freqs, part_power, noise_power, fixed_power)
    zero = xp.zeros_like(tone_like)
    target = 1.0 - _into_band(xp, 1.0 - aperiodicity(zero)[0], tone_like, TONE_BAND)

    def level(measure, x):
        low, high = measure.relative + math.log(NOISE_RANGE[0]), measure.relative + math.log(NOISE_RANGE[1])
        return _newton(xp, measure, x, target, xp.minimum(low, x), xp.maximum(high, x), TONE_STEPS, 1.0,
                       TONE_MIN_SLOPE, TONE_STALL)

    x = level(aperiodicity, zero)
    # What the level leaves above the band, in tone_like, decides how far the colour flattens.
    whiten = ((target - aperiodicity(x)[0]) / TONE_WHITEN).clip(0.0, 1.0)
    colour_gain = xp.exp(-0.5 * whiten * colour)
    whitened = noise_power * colour_gain[..., :tb["n_bins"]] ** 2
    flattened = aperiodicity.moved(whitened)
    # Newton starts where white noise, uncorrelated at every lag, would meet the target: the
    # noise may have been far too quiet for its 8 steps of at most 1 (a kick's: -50 dB).
    rest = 1.0 - flattened(flattened.relative + math.log(NOISE_RANGE[0]))[0]
    start = flattened.relative + xp.log((rest / (1.0 - target)).clip(1.0 + NOISE_RANGE[0], None) - 1.0)
    x_white = level(flattened, start)
    x = xp.where(whiten > 0.0, x_white, x)
    return xp.exp(0.5 * x), colour_gain


def _gives_way(noisiness):
    """How much of the percussivity's floor on the click holds at a noisiness setting: none at
    CLICK_GIVES_WAY[0] and below, all of it from CLICK_GIVES_WAY[1]."""
    lo, hi = CLICK_GIVES_WAY
    return ((noisiness - lo) / (hi - lo)).clip(0.0, 1.0)


def _ln_flatness(flat_db):
    return flat_db * (math.log(10.0) / 10.0)


def _solve_noise(xp, t, part_freqs, part_power, noise_power, fixed_power, flat_db, below, gain, steps):
    """The noise's amplitude gain that brings the estimated spectral flatness to within the band
    of flat_db (`below` of it underneath)."""
    flatness = _Flatness(xp, t, part_freqs, part_power, noise_power, fixed_power)
    # The noise may go from NOISE_RANGE[0] to NOISE_RANGE[1] of the rest's power, whatever the
    # network gave it: a tonal sound's decoder gives almost none, and a high setting needs some.
    low, high = flatness.relative + math.log(NOISE_RANGE[0]), flatness.relative + math.log(NOISE_RANGE[1])
    ln_target = _into_band(xp, flatness(xp.zeros_like(gain))[0], _ln_flatness(flat_db), NOISINESS_BAND, below)
    return xp.exp(0.5 * flatness.solve(xp.log(gain * gain), ln_target, low, high, steps))


def _quiet_click(xp, t, part_freqs, part_power, noise_power, click_power, tail_power, flat_db, floor_gain, steps):
    """The click's further amplitude gain (at most 1, at least floor_gain) that brings the
    estimated flatness down to the top of the noisiness band where the noise alone could not:
    the click is white, and on a percussive sound set to noisiness 0.1 with the noise gone it
    kept the flatness at 0.5-0.57 (ACEAURA, the snare, the crash)."""
    flatness = _Flatness(xp, t, part_freqs, part_power, click_power, noise_power + tail_power)
    zero = xp.zeros_like(floor_gain)
    ln_target = xp.minimum(flatness(zero)[0], _ln_flatness(flat_db) + NOISINESS_BAND)
    low = xp.minimum(xp.log(floor_gain * floor_gain + 1e-300), zero)
    return xp.exp(0.5 * flatness.solve(zero, ln_target, low, zero, steps, CLICK_STEP))


def _at(xp, t, per_bin, freqs):
    """Per-bin values (..., bins) read at frequencies (..., K), linearly between bins: a partial
    that crosses a bin's edge changes nothing abruptly (nor do a backend's last-bit differences)."""
    pos = (freqs / t["bin_hz"]).clip(0.0, t["n_bins"] - 1.0)
    low = xp.floor(pos).clip(0.0, t["n_bins"] - 2.0)
    frac = pos - low
    i = as_index(xp, low)
    return take_along(xp, per_bin, i) * (1.0 - frac) + take_along(xp, per_bin, i + 1) * frac


def _click_share(xp, t, percussivity):
    """The click's share of the power, lowest and highest: the shares that give the setting less
    PERCUSSIVITY_BAND (narrowing above 0.5: _trusted) and more (settings up to the band ask for no
    click at all)."""
    return (_share_at(xp, t, percussivity - PERCUSSIVITY_BAND * _trusted(percussivity)),
            _share_at(xp, t, percussivity + PERCUSSIVITY_BAND))


def _share_at(xp, t, percussivity):
    table = t["share_table"]
    pos = percussivity.clip(0.0, 1.0) * (len(table) - 1)
    i = as_index(xp, xp.floor(pos).clip(0, len(table) - 2))
    frac = pos - i
    return table[i] * (1.0 - frac) + table[i + 1] * frac


def _share_gains(part_power, noise_power, click_power, share):
    """The click's power gains that bring its share of the frame's power (as shaped, in the
    analysed band) to `share`'s lowest and to its highest."""
    body = part_power.sum(-1)[..., None] + noise_power.sum(-1)[..., None]
    click = click_power.sum(-1)[..., None] + 1e-30
    low, high = share
    return low / (1.0 - low) * body / click, high / (1.0 - high) * body / click


def _click_floor(xp, part_power, noise_power, click_power, share):
    """The click's lowest amplitude gain (at most 1) that keeps its share at `share`'s lowest."""
    low, _ = _share_gains(part_power, noise_power, click_power, share)
    return xp.sqrt(low.clip(1.0 / MAX_CLICK_GAIN, 1.0))


def _click_gain(xp, part_power, noise_power, click_power, share):
    """The click's amplitude gain that brings its share to within `share` (lowest, highest)."""
    low, high = _share_gains(part_power, noise_power, click_power, share)
    return xp.sqrt(xp.minimum(xp.maximum(xp.ones_like(low), low), high).clip(1.0 / MAX_CLICK_GAIN, MAX_CLICK_GAIN))
