"""The torch backends: the checkpoint's ImpactModel on the CPU (`cpu`) or a CUDA device (`cuda`)."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import CheckpointError
from .backends import BackendUnavailable, ModelFiles
from .checkpoint import load_checkpoint
from . import streaming
from .impact_model import ImpactModel


class _Controls(torch.nn.Module):
    """The decoder alone, curves (B, T, 7) and timbre -> raw controls: what is traced. The
    synthesiser is not: its knobs solve data-dependent rows (which frames move, how many start
    shapes fit a batch), which a trace would freeze as they were for the first input."""

    def __init__(self, model: ImpactModel):
        super().__init__()
        self.model = model

    def forward(self, curves: torch.Tensor, timbre: torch.Tensor) -> torch.Tensor:
        return self.model.controls(curves, timbre)


def load_torch_model(files: ModelFiles) -> tuple[ImpactModel, dict]:
    """The checkpoint, or BackendUnavailable with its one-line reason (so ``auto`` can go on)."""
    try:
        return load_checkpoint(files.checkpoint)
    except CheckpointError as exc:
        raise BackendUnavailable(str(exc)) from None


class TorchBackend:
    """PyTorch on ``device``. ``threads`` caps intra-op threads (1 on a module, so audio keeps a core).

    A length rendered a second time has its decoder traced into a TorchScript graph (no Python
    per op; the synthesiser stays eager: _Controls); lengths are padded up to ``bucket`` frames
    with copies of the last frame, which a causal model ignores, so a few graphs serve every
    impact. The first render of a length stays eager: tracing costs ~0.4 s, which a cold start
    should not pay.
    """

    def __init__(self, model: ImpactModel, device: str = "cpu", threads: int | None = None, trace: bool = True,
                 bucket: int = 25, meta: dict | None = None):
        self.name = "cpu" if device == "cpu" else "cuda"
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        if threads:
            torch.set_num_threads(threads)
        self.trace = trace
        self.bucket = bucket
        self.n_parameters = model.parameter_count()
        self.meta = meta or {}
        self.passed_over: list[str] = []
        self._seen: set[tuple[int, int]] = set()
        self._graphs: dict[tuple[int, int], torch.jit.ScriptModule] = {}

    @classmethod
    def load(cls, files: ModelFiles, device: str = "cpu", threads: int | None = None, **options) -> "TorchBackend":
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA device")
        model, payload = load_torch_model(files)
        return cls(model, device, threads, meta=payload.get("meta", {}), **options)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).unsqueeze(0).to(self.device)

    @torch.inference_mode()
    def render(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int, moved=()) -> np.ndarray:
        n = len(curves)
        padded = -(-n // self.bucket) * self.bucket
        c = np.ascontiguousarray(curves, dtype=np.float32)
        if padded > n:
            c = np.concatenate([c, np.repeat(c[-1:], padded - n, axis=0)])
        c_t, t_t = self._tensor(c), self._tensor(timbre)
        key = (padded, sample_rate)
        graph = self._graphs.get(key)
        if graph is None and self.trace and key in self._seen:
            graph = self._graphs[key] = self._compile(c_t, t_t)
        self._seen.add(key)
        audio = self.model.render_aligned(c_t, t_t, sample_rate, controls=graph, moved=moved)
        return audio[0, : n * self.model.synth(sample_rate).samples_per_frame].cpu().numpy()

    @torch.inference_mode()
    def render_chunks(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int, head_frames: int, moved=()):
        """The same audio as ``render``, in pieces: the first `head_frames` frames' worth, then the
        rest as ``streaming.pieces`` plans it. The model streams (its state carries over), so the pieces
        join exactly; a module plays each while the next is rendered. Eager: no graph compiled here."""
        c, t = self._tensor(curves), self._tensor(timbre)
        padded = torch.cat([c, c[:, -1:]], dim=1)  # as render_aligned: one frame of look-ahead
        skip = self.model.synth(sample_rate).samples_per_frame
        state = self.model.initial_state(1, sample_rate)
        for start, stop in streaming.pieces(len(curves), head_frames):
            audio, state = self.model(padded[:, start:stop], t, state, sample_rate, moved)
            yield audio[0, skip:].cpu().numpy()
            skip = 0

    def _compile(self, curves: torch.Tensor, timbre: torch.Tensor):
        # Traced on the curves as render_aligned passes them (one frame of look-ahead); the decoder
        # of a one-shot render starts from its initial state, so the tracer's constants are right.
        # TorchScript is deprecated from torch 2.10 on but works; TensorRT goes through torch.export.
        padded = torch.cat([curves, curves[:, -1:]], dim=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(_Controls(self.model), (padded, timbre), check_trace=False)
            return torch.jit.freeze(traced.eval())
