"""The render plan of every backend whose decoder runs in fixed blocks (onnx, tensorrt).

The curves get one frame of look-ahead (a copy of the last, as ``ImpactModel.render_aligned``)
and are padded to whole blocks; the decoder is causal, so the padding changes nothing before
it. The head (the first `head_frames` frames) is decoded and synthesised first and yielded;
then the rest, the synthesiser's state carried over, so the two pieces join exactly.

Array-agnostic: ``decode(frames, timbre, past) -> (raw, past)`` runs whole blocks, and
``synth.forward(raw, curves, state) -> (audio as numpy, state)`` renders; ``concat``
joins two pieces of raw controls (numpy, or torch on a GPU).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np


HEAD_FRAMES = 25  # 0.25 s: rendered first (~1 ms on a desktop core), played while the rest renders


def render_chunks(curves: np.ndarray, timbre: np.ndarray, head_frames: int, block: int, decode: Callable,
                  initial_past, synth, concat: Callable = np.concatenate) -> Iterator[np.ndarray]:
    padded = np.concatenate([curves, curves[-1:]]).astype(np.float32, copy=False)
    n = len(padded)
    split = min(head_frames, len(curves)) + 1
    n_blocks = -(-n // block)
    frames = np.concatenate([padded, np.repeat(padded[-1:], n_blocks * block - n, axis=0)])
    head_end = -(-split // block) * block
    timbre = np.ascontiguousarray(timbre, dtype=np.float32)
    raw_head, past = decode(frames[:head_end], timbre, initial_past)
    audio, state = synth.forward(raw_head[:split], padded[:split], synth.initial_state())
    yield audio[synth.samples_per_frame:]
    if split < n:
        if head_end < n:
            rest, _ = decode(frames[head_end:], timbre, past)
            raw = concat([raw_head[split:], rest])[: n - split]
        else:
            raw = raw_head[split:n]
        audio, _ = synth.forward(raw, padded[split:], state)
        yield audio


def render(curves, timbre, block: int, decode: Callable, initial_past, synth, concat=np.concatenate) -> np.ndarray:
    """One-shot: the whole impact as one piece (one synthesiser call: ~20 % less time than two).
    The same samples as a head-first render, to float rounding (the synthesiser streams)."""
    return next(iter(render_chunks(curves, timbre, len(curves), block, decode, initial_past, synth, concat)))
