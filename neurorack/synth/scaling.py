"""Squashing functions that turn unbounded network outputs into physical ranges."""
from __future__ import annotations

import math

import torch


def exp_sigmoid(x: torch.Tensor, max_value: float = 2.0, threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's amplitude nonlinearity: positive, smooth, log-like slope, bounded by max_value."""
    return max_value * torch.exp(math.log(10.0) * torch.nn.functional.logsigmoid(x)) + threshold


def log_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Sigmoid mapped geometrically onto [low, high] (times, frequencies)."""
    return torch.exp(math.log(low) + torch.sigmoid(x) * (math.log(high) - math.log(low)))


def t60_to_log_decay(t60_s: torch.Tensor, frame_rate: float, power: bool = False) -> torch.Tensor:
    """Per-frame log decay factor that loses 60 dB in t60 seconds (of amplitude, or of power)."""
    db60 = math.log(1e-6 if power else 1e-3)
    return db60 / (frame_rate * t60_s)
