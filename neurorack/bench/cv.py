"""`neurorack bench cv`: the knobs as a musician hears them, through the module.

Two measurements, both on an offline sim module (``assemble(ModuleOptions(live=False))``: the
engine, its CV mapping and the renderer a gate plays, without audio), driven by its public API
(``select_sound``, ``assign``, CV events through the board's inputs, ``render_stale``) and read
from the impact gate 1 would play:

- **sweep**: CV 2 assigned in turn to each descriptor at the default depth, swept from -5 V to
  +5 V; each render re-analysed, the descriptor's mean over the sound's audible frames against
  the volts (Spearman, and the span from -5 V to +5 V);
- **pitch**: CV 4 (pitch, 1 V/oct) over five octaves on the tonal factory sounds; the render's
  f0 (f0.py: yin for the period, refined to the nearest spectral peak, on the frames where the sound is audible and tonal)
  against the volts, in cents, before and after a calibration (the straight line through the
  measurements: a scale and offset trim, as a musician tunes a VCO). Target: within 5 cents.
"""
from __future__ import annotations

import os

import numpy as np

from .common import environment, spearman

SWEEP_VOLTS = tuple(float(v) for v in range(-5, 6))
SWEEP_SOUNDS = ("Sub Boom", "Glass Ring", "Snap", "Layered Hit")
# Tonal in the sense of pitch: the lowest partial is the f0. Glass Ring and Modal Ring are tonal
# rings whose strong upper partials are not harmonics of it: yin locks onto other periodicities.
TONAL_SOUNDS = ("Sub Boom", "Big Impact", "Drop Boom")
OCTAVES = 5
PITCH_STEP_V = 0.5
YIN_FRAME = 4096
F0_RANGE_HZ = (25.0, 2100.0)
REFINE_FRAME = 8192  # 170 ms at 48 kHz, as the analysis's refinement


def bench_cv(model_path=None, sweep_sounds=SWEEP_SOUNDS, tonal_sounds=TONAL_SOUNDS) -> dict:
    from ..assembly import ModuleOptions, assemble
    from ..engine.controls import CvAssignment

    module = assemble(ModuleOptions(board="sim", model=model_path, persist=False, live=False))
    try:
        rate = module.settings.audio.sample_rate
        render = _renderer(module)
        sweep = [_sweep(module, render, rate, sound, name, CvAssignment) for sound in sweep_sounds
                 for name in _descriptor_names()]
        pitch = [_pitch(module, render, rate, sound, CvAssignment) for sound in tonal_sounds]
    finally:
        module.close()
    summary = {}
    for name in _descriptor_names():
        rows = [r for r in sweep if r["descriptor"] == name]
        if not rows:
            continue
        summary[name] = {"spearman_min": min(r["spearman"] for r in rows),
                         "span_mean": round(float(np.mean([r["span"] for r in rows])), 3),
                         "span_min": round(min(r["span"] for r in rows), 4)}
    summary["pitch_max_error_cents_calibrated"] = round(max(p["max_error_cents_calibrated"] for p in pitch), 2)
    summary["target"] = ("sweep: Spearman >= 0.9, span (+5 V - -5 V) >= 0.5; pitch: within 5 cents over five "
                         "octaves after calibration")
    return {"summary": summary, "sweep": sweep, "pitch": pitch, "environment": environment(),
            "model": os.path.relpath(str(model_path)) if model_path else "models/default"}


def _descriptor_names():
    from .. import descriptors as D

    return D.NAMES


def _renderer(module):
    from ..hal.gates import Gate
    from ..hal.sim import SimEvent

    def render(volts: dict[int, float]) -> np.ndarray:
        for number, v in volts.items():
            module.apply_event(SimEvent(0.0, "cv", number, v))  # as a patch cable: calibration, deadband
        module.render_stale()
        buffer = module.engine.prerender.ready[Gate.IMPACT]
        if buffer is None:
            raise RuntimeError(f"the module rendered nothing for gate 1 ({module.engine.prerender.error})")
        return np.array(buffer, dtype=np.float32)
    return render


def _audible(traj) -> np.ndarray:
    from .. import descriptors as D

    loud = traj.curves[:, D.INDEX["loudness"]]
    return loud >= loud.max() - 0.5  # within 40 dB of the peak, as bench control


def _sweep(module, render, rate, sound, name, assignment_class) -> dict:
    from .. import descriptors as D
    from ..errors import SilentAudioError

    module.select_sound("a", sound)
    module.assign(2, assignment_class(name))
    audible = _audible(module.library.get(sound).trajectory)
    measured = []
    for v in SWEEP_VOLTS:
        audio = render({2: v})
        try:
            again = D.analyze(audio, rate).curves
        except SilentAudioError:  # loudness at 0: silence, the bottom of the loudness scale
            if name != "loudness":
                raise
            measured.append(0.0)
            continue
        n = min(len(again), len(audible))
        measured.append(float(again[:n][audible[:n], D.INDEX[name]].mean()))
    render({2: 0.0})
    return {"sound": sound, "descriptor": name, "volts": list(SWEEP_VOLTS), "measured": [round(m, 4) for m in measured],
            "spearman": round(spearman(SWEEP_VOLTS, measured), 3), "span": round(measured[-1] - measured[0], 4)}


