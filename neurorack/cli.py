"""The ``neurorack`` command. Each subcommand is a thin layer over the package's functions.

Errors a user can fix print one line and exit 1; nothing is half-written (every
output goes through an atomic write). Set NEURORACK_DEBUG=1 for tracebacks.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

from .errors import NeurorackError

log = logging.getLogger("neurorack")
MAX_RECORD_S = 600  # run --record: the longest render (its buffer is 11 MB a minute at 48 kHz: ~350 MB peak)
OUTPUT_FILES = ("out", "plot", "record")  # options that name a file to write: checked before any work


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="neurorack: %(levelname)s: %(message)s")
    try:
        _check_outputs(args)
        return args.func(args) or 0
    except NeurorackError as exc:
        print(f"neurorack: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a disk full or a file vanishing mid-write: nothing was replaced
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"neurorack: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("neurorack: error: out of memory", file=sys.stderr)
        return 1
    except ImportError as exc:
        extra = {"torch": "torch", "onnx": "export"}.get(exc.name, "train")
        print(f"neurorack: error: {exc.name or exc} is not installed; this command needs the '{extra}' extra "
              f"(pip install 'neurorack[{extra}]')", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neurorack: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, unless debugging
        if os.environ.get("NEURORACK_DEBUG"):
            raise
        print(f"neurorack: internal error: {type(exc).__name__}: {exc} (NEURORACK_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


def _check_outputs(args) -> None:
    """Refuse an output that cannot be written before the work (a render, a training) starts."""
    from .fileio import check_output

    for dest in OUTPUT_FILES:
        value = getattr(args, dest, None)
        if value:
            check_output(value, folder=args.command == "screenshot")


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line too (the usage is one --help away)."""

    def error(self, message):
        command = self.prog.removeprefix("neurorack").strip()
        self.exit(2, f"neurorack: error: {command + ': ' if command else ''}{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="neurorack", description="Neural impact generator for a Eurorack module.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="audio file -> descriptor curves (JSON)")
    a.add_argument("input")
    a.add_argument("--out", required=True, help="descriptor JSON to write")
    a.add_argument("--plot", help="PNG of the curves")
    a.set_defaults(func=cmd_analyze)

    r = sub.add_parser("render", help="descriptor JSON -> 48 kHz mono WAV")
    r.add_argument("--descriptors", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="hold a descriptor at a normalised value (0..1) over the whole sound; repeatable")
    r.add_argument("--model", help="model folder, checkpoint or decoder.onnx (default: models/default)")
    r.add_argument("--sample-rate", type=_integer(8000, 192000), default=48000)
    add_backend_option(r)
    r.set_defaults(func=cmd_render)

    s = sub.add_parser("resynth", help="analyse an audio file, then render it")
    s.add_argument("input")
    s.add_argument("--out", required=True)
    s.add_argument("--model")
    s.add_argument("--sample-rate", type=_integer(8000, 192000), default=48000)
    add_backend_option(s)
    s.set_defaults(func=cmd_resynth)

    ex = sub.add_parser("export", help="the decoder as a fixed-shape streaming step (ONNX, or a torch.export program)")
    ex.add_argument("--model", help="checkpoint or model folder (default: models/default)")
    ex.add_argument("--format", choices=("onnx", "exported-program"), default="onnx")
    ex.add_argument("--out", required=True)
    ex.add_argument("--block", type=_integer(1, 1000), default=64, help="frames per step (default 64: the head fits one step)")
    ex.add_argument("--int8", action="store_true", help="onnx: quantise the weights to int8 (ONNX Runtime, dynamic)")
    ex.set_defaults(func=cmd_export)

    t = sub.add_parser("train", help="train a model on a folder of WAV/FLAC/AIFF files")
    t.add_argument("data_dir")
    t.add_argument("--out", required=True, help="checkpoint to write (updated atomically each epoch)")
    t.add_argument("--epochs", type=_integer(1, 100_000), default=20)
    t.add_argument("--steps-per-epoch", type=_integer(1, 1_000_000), default=200)
    t.add_argument("--batch-size", type=_integer(1, 1024), default=8)
    t.add_argument("--lr", type=_number(1e-8, 1.0), default=2e-3)
    t.add_argument("--resume", action="store_true", help="continue from --out")
    t.add_argument("--init", help="start from this checkpoint's weights (fine-tuning)")
    t.add_argument("--consistency", type=_number(0.0, 1000.0),
                   help="weight of the descriptor-consistency loss (0 turns it off; default 2, or 0 when distilling)")
    t.add_argument("--emphasis", action="append", default=[], metavar="NAME=WEIGHT",
                   help="extra consistency weight for one descriptor, e.g. percussivity=5; repeatable")
    t.add_argument("--segment-frames", type=_integer(10, 3000), default=150,
                   help="training segment length in frames (100 per second; 10..3000)")
    t.add_argument("--cache", help="analysis cache folder (default: ~/.cache/neurorack/analysis)")
    t.add_argument("--threads", type=_integer(0, 256), default=0)
    t.add_argument("--channels", type=_integer(1, 1024), help="a new model's decoder width (default: 64, or the teacher's)")
    t.add_argument("--dilations", type=_integer(1, 1024), nargs="+", help="a new model's decoder blocks, one dilation each")
    td = t.add_argument_group("distillation", "train a smaller decoder on a trained model's outputs")
    td.add_argument("--distill-from", metavar="TEACHER", help="the trained checkpoint to learn from")
    td.add_argument("--controls-weight", type=_number(0.0, 1e6), default=1.0, help="weight of matching the teacher's raw controls")
    td.add_argument("--render-weight", type=_number(0.0, 1e6), default=1.0,
                    help="weight of MR-STFT against the teacher's render (0 with --recording-weight 0: no synthesis, fast)")
    td.add_argument("--recording-weight", type=_number(0.0, 1e6), default=0.0, help="weight of MR-STFT against the recording")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("dataset", help="fetch or generate training data")
    dsub = d.add_subparsers(dest="dataset", required=True)
    dd = dsub.add_parser("drums", help="Debian's hydrogen-drumkits, split by licence into train/ and eval/")
    dd.add_argument("dir")
    dd.set_defaults(func=cmd_dataset_drums)
    dp = dsub.add_parser("procedural", help="generate a procedural impact corpus")
    dp.add_argument("dir")
    dp.add_argument("--count", type=_integer(1, 100_000), default=200)
    dp.add_argument("--seed", type=_integer(0, 2 ** 32 - 1), default=0)
    dp.set_defaults(func=cmd_dataset_procedural)

    so = sub.add_parser("sounds", help="the sound library: factory and user sounds")
    so.add_argument("--library", help="user sound folder (default: ~/.local/share/neurorack/sounds)")
    ssub = so.add_subparsers(dest="sounds", required=True)
    ssub.add_parser("list", help="list every sound").set_defaults(func=cmd_sounds_list)
    si = ssub.add_parser("import", help="analyse an audio file into a new sound, and score the model's render of it")
    si.add_argument("file")
    si.add_argument("--name", required=True)
    si.add_argument("--replace", action="store_true", help="overwrite a user sound of that name (or shadow a factory one)")
    si.add_argument("--model", help="the model that scores the resynthesis (default: models/default)")
    si.add_argument("--no-score", action="store_true", help="import the curves without rendering them")
    add_backend_option(si)
    si.set_defaults(func=cmd_sounds_import)
    sm = ssub.add_parser("match", help="the library sounds nearest to an audio file (or descriptor JSON), and why")
    sm.add_argument("file")
    sm.add_argument("--top", type=_integer(1, 1000), default=5)
    sm.set_defaults(func=cmd_sounds_match)
    sr = ssub.add_parser("remove", help="remove a user sound")
    sr.add_argument("name")
    sr.set_defaults(func=cmd_sounds_remove)
    se = ssub.add_parser("export", help="write a sound as descriptor JSON")
    se.add_argument("name")
    se.add_argument("file")
    se.set_defaults(func=cmd_sounds_export)

    ru = sub.add_parser("run", help="the firmware: play the module on a board (or render an events file)")
    ru.add_argument("--board", default="sim", help="board profile: a name in hardware/ or a .toml path")
    ru.add_argument("--config", help="run config (TOML): sounds, CV assignments, [audio] device/rate/block")
    ru.add_argument("--osc-port", type=_integer(0, 65535), default=9000,
                    help="sim board: OSC port on 127.0.0.1 (0: any free one)")
    ru.add_argument("--events", help="sim board: a JSON-lines file of timed gates, CVs, encoder, button, MIDI")
    ru.add_argument("--midi-file", metavar="SONG.mid", help="sim board: play a standard MIDI file (with --events too)")
    ru.add_argument("--midi", metavar="PORT",
                    help="MIDI input: 'all' (every port, as they appear), 'off', 'virtual' (a port of its own), "
                         "or part of a port's name; default: the settings' [midi] port")
    ru.add_argument("--record", metavar="OUT.wav",
                    help="render the events (or --midi-file) offline into this WAV, deterministically")
    ru.add_argument("--duration", type=_number(0.001, 1e7, low_open=True),
                    help="stop after this many seconds (--record: at most %d)" % MAX_RECORD_S)
    ru.add_argument("--device", help="audio output: 'default', an index, 'jack', or part of a device name")
    ru.add_argument("--model")
    add_backend_option(ru, "the board profile's [model] backend")
    ru.add_argument("--library", help="user sound folder")
    ru.add_argument("--panel", type=_integer(0, 65535), nargs="?", const=8080, metavar="PORT",
                    help="sim board: serve a virtual panel on http://127.0.0.1:PORT (default 8080)")
    ru.add_argument("--panel-host", default="127.0.0.1", metavar="ADDRESS",
                    help="offer the panel on this address instead (0.0.0.0: every network); a browser "
                         "then pairs with the code on the Status screen")
    ru.set_defaults(func=cmd_run)

    sc = sub.add_parser("screenshot", help="a PNG of every screen reached (a tour, or an events file's)")
    sc.add_argument("--board", default="sim", help="a board with a simulated screen (sim)")
    sc.add_argument("--events", help="a JSON-lines events file to follow instead of the tour")
    sc.add_argument("--out", default="out/screens")
    sc.add_argument("--model")
    sc.set_defaults(func=cmd_screenshot)

    ca = sub.add_parser("calibrate", help="two-point calibration of a CV input, stored for the board")
    ca.add_argument("--board", required=True)
    ca.add_argument("--input", type=_integer(1, 64), required=True, help="CV input number (from 1)")
    ca.add_argument("--readings", type=_number(-100.0, 100.0), nargs=2, metavar=("AT_1V", "AT_3V"),
                    help="what the input read with 1 V and 3 V applied (default: measure now, on the board)")
    ca.set_defaults(func=cmd_calibrate)

    b = sub.add_parser("bench", help="benchmarks, written as JSON")
    bsub = b.add_subparsers(dest="bench", required=True)
    br = bsub.add_parser("render", help="render speed (one thread), parameters, cold start")
    br.add_argument("--out", default="bench-render.json")
    br.add_argument("--model", action="append",
                    help="checkpoint (default: models/default); give it twice or more to time models side by side")
    br.add_argument("--repeats", type=_integer(1, 100_000), default=100)
    br.set_defaults(func=cmd_bench_render)
    bq = bsub.add_parser("quality", help="resynthesis MR-STFT distance over a folder of audio")
    bq.add_argument("dir")
    bq.add_argument("--out", default="bench-quality.json")
    bq.add_argument("--model")
    bq.add_argument("--limit", type=_integer(0, 1_000_000), default=0, help="at most this many files (0: all)")
    bq.set_defaults(func=cmd_bench_quality)
    bc = bsub.add_parser("control", help="does each descriptor steer the render? (Spearman)")
    bc.add_argument("--base", nargs="*", default=[], help="audio or descriptor JSON files (default: procedural impacts)")
    bc.add_argument("--out", default="bench-control.json")
    bc.add_argument("--model")
    bc.set_defaults(func=cmd_bench_control)
    bv = bsub.add_parser("cv", help="CVs through the module: each descriptor swept -5..+5 V, pitch at 1 V/oct")
    bv.add_argument("--out", default="bench-cv.json")
    bv.add_argument("--model")
    bv.set_defaults(func=cmd_bench_cv)
    bl = bsub.add_parser("latency", help="gate to sound, control to sound, cold start (JACK dummy driver)")
    bl.add_argument("--out", default="bench-latency.json")
    bl.add_argument("--triggers", type=_integer(1, 100_000), default=200)
    bl.add_argument("--gap", type=_number(0.01, 60.0), default=0.25, help="seconds between gates")
    bl.add_argument("--tools", default="../shared/tools", help="folder with latency_probe.py and click_player.py")
    bl.add_argument("--no-external", action="store_true", help="skip the OSC probe and the click player")
    bl.add_argument("--rounds", type=_integer(1, 100), default=2, help="turns of the probe on each player, side by side")
    bl.set_defaults(func=cmd_bench_latency)
    bs = bsub.add_parser("soak", help="minutes of gates and CV sweeps with the other core busy: xruns, memory")
    bs.add_argument("--out", default="bench-soak.json")
    bs.add_argument("--minutes", type=_number(0.01, 10_080.0), default=5.0)
    bs.add_argument("--rate", type=_number(0.1, 1000.0), default=20.0, help="gates per second on each input")
    bs.add_argument("--nice", type=_integer(-20, 19), default=-10,
                    help="the module's nice value (-10: as the systemd unit)")
    bs.add_argument("--tools", default="../shared/tools", help="folder with click_player.py, for the floor")
    bs.add_argument("--no-floor", action="store_true",
                    help="skip the floors (the click player, the empty server) under the same load")
    bs.set_defaults(func=cmd_bench_soak)
    bb = bsub.add_parser("backends", help="every backend that loads here, side by side: speed, agreement, memory, start")
    bb.add_argument("--out", default="bench-backends.json")
    bb.add_argument("--model")
    bb.add_argument("--repeats", type=_integer(1, 100_000), default=100)
    bb.add_argument("--quality", metavar="DIR", help="also MR-STFT of each model variant over this folder of audio")
    bb.add_argument("--no-module", action="store_true", help="skip the running module's start and memory (needs jackd)")
    bb.set_defaults(func=cmd_bench_backends)
    bg = bsub.add_parser("gil", help="a real-time thread's wait for the GIL beside the screen's drawing, pinned or not")
    bg.add_argument("--out", default="bench-gil.json")
    bg.add_argument("--runs", type=_integer(1, 1000), default=5)
    bg.add_argument("--seconds", type=_number(0.1, 3600.0), default=10.0)
    bg.set_defaults(func=cmd_bench_gil)
    ba = bsub.add_parser("abuse", help="floods and fuzz (OSC, HTTP) against a live sim module: lines, tracebacks, gates")
    ba.add_argument("--out", default="bench-abuse.json")
    ba.add_argument("--flood", type=_integer(0, 10_000_000), default=40_000, help="OSC flood messages")
    ba.add_argument("--fuzz", type=_integer(0, 10_000_000), default=20_000, help="random and malformed OSC packets")
    ba.add_argument("--http", type=_integer(0, 1_000_000), default=3_000, help="hostile HTTP requests")
    ba.add_argument("--gates", type=_integer(1, 1000), default=5, help="gates played and checked afterwards")
    ba.add_argument("--seed", type=_integer(0, 2 ** 32 - 1), default=0)
    ba.add_argument("--idle", type=_number(0.0, 600.0), default=20.0,
                    help="seconds of the idle module first: the xrun floor to compare with")
    ba.set_defaults(func=cmd_bench_abuse)
    bm = bsub.add_parser("midi", help="MIDI in through JACK: backends side by side, note to sound, pitch over 5 octaves")
    bm.add_argument("--out", default="bench-midi.json")
    bm.add_argument("--notes", type=_integer(2, 100_000), default=200, help="note-ons of each kind (repeated, new)")
    bm.add_argument("--backend-messages", type=_integer(10, 1_000_000), default=1000,
                    help="messages per backend per round (sent at 1000 a second)")
    bm.add_argument("--rounds", type=_integer(1, 100), default=3, help="rounds of the backends in turns")
    bm.add_argument("--no-pitch", action="store_true", help="leave out pitch accuracy and shift-or-render")
    bm.set_defaults(func=cmd_bench_midi)
    return p


