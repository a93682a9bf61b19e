"""NumpyImpactSynth: the ImpactSynth's audio without torch, for the module's runtime.

The torch synthesiser (impact_synth.py and its blocks) is the definition: training
differentiates through it. This is a second implementation of its forward pass, for one
impact at a time (no batch axis), in numpy: the runtime that renders on a Pi then needs only
numpy and ONNX Runtime (the decoder). It mirrors the blocks one to one (``get_controls`` and
``get_frames`` of partials, noise, transient and reverb, in the same order and precision),
and the tests hold it to the torch synthesiser within 1e-4, one-shot and streamed. A change
to a block's controls is a change in both places, or those tests fail.

Shapes: raw controls (T, n_raw) at the descriptor rate (100 Hz), descriptor curves (T, 7)
normalised; audio (T * samples_per_frame,) float32. ``forward`` takes and returns a state,
so rendering block by block equals rendering at once.
"""
from __future__ import annotations

import math

import numpy as np

from .. import descriptors as D
from .knobs import KnobTables, enforce, reverb_ratio
from .grid import (SYNTH_FRAME_RATE, FrameGrid, band_interpolation, band_pooling, centre_shift, noise_table, noise_window,
                   power_weights)

UPSAMPLE = SYNTH_FRAME_RATE // D.FRAME_RATE
REVERB_NOISE_OFFSET = 512  # as impact_synth.py
KERNEL_HALF_WIDTH = 4  # as partials.py
NOISE_TABLE_FRAMES = 1024
LN10 = math.log(10.0)
_PITCH = D.SCALES["pitch"]
_LOUD = D.SCALES["loudness"]
f32 = np.float32


# -- scaling.py ---------------------------------------------------------------------------------
def exp_sigmoid(x, max_value: float = 2.0, threshold: float = 1e-7):
    log_sigmoid = np.minimum(x, f32(0.0)) - np.log1p(np.exp(-np.abs(x)))  # torch's formula; 3x np.logaddexp's speed
    return f32(max_value) * np.exp(f32(LN10) * log_sigmoid) + f32(threshold)


def sigmoid(x):
    return f32(1.0) / (f32(1.0) + np.exp(-x))


def log_range(x, low: float, high: float):
    return np.exp(f32(math.log(low)) + sigmoid(x) * f32(math.log(high) - math.log(low)))


def t60_to_log_decay(t60_s, frame_rate: float, power: bool = False):
    return f32(math.log(1e-6 if power else 1e-3)) / (f32(frame_rate) * t60_s)


def decaying_sum(x, log_decay, state, chunk: int = 128):
    """y[t] = exp(log_decay[t]) * y[t-1] + x[t] along axis 0 from y[-1] = state, as frames.py does
    (float64, in chunks of the same length, so the two round alike). -> (y as x.dtype, last y)."""
    xs, ls = x.astype(np.float64), log_decay.astype(np.float64)
    out = np.empty(xs.shape, np.float64)
    for start in range(0, len(x), chunk):
        cum = np.cumsum(ls[start:start + chunk], axis=0)
        y = np.exp(cum) * (state + np.cumsum(xs[start:start + chunk] * np.exp(-cum), axis=0))
        out[start:start + chunk] = y
        state = y[-1]
    return out.astype(x.dtype), state


