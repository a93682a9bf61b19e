"""Inference backends: one small interface, four implementations, chosen by name or by ``auto``.

A backend takes validated curves (T, 7) and a timbre code (16,) and returns mono float32
audio. It owns threads, device and compilation; callers never touch torch or ONNX Runtime.

| name       | decoder                               | synthesiser          | needs                          |
|------------|---------------------------------------|----------------------|--------------------------------|
| `onnx`     | ONNX Runtime, CPU (decoder.onnx)      | numpy                | onnxruntime (no torch at all)  |
| `cpu`      | torch on the CPU (model.pt)           | torch                | torch                          |
| `cuda`     | torch on a CUDA device                | torch, on the GPU    | torch with CUDA                |
| `tensorrt` | a TensorRT engine built on the device | torch, on the GPU    | torch_tensorrt, a CUDA device  |

``auto`` takes the first of tensorrt, cuda, onnx, cpu that loads, and logs one line for each
it passes over saying why. It asks cheap questions first (is the package installed, is there
a GPU device node) so that a Pi never imports torch only to learn it has no GPU.

This module imports neither torch nor onnxruntime: the implementations load on demand.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from ..errors import NeurorackError
from .paths import default_models_dir

NAMES = ("tensorrt", "cuda", "onnx", "cpu")  # also auto's order: fastest first
CHOICES = ("auto",) + NAMES
CHECKPOINT_FILE = "model.pt"
ONNX_FILE = "decoder.onnx"
EXPORT_FORMAT, EXPORT_VERSION = "neurorack-decoder-step", 1  # what export.py writes into each file


class InferenceBackend(Protocol):
    name: str
    n_parameters: int
    meta: dict
    passed_over: list[str]  # auto: "backend: why not" for each backend tried before this one

    def render(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int, moved=()) -> np.ndarray:
        """`moved`: how far a control moves each descriptor in this render (Trajectory.moved)."""

    def render_chunks(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int,
                      head_frames: int, moved=()) -> Iterator[np.ndarray]:
        """Yield the same audio as ``render`` in pieces: the head, then each as long as all before
        it (``streaming.rest_pieces``), so each renders while those before it play."""


class BackendUnavailable(NeurorackError):
    """This backend cannot run here; the message is the one-line reason."""


@dataclass(frozen=True)
class ModelFiles:
    """Where a model's files are: the torch checkpoint and its ONNX export (either may be absent)."""

    checkpoint: Path
    onnx: Path

    @classmethod
    def find(cls, path=None) -> "ModelFiles":
        """A model folder, a checkpoint or an ONNX file (None: the shipped models/default)."""
        if isinstance(path, ModelFiles):
            return path
        path = Path(path) if path else default_models_dir() / "default"
        if path.is_dir():
            return cls(path / CHECKPOINT_FILE, path / ONNX_FILE)
        if path.suffix == ".onnx":
            return cls(path.with_name(CHECKPOINT_FILE), path)
        return cls(path, path.with_name(ONNX_FILE))

    @property
    def shown(self) -> Path:
        """The file a user knows the model by."""
        return self.checkpoint if self.checkpoint.exists() or not self.onnx.exists() else self.onnx


def why_no_gpu() -> str | None:
    """Why there is no NVIDIA GPU, or None when there may be one (device nodes, not drivers: cheap)."""
    if Path("/etc/nv_tegra_release").exists() or Path("/dev/nvidia0").exists() or Path("/dev/nvgpu").exists():
        return None
    return "no NVIDIA GPU (no /dev/nvidia0, not a Jetson)"


def _need(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"{module} is not installed{why}")


def _open_onnx(files: ModelFiles, threads, **options):
    _need("onnxruntime", " (pip install onnxruntime)")
    from .onnx_backend import OnnxBackend

    return OnnxBackend(files, threads=threads)


def _open_cpu(files: ModelFiles, threads, **options):
    _need("torch", " (the 'torch' extra)")
    from .torch_backends import TorchBackend

    return TorchBackend.load(files, "cpu", threads=threads, **options)


def _need_gpu() -> None:
    reason = why_no_gpu()
    if reason:
        raise BackendUnavailable(reason)


def _open_cuda(files: ModelFiles, threads, **options):
    _need("torch", " (the 'torch' extra, or the Jetson's own)")
    _need_gpu()
    from .torch_backends import TorchBackend

    return TorchBackend.load(files, "cuda", threads=threads, **options)


def _open_tensorrt(files: ModelFiles, threads, **options):
    _need("torch_tensorrt", " (JetPack's, or NVIDIA's index)")
    _need_gpu()
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend.load(files, threads=threads, **options)


OPENERS = {"onnx": _open_onnx, "cpu": _open_cpu, "cuda": _open_cuda, "tensorrt": _open_tensorrt}


def open_backend(name: str, path=None, threads: int | None = None, **options) -> InferenceBackend:
    """The backend `name` for the model at `path`; ``auto``: the first of NAMES that loads.

    Raises BackendUnavailable with the reason (for auto: every backend's reason, in one line).
    `options` go to torch backends (``trace``) and TensorRT (``cache_dir``, ``fp16``).
    """
    if name not in CHOICES:
        raise NeurorackError(f"unknown inference backend {name!r}; choose one of {', '.join(CHOICES)}")
    files = ModelFiles.find(path)
    if name != "auto":
        return OPENERS[name](files, threads, **options)
    reasons = []
    for candidate in NAMES:
        try:
            backend = OPENERS[candidate](files, threads, **options)
        except BackendUnavailable as exc:
            reasons.append(f"{candidate}: {exc}")
            continue
        backend.passed_over = reasons  # auto's log lines, said by whoever shows the backend
        return backend
    raise BackendUnavailable("no inference backend can run here (" + "; ".join(reasons) + ")")