# ----------------------------------------------------------------------------- commands

def cmd_analyze(args):
    from . import descriptors as D
    from .fileio import read_audio, write_json

    audio, sr = read_audio(args.input, D.MAX_SECONDS)
    traj = D.analyze(audio, sr)
    write_json(args.out, traj.to_json(sr))
    if args.plot:
        from .plots import plot_trajectory

        plot_trajectory(traj, args.plot, title=Path(args.input).name)
    print(f"{args.out}: {traj.n_frames} frames ({traj.duration:.2f} s)")


def cmd_render(args):
    from . import descriptors as D
    from .fileio import write_wav

    traj = D.load_trajectory(args.descriptors)
    curves = traj.curves.copy()
    names = []
    for item in args.set:
        name, value = parse_setting(item)
        if not 0.0 <= value <= 1.0:
            log.warning("--set %s=%g is outside [0, 1]; clamped", name, value)
        curves[:, D.INDEX[name]] = min(1.0, max(0.0, value))
        names.append(name)
    gen = _load(args.model, args.backend)
    # a descriptor set here is a knob turned: it wins where it and a held one cannot both be met
    audio = gen.render(D.Trajectory(curves, traj.timbre, D.Trajectory.turned(*names)), sample_rate=args.sample_rate)
    write_wav(args.out, audio, args.sample_rate)
    print(f"{args.out}: {len(audio) / args.sample_rate:.2f} s at {args.sample_rate} Hz")


