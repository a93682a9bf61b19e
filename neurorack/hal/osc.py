"""An OSC server that knows when each packet arrived, and that no packet can stall.

The kernel stamps every datagram as it lands (SO_TIMESTAMPNS); the server hands that moment,
on the monotonic clock, to the handlers as ``arrival_ns``. A gate then sounds where it
arrived, not where a busy thread got round to it: the engine stamps it with the stream frame
of its arrival (``StreamClock.frame_at``), so a handler that ran up to one block late adds no
latency and no jitter.

The receiving thread never sleeps on input (python-osc's own dispatch sleeps until a bundle's
timetag, which let one far-future bundle silence the module): a bundle due now or in the past
plays at once; one due up to ``MAX_AHEAD_S`` ahead is scheduled on a timer thread (at most
``MAX_PENDING`` waiting); beyond that it is refused with one line. A malformed packet, or one
whose handler fails, costs one rate-limited line (``logs.warn``), never a traceback. Beyond
``MAX_RATE`` packets a second (after a burst of ``BURST``) the excess is dropped unparsed.

>>> server = StampedOSCServer(("127.0.0.1", 9000), dispatcher)
>>> server.serve_forever()            # in a handler: server.arrival_ns
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import struct
import sys
import threading
import time

from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import BlockingOSCUDPServer

from ..logs import warn

log = logging.getLogger(__name__)
# Linux's SO_TIMESTAMPNS (asm-generic; Python's socket module does not name it). The control
# message carries a struct timespec of the platform's longs: 16 bytes on 64-bit, 8 on armhf.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@ll")
MAX_AHEAD_S = 10.0  # a bundle timed further ahead than this is refused
MAX_PENDING = 256  # scheduled bundles' messages waiting at once; more are refused
# A storm is cut before parsing: packets beyond this rate (after a burst) are dropped and counted,
# so a flood cannot hold the GIL the audio callback needs. A controller sends far fewer.
MAX_RATE = 2000  # packets per second
BURST = 500


class StampedOSCServer(BlockingOSCUDPServer):
    """One thread reads packets in order; ``arrival_ns`` is the current message's arrival
    (time.monotonic_ns), or the time it was read where the kernel gave no stamp; for a
    scheduled bundle's message, the moment it fell due."""

    def __init__(self, address, dispatcher):
        self._pending: list = []  # heap of (due unix time, seq, message, client)
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._local = threading.local()
        self._tokens, self._refilled = float(BURST), time.monotonic()
        self.dropped = 0
        _quiet_python_osc()
        super().__init__(address, dispatcher)
        self.stamped = False  # elsewhere than Linux, 35 means something else: the read time it is
        if sys.platform.startswith("linux"):
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass
        self._timer = threading.Thread(target=self._run_timer, name="osc-timer", daemon=True)
        self._timer.start()

    @property
    def arrival_ns(self) -> int | None:
        return getattr(self._local, "arrival_ns", None)

    def get_request(self):
        data, ancillary, _, client = self.socket.recvmsg(self.max_packet_size, socket.CMSG_SPACE(TIMESPEC.size))
        # The wall clock first: a preemption between the two reads then makes the stamp late by
        # it, never earlier than the packet (which the other order did, by microseconds).
        wall = time.time_ns()
        arrival = time.monotonic_ns()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                seconds, nanoseconds = TIMESPEC.unpack_from(payload)
                # The kernel's stamp is wall-clock time: carried over as "this long ago".
                # A wall clock stepped meanwhile (NTP) gives nonsense: then the read time it is.
                ago = wall - (seconds * 1_000_000_000 + nanoseconds)
                if 0 <= ago < 1_000_000_000:
                    arrival -= ago
        self._local.arrival_ns = arrival
        return (data, self.socket), client

    def finish_request(self, request, client_address) -> None:
        """Parse and dispatch one datagram without ever waiting on it."""
        data = request[0]
        now = time.monotonic()
        self._tokens = min(float(BURST), self._tokens + (now - self._refilled) * MAX_RATE)
        self._refilled = now
        if self._tokens < 1.0:
            self.dropped += 1
            warn(log, "osc-storm", "OSC: more than %d packets a second; dropping the excess", MAX_RATE)
            return
        self._tokens -= 1.0
        try:
            messages = OscPacket(data).messages
        except Exception as exc:  # python-osc's ParseError, and struct/index/unicode errors on garbage
            warn(log, "osc-malformed", "OSC: ignoring a malformed packet of %d bytes from %s (%s)",
                 len(data), client_address[0], type(exc).__name__)
            return
        now = time.time()
        for timed in messages:
            ahead = timed.time - now
            if ahead <= 0.0:
                self._dispatch(timed.message, client_address)
            elif ahead > MAX_AHEAD_S:
                warn(log, "osc-future", "OSC: ignoring a bundle timed %.3g s ahead (at most %g s)",
                     ahead, MAX_AHEAD_S)
            else:
                self._schedule(timed.time, timed.message, client_address)

    def _dispatch(self, message, client_address) -> None:
        try:
            handlers = self.dispatcher.handlers_for_address(message.address)
            for handler in handlers:
                handler.invoke(client_address, message)
        except Exception as exc:  # a handler is ours and validates; this is the last line of defence
            warn(log, "osc-error", "OSC %.40s: ignored (%s: %.80s)", getattr(message, "address", "?"),
                 type(exc).__name__, exc)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        warn(log, "osc-error", "OSC: a packet from %s was ignored (%s)", client_address[0], type(exc).__name__)

    # -- bundles timed ahead --------------------------------------------------------------------
    def _schedule(self, due: float, message, client_address) -> None:
        with self._wake:
            if len(self._pending) >= MAX_PENDING:
                warn(log, "osc-future", "OSC: %d timed bundles already waiting; ignoring another", MAX_PENDING)
                return
            heapq.heappush(self._pending, (due, next(self._seq), message, client_address))
            self._wake.notify()

    def _run_timer(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._pending or self._pending[0][0] > time.time()):
                    self._wake.wait(min(0.1, self._pending[0][0] - time.time()) if self._pending else 0.5)
                if self._closed:
                    return
                _, _, message, client = heapq.heappop(self._pending)
            self._local.arrival_ns = time.monotonic_ns()
            self._dispatch(message, client)

    def server_close(self) -> None:
        with self._wake:
            self._closed = True
            self._pending.clear()
            self._wake.notify()
        super().server_close()


class _PythonOscLines(logging.Filter):
    """python-osc logs each odd packet on the root logger ("Could not identify content type"):
    one line per packet, a flood under garbage. Its lines are counted as ours, rate-limited."""

    PART = f"{os.sep}pythonosc{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        if self.PART not in record.pathname:
            return True
        warn(log, "osc-malformed", "OSC: %.100s", record.getMessage())
        return False


def _quiet_python_osc() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _PythonOscLines) for f in root.filters):
        root.addFilter(_PythonOscLines())