class NumpyImpactSynth:
    def __init__(self, sample_rate: int = 48000, n_partials: int = 32, n_noise_bands: int = 32,
                 n_transient_bands: int = 16, n_reverb_bands: int = 8, knobs: bool = True):
        g = self.grid = FrameGrid(sample_rate)
        self.knobs = knobs
        self.n_partials, self.n_reverb_bands = n_partials, n_reverb_bands
        self.sizes = [3 * n_partials, n_noise_bands + 1, n_transient_bands + 2, n_reverb_bands + 1]
        self.n_raw = sum(self.sizes)
        self._splits = np.cumsum(self.sizes)[:-1]
        # partials
        L = KERNEL_HALF_WIDTH
        self.offsets = np.arange(-L + 1, L + 1, dtype=f32)
        self.tap_places = np.arange(4 * L, dtype=np.int32)  # a partial's 2L taps as (re, im) pairs
        k = np.arange(n_partials)
        self.start_phase = np.pi * k * k / n_partials
        self.nyquist_guard_hz = g.sample_rate / 2 - (L + 1) * g.bin_hz
        self.flat_width = 2 * (g.n_bins + L)
        # noise: tables interleaved (re, im) like the spectra they multiply
        self.noise_interp = np.repeat(band_interpolation(n_noise_bands, g), 2, axis=1)
        table = noise_table(g, NOISE_TABLE_FRAMES) * centre_shift(g)[:, None]
        self.noise_table = np.concatenate([table, table])
        self.noise_window = noise_window(g)
        self.noise_power_weights = np.repeat(power_weights(g), 2) / f32(2.0)
        # transient
        self.click_interp = band_interpolation(n_transient_bands, g) * centre_shift(g)
        theta = 2 * math.pi * np.arange(g.n_bins, dtype=np.float64) / g.n_fft
        self.cos, self.sin = np.cos(theta).astype(f32), np.sin(theta).astype(f32)
        self.alternating = centre_shift(g)
        self.click_power_weights = power_weights(g) / f32(g.n_fft)
        self.noise_bin_weights = power_weights(g)
        tables = KnobTables(g, n_reverb_bands)
        self.knob_tables = {**vars(tables), **tables.arrays()}
        # reverb
        self.pool = np.ascontiguousarray(np.repeat(band_pooling(n_reverb_bands, g).T, 2, axis=0) / f32(g.hop))
        self.reverb_interp = np.repeat(band_interpolation(n_reverb_bands, g), 2, axis=1)

    @property
    def samples_per_frame(self) -> int:
        return UPSAMPLE * self.grid.hop

    def initial_state(self) -> dict:
        k = self.n_partials
        return {"phase": self.start_phase.copy(), "freq": np.zeros(k), "amp": np.zeros(k),
                "reverb": np.zeros(self.n_reverb_bands), "tail": np.zeros(self.grid.hop, f32), "frame": 0}

    # -- the blocks' controls, at the descriptor rate ------------------------------------------
    def partial_controls(self, raw, f0_hz) -> dict:
        k = self.n_partials
        step = f32(0.15) + f32(1.85) * sigmoid(raw[:, 2 * k:3 * k - 1])
        ratios = np.concatenate([np.ones_like(step[:, :1]), f32(1.0) + np.cumsum(step, axis=1, dtype=np.float64).astype(f32)], axis=1)  # torch sums in float64
        t60 = log_range(raw[:, k:2 * k], 0.02, 12.0)
        return {"freqs": f0_hz[:, None] * ratios,
                "excitation": exp_sigmoid(raw[:, :k]) * exp_sigmoid(raw[:, -1:]),
                "log_decay": t60_to_log_decay(t60, SYNTH_FRAME_RATE)}

    def noise_controls(self, raw) -> dict:
        return {"magnitude": (exp_sigmoid(raw[:, :-1]) @ self.noise_interp) * exp_sigmoid(raw[:, -1:])}

    def transient_controls(self, raw) -> dict:
        shape = exp_sigmoid(raw[:, :-2]) @ self.click_interp
        return {"shape": shape * exp_sigmoid(raw[:, -2:-1]), "decay_s": log_range(raw[:, -1:], 2e-4, 8e-3)}

    def reverb_controls(self, raw) -> dict:
        t60 = log_range(raw[:, :-1], 0.1, 8.0)
        return {"log_decay": t60_to_log_decay(t60, D.FRAME_RATE, power=True), "wet": exp_sigmoid(raw[:, -1:], 0.5)}

    # -- the blocks' frames ------------------------------------------------------------------
    def partial_frames(self, freqs, amp, state: dict):
        """Frequencies (T, K) at the descriptor rate and amplitudes (F, K), F = 2T -> centred spectra
        (F, bins, 2), new phase and frequency. A descriptor frame's two synthesis frames share its
        frequencies (ImpactSynth holds them), so each partial's window kernel is computed once per
        pair; partials above Nyquist in every frame are left out (they add zeros)."""
        g, L = self.grid, KERNEL_HALF_WIDTH
        t, k = freqs.shape
        f = 2 * t
        f64 = np.repeat(freqs.astype(np.float64), UPSAMPLE, axis=0)
        prev = np.concatenate([state["freq"][None], f64[:-1]])
        phase = state["phase"][None] + np.cumsum((math.pi * g.hop / g.sample_rate) * (prev + f64), axis=0)
        phase -= np.floor(phase * (0.5 / math.pi)) * (2 * math.pi)  # torch.remainder's formula; np.remainder is 20x slower
        valid = freqs < self.nyquist_guard_hz
        heard = valid.any(axis=0)
        if not heard.all():
            freqs, valid, amp, ph = freqs[:, heard], valid[:, heard], amp[:, heard], phase[:, heard].astype(f32)
        else:
            ph = phase.astype(f32)
        kept = freqs.shape[1]
        centre = np.where(valid, freqs, f32(0.0)) / f32(g.bin_hz)
        base = np.floor(centre)
        frac = np.clip(centre - base, f32(1e-4), f32(1.0 - 1e-4))
        first = base.astype(np.int32)
        shape = (1 - 2 * (first & 1)).astype(f32) * np.sin(f32(math.pi) * frac) * f32(-g.n_fft / (4 * math.pi))
        x = self.offsets - frac[..., None]  # (T, K, 2L)
        rational = (f32(1.0) / (x - x * x * x))[:, None]  # (T, 1, K, 2L): shared by the pair
        scale = amp.reshape(t, UPSAMPLE, kept) * shape[:, None]
        z = np.empty((t, UPSAMPLE, kept), np.complex64)
        z.real, z.imag = scale * np.cos(ph).reshape(t, UPSAMPLE, kept), scale * np.sin(ph).reshape(t, UPSAMPLE, kept)
        taps = z[..., None] * rational  # (T, 2, K, 2L) complex: as float pairs, 4L consecutive values
        # Scatter-add into the (re, im)-interleaved bins -L+1 .. n_bins-1 of every frame at once
        # (the frames laid end to end): each partial's taps are 4L consecutive floats. float32,
        # as torch's scatter_add_.
        rows = (np.arange(f, dtype=np.int32) * self.flat_width).reshape(t, UPSAMPLE, 1, 1)
        idx = ((first * 2 + 2)[:, None, :, None] + rows + self.tap_places).reshape(-1)
        flat = np.zeros(f * self.flat_width, f32)
        np.add.at(flat, idx, taps.view(f32).reshape(-1))
        spec = flat.reshape(f, -1, 2)
        neg = spec[:, :L]  # bins -L .. -1
        spec = spec[:, L:].copy()
        spec[:, 1:L + 1, 0] += neg[:, ::-1, 0]
        spec[:, 1:L + 1, 1] -= neg[:, ::-1, 1]  # a real signal's bin k gets conj(P(-k))
        spec[:, 0, 0] *= f32(2.0)
        spec[:, 0, 1] = 0.0
        return spec, phase[-1], f64[-1]

    def click_frames(self, ctrl: dict):
        """-> spectra (T, bins, 2) of one click per descriptor frame, and its mean power per bin (T, bins)."""
        g = self.grid
        rho = np.exp(f32(-1.0) / (ctrl["decay_s"] * f32(g.sample_rate)))
        numerator = ctrl["shape"] * (f32(1.0) - np.exp(f32(g.hop) * np.log(rho)) * self.alternating)
        denominator = f32(1.0) - f32(2.0) * rho * self.cos + rho * rho
        q = numerator / denominator
        spectra = np.stack([q * (f32(1.0) - rho * self.cos), q * (-rho * self.sin)], axis=-1)
        return spectra, q * numerator * self.click_power_weights

    def noise_frames(self, frame_index: int, n_frames: int, offset: int = 0):
        start = (frame_index + offset) % NOISE_TABLE_FRAMES
        if n_frames <= NOISE_TABLE_FRAMES:
            return self.noise_table[start:start + n_frames]
        return self.noise_table[(start + np.arange(n_frames)) % NOISE_TABLE_FRAMES]

    # -- the whole synthesiser ----------------------------------------------------------------
    def forward(self, raw, curves, state: dict, moved=()):
        """raw (T, n_raw), curves (T, 7) -> audio (T * samples_per_frame,) float32, new state.
        moved: how far a control moves each descriptor in this render (knobs.enforce)."""
        raw = np.asarray(raw, f32)
        curves = np.asarray(curves, f32)
        loudness, pitch = curves[:, D.INDEX["loudness"]], curves[:, D.INDEX["pitch"]]
        t = len(raw)
        n_frames = t * UPSAMPLE
        bins = self.grid.n_bins
        r_partials, r_noise, r_transient, r_reverb = np.split(raw, self._splits, axis=1)

        f0 = f32(440.0) * f32(2.0) ** ((f32(_PITCH.low) + pitch * f32(_PITCH.high - _PITCH.low) - f32(69.0)) / f32(12.0))
        p_ctrl = self.partial_controls(r_partials, f0)  # held over each pair of synthesis frames, as ImpactSynth
        n_ctrl = self.noise_controls(r_noise)
        rv_ctrl = self.reverb_controls(r_reverb)
        amp, amp_state = decaying_sum(np.repeat(p_ctrl["excitation"], UPSAMPLE, axis=0),
                                      np.repeat(p_ctrl["log_decay"], UPSAMPLE, axis=0), state["amp"])
        amp = (amp.reshape(t, UPSAMPLE, -1) * (p_ctrl["freqs"] < self.nyquist_guard_hz)[:, None]).reshape(n_frames, -1)
        click, c_bins = self.click_frames(self.transient_controls(r_transient))

        if self.knobs:  # knobs.py: the gains that enforce brightness, richness, noisiness and percussivity
            pair_power = (0.5 * amp.astype(np.float64) ** 2).reshape(t, UPSAMPLE, -1).mean(1)
            mag = n_ctrl["magnitude"][:, ::2].astype(np.float64)
            part_gain, bin_gain, noise_bin_gain, click_gain = (g.astype(f32) for g in enforce(
                np, self.knob_tables, curves.astype(np.float64), p_ctrl["freqs"].astype(np.float64), pair_power,
                mag * mag * self.noise_bin_weights, c_bins.astype(np.float64),
                reverb_ratio(np, rv_ctrl["wet"].astype(np.float64), rv_ctrl["log_decay"].astype(np.float64)), moved))
            amp = (amp.reshape(t, UPSAMPLE, -1) * part_gain[:, None]).reshape(n_frames, -1)
            n_ctrl = {"magnitude": n_ctrl["magnitude"] * np.repeat(noise_bin_gain, 2, axis=-1)}
            click_gain = bin_gain * click_gain
            click = click * click_gain[..., None]
            c_bins = c_bins * click_gain * click_gain
        c_power = c_bins.sum(-1)
        p_power = f32(0.5) * (amp * amp).sum(-1)

        level_db = f32(_LOUD.low) + loudness * f32(_LOUD.high - _LOUD.low)
        target = np.where(loudness > f32(1e-3), np.exp(level_db * f32(LN10 / 20.0)), f32(0.0))
        noise_power = (n_ctrl["magnitude"] ** 2 * self.noise_power_weights).sum(-1)
        gain = np.repeat(target, UPSAMPLE) / np.sqrt(p_power + np.repeat(noise_power + c_power, UPSAMPLE) + f32(1e-12))

        partials, phase, freq = self.partial_frames(p_ctrl["freqs"], amp * gain[:, None], state)
        noise = self.noise_frames(state["frame"], n_frames).reshape(t, UPSAMPLE, 2 * bins)
        noise = noise * (n_ctrl["magnitude"][:, None] * gain.reshape(t, UPSAMPLE, 1))
        tonal = partials.reshape(t, UPSAMPLE, bins, 2)  # partial_frames returns a fresh array: the click goes into it
        tonal[:, 1] += click * gain.reshape(t, UPSAMPLE)[:, 1:, None]
        dry = tonal + noise.reshape(t, UPSAMPLE, bins, 2)

        # reverb (reverb.py): band powers of the dry frames feed a per-band decaying tail
        pair = dry.reshape(t, UPSAMPLE, 2 * bins)
        squares = (pair[:, 0] * pair[:, 0] + pair[:, 1] * pair[:, 1]) * f32(0.5)  # the mean over a pair
        tail_power, r_state = decaying_sum((squares @ self.pool) * rv_ctrl["wet"], rv_ctrl["log_decay"], state["reverb"])
        r_gain = np.sqrt(tail_power @ self.reverb_interp + f32(1e-12))
        wet = self.noise_frames(state["frame"], n_frames, REVERB_NOISE_OFFSET).reshape(t, UPSAMPLE, 2 * bins)
        noisy = (noise + wet * r_gain[:, None]).reshape(n_frames, bins, 2)

        audio, tail = self.frames_to_audio(tonal.reshape(n_frames, bins, 2), noisy, state["tail"])
        new_state = {"phase": phase, "freq": freq, "amp": amp_state, "reverb": r_state, "tail": tail,
                     "frame": state["frame"] + n_frames}
        return audio, new_state

    def frames_to_audio(self, spectra, noise, tail):
        """(F, bins, 2) centred spectra of the partials and click, and of the noise and reverb (windowed
        after their inverse FFT: grid.noise_table) -> (F * hop,) samples, and the pending tail (hop,)."""
        hop = self.grid.hop

        def inverse(x):
            return np.fft.irfft(np.ascontiguousarray(x).view(np.complex64)[..., 0], n=self.grid.n_fft, axis=-1)

        frames = inverse(spectra) + inverse(noise) * self.noise_window
        out = frames[:, :hop].copy()
        out[0] += tail
        out[1:] += frames[:-1, hop:]
        return out.reshape(-1).astype(f32, copy=False), frames[-1, hop:].astype(f32)