def cmd_resynth(args):
    from . import descriptors as D
    from .fileio import read_audio, write_wav

    audio, sr = read_audio(args.input, D.MAX_SECONDS)
    traj = D.analyze(audio, sr)
    gen = _load(args.model, args.backend)
    out = gen.render(traj, sample_rate=args.sample_rate)
    write_wav(args.out, out, args.sample_rate)
    print(f"{args.out}: {len(out) / args.sample_rate:.2f} s at {args.sample_rate} Hz")


def cmd_train(args):
    from .train.data import default_cache_dir
    from .train.loop import TrainSettings, train

    emphasis = {}
    for item in args.emphasis:
        name, weight = parse_setting(item, "--emphasis")
        if not 0.0 <= weight <= 1000.0:
            raise NeurorackError(f"--emphasis {name}: the weight must be 0..1000, not {weight:g}")
        emphasis[name] = weight
    consistency = args.consistency if args.consistency is not None else (0.0 if args.distill_from else 2.0)
    settings = TrainSettings(epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                             learning_rate=args.lr, final_learning_rate=min(1e-4, args.lr), threads=args.threads,
                             init=args.init, consistency_weight=consistency, emphasis=emphasis,
                             segment_frames=args.segment_frames)
    cache = Path(args.cache) if args.cache else default_cache_dir()
    if args.distill_from:
        from .train.distill import DistillSettings, distill

        weights = DistillSettings(args.distill_from, args.controls_weight, args.render_weight, args.recording_weight)
        result = distill(args.data_dir, args.out, settings, weights, cache, args.channels, args.dilations, args.resume)
    else:
        from .model.impact_model import ModelConfig

        sized = args.channels is not None or args.dilations is not None
        defaults = ModelConfig()
        config = ModelConfig(channels=args.channels or defaults.channels,
                             dilations=args.dilations or defaults.dilations) if sized else None
        result = train(args.data_dir, args.out, settings, cache, resume=args.resume, config=config)
    last = result["history"][-1] if result["history"] else None
    if last:
        print(f"{args.out}: epoch {last['epoch']}, validation loss {last['valid_loss']:.4f}")


