"""`make demo`: the simulated module plays a scripted patch, then a few single impacts.

1. A patch (gates on both inputs, a morph swept by CV 1 and the encoder, richness and noisiness
   swept by CVs 2 and 3, a pitch sequence on CV 4 at 1 V/oct) is written to patch.jsonl and
   rendered offline through the real engine into patch.wav, exactly as the module would play it.
2. Where a sound card exists, the module then plays the same patch live.
3. Single impacts from the procedural corpus, with their descriptor plots.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import descriptors as D
from . import load_model
from .fileio import write_wav
from .plots import plot_trajectory
from .train.procedural import SAMPLE_RATE, impact


def scripted_patch() -> list[dict]:
    events = []
    for i in range(16):  # gate 1 on the beat at 120 BPM, CV 4 walking a minor arpeggio
        t = 0.25 + 0.5 * i
        events.append({"t": round(t - 0.02, 3), "cv": 4, "volts": [0, 0.25, 0.583, 1.0][i % 4] - 0.5})
        events.append({"t": t, "gate": 1, "on": True})
        events.append({"t": t + 0.05, "gate": 1, "on": False})
    for i in range(8):  # gate 2 on the off-beats: the morph of A and B
        t = 0.5 + 1.0 * i
        events.append({"t": t, "gate": 2, "on": True})
        events.append({"t": t + 0.05, "gate": 2, "on": False})
    for k in range(80):  # slow CV sweeps: morph up then down, richness up, noisiness down
        t = 0.1 * k
        events.append({"t": round(t, 2), "cv": 1, "volts": round(5.0 * (1 - abs(1 - t / 4)) - 2.5, 3)})
        events.append({"t": round(t, 2), "cv": 2, "volts": round(-2.0 + 4.0 * t / 8, 3)})
        events.append({"t": round(t, 2), "cv": 3, "volts": round(1.5 - 3.0 * t / 8, 3)})
    events.append({"t": 4.0, "encoder": 4})
    return sorted(events, key=lambda e: e["t"])


def play_patch(out: Path, live_play: bool = True) -> None:
    from .assembly import ModuleOptions, assemble
    from .hal.sim import load_events
    from .runner import record

    patch = out / "patch.jsonl"
    patch.parent.mkdir(parents=True, exist_ok=True)
    patch.write_text("".join(json.dumps(e) + "\n" for e in scripted_patch()))
    events = load_events(patch)
    module = assemble(ModuleOptions(board="sim", persist=False, live=False))
    try:
        audio = record(module, events)
    finally:
        module.close()
    write_wav(out / "patch.wav", audio, module.engine.sample_rate)
    print(f"  patch.wav  {len(audio) / module.engine.sample_rate:.2f} s, {int(module.engine.gates.sum())} impacts "
          f"(events: {patch})")
    if live_play:
        live(events, len(audio) / module.engine.sample_rate)


def live(events, seconds: float) -> None:
    """Play the patch through the sound card, if there is one."""
    try:
        import sounddevice as sd

        sd.query_devices(kind="output")
    except Exception:
        print("  no sound card here: listen to patch.wav instead")
        return
    from .assembly import ModuleOptions, assemble
    from .runner import run_live

    module = assemble(ModuleOptions(board="sim", persist=False))
    print("  playing the patch live (Ctrl-C stops)")
    run_live(module, duration=seconds + 0.5, events=events)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--no-live", action="store_true", help="do not play the patch through the sound card")
    args = parser.parse_args(argv)
    out = Path(args.out)
    print("the simulated module, on a scripted patch:")
    play_patch(out, live_play=not args.no_live)
    print("single impacts from the procedural corpus:")
    gen = load_model()
    print(f"model: {gen.path} ({gen.n_parameters} parameters)")
    for i, label in [(0, "modal"), (2, "boom"), (3, "layered"), (5, "noise-burst")]:
        traj = D.analyze(impact(11, i)[0], SAMPLE_RATE)
        _write(gen, traj, out / f"{i:02d}-{label}")
    traj = D.analyze(impact(11, 2)[0], SAMPLE_RATE)
    bright = traj.curves.copy()
    bright[:, D.INDEX["brightness"]] = 0.85
    bright[:, D.INDEX["noisiness"]] = 0.7
    _write(gen, D.Trajectory(bright, traj.timbre), out / "02-boom-bright-noisy")
    print(f"wrote {out}/")
    return 0


def _write(gen, traj, stem: Path) -> None:
    audio = gen.render(traj)
    write_wav(stem.with_suffix(".wav"), audio, 48000)
    plot_trajectory(traj, stem.with_suffix(".png"), title=stem.name, audio=audio)
    print(f"  {stem.name}.wav  {len(audio) / 48000:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
