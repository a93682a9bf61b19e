"""`neurorack bench backends`: every inference backend that loads here, measured side by side.

- speed: a 2 s impact at 48 kHz on one thread, each backend in turn within every round (A B C
  A B C ...), so whatever else the machine does falls on all alike; medians and the ratio to
  `cpu` measured in the same run;
- the head: the first 0.25 s of an impact in process; the module's head (streaming.HEAD_FRAMES)
  through the render process (a control change's trajectory sent, to the head playable in
  shared memory);
- head first: long impacts (10 s), how far ahead of the playhead each piece after the head is
  ready (a negative margin is a gap of silence);
- agreement: every factory sound rendered by each backend against `cpu`;
- the module: `neurorack run --board sim` with each backend on a JACK dummy server: process
  start to the first impact heard, then, idle, the resident memory of every process (RSS and
  PSS, which counts shared pages once) and whether any maps libtorch;
- variants: int8 weights (ONNX Runtime dynamic quantisation) and models/small when it is there:
  parameters, file size, speed, and with ``--quality DIR`` the MR-STFT over that folder.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .common import environment
from .speed import impact_trajectory

LIBTORCH = ("libtorch", "libc10")


def _stats_ms(values) -> dict:
    v = np.asarray(values) * 1e3
    return {"median_ms": round(float(np.median(v)), 3), "p90_ms": round(float(np.percentile(v, 90)), 3),
            "p99_ms": round(float(np.percentile(v, 99)), 3)}


def _open_all(model, names, threads: int = 1):
    from .. import load_model
    from ..model.backends import BackendUnavailable

    generators, unavailable = {}, {}
    for name in names:
        try:
            generators[name] = load_model(model, backend=name, threads=threads)
        except BackendUnavailable as exc:
            unavailable[name] = str(exc)
    return generators, unavailable


def speed(generators: dict, repeats: int) -> dict:
    traj = impact_trajectory(2.0)
    for g in generators.values():
        for _ in range(5):
            g.render(traj)
    full = {name: [] for name in generators}
    heads = {name: [] for name in generators}
    for _ in range(repeats):
        for name, g in generators.items():
            t = time.perf_counter()
            g.render(traj)
            full[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            next(iter(g.backend.render_chunks(traj.curves, traj.timbre, 48000, 25)))  # the head only
            heads[name].append(time.perf_counter() - t)
    rows = {}
    cpu = np.median(full["cpu"]) if "cpu" in full else None
    for name in generators:
        m = float(np.median(full[name]))
        rows[name] = {"render_2s": _stats_ms(full[name]), "real_time_factor": round(2.0 / m, 1),
                      "head_0.25s": _stats_ms(heads[name]),
                      "time_vs_cpu": round(m / cpu, 3) if cpu else None}
    return rows


def head_first(generators: dict, rounds: int = 5) -> dict:
    """Long impacts head first, as the module renders them (streaming.HEAD_FRAMES): how long
    before the playhead reaches it each piece is ready (the head plays from the moment it is
    ready), the least over every piece and round. A negative
    margin is a gap of silence. Beside it, when the whole rest was ready: what the rest in one
    piece, as it was rendered before streaming.rest_pieces, would have left to the playhead."""
    from .. import descriptors as D
    from ..model.streaming import HEAD_FRAMES
    from ..sounds.library import SoundLibrary

    cases = {}
    for sound in sorted(SoundLibrary(None).sounds(), key=lambda s: -len(s.trajectory.curves))[:3]:
        c = sound.trajectory.curves
        at = np.linspace(0, len(c) - 1, 10 * D.FRAME_RATE)
        stretched = np.stack([np.interp(at, np.arange(len(c)), x) for x in c.T], 1).astype(np.float32)
        rich = stretched.copy()
        rich[:, D.INDEX["richness"]] = 0.9
        cases[f"{sound.name}, stretched to 10 s"] = (stretched, sound.trajectory.timbre)
        cases[f"{sound.name}, stretched to 10 s, richness 0.9"] = (rich, sound.trajectory.timbre)
    out = {}
    for name, g in generators.items():
        rows = {}
        for case, (curves, timbre) in cases.items():
            margins, rest = [], []
            for _ in range(rounds):
                played = 0
                for i, piece in enumerate(g.backend.render_chunks(curves, timbre, 48000, HEAD_FRAMES)):
                    now = time.perf_counter()
                    if i == 0:
                        head_at = now
                    else:
                        margins.append(head_at + played / 48000 - now)
                    played += len(piece)
                rest.append(now - head_at)
            rows[case] = {"pieces": i + 1, "worst_margin_ms": round(1e3 * min(margins), 1),
                          "whole_rest_ready_after_head_ms": round(1e3 * float(np.median(rest)), 1),
                          "head_plays_ms": 1000.0 * HEAD_FRAMES / D.FRAME_RATE}
        out[name] = rows
    return out


def agreement(generators: dict) -> dict:
    from ..sounds.library import SoundLibrary

    if "cpu" not in generators:
        return {}
    sounds = SoundLibrary(None).sounds()
    reference = {s.name: generators["cpu"].render(s.trajectory) for s in sounds}
    out = {}
    for name, g in generators.items():
        if name != "cpu":
            diffs = [float(np.max(np.abs(g.render(s.trajectory) - reference[s.name]))) for s in sounds]
            out[name] = {"max_abs_difference": float(f"{max(diffs):.3g}"), "sounds": len(sounds)}
    return out


def render_process_head(backend: str, model=None, changes: int = 60) -> dict:
    """A trajectory sent to the render process, to its head published in shared memory."""
    from .. import descriptors as D
    from ..engine.render_process import RenderProcess
    from ..sounds.library import SoundLibrary

    traj = SoundLibrary(None).get("Sub Boom").trajectory
    renderer = RenderProcess(48000, model, backend=backend, slabs=4).start()
    times = []
    try:
        for i in range(changes):
            curves = traj.curves.copy()
            curves[:, 4] = (i % 10) / 10  # a new richness each time: a fresh render, as a CV change asks
            published = []
            sent = time.perf_counter()
            renderer.render(D.Trajectory(curves, traj.timbre),
                            lambda buffer: (times.append(time.perf_counter() - sent), published.append(buffer)))
            for buffer in published:  # nothing plays it here
                renderer.release(buffer)
    finally:
        renderer.stop()
    return _stats_ms(times[5:])


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for p in list(pids):
        for task in Path(f"/proc/{p}/task").iterdir():
            children = (task / "children").read_text().split()
            pids.extend(int(c) for c in children)
    return pids


def _jack_rss_kb(pid: int) -> int:
    """Resident kB of the JACK server's shared memory mapped into a client (jackd's, not ours)."""
    total, inside = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if line[:1] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
            inside = "/dev/shm/jack" in line
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def _memory(pid: int) -> dict:
    """Every process of the module: RSS (shared pages counted in each), PSS (shared pages split
    between their users: the sum is what the module costs) and RSS less JACK's shared memory."""
    rows = []
    for p in _tree(pid):
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:])
        maps = Path(f"/proc/{p}/maps").read_text()
        cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        what = ("render process" if b"neurorack.engine.render_process" in cmd
                else "resource tracker" if b"resource_tracker" in cmd else "audio process")
        rss = int(fields["Rss"].split()[0])
        rows.append({"pid": p, "what": what, "rss_mb": round(rss / 1024, 1),
                     "pss_mb": round(int(fields["Pss"].split()[0]) / 1024, 1),
                     "rss_without_jack_shm_mb": round((rss - _jack_rss_kb(p)) / 1024, 1),
                     "libtorch_mapped": any(name in maps for name in LIBTORCH)})
    total = {key: round(sum(r[key] for r in rows), 1) for key in ("rss_mb", "pss_mb", "rss_without_jack_shm_mb")}
    return {"processes": rows, "rss_total_mb": total["rss_mb"], "pss_total_mb": total["pss_mb"],
            "rss_without_jack_shm_total_mb": total["rss_without_jack_shm_mb"],
            "libtorch_mapped": any(r["libtorch_mapped"] for r in rows)}