def cmd_dataset_drums(args):
    from .train.drums import fetch_drums

    summary = fetch_drums(args.dir)
    for split, kits in summary.items():
        print(f"{split}: " + ", ".join(f"{k} ({v['files']})" for k, v in kits.items()))


def cmd_dataset_procedural(args):
    from .train.procedural import write_corpus

    if args.count < 1:
        raise NeurorackError("--count must be at least 1")
    paths = write_corpus(args.dir, args.count, args.seed)
    print(f"{args.dir}: {len(paths)} impacts")


def _library(args):
    from .sounds.library import SoundLibrary

    return SoundLibrary(args.library)


def cmd_sounds_list(args):
    for sound in _library(args).sounds():
        kind = "factory" if sound.factory else "user"
        print(f"{sound.name:<{24}}  {sound.trajectory.duration:5.2f} s  {kind}")


def cmd_sounds_import(args):
    from .sounds.importing import import_sample

    gen = None if args.no_score else (lambda: _load(args.model, args.backend))  # loaded once the file is good
    imported = import_sample(_library(args), args.file, args.name, gen, args.replace)
    first, *rest = imported.lines()
    print(first)
    for line in rest:
        print(line, file=sys.stderr if line.startswith("warning") else sys.stdout)


def cmd_sounds_match(args):
    from . import descriptors as D
    from .fileio import read_audio
    from .sounds.match import nearest

    if Path(args.file).suffix.lower() == ".json":
        query = D.load_trajectory(args.file)
    else:
        audio, sr = read_audio(args.file, D.MAX_SECONDS)
        query = D.analyze(audio, sr)
    matches = nearest(query, _library(args).sounds(), args.top)
    print(f"nearest to {Path(args.file).name} ({query.duration:.2f} s); distance 0: the same, 100: opposite in every way")
    for rank, m in enumerate(matches, 1):
        print(f"{rank:>3}. {m.name:<24} {m.distance:5.1f}  {m.why(3)}")


