"""ImpactGenerator: what ``neurorack.load_model`` returns. Trajectory in, audio out.

>>> import numpy as np, neurorack
>>> gen = neurorack.load_model()                       # the shipped models/default
>>> curves = np.tile([0.8, 0.1, 0.2, 0.6, 0.3, 0.5, 0.4], (200, 1))
>>> curves[:, 0] = np.linspace(0.9, 0.0, 200)            # a 2 s decay
>>> audio = gen.render(curves)                           # float32, 48 kHz, 96000 samples
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np

from .. import descriptors as D
from ..errors import NeurorackError
from ..fileio import resample
from ..synth.grid import SYNTH_FRAME_RATE
from .backends import InferenceBackend, ModelFiles, open_backend
from .streaming import HEAD_FRAMES

log = logging.getLogger(__name__)


class ImpactGenerator:
    def __init__(self, backend: InferenceBackend, path: Path):
        self.backend = backend
        self.path = Path(path)
        self.meta = backend.meta

    @property
    def n_parameters(self) -> int:
        return self.backend.n_parameters

    def render(self, descriptors, sample_rate: int = 48000, timbre=None) -> np.ndarray:
        """Render a trajectory: a (T, 7) array in ``descriptors.NAMES`` order, the analyse JSON
        dict, or a Trajectory. Returns mono float32 audio of T / 100 seconds, peak <= 1."""
        traj = as_trajectory(descriptors, timbre)
        if not 8000 <= sample_rate <= 192000:
            raise NeurorackError(f"sample rate {sample_rate} Hz is outside 8000..192000 Hz")
        native = sample_rate % SYNTH_FRAME_RATE == 0
        audio = self.backend.render(traj.curves, traj.timbre, sample_rate if native else 48000, moved=traj.moved)
        if not native:
            audio = resample(audio, 48000, sample_rate)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1.0:  # a loudness curve near 0 dBFS RMS can peak above full scale
            log.debug("render peaked at %.2f; scaled down to full scale", peak)
            audio = audio * (0.999 / peak)
        return audio.astype(np.float32, copy=False)

    def n_samples(self, descriptors, sample_rate: int = 48000) -> int:
        """How many samples ``render`` returns for this trajectory."""
        return as_trajectory(descriptors).n_frames * sample_rate // D.FRAME_RATE

    def render_into(self, descriptors, out: np.ndarray, sample_rate: int = 48000,
                    on_head: Callable[[int], None] | None = None, head_frames: int = HEAD_FRAMES) -> int:
        """Render into ``out[:n]`` (float32, at least ``n_samples`` long) head first, and return n.

        ``on_head(n)`` is called once ``out[:n]`` is playable: the first `head_frames` frames are
        rendered and the rest of ``out[:n]`` is zeroed, to be overwritten while the head plays (a
        module hears a control change after the head's render, ~5 ms here, not the whole impact's).
        Same samples as ``render`` (to float rounding: the synthesiser streams), except where a
        render would peak above full scale: the head's peak sets the gain then, and where a piece
        after it would pass full scale the gain ramps down from the piece's start to its first
        sample over, and stays (``_limited``: a swell whose head is quiet peaked at 1.55 and was
        clipped). Sample rates the synth cannot run natively are rendered at 48 kHz and
        resampled whole, with no head first.
        """
        traj = as_trajectory(descriptors)
        n = self.n_samples(traj, sample_rate)
        if len(out) < n:
            raise NeurorackError(f"an impact of {n} samples does not fit a buffer of {len(out)}")
        if sample_rate % SYNTH_FRAME_RATE != 0:
            out[:n] = self.render(traj, sample_rate)
            if on_head:
                on_head(n)
            return n
        at, gain = 0, 1.0
        for piece in self.backend.render_chunks(traj.curves, traj.timbre, sample_rate, head_frames, moved=traj.moved):
            piece = piece[: n - at]
            if at == 0:
                peak = float(np.max(np.abs(piece))) if piece.size else 0.0
                gain = 0.999 / peak if peak > 1.0 else 1.0
                piece = piece * gain
            else:
                piece, gain = _limited(piece, gain)
            out[at:at + len(piece)] = np.clip(piece, -1.0, 1.0)
            if at == 0:
                out[len(piece):n] = 0.0
                if on_head:
                    on_head(n)
            at += len(piece)
        return n


def _limited(piece: np.ndarray, gain: float) -> tuple[np.ndarray, float]:
    """`piece` times `gain`, unless that passes full scale: then the gain ramps down linearly from
    the piece's first sample to the first that would pass, to the gain that keeps the piece's
    peak at 0.999, and holds. The pieces before are playing already, so the gain cannot move
    before this one; it only falls, so no sample the ramp reaches passes full scale either."""
    magnitude = np.abs(piece)
    peak = float(magnitude.max()) if piece.size else 0.0
    if peak * gain <= 1.0:
        return piece * gain, gain
    target = 0.999 / peak
    first = int(np.argmax(magnitude * gain > 1.0))
    gains = np.full(len(piece), target)
    gains[:first + 1] = np.linspace(gain, target, first + 1)
    return piece * gains, target


def as_trajectory(descriptors, timbre=None) -> D.Trajectory:
    if isinstance(descriptors, D.Trajectory):
        return descriptors if timbre is None else D.trajectory_from_array(descriptors.curves, timbre)
    if isinstance(descriptors, dict):
        traj = D.trajectory_from_json(descriptors)
        return traj if timbre is None else D.trajectory_from_array(traj.curves, timbre)
    return D.trajectory_from_array(descriptors, timbre)


def load_model(path=None, backend: str = "auto", threads: int | None = None, **options) -> ImpactGenerator:
    """Load a model (default: the shipped models/default) behind an inference backend
    (model/backends.py: auto, onnx, cpu, cuda, tensorrt). `path` is a model folder, its
    model.pt or its decoder.onnx; `options` go to the backend, e.g. ``trace=False``."""
    files = ModelFiles.find(path)
    return ImpactGenerator(open_backend(backend, files, threads, **options), files.shown)