def module_runs(backends, runs: int = 3, idle_s: float = 5.0) -> dict:
    """Cold start and idle memory of `neurorack run --board sim` with each backend, runs alternating."""
    from .jack import JackServer
    from .latency import cold_start

    server = JackServer(48000, 128).start()
    out = {b: {"cold_start_s": [], "memory": None} for b in backends}
    try:
        for _ in range(runs):
            for b in backends:
                seen = {}

                def measure(proc, seen=seen):
                    time.sleep(idle_s)  # idle: the first renders done, the screen drawn
                    seen["memory"] = _memory(proc.pid)

                out[b]["cold_start_s"].append(round(cold_start(1, ["--backend", b], measure)["seconds"][0], 3))
                out[b]["memory"] = out[b]["memory"] or seen.get("memory")
    finally:
        server.stop()
    for b in backends:
        out[b]["cold_start_median_s"] = round(float(np.nanmedian(out[b]["cold_start_s"])), 3)
    return out


def variants(model, generators: dict, repeats: int, quality_dir=None) -> dict:
    """The default model in float and int8 (onnx), and models/small where it is: size, speed, quality."""
    from .. import load_model
    from ..model.backends import ModelFiles
    from ..model.export import export
    from ..model.paths import default_models_dir

    files = ModelFiles.find(model)
    tmp = Path(tempfile.mkdtemp(prefix="neurorack-variants-"))
    int8 = tmp / "decoder-int8.onnx"
    (tmp / "model.pt").symlink_to(files.checkpoint.resolve())
    export(files.checkpoint, int8, int8=True)
    candidates = {"default, float32 (onnx)": (files.onnx, "onnx"), "default, int8 weights (onnx)": (int8, "onnx"),
                  "default, float32 (cpu)": (files.checkpoint, "cpu")}
    small = ModelFiles.find(default_models_dir() / "small")
    if small.checkpoint.is_file():
        candidates["small (cpu)"] = (small.checkpoint, "cpu")
        if small.onnx.is_file():
            candidates["small, float32 (onnx)"] = (small.onnx, "onnx")
    gens = {label: load_model(path, backend=b, threads=1) for label, (path, b) in candidates.items()}
    traj = impact_trajectory(2.0)
    times = {label: [] for label in gens}
    for g in gens.values():
        g.render(traj)
    for _ in range(repeats):
        for label, g in gens.items():
            t = time.perf_counter()
            g.render(traj)
            times[label].append(time.perf_counter() - t)
    rows = {}
    for label, g in gens.items():
        path = candidates[label][0]
        rows[label] = {"file": path.name, "file_kb": round(path.stat().st_size / 1024, 1), "parameters": g.n_parameters,
                       "render_2s_median_ms": round(float(np.median(times[label])) * 1e3, 3),
                       "real_time_factor": round(2.0 / float(np.median(times[label])), 1)}
        if quality_dir:
            from .quality import bench_quality

            rows[label]["mrstft_mean"] = bench_quality(quality_dir, path, backend=candidates[label][1])["summary"]["mrstft_mean"]
    return rows


