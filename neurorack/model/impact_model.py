"""ImpactModel: the decoder and the synthesiser as one differentiable module.

The synthesiser has no learned parameters, so one trained decoder renders at
any sample rate that is a multiple of 200 Hz (a synth per rate is built on demand).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .. import descriptors as D
from ..synth import ImpactSynth
from .decoder import CausalDecoder


MAX_SIZE = 1024  # channels, partials, bands, a dilation: the largest sane value of each
MAX_LAYERS = 64


@dataclass
class ModelConfig:
    channels: int = 64
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 1, 4])
    n_partials: int = 32
    n_noise_bands: int = 32
    n_transient_bands: int = 16
    n_reverb_bands: int = 8

    def __post_init__(self):
        """Sizes this architecture can have; absurd ones (a file that would allocate terabytes)
        are refused before anything is built."""
        for name, value in vars(self).items():
            values = value if name == "dilations" else [value]
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_LAYERS:
                raise ValueError(f"{name} must be a list of 1..{MAX_LAYERS} numbers")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SIZE:
                    raise ValueError(f"{name} must be whole numbers 1..{MAX_SIZE}, not {v!r:.20}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}")
        return cls(**d)


class ImpactModel(nn.Module):
    n_inputs = len(D.NAMES) + D.TIMBRE_BANDS

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        probe = self._make_synth(48000)
        self.decoder = CausalDecoder(self.n_inputs, probe.n_raw, self.config.channels, tuple(self.config.dilations))
        self.synths = nn.ModuleDict({"48000": probe})

    def _make_synth(self, sample_rate: int) -> ImpactSynth:
        c = self.config
        return ImpactSynth(sample_rate, c.n_partials, c.n_noise_bands, c.n_transient_bands, c.n_reverb_bands)

    def synth(self, sample_rate: int) -> ImpactSynth:
        key = str(int(sample_rate))
        if key not in self.synths:
            device = next(self.decoder.parameters()).device
            self.synths[key] = self._make_synth(int(sample_rate)).to(device)
        return self.synths[key]

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def initial_state(self, batch: int = 1, sample_rate: int = 48000) -> dict:
        return {"decoder": self.decoder.initial_state(batch), "synth": self.synth(sample_rate).initial_state(batch)}

    def forward(self, curves: torch.Tensor, timbre: torch.Tensor, state: dict, sample_rate: int = 48000, moved=()):
        """curves (B, T, 7), timbre (B, 16) -> audio (B, T * sample_rate // 100), state.

        Streaming form: audio for frame m ends with frame m's onset (one frame of look-ahead).
        """
        raw, dec_state = self.decoder(self._decoder_input(curves, timbre), state["decoder"])
        audio, syn_state = self.synth(sample_rate)(raw, curves, state["synth"], moved)
        return audio, {"decoder": dec_state, "synth": syn_state}

    def controls(self, curves: torch.Tensor, timbre: torch.Tensor) -> torch.Tensor:
        """The decoder's raw synthesis controls (B, T, n_raw) for curves (B, T, 7), from a fresh state:
        what a distilled decoder learns to match."""
        return self.decoder(self._decoder_input(curves, timbre), self.decoder.initial_state(curves.shape[0]))[0]

    @staticmethod
    def _decoder_input(curves: torch.Tensor, timbre: torch.Tensor) -> torch.Tensor:
        return torch.cat([curves, timbre.unsqueeze(1).expand(-1, curves.shape[1], -1)], dim=-1)

    def render_aligned(self, curves: torch.Tensor, timbre: torch.Tensor, sample_rate: int = 48000,
                       controls=None, moved=()) -> torch.Tensor:
        """One-shot render whose sample n is at time n / sample_rate of the descriptor timeline.
        `controls` stands in for ``self.controls`` (a traced decoder: torch_backends)."""
        padded = torch.cat([curves, curves[:, -1:]], dim=1)
        synth = self.synth(sample_rate)
        raw = (controls or self.controls)(padded, timbre)
        audio, _ = synth(raw, padded, synth.initial_state(curves.shape[0]), moved)
        return audio[:, synth.samples_per_frame:]
