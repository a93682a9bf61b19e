"""Distillation: a smaller decoder trained to do what a trained one does.

The synthesiser has no weights, so only the decoder is distilled. The student (an ImpactModel
with a smaller ModelConfig) learns the teacher's raw synthesis controls, frame by frame, on the
training curves and on curves with one descriptor moved off the recording as the consistency
training moves them, so it inherits the teacher's controls as well as its resyntheses. Optionally,
the multi-resolution spectral loss of the student's render against the teacher's render, and
against the recording where there is one. Everything else (data, sampler, schedule, validation,
checkpoints, resume) is train/loop.py's.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..errors import NeurorackError
from ..model.checkpoint import load_checkpoint
from ..model.impact_model import ImpactModel, ModelConfig
from . import proxies
from .loop import TrainSettings, consistency_loss, fit, spectral_loss


# Raw controls reach the synthesiser through sigmoids; gains through 2 * sigmoid(x) ** ln 10
# (synth/scaling.py), so one unit of a very negative raw gain is 20 dB and raw L1 is a level
# difference. Beyond +-8 a control is saturated (-160 dB), and the teacher's target is clipped there.
RAW_LIMIT = 8.0

@dataclass(frozen=True)
class DistillSettings:
    teacher: str  # checkpoint of the trained model
    controls_weight: float = 1.0  # mean |student raw - teacher raw|
    render_weight: float = 1.0  # MR-STFT of the student's render against the teacher's (0: no synthesis at all)
    recording_weight: float = 0.0  # MR-STFT against the recording, on the items that were not moved

    def __post_init__(self):
        for name in ("controls_weight", "render_weight", "recording_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise NeurorackError(f"distillation {name.replace('_', ' ')} must be a finite number >= 0; got {value!r}")
        if not (self.controls_weight or self.render_weight or self.recording_weight):
            raise NeurorackError("distillation needs at least one loss weight above 0")

    def recorded(self) -> dict:
        """As stored in the student's checkpoint: the teacher by its folder and file name, no machine's path."""
        d = asdict(self)
        d["teacher"] = "/".join(Path(self.teacher).parts[-2:])
        return d


def load_teacher(path, device=None) -> ImpactModel:
    """The teacher in eval mode with its weights frozen; CheckpointError names a missing or broken file."""
    teacher, _ = load_checkpoint(path)
    teacher.requires_grad_(False)
    return teacher.to(device or "cpu").eval()


class DistillObjective:
    """The batch loss of a student against its teacher. Every item's target is the teacher's, so the
    moved half of each batch needs no recording."""

    moves = True

    def __init__(self, teacher: ImpactModel, distill: DistillSettings, settings: TrainSettings, device):
        self.teacher = teacher.to(device)
        self.distill = distill
        self.settings = settings
        self.spectral = spectral_loss().to(device) if distill.render_weight or distill.recording_weight else None
        self.emphasis = torch.tensor([settings.emphasis.get(n, 1.0) for n in proxies.CONTROLLED], device=device)

    def __call__(self, model, curves, audio, timbre, n_real: int) -> torch.Tensor:
        d = self.distill
        synthesise = bool(d.render_weight or d.recording_weight or self.settings.consistency_weight)
        with torch.no_grad():
            wanted = self.teacher.controls(curves, timbre).clamp(-RAW_LIMIT, RAW_LIMIT)
            target = self.teacher.render_aligned(curves, timbre) if d.render_weight else None
        loss = d.controls_weight * (model.controls(curves, timbre) - wanted).abs().mean()
        if not synthesise:
            return loss
        pred = model.render_aligned(curves, timbre)
        if d.render_weight:
            loss = loss + d.render_weight * self.spectral(pred.unsqueeze(1), target.unsqueeze(1))
        if d.recording_weight and n_real:
            loss = loss + d.recording_weight * self.spectral(pred[:n_real].unsqueeze(1), audio[:n_real].unsqueeze(1))
        if self.settings.consistency_weight:
            loss = loss + self.settings.consistency_weight * consistency_loss(pred, curves, self.emphasis)
        return loss


def student_config(teacher: ModelConfig, channels: int | None = None, dilations=None) -> ModelConfig:
    """The teacher's settings with a narrower and/or shorter decoder; the synthesiser stays the same,
    so the student's controls mean what the teacher's mean."""
    try:
        return replace(teacher, channels=teacher.channels if channels is None else channels,
                       dilations=list(teacher.dilations if dilations is None else dilations))
    except ValueError as exc:
        raise NeurorackError(f"student decoder: {exc}") from None


def distill(data_dir, out_path, settings: TrainSettings, distill_settings: DistillSettings, cache_dir,
            channels: int | None = None, dilations=None, resume: bool = False, echo=print) -> dict:
    """Train a student of `channels` and `dilations` (the teacher's where not given), or continue
    the --init or resumed student, on the teacher's controls."""
    teacher = load_teacher(distill_settings.teacher)  # a missing teacher fails before any data is read
    sized = channels is not None or dilations is not None
    config = student_config(teacher.config, channels, dilations) if sized else None
    if config is None and not settings.init and not (resume and Path(out_path).exists()):
        raise NeurorackError("distillation needs the student's size: --channels N and/or --dilations "
                             "(or --init a student checkpoint)")
    echo(f"teacher {distill_settings.teacher}: {teacher.parameter_count()} parameters, "
         f"{teacher.config.channels} channels, dilations {list(teacher.config.dilations)}")
    meta = {"distillation": {**distill_settings.recorded(), "teacher_parameters": teacher.parameter_count()}}

    def objective(train_settings, device):
        return DistillObjective(teacher, distill_settings, train_settings, device)

    return fit(data_dir, out_path, settings, cache_dir, objective, resume, echo, config, meta)
