"""ImpactSynth: partials + noise + transient + reverb, two inverse FFTs, streamable.

Input is the decoder's raw output at the descriptor frame rate (100 Hz) plus the
descriptor curves, some of which act directly: pitch sets the partials' f0 and
loudness sets each frame's output level (the dry mix is normalised to the
target RMS), as DDSP feeds f0 and loudness straight to its synthesiser; brightness,
richness, noisiness and percussivity are enforced on the spectra (knobs.py). The
network decides the rest: which partials, their decays, inharmonicity, colour.

The partials and the click are summed as spectra and turned to audio by one inverse FFT; the
noise and the reverb by another, windowed after (grid.noise_table: a filtered frame must not
reach its edges). ``forward`` takes and returns a state, so rendering block by block equals
rendering at once.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import descriptors as D
from .frames import frames_to_audio
from .grid import SYNTH_FRAME_RATE, FrameGrid
from .knobs import KnobTables, enforce, reverb_ratio
from .noise import FilteredNoise
from .partials import ModalPartials
from .reverb import StatisticalReverb
from .transient import Transient

UPSAMPLE = SYNTH_FRAME_RATE // D.FRAME_RATE
REVERB_NOISE_OFFSET = 512  # reverb reads the noise table half a table away from the dry noise


class ImpactSynth(nn.Module):
    def __init__(self, sample_rate: int = 48000, n_partials: int = 32, n_noise_bands: int = 32,
                 n_transient_bands: int = 16, n_reverb_bands: int = 8, knobs: bool = True):
        """knobs=False leaves brightness, richness, noisiness and percussivity to the decoder (the blocks
        alone, as a test of one block wants them); every model renders with knobs=True."""
        super().__init__()
        self.knobs = knobs
        self.grid = FrameGrid(sample_rate)
        self.partials = ModalPartials(self.grid, n_partials)
        self.noise = FilteredNoise(self.grid, n_noise_bands)
        self.transient = Transient(self.grid, n_transient_bands)
        self.reverb = StatisticalReverb(self.grid, n_reverb_bands)
        self.sizes = [self.partials.n_raw, self.noise.n_raw, self.transient.n_raw, self.reverb.n_raw]
        self.n_raw = sum(self.sizes)
        tables = KnobTables(self.grid, n_reverb_bands)
        self._knob_scalars = {k: v for k, v in vars(tables).items() if not isinstance(v, np.ndarray)}
        self._knob_arrays = list(tables.arrays())
        for name, array in tables.arrays().items():
            self.register_buffer(f"knob_{name}", torch.from_numpy(array).double(), persistent=False)

    @property
    def samples_per_frame(self) -> int:
        """Output samples per descriptor frame."""
        return UPSAMPLE * self.grid.hop

    def initial_state(self, batch: int = 1) -> dict:
        return {
            "partials": self.partials.initial_state(batch),
            "reverb": self.reverb.initial_state(batch),
            "tail": torch.zeros(batch, self.grid.hop, device=self.partials.start_phase.device),
            "frame": torch.zeros((), dtype=torch.long),
        }

    @torch.no_grad()
    def _knob_gains(self, curves, freqs, amp, n_ctrl, c_bins, r_ctrl, moved):
        batch, n_desc = curves.shape[:2]
        pair_power = (0.5 * amp.double() ** 2).view(batch, n_desc, UPSAMPLE, -1).mean(2)
        tables = {**self._knob_scalars, **{k: getattr(self, f"knob_{k}") for k in self._knob_arrays}}
        gains = enforce(torch, tables, curves.double(), freqs.double(), pair_power,
                        self.noise.bin_power(n_ctrl).double(), c_bins.double(),
                        reverb_ratio(torch, r_ctrl["wet"].double(), r_ctrl["log_decay"].double()), moved)
        return [g.float() for g in gains]

    def forward(self, raw: torch.Tensor, curves: torch.Tensor, state: dict, moved=()):
        """raw (B, T, n_raw), descriptor curves (B, T, 7) normalised -> audio (B, T * samples_per_frame), state.
        moved: how far a control moves each descriptor in this render (knobs.enforce)."""
        batch, n_desc = raw.shape[:2]
        n_frames = n_desc * UPSAMPLE
        r_partials, r_noise, r_transient, r_reverb = torch.split(raw, self.sizes, dim=-1)
        loudness, pitch = curves[..., D.INDEX["loudness"]], curves[..., D.INDEX["pitch"]]

        # Controls at the descriptor rate; the synthesis frames of a pair share them.
        f0 = 440.0 * 2.0 ** ((_PITCH.low + pitch * (_PITCH.high - _PITCH.low) - 69.0) / 12.0)
        p_ctrl = self.partials.get_controls(r_partials, f0)
        n_ctrl = self.noise.get_controls(r_noise)
        r_ctrl = self.reverb.get_controls(r_reverb)
        amp, _, amp_state = self.partials.get_amplitudes({k: _hold(v) for k, v in p_ctrl.items()}, state["partials"])
        # One click per descriptor frame, in the second synthesis frame of its pair, whose centre
        # is the descriptor frame's time; its power counts over the pair.
        click, c_bins = self.transient.get_frames(self.transient.get_controls(r_transient))

        # Brightness, richness, noisiness and percussivity are enforced (knobs.py): gains solved without
        # gradient from the frame's powers, then applied like any other control.
        if self.knobs:
            part_gain, bin_gain, noise_bin_gain, click_gain = self._knob_gains(curves, p_ctrl["freqs"], amp, n_ctrl, c_bins, r_ctrl, moved)
            amp = amp * _hold(part_gain)
            n_ctrl = {"magnitude": n_ctrl["magnitude"] * noise_bin_gain.repeat_interleave(2, dim=-1)}
            click_gain = bin_gain * click_gain
            click = click * click_gain.unsqueeze(-1)
            c_bins = c_bins * click_gain * click_gain
        p_power = 0.5 * (amp * amp).sum(-1)
        c_power = c_bins.sum(-1)
        p_ctrl = {k: _hold(v) for k, v in p_ctrl.items()}

        # Loudness is enforced: the dry mix is scaled so each frame's RMS is the target level.
        # A loudness of 0 (-80 dBFS or below) renders true silence.
        level_db = _LOUD.low + loudness * (_LOUD.high - _LOUD.low)
        target_rms = torch.where(loudness > 1e-3, torch.exp(level_db * (math.log(10.0) / 20.0)), torch.zeros_like(loudness))
        gain = _hold(target_rms) / torch.sqrt(p_power + _hold(self.noise.get_power(n_ctrl) + c_power) + 1e-12)

        partials, phase_state = self.partials.get_frames(p_ctrl, amp * gain.unsqueeze(-1), state["partials"])
        noise = self.noise.get_frames(n_ctrl, self.noise.frames_of_noise(state["frame"], n_frames), gain.view(batch, n_desc, UPSAMPLE))
        tonal = partials.view(batch, n_desc, UPSAMPLE, -1, 2).clone()
        tonal[:, :, 1] += click * gain.view(batch, n_desc, UPSAMPLE, 1)[:, :, 1:]
        tonal = tonal.view(batch, n_frames, -1, 2)
        dry = tonal + noise

        reverb_noise = self.noise.frames_of_noise(state["frame"], n_frames, REVERB_NOISE_OFFSET)
        wet, r_state = self.reverb.get_frames(r_ctrl, dry, reverb_noise, state["reverb"])

        audio, tail = frames_to_audio(tonal, noise + wet, self.noise.window, state["tail"], self.grid)
        new_state = {"partials": {**phase_state, "amp": amp_state}, "reverb": r_state, "tail": tail, "frame": state["frame"] + n_frames}
        return audio, new_state


_PITCH = D.SCALES["pitch"]
_LOUD = D.SCALES["loudness"]


def _hold(x: torch.Tensor) -> torch.Tensor:
    """Descriptor-rate (B, T, ...) to synthesis-rate (B, T * UPSAMPLE, ...) by repetition."""
    return x.repeat_interleave(UPSAMPLE, dim=1)