def cmd_sounds_remove(args):
    _library(args).remove(args.name)
    print(f"removed {args.name!r}")


def cmd_sounds_export(args):
    from .fileio import check_output

    check_output(args.file)
    _library(args).export(args.name, args.file)
    print(f"{args.file}: {args.name!r}")


def cmd_run(args):
    from .assembly import ModuleOptions, assemble
    from .fileio import write_wav
    from .hal.profile import load_profile
    from .hal.sim import load_events, midi_file_events
    from .runner import record

    events = load_events(args.events) if args.events else None
    if args.midi_file:  # merged with the events file by time (sorted: ties keep the events file first)
        events = sorted((events or []) + midi_file_events(args.midi_file), key=lambda e: e.t)
    if events is not None and load_profile(args.board).gpio != "sim":
        given = " and ".join(flag for flag, value in (("--events", args.events), ("--midi-file", args.midi_file)) if value)
        raise NeurorackError(f"{given} {'drive' if ' and ' in given else 'drives'} the simulated board; "
                             f"board {args.board!r} reads its own jacks")
    options = ModuleOptions(board=args.board, config=args.config, model=args.model, library=args.library,
                            backend=args.backend, device=args.device, osc_port=args.osc_port, midi=args.midi)
    if args.record:
        if events is None:
            raise NeurorackError("--record renders an events file or a MIDI file: give --events FILE or --midi-file SONG.mid")
        last = events[-1].t if events else 0.0
        if (args.duration or 0) > MAX_RECORD_S or (args.duration is None and last > MAX_RECORD_S - 30):
            raise NeurorackError(f"--record renders at most {MAX_RECORD_S} s (events up to {MAX_RECORD_S - 30} s, "
                                 f"or --duration up to {MAX_RECORD_S})")
        # Offline renders ignore the stored settings, so the same file and config give the same samples anywhere.
        module = assemble(replace(options, persist=False, live=False))
        try:
            audio = record(module, events, args.duration)
        finally:
            module.close()
        rate = module.engine.sample_rate
        write_wav(args.record, audio, rate)
        print(f"wrote {args.record}: {len(audio) / rate:.2f} s, {int(module.engine.gates.sum())} impacts")
        return 0
    return run_module(args, options, events)


