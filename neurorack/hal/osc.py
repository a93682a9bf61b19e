"""An OSC server that knows when each packet arrived.

The kernel stamps every datagram as it lands (SO_TIMESTAMPNS); the server hands that moment,
on the monotonic clock, to the handlers as ``arrival_ns``. A gate then sounds where it
arrived, not where a busy thread got round to it: the engine stamps it with the stream frame
of its arrival (``StreamClock.frame_at``), so a handler that ran up to one block late adds no
latency and no jitter.

>>> server = StampedOSCServer(("127.0.0.1", 9000), dispatcher)
>>> server.serve_forever()            # in a handler: server.arrival_ns
"""
from __future__ import annotations

import socket
import struct
import sys
import time

from pythonosc.osc_server import BlockingOSCUDPServer

# Linux's SO_TIMESTAMPNS (asm-generic; Python's socket module does not name it). The control
# message carries a struct timespec of the platform's longs: 16 bytes on 64-bit, 8 on armhf.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@ll")


class StampedOSCServer(BlockingOSCUDPServer):
    """One thread handles packets in order; ``arrival_ns`` is the current packet's arrival
    (time.monotonic_ns), or the time it was read where the kernel gave no stamp."""

    def __init__(self, address, dispatcher):
        super().__init__(address, dispatcher)
        self.arrival_ns: int | None = None
        self.stamped = False  # elsewhere than Linux, 35 means something else: the read time it is
        if sys.platform.startswith("linux"):
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass

    def get_request(self):
        data, ancillary, _, client = self.socket.recvmsg(self.max_packet_size, socket.CMSG_SPACE(TIMESPEC.size))
        self.arrival_ns = time.monotonic_ns()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                seconds, nanoseconds = TIMESPEC.unpack_from(payload)
                # The kernel's stamp is wall-clock time: carried over as "this long ago".
                # A wall clock stepped meanwhile (NTP) gives nonsense: then the read time it is.
                ago = time.time_ns() - (seconds * 1_000_000_000 + nanoseconds)
                if 0 <= ago < 1_000_000_000:
                    self.arrival_ns -= ago
        return (data, self.socket), client
