"""`neurorack bench abuse`: a live sim module (JACK dummy driver, OSC, the virtual panel) under
floods and fuzz, as a hostile user or a broken controller would send them:

- a flood of distinct out-of-range CVs and unknown gates (each a new text: "warn once" by
  text would print every one), and odd numbers (NaN, infinite, huge) on every address;
- random and malformed OSC packets: garbage bytes, truncated and bit-flipped messages, bundles
  timed now, in the past, soon, far ahead and absurdly far ahead, nested bundles;
- random and malformed HTTP: foreign Host and Origin, text/plain posts, huge or missing
  lengths, garbage request lines, clients that stall mid-request, many at once.

Then gates through OSC, each checked in the audio captured from JACK; then SIGTERM, and the
exit time and the saved settings. The JSON: messages sent, lines logged during the abuse,
tracebacks (target 0), gates played after it, memory (RSS) before and after.

The packet makers are shared with the suite's fuzz test (firmware_tests/test_abuse.py).
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .jack import JackServer

NTP_EPOCH = 2208988800  # seconds from 1900 (OSC timetags) to 1970


# ----------------------------------------------------------------------------- OSC packets

def _osc_string(text: str | bytes) -> bytes:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    data += b"\x00"
    return data + b"\x00" * (-len(data) % 4)


def osc_message(address: str, *args) -> bytes:
    """An OSC message (the wire format, built here so that odd values can be built too)."""
    tags, payload = ",", b""
    for arg in args:
        if isinstance(arg, bool):
            tags += "T" if arg else "F"
        elif isinstance(arg, int):
            tags += "i"
            payload += struct.pack(">i", arg)
        elif isinstance(arg, float):
            tags += "d" if abs(arg) > 3e38 and np.isfinite(arg) else "f"
            payload += struct.pack(">d" if tags[-1] == "d" else ">f", arg)
        elif isinstance(arg, bytes):
            tags += "b"
            payload += struct.pack(">i", len(arg)) + arg + b"\x00" * (-len(arg) % 4)
        elif arg is None:
            tags += "N"
        else:
            tags += "s"
            payload += _osc_string(str(arg))
    return _osc_string(address) + _osc_string(tags) + payload


def osc_bundle(timetag: int, *contents: bytes) -> bytes:
    """A bundle; `timetag` is the raw 64-bit NTP value (1: immediately)."""
    out = _osc_string("#bundle") + struct.pack(">Q", timetag)
    for content in contents:
        out += struct.pack(">i", len(content)) + content
    return out


def ntp(unix_seconds: float) -> int:
    return int((unix_seconds + NTP_EPOCH) * (1 << 32)) & ((1 << 64) - 1)


ODD_NUMBERS = (float("nan"), float("inf"), float("-inf"), 1e300, -1e300, 3e38, -3e38, 2 ** 31 - 1, -2 ** 31, 0.0)


def osc_flood(rng: random.Random, n: int) -> list[bytes]:
    """Distinct out-of-range CVs, unknown gates and inputs, odd numbers on every address."""
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append(osc_message(f"/cv/{1 + i % 4}", 10.0 + i * 1e-3))  # out of range, each value new
        elif kind == 1:
            out.append(osc_message(f"/gate/{3 + i}", 1))  # no such gate, each number new
        elif kind == 2:
            out.append(osc_message(f"/cv/{9 + i}", 1.0))
        elif kind == 3:  # a huge finite number is a turn or a press: only the non-finite go to the menus
            address = rng.choice(("/encoder", "/cv/2", "/gate/1", "/button"))
            out.append(osc_message(address, rng.choice(ODD_NUMBERS[:3] if address in ("/encoder", "/button")
                                                       else ODD_NUMBERS)))
        elif kind == 4:
            out.append(osc_message(f"/nowhere/{i}", i))
        else:
            out.append(osc_message(rng.choice(("/gate/1", "/cv/3", "/encoder")), rng.choice(("x", b"\x00", None, True))))
    return out


def osc_fuzz(rng: random.Random, n: int) -> list[bytes]:
    """Random and malformed packets. Valid-looking ones never carry a usable encoder turn or
    button press (those would wander the menus and change settings, which is allowed)."""
    now = time.time()
    addresses = ("/gate/1", "/gate/2", "/gate/0", "/gate/x", "/cv/1", "/cv/4", "/cv/-1", "/gate/1/2", "/", "//",
                 "/[", "/{a,", "/gate/*", "/cv/?", "/\u00e9", "/" + "a" * 3000)
    out = []
    for _ in range(n):
        kind = rng.randrange(8)
        if kind == 0:  # garbage, often passing the server's first look
            head = rng.choice((b"", b"/", b"#bundle\x00"))
            out.append(head + rng.randbytes(rng.randrange(0, 400)))
        elif kind == 1:  # a valid message, cut short
            message = osc_message(rng.choice(addresses), rng.uniform(-20, 20))
            out.append(message[:rng.randrange(1, len(message))])
        elif kind == 2:  # a valid message with bytes flipped
            message = bytearray(osc_message(rng.choice(addresses), rng.uniform(-20, 20), "s"))
            for _ in range(rng.randrange(1, 4)):
                message[rng.randrange(len(message))] ^= 1 << rng.randrange(8)
            if not message.startswith((b"/enc", b"/but")):
                out.append(bytes(message))
        elif kind == 3:  # odd types and counts
            args = [rng.choice((1, -1, 0.5, "s", b"b", None, True, False, 1e300, float("nan")))
                    for _ in range(rng.randrange(0, 6))]
            out.append(osc_message(rng.choice(addresses), *args))
        elif kind == 4:  # bundles at every time: now, past, soon, far ahead, absurd
            tag = rng.choice((1, 0, ntp(now - 100), ntp(now + rng.uniform(0, 0.5)), ntp(now + 1e6),
                              (1 << 64) - 1, ntp(now + 30)))
            out.append(osc_bundle(tag, osc_message(rng.choice(addresses[:6]), rng.uniform(-5, 5))))
        elif kind == 5:  # nested bundles, some lying about their sizes
            inner = osc_bundle(1, osc_message("/cv/2", 1.0))
            bundle = osc_bundle(1, inner, inner)
            if rng.random() < 0.5:
                bundle = bundle[:16] + struct.pack(">i", rng.choice((-1, 0, 1 << 30, 7))) + bundle[20:]
            out.append(bundle)
        elif kind == 6:  # a type tag string that lies
            out.append(_osc_string("/cv/1") + _osc_string("," + "".join(rng.choice("ifsbdhtTFNIrmc[]Q")
                                                                       for _ in range(rng.randrange(1, 20)))))
        else:  # odd numbers in the encoder and the button: refused, never applied
            out.append(osc_message(rng.choice(("/encoder", "/button")), rng.choice(ODD_NUMBERS[:3])))
    return out


# ----------------------------------------------------------------------------- HTTP requests

def http_fuzz(rng: random.Random, n: int, port: int) -> list[bytes]:
    """Requests a hostile page, a rebinding attack or a broken client would send. None of them
    may change the module: posts all come cross-site, with the wrong type, or malformed."""
    own = f"127.0.0.1:{port}"
    event = json.dumps(rng.choice(({"button": "press"}, {"encoder": 3}, {"gate": 1, "on": True}))).encode()
    out = []
    for _ in range(n):
        kind = rng.randrange(9)  # 8: a read the page itself makes
        if kind == 0:  # a cross-site "simple" request: text/plain, no preflight
            out.append(f"POST /event HTTP/1.1\r\nHost: {own}\r\nOrigin: http://evil.example\r\n"
                       f"Content-Type: text/plain\r\nContent-Length: {len(event)}\r\n\r\n".encode() + event)
        elif kind == 1:  # DNS rebinding: another name for this address
            path = rng.choice(("/state", "/screen.png", "/", "/event"))
            out.append(f"GET {path} HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n".encode())
        elif kind == 2:  # the right type, from another site
            out.append(f"POST /event HTTP/1.1\r\nHost: {own}\r\nOrigin: http://{own}.evil.example\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(event)}\r\n\r\n".encode() + event)
        elif kind == 3:  # lengths that lie or are absurd
            length = rng.choice(("10000000000", "-5", "abc", "", "1e9", "99999999999999999999999"))
            out.append(f"POST /event HTTP/1.1\r\nHost: {own}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       f"Content-Length: {length}\r\n\r\n{{".encode())
        elif kind == 4:  # garbage
            out.append(rng.randbytes(rng.randrange(1, 300)) + b"\r\n\r\n")
        elif kind == 5:  # odd request lines and methods
            method = rng.choice(("GET", "PUT", "DELETE", "OPTIONS", "TRACE", "BREW", "G\x00T", "get"))
            path = rng.choice(("/", "//state", "/../../etc/passwd", "/state?" + "a" * 5000, "*", "http://x/",
                               "/screen.png?\u00ff", "/%00"))
            out.append(f"{method} {path} HTTP/1.1\r\nHost: {own}\r\n\r\n".encode("utf-8", "replace"))
        elif kind == 6:  # a flood of headers
            out.append(f"GET /state HTTP/1.1\r\nHost: {own}\r\n".encode()
                       + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(rng.choice((10, 200))))
                       + b"\r\n")
        elif kind == 7:  # what the page itself reads (allowed)
            out.append(f"GET {rng.choice(('/state', '/screen.png'))} HTTP/1.0\r\nHost: {own}\r\n\r\n".encode())
        else:  # what the page itself reads (allowed)
            out.append(f"GET /state HTTP/1.1\r\nHost: {own}\r\n\r\n".encode())
        if rng.random() < 0.02:  # a stall: the request never finishes (the panel drops it after its timeout)
            out[-1] = f"POST /event HTTP/1.1\r\nHost: {own}\r\n".encode()
    return out


def panel_event(port: int, event: dict) -> bytes:
    """A POST /event as the panel's own page sends it."""
    body = json.dumps(event).encode()
    return (f"POST /event HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def send_http(port: int, requests: list[bytes], workers: int = 8, timeout: float = 10.0) -> dict:
    """Send each request on its own connection from `workers` threads; counts of replies by
    status ("reset", "timeout", "closed" for none)."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    queue = list(requests)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                data = queue.pop(0)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
                    conn.sendall(data)
                    reply = conn.recv(64)
                    status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "closed"
            except ConnectionResetError:
                status = "reset"
            except socket.timeout:
                status = "timeout"
            except OSError as exc:
                status = type(exc).__name__
            with lock:
                counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def send_udp(port: int, packets: list[bytes], per_ms: int = 20) -> int:
    """Send the packets, pausing a millisecond every `per_ms` so the socket buffer keeps up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for i, packet in enumerate(packets):
            try:
                udp.sendto(packet[:65000], ("127.0.0.1", port))
            except OSError:
                pass
            if i % per_ms == per_ms - 1:
                time.sleep(0.001)
    return len(packets)


# ----------------------------------------------------------------------------- the live module

def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Capture:
    """A JACK client that keeps each block's peak of everything the module plays."""

    def __init__(self):
        import jack

        self.client = jack.Client("abuse-capture", no_start_server=True)
        self.ins = [self.client.inports.register(f"in_{i}") for i in range(2)]
        self.peaks: list[float] = []
        self.client.set_process_callback(lambda frames: self.peaks.append(
            max(float(np.abs(p.get_array()).max()) for p in self.ins)))
        self.client.activate()

    def connect(self) -> int:
        outs = [p for p in self.client.get_ports(is_audio=True, is_output=True)
                if not p.name.startswith(("system:", "abuse-capture:"))]
        for port, inport in zip(outs, self.ins):
            self.client.connect(port, inport)
        return len(outs)

    def quiet(self, seconds: float = 0.3, level: float = 1e-3) -> bool:
        blocks = int(seconds * 48000 / 128)
        return len(self.peaks) >= blocks and max(self.peaks[-blocks:]) < level

    def close(self):
        self.client.deactivate()
        self.client.close()


class LiveModule:
    """`neurorack run` on the sim board through JACK, with OSC and the panel; its log in a file."""

    def __init__(self, config_dir: Path):
        self.osc_port, self.panel_port = free_port(socket.SOCK_DGRAM), free_port()
        self.config_dir = config_dir
        self.log_path = config_dir / "module.log"
        self.log = open(self.log_path, "w")
        env = {**os.environ, "NEURORACK_CONFIG": str(config_dir / "boards"),
               "NEURORACK_SOUNDS": str(config_dir / "sounds")}
        config = config_dir / "run.toml"
        config.write_text('sound_a = "Snap"\nsound_b = "Glass Ring"\nmorph = 0.0\n')
        self.process = subprocess.Popen(
            [sys.executable, "-m", "neurorack.cli", "run", "--board", "sim", "--device", "jack", "--config", str(config),
             "--osc-port", str(self.osc_port), "--panel", str(self.panel_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log, text=True)

    def lines(self) -> list[str]:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace").splitlines()

    def wait_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not any("ready:" in line for line in self.lines()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the module did not start: " + " | ".join(self.lines()[-5:]))
            time.sleep(0.2)

    def stop(self, seconds: float = 20.0) -> tuple[int | None, float]:
        """SIGTERM; (exit code or None if it would not exit, seconds it took)."""
        t0 = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = None
        self.log.close()
        return code, time.monotonic() - t0


def play_gates(module: LiveModule, capture: Capture, count: int) -> int:
    """Gates on OSC after the abuse, each heard in the captured audio; how many sounded."""
    played = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for n in range(1, 5):  # the CVs back at rest: the flood left them anywhere
            udp.sendto(osc_message(f"/cv/{n}", 0.0), ("127.0.0.1", module.osc_port))
        for _ in range(count):
            deadline = time.monotonic() + 8
            while not capture.quiet() and time.monotonic() < deadline:
                time.sleep(0.05)
            before = len(capture.peaks)
            udp.sendto(osc_message("/gate/1", 1), ("127.0.0.1", module.osc_port))
            udp.sendto(osc_message("/gate/1", 0), ("127.0.0.1", module.osc_port))
            time.sleep(0.4)
            after = capture.peaks[before:]
            played += bool(after) and max(after) > 0.01
    return played


def _xruns(lines: list[str]) -> int:
    """The xruns the module reported in these log lines ("N audio underflows (xruns) in ...")."""
    return sum(int(line.split()[2]) for line in lines if "audio underflows (xruns)" in line)


def abuse(osc_flood_n: int = 40000, osc_fuzz_n: int = 20000, http_n: int = 3000, gates: int = 5,
          seed: int = 0, idle_s: float = 10.0) -> dict:
    """Start a module and a JACK server, abuse it, and say what happened."""
    rng = random.Random(seed)
    server = JackServer().start()
    work = Path(tempfile.mkdtemp(prefix="neurorack-abuse-"))
    module = LiveModule(work)
    capture = None
    try:
        module.wait_ready()
        capture = Capture()
        if capture.connect() == 0:
            raise RuntimeError("the module's JACK ports did not appear")
        time.sleep(1.0)
        idle_line, idle_t0 = len(module.lines()), time.monotonic()
        time.sleep(idle_s)  # the floor: this machine's xruns with nobody sending anything
        idle_lines, idle_s = module.lines()[idle_line:], time.monotonic() - idle_t0
        start_line, abuse_t0 = len(module.lines()), time.monotonic()
        rss_before = rss_kb(module.process.pid)
        timings = {}
        t0 = time.monotonic()
        sent = {"osc_flood": send_udp(module.osc_port, osc_flood(rng, osc_flood_n))}
        timings["osc_flood_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        sent["osc_fuzz"] = send_udp(module.osc_port, osc_fuzz(rng, osc_fuzz_n))
        timings["osc_fuzz_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        http = send_http(module.panel_port, http_fuzz(rng, http_n, module.panel_port), workers=16)
        sent["http"] = http_n
        timings["http_s"] = time.monotonic() - t0
        time.sleep(1.5)  # the last packets handled, held-back counts said
        alive = module.process.poll() is None
        rss_after = rss_kb(module.process.pid) if alive else None
        abuse_lines, abuse_s = module.lines()[start_line:], time.monotonic() - abuse_t0
        played = play_gates(module, capture, gates) if alive else 0
        # A far-future bundle just before SIGTERM: the process must still exit, and save.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(osc_bundle(ntp(time.time() + 1e6), osc_message("/gate/1", 1)), ("127.0.0.1", module.osc_port))
        # The page's own events: back to the home screen, the morph to 0, then one detent up (0.05),
        # which SIGTERM must save.
        events = [{"button": "long"}] * 6 + [{"encoder": -64}] * 2 + [{"encoder": 1}]
        legit = send_http(module.panel_port, [panel_event(module.panel_port, e) for e in events], workers=1)
    finally:
        if capture is not None:
            capture.close()
        code, exit_s = module.stop()
        server.stop()
    lines = module.lines()
    saved = work / "boards" / "sim.json"
    return {
        "sent": {**sent, "total": sum(sent.values())},
        "http_replies": dict(sorted(http.items())),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "alive_after_abuse": alive,
        "lines_logged_during_abuse": len(abuse_lines),
        "xruns": {"during_abuse": _xruns(abuse_lines), "abuse_s": round(abuse_s, 1),
                  "idle_before": _xruns(idle_lines), "idle_s": round(idle_s, 1),
                  "per_s_abuse_over_idle": round((_xruns(abuse_lines) / abuse_s) / max(_xruns(idle_lines) / idle_s, 1e-9), 2)
                  if _xruns(idle_lines) else None},
        "tracebacks": sum("Traceback" in line for line in lines),
        "gates_after_abuse": {"sent": gates, "played": played},
        "rss_kb": {"before": rss_before, "after": rss_after,
                   "growth": (rss_after - rss_before) if rss_after is not None else None},
        "sigterm": {"exit_code": code, "seconds": round(exit_s, 2)},
        "legit_panel_reply": legit,
        "settings_saved_on_exit": saved.exists() and json.loads(saved.read_text()).get("morph") == 0.05,
        "log_sample": abuse_lines[:12],
    }


def run(out: str, osc_flood_n: int, osc_fuzz_n: int, http_n: int, gates: int = 5, seed: int = 0,
        idle_s: float = 10.0) -> dict:
    from ..fileio import write_json
    from .common import environment

    result = {"environment": environment(), **abuse(osc_flood_n, osc_fuzz_n, http_n, gates, seed, idle_s)}
    write_json(out, result)
    return result
