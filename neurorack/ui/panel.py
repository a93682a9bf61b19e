"""The virtual panel: the module's screen and controls in a browser, on localhost unless asked.

``GET /`` is the page (ui/panel.html), ``GET /screen.png`` the screen as drawn now, ``GET /state``
what the page's knobs and lamps need, ``POST /event`` one control, as a line of an events file
without its time (``{"gate": 1, "on": true}``, ``{"cv": 2, "volts": 1.5}``, ``{"encoder": -1}``,
``{"button": "press"}``). Events go to ``module.apply_event``, through the board, the path OSC
messages take, so the panel plays exactly what a patch cable would. ``GET /sounds`` lists the
library, ``GET /similar?sound=NAME`` a sound's nearest neighbours (sounds/match.py), and
``POST /import?name=NAME&file=FILE.wav`` with the file's bytes (``application/octet-stream``
or ``audio/*``, at most ``upload.MAX_UPLOAD``) imports a dropped file as ``neurorack sounds
import`` does (ui/upload.py): one import at a time, its one-line error on a bad file.

No other web page can drive it or read it: a request whose ``Host`` is not the panel's own
address (DNS rebinding) or whose ``Origin``, when sent, is not the panel's own (a cross-site
form or fetch) is refused with 403, and events must be ``application/json`` (a type a browser
sends cross-site only after a preflight, which the panel never answers). Bodies are capped at
``MAX_BODY`` bytes, a client that stalls for ``TIMEOUT_S`` is dropped, at most ``MAX_CLIENTS``
are served at once (others get 503 at once), and the screen is drawn at most ten times a
second however many pages poll it: clients cannot take the audio process's time.

Offered beyond localhost (``host``, ``neurorack run --panel-host 0.0.0.0``), every request needs
the pairing code shown on the module's Status screen: open ``http://ADDRESS:PORT/?pair=CODE``
once and the browser keeps it (a cookie for that address only); scripts send it as the
``X-Neurorack-Pair`` header. Wrong codes are checked at most one a second.

>>> Panel(module, device).start(8080)      # then open http://127.0.0.1:8080/
"""
from __future__ import annotations

import hmac
import io
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import NeurorackError
from ..hal.cv import RANGES
from ..hal.gates import JACKS
from ..hal.sim import EventsFileError, parse_event
from ..logs import warn
from ..sounds.library import check_name
from .paint import ui_dir
from .upload import MAX_UPLOAD

log = logging.getLogger(__name__)
SCALE = 4  # the screen's pixels, enlarged for the page (nearest neighbour: crisp)
MAX_BODY = 1024  # bytes: one event is ~40
TIMEOUT_S = 5.0  # a client silent this long mid-request is dropped
MAX_CLIENTS = 32  # connections served at once
BACKLOG = 128  # connections the kernel queues before that
SCREEN_EVERY_S = 0.1  # the PNG is drawn at most this often; pages in between share it
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SIMILAR_COUNT = 5
# What a dropped file may be sent as: types a page of another site cannot send without a
# preflight (which the panel never answers), as for events.
UPLOAD_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac",
                "audio/aiff", "audio/x-aiff", "audio/ogg", "application/octet-stream")
COOKIE = "neurorack-pair"


class BusyError(NeurorackError):
    """An import is already running."""


