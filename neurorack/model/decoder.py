"""Causal decoder: descriptor curves (and a timbre code) to raw synthesis controls.

A stack of dilated causal convolutions (a TCN), written time-major with the
kernel's taps concatenated into one matrix product: parallel over time for
training and one-shot renders, and streamable, since each layer keeps its
last (kernel - 1) * dilation input frames as state. Static shapes and no
data-dependent control flow, so it exports to TorchScript, ONNX and TensorRT.
"""
from __future__ import annotations

import torch
from torch import nn


class CausalBlock(nn.Module):
    """Pre-norm residual block: y = x + W2 gelu(W1 [h(t - 2d), h(t - d), h(t)])."""

    def __init__(self, channels: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.dilation = dilation
        self.kernel = kernel
        self.context = (kernel - 1) * dilation
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Linear(kernel * channels, channels)
        self.mix = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, past: torch.Tensor):
        """x (B, T, C), past (B, context, C) -> (B, T, C), new past."""
        n = x.shape[1]
        h = torch.cat([past, self.norm(x)], dim=1)
        taps = torch.cat([h[:, i * self.dilation:i * self.dilation + n] for i in range(self.kernel)], dim=-1)
        y = x + self.mix(torch.nn.functional.gelu(self.conv(taps)))
        return y, h[:, h.shape[1] - self.context:]


class CausalDecoder(nn.Module):
    def __init__(self, n_inputs: int, n_outputs: int, channels: int = 96,
                 dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 1, 4)):
        super().__init__()
        self.channels = channels
        self.inp = nn.Linear(n_inputs, channels)
        self.blocks = nn.ModuleList(CausalBlock(channels, d) for d in dilations)
        self.out_norm = nn.LayerNorm(channels)
        self.out = nn.Linear(channels, n_outputs)

    def initial_state(self, batch: int = 1) -> list[torch.Tensor]:
        device = self.inp.weight.device
        return [torch.zeros(batch, b.context, self.channels, device=device) for b in self.blocks]

    def forward(self, x: torch.Tensor, state: list[torch.Tensor]):
        """x (B, T, n_inputs) -> (B, T, n_outputs), new state."""
        h = self.inp(x)
        new_state = []
        for block, past in zip(self.blocks, state):
            h, past = block(h, past)
            new_state.append(past)
        return self.out(self.out_norm(h)), new_state
