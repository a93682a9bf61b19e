"""The training loop: multi-resolution STFT loss (auraloss), Adam, atomic checkpoints, resume."""
from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, NeurorackError
from ..model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from ..model.impact_model import ImpactModel, ModelConfig
from .. import descriptors as D
from . import proxies
from .data import SegmentSampler, is_validation, load_files, scan, segment

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    epochs: int = 20
    steps_per_epoch: int = 200
    batch_size: int = 8
    segment_frames: int = 150  # 1.5 s
    learning_rate: float = 2e-3
    final_learning_rate: float = 1e-4
    timbre_dropout: float = 0.2  # so the model also renders well with no timbre code
    moved_fraction: float = 0.5  # share of each batch whose conditioning is moved off the recording
    consistency_weight: float = 2.0  # weight of "the render shows the descriptors it was given"
    init: str | None = None  # start from these weights (fresh optimiser and schedule)
    emphasis: dict = field(default_factory=dict)  # extra consistency weight per descriptor name
    seed: int = 0
    threads: int = 0  # 0: torch's default


def spectral_loss():
    import auraloss

    # Resolutions from 5 ms to 85 ms at 48 kHz, as the ear hears both the click and the ring.
    return auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=[4096, 2048, 1024, 512, 256], hop_sizes=[1024, 512, 256, 128, 64],
        win_lengths=[4096, 2048, 1024, 512, 256])


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class RecordingObjective:
    """The loss against the recordings: spectral distance, plus the descriptor-consistency term on
    the moved part of each batch."""

    def __init__(self, settings: TrainSettings, device):
        self.settings = settings
        self.spectral = spectral_loss().to(device)
        self.emphasis = torch.tensor([settings.emphasis.get(n, 1.0) for n in proxies.CONTROLLED], device=device)
        self.moves = bool(settings.consistency_weight)

    def __call__(self, model, curves, audio, timbre, n_real: int) -> torch.Tensor:
        pred = model.render_aligned(curves, timbre)
        loss = self.spectral(pred[:n_real].unsqueeze(1), audio[:n_real].unsqueeze(1))
        if self.settings.consistency_weight:
            loss = loss + self.settings.consistency_weight * consistency_loss(pred, curves, self.emphasis)
        return loss


def train(data_dir, out_path, settings: TrainSettings, cache_dir, resume: bool = False, echo=print,
          config: ModelConfig | None = None) -> dict:
    """Train on recordings; `config` sets a fresh model's architecture (default: ModelConfig())."""
    return fit(data_dir, out_path, settings, cache_dir, RecordingObjective, resume, echo, config)


def fit(data_dir, out_path, settings: TrainSettings, cache_dir, objective, resume: bool = False, echo=print,
        config: ModelConfig | None = None, meta: dict | None = None) -> dict:
    """The loop every training shares: data, sampler, schedule, validation, atomic checkpoints, resume.

    `objective(settings, device)` builds the batch loss: called as (model, curves, audio, timbre,
    n_real) with the items from n_real on moved off their recordings when its `moves` is true.
    `meta` is stored in every checkpoint beside the history."""
    from tqdm import tqdm

    out_path = Path(out_path)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    device = pick_device()

    files = scan(data_dir)  # fails before any progress bar is drawn
    model, optimiser, first_epoch, history = _start(out_path, settings, resume, device, config)  # and before analysis
    with tqdm(total=len(files), desc="analysing", unit="file", file=sys.stderr, leave=False) as bar:
        examples, broken = load_files(files, cache_dir, progress=bar.update)
    for path, reason in broken:
        echo(f"skipped broken file: {reason}")
    train_set = [e for e in examples if not is_validation(e.name)]
    valid_set = [e for e in examples if is_validation(e.name)] or train_set[:1]
    if not train_set:
        raise NeurorackError(f"{data_dir}: no usable audio files (all {len(broken)} were broken)")
    echo(f"{len(train_set)} training files, {len(valid_set)} validation files, {len(broken)} skipped; device {device}; "
         f"{model.parameter_count()} parameters")

    total_steps = settings.epochs * settings.steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: _cosine(step + first_epoch * settings.steps_per_epoch,
                                                                                  total_steps, settings))
    loss_fn = spectral_loss().to(device)
    batch_loss = objective(settings, device)
    sampler = SegmentSampler(train_set, settings.segment_frames, settings.seed + first_epoch)
    rng = np.random.default_rng(settings.seed + 1000 + first_epoch)
    valid = _validation_batch(valid_set, settings.segment_frames, device)

    for epoch in range(first_epoch, settings.epochs):
        model.train()
        started = time.time()
        losses = []
        steps = tqdm(range(settings.steps_per_epoch), desc=f"epoch {epoch + 1}/{settings.epochs}", file=sys.stderr, leave=False)
        for _ in steps:
            curves, audio, timbre = (torch.from_numpy(a).to(device) for a in sampler.batch(settings.batch_size))
            drop = torch.rand(timbre.shape[0], 1, device=device) < settings.timbre_dropout
            timbre = torch.where(drop, torch.zeros_like(timbre), timbre)
            moved = int(round(settings.batch_size * settings.moved_fraction)) if batch_loss.moves else 0
            n_real = settings.batch_size - moved
            curves = move_descriptors(curves, n_real, rng)
            loss = batch_loss(model, curves, audio, timbre, n_real)
            if not torch.isfinite(loss):
                raise NeurorackError("training diverged (non-finite loss); lower --lr")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            steps.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val = _validate(model, loss_fn, valid)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "valid_loss": val,
                        "seconds": round(time.time() - started, 1)})
        echo(f"epoch {epoch + 1}/{settings.epochs}: train loss {np.mean(losses):.4f}, validation loss {val:.4f} "
             f"({time.time() - started:.0f} s)")
        save_checkpoint(out_path, model,
                        meta={"history": history, "settings": _recorded(settings), "n_parameters": model.parameter_count(),
                              **(meta or {})},
                        training={"epoch": epoch + 1, "optimiser": optimiser.state_dict()})
    return {"history": history, "skipped": [str(p) for p, _ in broken]}


