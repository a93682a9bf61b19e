"""`neurorack bench render`: real-time factor on one thread, parameter count, cold start."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from .common import environment

COLD_START = """
import time, numpy as np
import neurorack
gen = neurorack.load_model({path!r}, backend="cpu")
curves = np.tile([0.8, 0.2, 0.2, 0.6, 0.3, 0.5, 0.4], (200, 1)).astype(np.float32)
curves[:, 0] = np.linspace(0.9, 0.0, 200)
audio = gen.render(curves)
assert audio.shape == (96000,)
"""


def impact_trajectory(seconds: float = 2.0):
    """A 2 s trajectory from a procedural boom-and-ring impact (real analysis, no licensed data)."""
    from .. import descriptors as D
    from ..train.procedural import SAMPLE_RATE, impact

    traj = D.analyze(impact(7, 3)[0], SAMPLE_RATE)
    frames = int(seconds * D.FRAME_RATE)
    curves = traj.curves[:frames]
    if len(curves) < frames:
        curves = np.concatenate([curves, np.repeat(curves[-1:] * [0, 1, 1, 1, 1, 1, 1], frames - len(curves), axis=0)])
    return D.Trajectory(curves.astype(np.float32), traj.timbre)


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3), float(np.percentile(times, 90) * 1e3)


def _process_seconds(code: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _analysis_ms() -> float:
    """Analysing 10 s of 44.1 kHz audio (procedural impacts end to end), in process, after one warm-up
    (the first call in a process also loads librosa's compiled kernels from numba's cache)."""
    from .. import descriptors as D
    from ..fileio import resample
    from ..train.procedural import SAMPLE_RATE, impact

    audio = np.concatenate([impact(7, i)[0] for i in range(8)])
    audio = resample(np.resize(audio, 10 * SAMPLE_RATE), SAMPLE_RATE, 44100)
    median, _ = _median_ms(lambda: D.analyze(audio, 44100), 10)
    return median


def bench_render(model_path=None, repeats: int = 100) -> dict:
    import torch

    from .. import load_model
    from ..model.torch_backends import TorchBackend

    torch.set_num_threads(1)
    gen = load_model(model_path, backend="cpu", threads=1)
    traj = impact_trajectory(2.0)
    render_ms, render_p90 = _median_ms(lambda: gen.render(traj), repeats)  # traced after the first call
    model = gen.backend.model
    eager = TorchBackend(model, threads=1, trace=False)
    eager_ms, _ = _median_ms(lambda: eager.render(traj.curves, traj.timbre, 48000), repeats)
    x = torch.cat([torch.from_numpy(traj.curves)[None], torch.from_numpy(traj.timbre)[None, None].expand(1, traj.n_frames, -1)], -1)
    with torch.inference_mode():
        decoder_ms, _ = _median_ms(lambda: model.decoder(x, model.decoder.initial_state(1)), repeats)
    analysis_ms = _analysis_ms()
    cold = _process_seconds(COLD_START.format(path=str(gen.path)))
    torch_only = _process_seconds("import torch")
    summary = {
        "seconds_rendered": 2.0,
        "sample_rate": 48000,
        "threads": 1,
        "render_ms_median": round(render_ms, 3),
        "render_ms_p90": round(render_p90, 3),
        "real_time_factor": round(2000.0 / render_ms, 1),
        "eager_render_ms_median": round(eager_ms, 3),
        "eager_real_time_factor": round(2000.0 / eager_ms, 1),
        "eager_decoder_ms_median": round(decoder_ms, 3),
        "analysis_10s_ms_median": round(analysis_ms, 1),
        "parameters": model.parameter_count(),
        "cold_start_s_median": round(cold, 3),
        "import_torch_s_median": round(torch_only, 3),
        "targets": {"real_time_factor": ">= 400", "parameters": "<= 1000000", "cold_start_s": "<= 2.5",
                    "analysis_10s_ms": "< 1000"},
    }
    return {"summary": summary, "environment": environment(), "model": os.path.relpath(gen.path)}


def bench_render_side_by_side(model_paths, repeats: int = 100, rounds: int = 4, cold_starts: int = 5) -> dict:
    """Several models' one-thread render time measured in turns (A B A B ...), so all of them meet
    the same moments of a noisy machine: per model, the median of every timed render, and its ratio
    to the first model's; parameters, file size and cold start beside it."""
    import torch

    from .. import load_model

    torch.set_num_threads(1)
    gens = [load_model(p, backend="cpu", threads=1) for p in model_paths]  # the torch render: traced graphs
    traj = impact_trajectory(2.0)
    per_round = max(1, repeats // rounds)
    x = torch.cat([torch.from_numpy(traj.curves)[None], torch.from_numpy(traj.timbre)[None, None].expand(1, traj.n_frames, -1)], -1)
    times: list[list[float]] = [[] for _ in gens]
    decoder_times: list[list[float]] = [[] for _ in gens]
    for gen in gens:
        for _ in range(5):  # the second render of a length compiles its graph: warm both before timing
            gen.render(traj)
    with torch.inference_mode():
        for _ in range(rounds):
            for i, gen in enumerate(gens):
                for _ in range(per_round):
                    t = time.perf_counter()
                    gen.render(traj)
                    times[i].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    gen.backend.model.decoder(x, gen.backend.model.decoder.initial_state(1))
                    decoder_times[i].append(time.perf_counter() - t)
    rows = []
    for gen, taken, decoding in zip(gens, times, decoder_times):
        ms = float(np.median(taken) * 1e3)
        model = gen.backend.model
        rows.append({"model": os.path.relpath(gen.path), "parameters": model.parameter_count(),
                     "file_bytes": gen.path.stat().st_size, "channels": model.config.channels,
                     "dilations": list(model.config.dilations),
                     "render_ms_median": round(ms, 3), "render_ms_p90": round(float(np.percentile(taken, 90) * 1e3), 3),
                     "real_time_factor": round(2000.0 / ms, 1),
                     "eager_decoder_ms_median": round(float(np.median(decoding) * 1e3), 3),
                     "cold_start_s_median": round(_process_seconds(COLD_START.format(path=str(gen.path)), cold_starts), 3)})
    for row in rows:
        row["render_time_vs_first"] = round(row["render_ms_median"] / rows[0]["render_ms_median"], 3)
    summary = {"seconds_rendered": 2.0, "sample_rate": 48000, "threads": 1, "renders_per_model": per_round * rounds,
               "rounds": rounds, "models": rows}
    return {"summary": summary, "environment": environment()}