def run_module(args, options, events=None) -> int:
    from .assembly import assemble
    from .engine.audio import AudioWedged
    from .hal.profile import load_profile
    from .runner import run_live

    logging.getLogger("neurorack").setLevel(logging.INFO)  # the firmware's log is the journal
    if args.panel is not None and load_profile(args.board).gpio != "sim":
        raise NeurorackError("--panel plays the simulated board; a hardware board has its own panel")
    if args.panel_host != "127.0.0.1" and args.panel is None:
        raise NeurorackError("--panel-host offers the virtual panel: give --panel too")
    module = assemble(options)
    code = run_live(module, duration=args.duration, panel_port=args.panel, panel_host=args.panel_host, events=events)
    if code == AudioWedged.exit_code:
        # PortAudio is stuck on the dead device, and its exit handler would hang on it too.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    return code


def cmd_screenshot(args):
    from .assembly import ModuleOptions, assemble
    from .hal.display import simulated_screen
    from .hal.profile import load_profile
    from .hal.sim import load_events
    from .ui.screenshot import screenshots

    if load_profile(args.board).gpio != "sim":
        raise NeurorackError(f"screenshots come from the simulated board; {args.board!r} is hardware")
    events = load_events(args.events) if args.events else None
    module = assemble(ModuleOptions(board=args.board, model=args.model, persist=False, live=False))
    try:
        files = screenshots(module, simulated_screen(module.profile.display), args.out, events)
    finally:
        module.close()
    print(f"wrote {len(files)} screens to {args.out}: " + ", ".join(f.stem for f in files))
    return 0


