"""The render plan of every backend whose decoder runs in fixed blocks (onnx, tensorrt).

The curves get one frame of look-ahead (a copy of the last, as ``ImpactModel.render_aligned``)
and are padded to whole blocks; the decoder is causal, so the padding changes nothing before
it. The head (the first `head_frames` frames) is decoded and synthesised first and yielded;
then the rest in pieces (``rest_pieces``), the decoder's and the synthesiser's state carried
over, so the pieces join exactly.

Array-agnostic: ``decode(frames, timbre, past) -> (raw, past)`` runs whole blocks, and
``synth.forward(raw, curves, state) -> (audio as numpy, state)`` renders; ``concat``
joins two pieces of raw controls (numpy, or torch on a GPU).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np


# The first 0.08 s: rendered first, played while the rest renders. A control change is heard
# once its head is rendered, and the knobs' solve costs by the frame: a gate 10 ms after a CV
# change took the new impact 49 of 50 times with 8 frames, 32 with 25 (docs/benchmarks.md,
# "Gate to sound"); the rest's pieces (rest_pieces) keep ahead of the playhead either way.
HEAD_FRAMES = 8


def rest_pieces(start: int, end: int) -> Iterator[tuple[int, int]]:
    """Frames ``start..end`` as (from, to) pieces, each as long as all before it (the head is the
    first `start` frames). Each piece renders while what came before it plays, so a render at
    least twice as fast as real time never falls behind the playhead, however long the impact;
    the rest in one piece did (a 10 s impact: docs/benchmarks.md, "Inference backends")."""
    at = start
    while at < end:
        to = min(end, 2 * at)
        yield at, to
        at = to


def pieces(n_frames: int, head_frames: int) -> list[tuple[int, int]]:
    """Every backend's render plan over `n_frames` curves and the look-ahead frame after them:
    the head (its frames, and one more whose audio ends the head), then ``rest_pieces``."""
    split = min(head_frames, n_frames) + 1
    return [(0, split), *rest_pieces(split, n_frames + 1)]


def render_chunks(curves: np.ndarray, timbre: np.ndarray, head_frames: int, block: int, decode: Callable,
                  initial_past, synth, concat: Callable = np.concatenate, moved=()) -> Iterator[np.ndarray]:
    padded = np.concatenate([curves, curves[-1:]]).astype(np.float32, copy=False)
    n = len(padded)
    frames = np.concatenate([padded, np.repeat(padded[-1:], -(-n // block) * block - n, axis=0)])
    timbre = np.ascontiguousarray(timbre, dtype=np.float32)
    raw, base, decoded, past = None, 0, 0, initial_past  # raw: the controls of frames[base:decoded]
    state = synth.initial_state()
    for start, stop in pieces(len(curves), head_frames):
        if stop > decoded:  # decoded as needed: a piece waits for its own blocks only
            end = -(-stop // block) * block
            more, past = decode(frames[decoded:end], timbre, past)
            raw = more if raw is None else concat([raw[start - base:], more])
            base, decoded = start, end
        audio, state = synth.forward(raw[start - base:stop - base], padded[start:stop], state, moved)
        yield audio[synth.samples_per_frame:] if start == 0 else audio


def render(curves, timbre, block: int, decode: Callable, initial_past, synth, concat=np.concatenate, moved=()) -> np.ndarray:
    """One-shot: the whole impact as one piece (one synthesiser call: ~20 % less time than two).
    The same samples as a head-first render, to float rounding (the synthesiser streams)."""
    return next(iter(render_chunks(curves, timbre, len(curves), block, decode, initial_past, synth, concat, moved)))
