"""Voices: pre-rendered impacts played back sample-accurately, mixed into the audio block.

Everything the audio callback touches is allocated up front: ``VoicePool.mix`` only slices
(views) and writes with ``out=``, so it allocates no array memory, takes no lock and never
calls torch. Impacts arrive already rendered (a float32 buffer per gate); a gate costs a
table write.

Stealing: with all voices busy, the oldest playing voice fades out over ``fade_samples``
(5 ms at 48 kHz) in a release slot while the new impact starts in its place, so retriggering
at any rate never clicks. If even the release slots are full (a gate storm), the release
closest to silence is cut: it is already at its quietest.
"""
from __future__ import annotations

import numpy as np

IDLE, PLAYING, RELEASING = 0, 1, 2


class VoicePool:
    def __init__(self, voices: int = 4, block_size: int = 128, fade_samples: int = 240):
        if voices < 1 or block_size < 1 or fade_samples < 1:
            raise ValueError("voices, block_size and fade_samples must be positive")
        slots = 2 * voices  # a release slot for every voice that can be stolen
        self.voices, self.block_size, self.fade_samples = voices, block_size, fade_samples
        self.buffers: list[np.ndarray | None] = [None] * slots
        self.state = np.zeros(slots, np.int8)
        self.position = np.zeros(slots, np.int64)  # next sample to play; negative: starts later in this block
        self.fade_left = np.zeros(slots, np.int64)
        self.started = np.zeros(slots, np.int64)  # trigger count, to find the oldest
        self.gain = np.ones(slots, np.float32)
        self._count = 0
        # The fade-out ramp, long enough to index any block of it.
        self._ramp = np.linspace(1.0, 0.0, fade_samples + 1, dtype=np.float32)[1:]
        self._ramp = np.concatenate([self._ramp, np.zeros(block_size, np.float32)])
        self._scratch = np.zeros(block_size, np.float32)
        self.stolen = 0
        self.cut = 0

    def active(self) -> int:
        return int(np.count_nonzero(self.state != IDLE))

    def trigger(self, buffer: np.ndarray, offset: int = 0, gain: float = 1.0) -> None:
        """Start `buffer` (float32, mono) at sample `offset` of the next block mixed.

        Plain loops over the few slots rather than numpy reductions: those would allocate
        small arrays on every gate, and this runs in the audio callback."""
        state, slots = self.state, len(self.state)
        playing, oldest = 0, -1
        for slot in range(slots):
            if state[slot] == PLAYING:
                playing += 1
                if oldest < 0 or self.started[slot] < self.started[oldest]:
                    oldest = slot
        if playing >= self.voices:
            self._release(oldest)
            self.stolen += 1
        slot = self._free_slot()
        self._count += 1
        self.buffers[slot] = buffer
        state[slot], self.position[slot], self.gain[slot] = PLAYING, -int(offset), gain
        self.started[slot] = self._count

    def _release(self, slot: int) -> None:
        self.state[slot] = RELEASING
        self.fade_left[slot] = self.fade_samples

    def _free_slot(self) -> int:
        quietest = -1
        for slot in range(len(self.state)):
            if self.state[slot] == IDLE:
                return slot
            if self.state[slot] == RELEASING and (quietest < 0 or self.fade_left[slot] < self.fade_left[quietest]):
                quietest = slot
        self.cut += 1  # every slot busy (a gate storm): cut the release closest to silence
        return quietest

    def mix(self, out: np.ndarray) -> None:
        """Write the next block of every voice, summed, into `out` (length block_size or less)."""
        n = len(out)
        out[:] = 0.0
        scratch = self._scratch
        for slot in range(len(self.state)):
            state = self.state[slot]
            if state == IDLE:
                continue
            buf = self.buffers[slot]
            pos = int(self.position[slot])
            start = max(0, -pos)  # a voice triggered inside this block starts at its offset
            src = max(0, pos)
            count = min(n - start, len(buf) - src)
            if count > 0:
                seg = scratch[:count]
                np.multiply(buf[src:src + count], self.gain[slot], out=seg)
                if state == RELEASING:
                    done = self.fade_samples - int(self.fade_left[slot])
                    np.multiply(seg, self._ramp[done:done + count], out=seg)
                np.add(out[start:start + count], seg, out=out[start:start + count])
            self.position[slot] = pos + n
            if state == RELEASING:
                self.fade_left[slot] -= n
                if self.fade_left[slot] <= 0:
                    self._stop(slot)
            elif pos + n >= len(buf):
                self._stop(slot)

    def _stop(self, slot: int) -> None:
        self.state[slot] = IDLE
        self.buffers[slot] = None