def split_host(header: str) -> tuple[str, int | None] | None:
    """A Host header as (lower-case host, port or None); None if malformed."""
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        host, rest = header[:end + 1], header[end + 1:]
    else:
        host, sep, port = header.partition(":")
        rest = sep + port
    if not host:
        return None
    if not rest:
        return host.lower(), None
    if rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit() and len(rest) <= 6:
        return host.lower(), int(rest[1:])
    return None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class Panel:
    def __init__(self, module, device, host: str = "127.0.0.1"):
        self.module = module
        self.device = device  # the display loop's device, or a simulated screen of the panel's own
        self.host = host
        # Beyond localhost, a code to pair with (8 digits: typed on a phone, and one guess a second).
        self.pairing = None if is_loopback(host) else f"{secrets.randbelow(10 ** 8):08d}"
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self._screen_lock = threading.Lock()
        self._screen: tuple[float, bytes] = (float("-inf"), b"")
        self._last_wrong = float("-inf")
        # Requests are read in parallel (a slow client blocks only its own thread) but handled one
        # at a time: however many clients, at most one panel thread competes with audio for the GIL.
        self._serving = threading.Lock()
        self._session = secrets.token_urlsafe(24)  # what a paired browser's cookie holds
        self._importing = threading.Lock()  # one dropped file at a time

    def screen_png(self) -> bytes:
        with self._screen_lock:  # one drawing at a time; pages polling together share it
            at, png = self._screen
            if time.monotonic() - at < SCREEN_EVERY_S:
                return png
            self.module.ui.render(self.device)  # draws the current state: a press shows at once
            image = self.device.image.convert("RGB")
            image = image.resize((image.width * SCALE, image.height * SCALE), 0)  # 0: nearest
            out = io.BytesIO()
            image.save(out, "PNG")
            self._screen = (time.monotonic(), out.getvalue())
            return self._screen[1]

    def state(self) -> dict:
        view = self.module.view()
        return {"gates": [view.gate_counts[g] for g in JACKS], "screen": self.module.ui.path(),
                "cv": [{"number": c.number, "range": RANGES[c.range], "volts": c.volts} for c in view.cvs]}

    def sounds(self) -> dict:
        return {"sounds": list(self.module.view().sounds), "max_upload": MAX_UPLOAD}

    def similar(self, name: str) -> dict:
        return {"sound": name, "similar": [{"name": m.name, "distance": round(m.distance, 1), "why": m.why(3)}
                                           for m in self.module.similar_sounds(name, SIMILAR_COUNT)]}

    def import_file(self, data: bytes, name: str, filename: str) -> dict:
        if not self._importing.acquire(blocking=False):
            raise BusyError("another file is being imported; try again when it is done")
        try:
            lines = self.module.import_file(data, name, filename)
        finally:
            self._importing.release()
        return {"lines": lines, **self.similar(check_name(name))}  # the name as the library keeps it

    def event(self, obj) -> None:
        if not isinstance(obj, dict):
            raise EventsFileError("panel event: expected a JSON object")
        self.module.apply_event(parse_event({"t": 0.0, **obj}, "panel event"))

    # -- who may ask ----------------------------------------------------------------------------
    def host_allowed(self, header: str | None) -> bool:
        """The request's Host names this panel: a loopback name, the address it was asked to
        listen on, or (listening on every address) any IP address; never another name (a
        DNS-rebinding page's request carries its own name)."""
        parsed = split_host(header or "")
        if parsed is None:
            return False
        host, port = parsed
        if port != self.port and not (port is None and self.port == 80):
            return False
        if host in LOOPBACK_NAMES:
            return True
        if self.pairing is None:  # localhost only
            return False
        if host == self.host.lower():
            return True
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return self.host in ("0.0.0.0", "::")

    def paired(self, handler) -> bool:
        """Beyond localhost: the session cookie pairing gave, or the code in X-Neurorack-Pair."""
        if self.pairing is None:
            return True
        for part in (handler.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), self._session.encode()):
                return True
        offered = handler.headers.get("X-Neurorack-Pair")
        return offered is not None and self.code_matches(offered)

    def code_matches(self, offered: str) -> bool:
        """The pairing code, guessed at most once a second (10^8 codes: years of guessing)."""
        now = time.monotonic()
        if now - self._last_wrong < 1.0:
            return False
        if hmac.compare_digest(offered.strip().encode(), self.pairing.encode()):
            return True
        self._last_wrong = now
        warn(log, "panel-pairing", "virtual panel: a wrong pairing code was offered")
        return False

    def start(self, port: int = 8080) -> "Panel":
        panel = self

        class Handler(BaseHTTPRequestHandler):
            timeout = TIMEOUT_S  # per read: a stalled client is dropped, not waited for
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # the journal is for the module, not for page polls
                pass

            def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8", extra=()) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("X-Frame-Options", "DENY")  # no page may frame it and steer clicks
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _refused(self) -> bool:
                """403 for a foreign Host or Origin, or an unpaired client; True if refused."""
                host = self.headers.get("Host")
                if not panel.host_allowed(host):
                    warn(log, "panel-refused", "virtual panel: refused a request for host %.60r", host)
                    self._send(403, b"this panel answers only at its own address\n")
                    return True
                origin = self.headers.get("Origin")
                if origin is not None and origin != f"http://{host}":
                    warn(log, "panel-refused", "virtual panel: refused a request from origin %.60r", origin)
                    self._send(403, b"requests from other sites are refused\n")
                    return True
                if self.command == "GET" and panel.pairing is not None:
                    query = parse_qs(urlsplit(self.path).query).get("pair")
                    if query and panel.code_matches(query[0]):
                        cookie = f"{COOKIE}={panel._session}; Path=/; HttpOnly; SameSite=Strict"
                        self._send(303, b"", extra=(("Location", "/"), ("Set-Cookie", cookie)))
                        return True
                if not panel.paired(self):
                    self._send(403, b"pair first: open /?pair=CODE with the code on the module's Status screen\n")
                    return True
                return False

            def do_GET(self):
                with panel._serving:
                    self._get()

            def do_POST(self):
                self._post()  # the body is read first, outside the lock: a stalled client holds only itself

            def _get(self):
                if self._refused():
                    return
                path = urlsplit(self.path).path
                if path == "/":
                    self._send(200, (ui_dir() / "panel.html").read_bytes(), "text/html; charset=utf-8")
                elif path == "/screen.png":
                    self._send(200, panel.screen_png(), "image/png")
                elif path == "/state":
                    self._send(200, json.dumps(panel.state()).encode(), "application/json")
                elif path == "/sounds":
                    self._send(200, json.dumps(panel.sounds()).encode(), "application/json")
                elif path == "/similar":
                    name = parse_qs(urlsplit(self.path).query).get("sound", [""])[0]
                    try:
                        self._send(200, json.dumps(panel.similar(name)).encode(), "application/json")
                    except NeurorackError as exc:
                        self._send(404, str(exc)[:200].encode())
                else:
                    self._send(404, b"not found\n")

            def _post(self):
                if self._refused():
                    return
                if urlsplit(self.path).path == "/import":
                    return self._import()
                if urlsplit(self.path).path != "/event":
                    return self._send(404, b"not found\n")
                kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if kind != "application/json":
                    return self._send(415, b"events are application/json\n")
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._send(411, b"a Content-Length is needed\n")
                if not 0 <= length <= MAX_BODY:
                    return self._send(413, f"an event is at most {MAX_BODY} bytes\n".encode())
                try:
                    body = self.rfile.read(length)
                    with panel._serving:
                        panel.event(json.loads(body or b"null"))
                except (ValueError, RecursionError, NeurorackError) as exc:
                    text = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                    return self._send(400, text[:200].encode())
                self._send(204, b"")

            def _import(self):
                """A dropped file: read whole (at most MAX_UPLOAD), imported outside the serving
                lock (it takes seconds; the screen and controls go on meanwhile)."""
                kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if kind not in UPLOAD_TYPES:
                    return self._send(415, b"a dropped file is sent as audio (audio/wav, audio/flac, ...)\n")
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._send(411, b"a Content-Length is needed\n")
                if not 0 <= length <= MAX_UPLOAD:
                    return self._send(413, f"a dropped file is at most {MAX_UPLOAD >> 20} MB "
                                           f"(30 s of audio is enough for an impact)\n".encode())
                query = parse_qs(urlsplit(self.path).query)
                name, filename = query.get("name", [""])[0], query.get("file", [""])[0]
                body = self.rfile.read(length)
                if len(body) != length:
                    return self._send(400, b"the file was cut short\n")
                try:
                    result = panel.import_file(body, name, filename)
                except BusyError as exc:
                    return self._send(409, str(exc).encode())
                except NeurorackError as exc:
                    return self._send(400, str(exc)[:300].encode())
                self._send(200, json.dumps(result).encode(), "application/json")

        class Server(ThreadingHTTPServer):
            request_queue_size = BACKLOG
            daemon_threads = True
            _slots = threading.BoundedSemaphore(MAX_CLIENTS)

            def process_request(self, request, client_address):
                if not self._slots.acquire(blocking=False):
                    try:  # busy: say so at once rather than queue a thread per client
                        request.settimeout(0.5)
                        request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                    except OSError:
                        pass
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request, client_address):
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    self._slots.release()

            def handle_error(self, request, client_address):
                import sys

                exc = sys.exc_info()[1]
                if not isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
                    warn(log, "panel-error", "virtual panel: a request failed (%s: %.80s)", type(exc).__name__, exc)

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        Server.address_family = family
        try:
            self._server = Server((self.host, port), Handler)
        except (OSError, OverflowError) as exc:
            raise NeurorackError(f"cannot serve the panel on {self.host}:{port}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
        self.port = self._server.server_address[1]
        self.module.show_pairing(self.pairing)  # on the Status screen
        threading.Thread(target=self._server.serve_forever, name="panel", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