def move_descriptors(curves: torch.Tensor, keep: int, rng: np.random.Generator) -> torch.Tensor:
    """Items from `keep` on get one controllable descriptor held at a random level or shifted,
    as a CV or an edit would: there is no recording of these, only the consistency loss."""
    moved = curves.clone()
    for i in range(keep, curves.shape[0]):
        d = D.INDEX[proxies.CONTROLLED[rng.integers(len(proxies.CONTROLLED))]]
        if rng.random() < 0.5:
            moved[i, :, d] = float(rng.uniform(0.0, 1.0))
        else:
            moved[i, :, d] = torch.clamp(moved[i, :, d] + float(rng.uniform(-0.5, 0.5)), 0.0, 1.0)
    return moved


def consistency_loss(audio: torch.Tensor, curves: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean |proxy descriptors of the render - the conditioning| over audible frames (> -60 dBFS)."""
    measured = proxies.descriptors(audio, curves.shape[1])
    wanted = curves[..., [D.INDEX[n] for n in proxies.CONTROLLED]]
    audible = (curves[..., D.INDEX["loudness"]] > 0.25).float().unsqueeze(-1)
    weights = torch.ones(len(proxies.CONTROLLED), device=audio.device) if weights is None else weights
    return ((measured - wanted).abs() * audible * weights).sum() / (audible.sum() * weights.sum() + 1e-9)


def _recorded(settings: TrainSettings) -> dict:
    """Settings as stored in a checkpoint: no machine's absolute paths in a shareable file."""
    recorded = dict(settings.__dict__)
    if recorded.get("init"):
        recorded["init"] = Path(recorded["init"]).name
    return recorded


def _cosine(step: int, total: int, s: TrainSettings) -> float:
    progress = min(1.0, step / max(1, total))
    low = s.final_learning_rate / s.learning_rate
    return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))


def _start(out_path: Path, settings: TrainSettings, resume: bool, device, config: ModelConfig | None = None):
    if resume and out_path.exists():
        model, payload = load_checkpoint(out_path)
        _check_architecture(model, config, out_path)
        model.to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        training = payload.get("training")
        if not training:
            raise CheckpointError(f"{out_path} holds no training state to resume from")
        optimiser.load_state_dict(training["optimiser"])
        history = payload.get("meta", {}).get("history", [])
        return model, optimiser, int(training["epoch"]), history
    if resume:
        log.warning("%s does not exist yet: starting a new training", out_path)
    elif out_path.exists():
        read_checkpoint(out_path)  # refuse to overwrite something that is not a checkpoint of ours
    if settings.init:
        model, _ = load_checkpoint(settings.init)
        _check_architecture(model, config, settings.init)
        model.to(device)
    else:
        model = ImpactModel(config or ModelConfig()).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=settings.learning_rate), 0, []


def _check_architecture(model: ImpactModel, config: ModelConfig | None, path) -> None:
    """A checkpoint to continue from decides the architecture; a different one asked for is a mistake."""
    if config is not None and model.config != config:
        raise NeurorackError(f"{path} holds a model of {model.config.channels} channels, dilations "
                             f"{list(model.config.dilations)}; asked for {config.channels} channels, dilations "
                             f"{list(config.dilations)} (leave --channels/--dilations out to keep the checkpoint's)")


def _validation_batch(examples, frames: int, device):
    batch = [segment(e, 0, frames) for e in examples]
    curves = torch.from_numpy(np.stack([b[0] for b in batch])).to(device)
    audio = torch.from_numpy(np.stack([b[1] for b in batch])).to(device)
    timbre = torch.from_numpy(np.stack([e.timbre for e in examples])).to(device)
    return curves, audio, timbre


@torch.no_grad()
def _validate(model, loss_fn, valid) -> float:
    model.eval()
    curves, audio, timbre = valid
    losses = []
    for i in range(0, curves.shape[0], 16):
        pred = model.render_aligned(curves[i:i + 16], timbre[i:i + 16])
        losses.append(loss_fn(pred.unsqueeze(1), audio[i:i + 16].unsqueeze(1)).item() * pred.shape[0])
    return float(np.sum(losses) / curves.shape[0])