def cmd_calibrate(args):
    from .hal.cv import Calibration
    from .hal.profile import load_profile
    from .settings import load_settings, save_settings

    profile = load_profile(args.board)
    if args.input not in {c.number for c in profile.cv}:
        raise NeurorackError(f"board {profile.name} has no CV input {args.input}")
    if args.readings:
        low, high = args.readings
    else:
        low, high = _measure_calibration_points(profile, args.input)
    try:
        calibration = Calibration.from_two_points(low, high)
    except ValueError as exc:
        raise NeurorackError(str(exc)) from None
    settings = load_settings(profile.name)
    settings.calibration[args.input] = calibration
    path = save_settings(profile.name, settings)
    print(f"CV {args.input}: scale {calibration.scale:.4f}, shift {calibration.shift:+.4f} V; saved in {path}")
    return 0


def _measure_calibration_points(profile, number: int, reads: int = 64) -> tuple[float, float]:
    """Read the input before calibration while the user applies 1 V and then 3 V (the mean of
    `reads` polls), through the board's own poll and raw reading, as the wizard on the screen does."""
    from .hal.board import HardwareBoard
    from .hal.cv import CALIBRATION_POINTS
    from .hal.sim import ControlSink

    if profile.gpio == "sim":
        raise NeurorackError("the sim board has no ADC to measure; give --readings AT_1V AT_3V")
    ignore = ControlSink(lambda edge: None, lambda n, v: None, lambda steps: None, lambda kind: None)
    board = HardwareBoard(profile, ignore, jacks=False)
    try:
        points = []
        for volts in CALIBRATION_POINTS:
            input(f"apply {volts:.3f} V to CV {number}, then press Enter ")
            total = 0.0
            for _ in range(reads):
                board.poll_once()
                total += board.raw_volts(number)
            if board.adc_problem:
                raise NeurorackError(board.adc_problem)
            points.append(total / reads)
    finally:
        board.close()
    return points[0], points[1]


