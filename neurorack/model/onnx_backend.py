"""The torch-free backend: the decoder in ONNX Runtime, the synthesiser in numpy.

What a Pi runs: the render process maps neither libtorch nor its threads, starts in a
fraction of the time, and the ARMv8.0 cores of a Pi 4 are served by ONNX Runtime's own
kernels. The ONNX file is ``neurorack export --format onnx`` of the checkpoint beside it;
a file exported from another checkpoint or architecture, or one that is not a decoder
export at all, is refused with one line.
"""
from __future__ import annotations

import json

import numpy as np

from ..synth.numpy_synth import NumpyImpactSynth
from . import streaming
from .backends import EXPORT_FORMAT, EXPORT_VERSION, BackendUnavailable, ModelFiles
from .paths import checkpoint_sha256


class OnnxBackend:
    name = "onnx"

    def __init__(self, files: ModelFiles, threads: int | None = 1):
        import onnxruntime as ort
        from threadpoolctl import threadpool_limits

        if threads:
            # numpy's BLAS, for this process: the synthesiser's matrices are small, and a pool of
            # BLAS threads makes each product several times slower (and takes the audio's core).
            threadpool_limits(threads, user_api="blas")

        path = files.onnx
        if not path.is_file():
            raise BackendUnavailable(f"{path} not found (write it with: neurorack export --format onnx --out {path})")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default, every core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # its warnings are not the module's log
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own classes for every kind of bad file
            first = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailable(f"{path} is corrupt or not an ONNX model ({first})") from None
        info = self.session.get_modelmeta().custom_metadata_map
        if info.get("neurorack.format") != EXPORT_FORMAT:
            raise BackendUnavailable(f"{path} is not a neurorack decoder export")
        if info.get("neurorack.version") != str(EXPORT_VERSION):
            raise BackendUnavailable(f"{path} is a decoder export of version {info.get('neurorack.version')}; "
                                     f"this neurorack reads version {EXPORT_VERSION}: export it again")
        if files.checkpoint.is_file() and checkpoint_sha256(files.checkpoint) != info.get("neurorack.model_sha256"):
            raise BackendUnavailable(f"{path} was exported from another checkpoint than {files.checkpoint}: "
                                     f"export it again (neurorack export --format onnx --out {path})")
        try:
            self.config = json.loads(info["neurorack.config"])
            self.block = int(info["neurorack.block"])
            contexts = json.loads(info["neurorack.contexts"])
            channels = int(info["neurorack.channels"])
            self.n_parameters = int(info["neurorack.parameters"])
            self.meta = json.loads(info.get("neurorack.meta", "{}"))
        except (KeyError, ValueError, TypeError) as exc:
            raise BackendUnavailable(f"{path}: its export record is incomplete ({exc})") from None
        expected = {"curves": [1, self.block, 7], "timbre": [1, 16], "past": [1, sum(contexts), channels]}
        found = {i.name: list(i.shape) for i in self.session.get_inputs()}
        if found != expected:
            raise BackendUnavailable(f"{path}: its inputs do not match its own record (another architecture?)")
        self.initial_past = np.zeros((1, sum(contexts), channels), np.float32)
        self.files = files
        self.passed_over: list[str] = []
        self._synths: dict[int, NumpyImpactSynth] = {}

    def synth(self, sample_rate: int) -> NumpyImpactSynth:
        if sample_rate not in self._synths:
            c = self.config
            self._synths[sample_rate] = NumpyImpactSynth(sample_rate, c["n_partials"], c["n_noise_bands"],
                                                         c["n_transient_bands"], c["n_reverb_bands"])
        return self._synths[sample_rate]

    def decode(self, frames: np.ndarray, timbre: np.ndarray, past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole blocks of curves (m * block, 7) -> raw controls (m * block, n_raw), the layers' past."""
        run, b = self.session.run, self.block
        feeds = {"timbre": timbre[None]}
        out = []
        for start in range(0, len(frames), b):
            feeds["curves"], feeds["past"] = frames[None, start:start + b], past
            raw, past = run(None, feeds)
            out.append(raw[0])
        return (out[0] if len(out) == 1 else np.concatenate(out)), past

    def render(self, curves: np.ndarray, timbre: np.ndarray, sample_rate: int, moved=()) -> np.ndarray:
        return streaming.render(curves, timbre, self.block, self.decode, self.initial_past, self.synth(sample_rate),
                                moved=moved)

    def render_chunks(self, curves, timbre, sample_rate: int, head_frames: int, moved=()):
        return streaming.render_chunks(curves, timbre, head_frames, self.block, self.decode, self.initial_past,
                                       self.synth(sample_rate), moved=moved)
