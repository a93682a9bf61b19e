"""The Jetson backend: the decoder step as a TensorRT engine, the synthesiser in torch on the GPU.

torch-tensorrt's dynamo path: ``torch.export`` of the fixed-shape decoder step (export.py),
``torch_tensorrt.dynamo.compile`` with FP16 where the device allows it, ``torch_tensorrt.save``.
TensorRT has no kernels for the synthesiser's inverse FFT and scatter, and it has no weights:
it runs in torch on the same GPU (cuFFT).

Engines are not portable between GPUs or TensorRT versions, so one is built on the device, the
first time (a minute or more on an Orin; one log line says so), and cached in the user data
folder under a key of everything that makes it valid: the checkpoint's SHA-256, the GPU, its
compute capability, the TensorRT and torch-tensorrt versions, the precision and the block.
Any change gives another key and a new build; an engine whose file is unreadable, or whose
record names another key, is rebuilt. Builds are written atomically, and a new build removes
the stale engines of the same model on the same GPU (an SD card is small).
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..fileio import atomic_open
from . import streaming
from .backends import BackendUnavailable, ModelFiles
from .export import DEFAULT_BLOCK, DecoderStep, example_inputs
from .impact_model import ImpactModel
from .paths import checkpoint_sha256
from .torch_backends import load_torch_model

log = logging.getLogger(__name__)
ENGINE_SUFFIX = ".ep"


def default_engine_dir() -> Path:
    """$NEURORACK_ENGINES, else $XDG_DATA_HOME/neurorack/engines (~/.local/share/neurorack/engines)."""
    env = os.environ.get("NEURORACK_ENGINES")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or (Path.home() / ".local" / "share")
    return Path(base) / "neurorack" / "engines"


def compile_engine(step: torch.nn.Module, inputs: tuple, fp16: bool, path: Path) -> None:
    """Build the TensorRT engine of the decoder step and save it to `path` (the outermost call
    into torch-tensorrt: the tests replace this one function, and nothing below it)."""
    import torch_tensorrt

    program = torch.export.export(step, inputs, strict=False)
    precisions = {torch.float16, torch.float32} if fp16 else {torch.float32}
    engine = torch_tensorrt.dynamo.compile(program, inputs=list(inputs), enabled_precisions=precisions,
                                           min_block_size=1, optimization_level=3)
    torch_tensorrt.save(engine, str(path), output_format="exported_program", inputs=list(inputs))


def load_engine(path: Path) -> torch.nn.Module:
    """The saved engine as a callable module (torch-tensorrt's ops must be registered: import it first)."""
    try:
        import torch_tensorrt  # noqa: F401  (registers the TensorRT engine op that the program calls)
    except ImportError:
        pass
    return torch.export.load(str(path)).module()


class EngineCache:
    """Built engines in a folder: ``STEM.ep`` and its record ``STEM.json`` (the full key)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_engine_dir()

    @staticmethod
    def stem(key: dict) -> str:
        gpu = re.sub(r"[^a-z0-9]+", "-", str(key["gpu"]).lower()).strip("-")
        return f"{key['model_sha256'][:16]}-{gpu}-trt{key['tensorrt']}-{key['precision']}-b{key['block']}"

    def load_or_build(self, key: dict, build: Callable[[Path], None], load: Callable[[Path], object] = load_engine):
        stem = self.stem(key)
        engine, record = self.root / f"{stem}{ENGINE_SUFFIX}", self.root / f"{stem}.json"
        if engine.is_file():
            try:
                recorded = json.loads(record.read_text())
            except (OSError, ValueError):
                recorded = None
            if recorded == key:
                try:
                    return load(engine)
                except Exception as exc:  # a torn or foreign file: torch raises many classes
                    log.warning("TensorRT engine %s is unreadable (%s); building it again", engine, type(exc).__name__)
            else:
                log.warning("TensorRT engine %s was built for something else; building it again", engine.name)
        log.info("building the TensorRT engine for %s on %s (once, a minute or more)", key["model_sha256"][:12], key["gpu"])
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{stem}.building{ENGINE_SUFFIX}"
        try:
            build(partial)
            with open(partial, "rb") as f:
                data = f.read()
        finally:
            partial.unlink(missing_ok=True)
        with atomic_open(engine, "wb") as f:
            f.write(data)
        with atomic_open(record, "w") as f:
            json.dump(key, f, indent=1)
        self._remove_stale(key, stem)
        return load(engine)

    def _remove_stale(self, key: dict, keep: str) -> None:
        """Engines of the same model on the same GPU with another key can never be used again."""
        same_gpu = keep[: keep.index("-trt")]  # "<model>-<gpu>"
        for old in self.root.glob(f"{same_gpu}-trt*"):
            if not old.name.startswith(keep):
                old.unlink(missing_ok=True)


class _GpuSynth:
    """The torch synthesiser behind streaming.py's numpy-facing synth interface."""

    def __init__(self, model: ImpactModel, sample_rate: int, device):
        self.synth, self.device = model.synth(sample_rate), device
        self.samples_per_frame = self.synth.samples_per_frame

    def initial_state(self):
        return self.synth.initial_state(1)

    def forward(self, raw, curves, state, moved=()):
        c = torch.from_numpy(np.ascontiguousarray(curves)).to(self.device)[None]
        audio, state = self.synth(raw[None].float(), c, state, moved)
        return audio[0].cpu().numpy(), state


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, model: ImpactModel, key: dict, cache: EngineCache, device="cuda", meta: dict | None = None,
                 build: Callable = compile_engine, load: Callable = load_engine):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.block = int(key["block"])
        self.key = key
        self.n_parameters = model.parameter_count()
        self.meta = meta or {}
        self.passed_over: list[str] = []
        step = DecoderStep(self.model).eval()
        inputs = example_inputs(self.model, self.block, self.device)
        fp16 = key["precision"] == "fp16"
        with torch.inference_mode():
            self.engine = cache.load_or_build(key, lambda path: build(step, inputs, fp16, path), load)
        self.initial_past = inputs[2]
        self._synths: dict[int, _GpuSynth] = {}

    @classmethod
    def load(cls, files: ModelFiles, threads=None, cache_dir=None, fp16: bool = True, block: int = DEFAULT_BLOCK,
             **options) -> "TensorRTBackend":
        if not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA device")
        try:
            import tensorrt
            import torch_tensorrt
        except ImportError as exc:
            raise BackendUnavailable(f"{exc.name} cannot be imported ({exc})") from None
        model, payload = load_torch_model(files)
        major, minor = torch.cuda.get_device_capability()
        # FP16 where the device has fast half precision (compute capability 5.3 and up: every Jetson since the Nano)
        precision = "fp16" if fp16 and (major, minor) >= (5, 3) else "fp32"
        key = {"model_sha256": checkpoint_sha256(files.checkpoint), "gpu": torch.cuda.get_device_name(),
               "capability": f"{major}.{minor}", "tensorrt": tensorrt.__version__,
               "torch_tensorrt": torch_tensorrt.__version__, "precision": precision, "block": block}
        try:
            return cls(model, key, EngineCache(cache_dir), "cuda", payload.get("meta", {}))
        except BackendUnavailable:
            raise
        except Exception as exc:  # a build that TensorRT refuses: say why, and let auto go on
            raise BackendUnavailable(f"the TensorRT engine could not be built ({type(exc).__name__}: "
                                     f"{str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''})") from None

    def synth(self, sample_rate: int) -> _GpuSynth:
        if sample_rate not in self._synths:
            self._synths[sample_rate] = _GpuSynth(self.model, sample_rate, self.device)
        return self._synths[sample_rate]

    def decode(self, frames: np.ndarray, timbre: np.ndarray, past: torch.Tensor):
        """Whole blocks of curves (m * block, 7) -> raw controls (m * block, n_raw) on the GPU, new past."""
        c = torch.from_numpy(frames).to(self.device)
        t = torch.from_numpy(timbre).to(self.device)[None]
        out = []
        for start in range(0, len(frames), self.block):
            raw, past = self.engine(c[None, start:start + self.block], t, past)
            out.append(raw[0])
        return torch.cat(out), past

    @torch.inference_mode()
    def render(self, curves, timbre, sample_rate: int, moved=()) -> np.ndarray:
        return streaming.render(curves, timbre, self.block, self.decode, self.initial_past, self.synth(sample_rate),
                                torch.cat, moved)

    def render_chunks(self, curves, timbre, sample_rate: int, head_frames: int, moved=()):
        with torch.inference_mode():
            yield from streaming.render_chunks(curves, timbre, head_frames, self.block, self.decode, self.initial_past,
                                               self.synth(sample_rate), torch.cat, moved)