def _pitch(module, render, rate, sound, assignment_class) -> dict:
    from .. import descriptors as D

    module.select_sound("a", sound)
    module.assign(4, assignment_class("pitch"))
    traj = module.library.get(sound).trajectory
    scale = D.SCALES["pitch"]
    midi = scale.to_physical(traj.curves[:, D.INDEX["pitch"]])
    tonal = tonal_frames(traj)
    centre = float(np.median(midi[tonal]))
    low_v = _window(centre, scale)
    volts = [low_v + PITCH_STEP_V * i for i in range(int(OCTAVES / PITCH_STEP_V) + 1)]
    deviations, used = [], []
    for v in volts:
        cents, frames = pitch_error_cents(render({4: v}), midi + 12.0 * v, tonal, rate)
        deviations.append(cents)
        used.append(frames)
    render({4: 0.0})
    dev = np.asarray(deviations)
    good = np.isfinite(dev)
    slope, offset = np.polyfit(np.asarray(volts)[good], dev[good], 1)
    residual = dev[good] - (offset + slope * np.asarray(volts)[good])
    low_hz = 440.0 * 2.0 ** ((centre + 12.0 * volts[0] - 69.0) / 12.0)
    return {"sound": sound, "median_pitch_midi": round(centre, 2), "volts": volts,
            "median_hz_at_lowest": round(low_hz, 2), "median_hz_at_highest": round(low_hz * 2 ** OCTAVES, 2),
            "error_cents": [round(d, 2) for d in deviations], "frames_measured": used,
            "max_error_cents_uncalibrated": round(float(np.nanmax(np.abs(dev))), 2),
            "calibration": {"scale_cents_per_volt": round(1200.0 + slope, 3), "offset_cents": round(offset, 2)},
            "max_error_cents_calibrated": round(float(np.max(np.abs(residual))), 2)}


def tonal_frames(traj) -> np.ndarray:
    """The frames of a sound where its pitch means something: audible and tone-like."""
    from .. import descriptors as D

    return _audible(traj) & (traj.curves[:, D.INDEX["tone_like"]] > 0.5)


def pitch_error_cents(audio: np.ndarray, expected_midi: np.ndarray, frames: np.ndarray, rate: int) -> tuple[float, int]:
    """The render's f0 against the pitch asked of each descriptor frame (MIDI note numbers), in
    cents: the median over `frames` where the asked pitch is inside the pitch range (not clipped
    by it) and yin found an f0; and how many frames that was (NaN, 0 when none). The one measure
    of pitch accuracy, for the CVs (bench cv) and for MIDI notes (bench midi)."""
    from .. import descriptors as D

    scale = D.SCALES["pitch"]
    inside = frames & (expected_midi > scale.low + 0.5) & (expected_midi < scale.high - 0.5)
    f0 = f0_per_frame(audio, rate, len(expected_midi))
    ok = inside & np.isfinite(f0)
    if not ok.any():
        return float("nan"), 0
    cents = 1200.0 * np.log2(f0[ok] / (440.0 * 2.0 ** ((expected_midi[ok] - 69.0) / 12.0)))
    return float(np.median(cents)), int(ok.sum())


def _window(centre_midi: float, scale) -> float:
    """The lowest whole-volt start whose five octaves keep the sound's median pitch inside the range."""
    for start in range(-6, 2):
        if centre_midi + 12 * start >= scale.low + 1 and centre_midi + 12 * (start + OCTAVES) <= scale.high - 1:
            return float(start)
    raise ValueError(f"a median pitch of MIDI {centre_midi:.1f} leaves no five octaves inside the pitch range")


def f0_per_frame(audio: np.ndarray, rate: int, n_frames: int) -> np.ndarray:
    """f0 (Hz) per descriptor frame, as the analysis reads it (f0.py: yin's period, arbitrated by the
    spectrum where yin is unsure, refined to the nearest spectral peak) at the render's rate; NaN
    where the frame is far below the render's peak or no peak lies near yin's estimate."""
    import librosa

    from .. import descriptors as D
    from .. import f0

    hop = rate // D.FRAME_RATE
    y = np.asarray(audio, np.float64)
    rms = librosa.feature.rms(y=y, frame_length=YIN_FRAME, hop_length=hop, center=True)[0][:n_frames]
    loud = rms >= rms.max() * 10 ** (-30 / 20)
    spectra = f0.PeakSpectra(y, rate, hop, np.flatnonzero(loud), REFINE_FRAME)
    yin = f0.yin(y, rate, hop, YIN_FRAME, *F0_RANGE_HZ, spectra)[:n_frames]
    out = np.full(n_frames, np.nan)
    out[:len(yin)] = spectra.refine(np.where(loud[:len(yin)], yin, np.nan))
    return out