def cmd_bench_cv(args):
    from .bench.cv import bench_cv

    _report(bench_cv(args.model), args.out)


def cmd_bench_latency(args):
    from .bench.latency import run

    result = run(args.out, args.triggers, args.gap, args.tools, not args.no_external, args.rounds)
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    return 0


def cmd_bench_soak(args):
    from .bench.soak import run

    result = run(args.out, args.minutes * 60, args.rate, args.nice, args.tools, floor=not args.no_floor)
    print(json.dumps({k: v for k, v in result.items() if k not in ("environment", "rss_samples")}, indent=1))
    return 0


def cmd_bench_gil(args):
    from .bench.gil import run

    result = run(args.out, args.runs, args.seconds)
    print(json.dumps(result["summary"], indent=1))
    return 0


def cmd_export(args):
    from .model.backends import ModelFiles
    from .model.export import export

    info = export(ModelFiles.find(args.model).checkpoint, args.out, args.format, args.block, int8=args.int8)
    print(f"{args.out}: the decoder step of {info['model_sha256'][:12]}, {info['block']} frames a step"
          + (", int8 weights" if args.int8 else ""))


def cmd_bench_backends(args):
    from .bench.backends import bench_backends

    _report(bench_backends(args.model, args.repeats, args.quality, module=not args.no_module), args.out)


def cmd_bench_abuse(args):
    from .bench.abuse import run

    result = run(args.out, args.flood, args.fuzz, args.http, args.gates, args.seed, args.idle)
    print(json.dumps({k: v for k, v in result.items() if k not in ("environment", "log_sample")}, indent=1))
    return 0


def cmd_bench_midi(args):
    from .bench.midi import run

    result = run(args.out, args.notes, args.backend_messages, args.rounds, pitch=not args.no_pitch)
    print(json.dumps({k: v for k, v in result.items() if k not in ("environment",)}, indent=1, default=str)[:6000])
    return 0


def cmd_bench_render(args):
    from .bench.speed import bench_render, bench_render_side_by_side

    if args.model and len(args.model) > 1:
        _report(bench_render_side_by_side(args.model, args.repeats), args.out)
    else:
        _report(bench_render(args.model[0] if args.model else None, args.repeats), args.out)


def cmd_bench_quality(args):
    from .bench.quality import bench_quality

    _report(bench_quality(args.dir, args.model, args.limit), args.out)


def cmd_bench_control(args):
    from .bench.control import bench_control

    _report(bench_control(args.base, args.model), args.out)


# ----------------------------------------------------------------------------- helpers

def _integer(low: int, high: int):
    """An argparse type: a whole number low..high (a count that cannot allocate terabytes)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value
    return parse


def _number(low: float, high: float, low_open: bool = False):
    """An argparse type: a finite number low..high (never NaN or infinite)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value
    return parse


def parse_setting(item: str, option: str = "--set") -> tuple[str, float]:
    from .descriptors import NAMES

    name, sep, value = item.partition("=")
    if not sep or name not in NAMES:
        raise NeurorackError(f"{option} expects NAME=VALUE with NAME one of {', '.join(NAMES)}; got {item!r}")
    try:
        number = float(value)
    except ValueError:
        raise NeurorackError(f"{option} {name}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise NeurorackError(f"{option} {name}: {value!r} is not a finite number")
    return name, number


def add_backend_option(parser, default: str = "auto") -> None:
    from .model.backends import CHOICES

    parser.add_argument("--backend", choices=CHOICES, default=None if default != "auto" else "auto",
                        help=f"inference backend (default: {default}; model/backends.py)")


def _load(path, backend: str = "auto"):
    from . import load_model

    return load_model(path, backend)


def _report(result: dict, out: str) -> None:
    from .fileio import write_json

    write_json(out, result)
    print(json.dumps(result.get("summary", result), indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    sys.exit(main())
