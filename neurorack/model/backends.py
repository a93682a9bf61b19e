"""Inference backends: one small interface, a CPU implementation now, TensorRT on a Jetson next.

A backend takes validated curves (T, 7) and a timbre code (16,) and returns mono
float32 audio. It owns threads, device and compilation; callers never touch torch.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from .impact_model import ImpactModel


class InferenceBackend(Protocol):
    name: str

    def render(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int) -> np.ndarray: ...

    def render_chunks(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int, head_frames: int):
        """Yield the same audio as ``render`` in two pieces, the head first."""


class _AlignedRender(torch.nn.Module):
    def __init__(self, model: ImpactModel, sample_rate: int):
        super().__init__()
        self.model = model
        self.sample_rate = sample_rate

    def forward(self, curves: torch.Tensor, timbre: torch.Tensor) -> torch.Tensor:
        return self.model.render_aligned(curves, timbre, self.sample_rate)


class TorchCPUBackend:
    """PyTorch on the CPU. ``threads`` caps intra-op threads (1 on a module, so audio keeps a core).

    A length rendered a second time is traced into a TorchScript graph (no Python per op,
    ~15 % faster); lengths are padded up to ``bucket`` frames with copies of the last frame,
    which a causal model ignores, so a few graphs serve every impact. The first render of a
    length stays eager: tracing costs ~0.4 s, which a cold start should not pay.
    """

    name = "cpu"

    def __init__(self, model: ImpactModel, threads: int | None = None, trace: bool = True, bucket: int = 25):
        self.model = model.eval().cpu()
        if threads:
            torch.set_num_threads(threads)
        self.trace = trace
        self.bucket = bucket
        self._seen: set[tuple[int, int]] = set()
        self._graphs: dict[tuple[int, int], torch.jit.ScriptModule] = {}

    @torch.inference_mode()
    def render(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int) -> np.ndarray:
        n = len(curves)
        padded = -(-n // self.bucket) * self.bucket
        c = np.ascontiguousarray(curves, dtype=np.float32)
        if padded > n:
            c = np.concatenate([c, np.repeat(c[-1:], padded - n, axis=0)])
        c_t = torch.from_numpy(c).unsqueeze(0)
        t_t = torch.from_numpy(np.ascontiguousarray(timbre, dtype=np.float32)).unsqueeze(0)
        key = (padded, sample_rate)
        graph = self._graphs.get(key)
        if graph is None and self.trace and key in self._seen:
            graph = self._graphs[key] = self._compile(c_t, t_t, sample_rate)
        self._seen.add(key)
        audio = graph(c_t, t_t) if graph is not None else self.model.render_aligned(c_t, t_t, sample_rate)
        return audio[0, : n * self.model.synth(sample_rate).samples_per_frame].numpy()

    @torch.inference_mode()
    def render_chunks(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int, head_frames: int):
        """The same audio as ``render``, in two pieces: the first `head_frames` frames' worth, then
        the rest. The model streams (its state carries over), so the pieces join exactly; a module
        can play the head while the rest is rendered. Eager: no graph is compiled here."""
        c = torch.from_numpy(np.ascontiguousarray(curves, dtype=np.float32)).unsqueeze(0)
        t = torch.from_numpy(np.ascontiguousarray(timbre, dtype=np.float32)).unsqueeze(0)
        padded = torch.cat([c, c[:, -1:]], dim=1)  # as render_aligned: one frame of look-ahead
        skip = self.model.synth(sample_rate).samples_per_frame
        state = self.model.initial_state(1, sample_rate)
        split = min(head_frames, len(curves)) + 1
        for piece in (padded[:, :split], padded[:, split:]):
            if piece.shape[1] == 0:
                continue
            audio, state = self.model(piece, t, state, sample_rate)
            yield audio[0, skip:].numpy()
            skip = 0

    def _compile(self, curves: torch.Tensor, timbre: torch.Tensor, sample_rate: int):
        import warnings

        # The frame counter is 0 for a one-shot render, so the tracer's constant is right. TorchScript is
        # deprecated from torch 2.10 on but works; torch.export is the way forward for the Jetson backend.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(_AlignedRender(self.model, sample_rate), (curves, timbre), check_trace=False)
            return torch.jit.freeze(traced.eval())


BACKENDS = {"cpu": TorchCPUBackend}


def create_backend(name: str, model: ImpactModel, **options) -> InferenceBackend:
    try:
        return BACKENDS[name](model, **options)
    except KeyError:
        raise ValueError(f"unknown inference backend {name!r}; available: {', '.join(BACKENDS)}") from None