def bench_backends(model=None, repeats: int = 100, quality_dir=None, module: bool = True) -> dict:
    from ..model.backends import NAMES

    from .. import load_model

    generators, unavailable = _open_all(model, NAMES)
    timed = dict(generators)
    if "cpu" in generators:
        # The render process runs torch eager: it would trace a graph per impact length (~0.4 s each).
        timed["cpu, eager (as the render process runs it)"] = load_model(model, backend="cpu", threads=1, trace=False)
    result = {"environment": environment(), "threads": 1, "unavailable": unavailable,
              "speed": speed(timed, repeats), "agreement_with_cpu": agreement(generators)}
    result["render_process_head"] = {b: render_process_head(b, model) for b in generators if b in ("onnx", "cpu")}
    result["head_first"] = head_first(generators)
    if module:
        try:
            result["module"] = module_runs([b for b in ("onnx", "cpu") if b in generators])
        except RuntimeError as exc:  # no jackd on this machine
            result["module_skipped"] = str(exc)
    result["variants"] = variants(model, generators, max(20, repeats // 2), quality_dir)
    s = result["speed"]
    result["summary"] = {
        "real_time_factor": {b: s[b]["real_time_factor"] for b in s},
        "onnx_time_vs_cpu": s.get("onnx", {}).get("time_vs_cpu"),
        "head_ms_median": {b: s[b]["head_0.25s"]["median_ms"] for b in s},
        "render_process_head_ms_median": {b: v["median_ms"] for b, v in result["render_process_head"].items()},
        "head_first_worst_margin_ms": {b: min(r["worst_margin_ms"] for r in v.values())
                                       for b, v in result["head_first"].items()},
        "module": {b: {"cold_start_median_s": v["cold_start_median_s"],
                       **{k: (v["memory"] or {}).get(k) for k in ("rss_total_mb", "pss_total_mb",
                                                                   "rss_without_jack_shm_total_mb", "libtorch_mapped")}}
                   for b, v in result.get("module", {}).items()},
        "unavailable": unavailable,
        "targets": {"onnx real_time_factor": ">= 1000", "module rss_total_mb (onnx)": "<= 150",
                    "module cold_start_s (onnx)": "<= 0.8", "render_process_head_ms (onnx)": "<= 1"},
    }
    return result
