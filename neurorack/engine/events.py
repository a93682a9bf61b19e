"""Gate events from the hardware threads to the audio callback, and the clock that places them.

``StreamClock`` maps ``time.monotonic_ns()`` onto the output stream's frame count. The audio
callback stamps each block's start (frame, time) under a sequence counter (a seqlock: the
reader retries if a write was in progress), so the hardware threads read it without a lock.

``GateRing`` carries gates to the callback: any number of producers (GPIO, OSC, the panel)
serialise on a lock among themselves; the single consumer, the callback, takes no lock, only
reads slots below the published write index. Everything is allocated once.

A gate stamped at frame F sounds at F + one block: every gate is late by exactly one block
instead of by anything from zero to one block, so rhythms stay sample-tight (no jitter).
"""
from __future__ import annotations

import threading
import time

import numpy as np

SEQ, TIME_NS, FRAME = 0, 1, 2


class StreamClock:
    def __init__(self, sample_rate: int, block_size: int, clock=time.monotonic_ns):
        self.sample_rate, self.block_size, self.clock = sample_rate, block_size, clock
        self._state = np.zeros(3, np.int64)  # seq, time_ns, frame of the block being computed

    def begin_block(self, frame: int) -> None:
        """Called by the audio callback as it starts computing the block that begins at `frame`."""
        state = self._state
        state[SEQ] += 1  # odd: writing
        state[TIME_NS] = self.clock()
        state[FRAME] = frame
        state[SEQ] += 1

    def frame_now(self) -> int:
        """The stream frame that corresponds to this moment (any thread)."""
        return self.frame_at(None)

    def frame_at(self, t_ns: int | None) -> int:
        """The stream frame of the moment `t_ns` (``clock()``'s time; None: now), for an edge
        whose time was taken where it happened (a packet's arrival in the kernel) and handled a
        little later: it sounds as if handled at once, up to one block late."""
        state = self._state
        while True:
            seq = int(state[SEQ])
            block_ns, frame = int(state[TIME_NS]), int(state[FRAME])
            if seq % 2 == 0 and int(state[SEQ]) == seq:
                break
        if seq == 0:
            return 0  # no block yet: everything so far is "frame 0"
        elapsed = ((self.clock() if t_ns is None else t_ns) - block_ns) * self.sample_rate // 1_000_000_000
        # A late callback does not move the stream on: never stamp past the block being computed;
        # an edge from before the block before it is as late as a stamp can say.
        return frame + min(max(elapsed, -self.block_size), self.block_size - 1)


class OfflineClock:
    """The stream clock of an offline render: moments are the render's own time, so an edge at
    t seconds (``at_ns = round(t * 1e9)``) lands on frame ``round(t * rate)`` exactly."""

    def __init__(self, sample_rate: int, block_size: int):
        self.sample_rate, self.block_size = sample_rate, block_size
        self.frame = 0

    def begin_block(self, frame: int) -> None:
        self.frame = frame

    def frame_now(self) -> int:
        return self.frame

    def frame_at(self, t_ns: int | None) -> int:
        return self.frame if t_ns is None else round(t_ns * self.sample_rate / 1_000_000_000)


class GateRing:
    """A bounded queue of (gate number, stamp frame, impact buffer, gain) for the audio callback
    (gain: a MIDI note's velocity; 1 for a gate jack)."""

    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self.gate = np.zeros(capacity, np.int64)
        self.stamp = np.zeros(capacity, np.int64)
        self.gain = np.ones(capacity, np.float64)
        self.buffer: list = [None] * capacity  # references only; the callback never frees one
        self._write = 0  # published count; only producers change it
        self._read = 0  # consumed count; only the consumer changes it
        self._lock = threading.Lock()  # among producers only
        self.dropped = 0

    def __len__(self) -> int:
        return self._write - self._read

    def push(self, gate: int, stamp: int, buffer, gain: float = 1.0) -> bool:
        with self._lock:
            if self._write - self._read >= self.capacity:
                self.dropped += 1  # a storm faster than the audio drains it: drop, never block
                return False
            i = self._write % self.capacity
            self.gate[i], self.stamp[i], self.buffer[i], self.gain[i] = gate, stamp, buffer, gain
            self._write += 1  # publish last, so the consumer never sees a half-written slot
            return True

    def peek_stamp(self) -> int | None:
        """Stamp of the oldest event, or None. Consumer only."""
        if self._read == self._write:
            return None
        return int(self.stamp[self._read % self.capacity])

    def pop(self):
        """(gate, stamp, buffer, gain) of the oldest event. Consumer only; call after peek_stamp."""
        i = self._read % self.capacity
        item = (int(self.gate[i]), int(self.stamp[i]), self.buffer[i], float(self.gain[i]))
        self.buffer[i] = None
        self._read += 1
        return item
