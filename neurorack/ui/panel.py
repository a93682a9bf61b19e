"""The virtual panel: the module's screen and controls in a browser, on localhost only.

``GET /`` is the page (ui/panel.html), ``GET /screen.png`` the screen as drawn now, ``GET /state``
what the page's knobs and lamps need, ``POST /event`` one control, as a line of an events file
without its time (``{"gate": 1, "on": true}``, ``{"cv": 2, "volts": 1.5}``, ``{"encoder": -1}``,
``{"button": "press"}``). Events go to the board's ``apply``, the path OSC messages take, so the
panel plays exactly what a patch cable would.

>>> Panel(module, board, device).start(8080)      # then open http://127.0.0.1:8080/
"""
from __future__ import annotations

import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import NeurorackError
from ..hal.cv import RANGES
from ..hal.sim import EventsFileError, parse_event
from .paint import ui_dir

log = logging.getLogger(__name__)
SCALE = 4  # the screen's pixels, enlarged for the page (nearest neighbour: crisp)


class Panel:
    def __init__(self, module, board, device=None):
        self.module, self.board = module, board
        self.device = device  # the display loop's device; None: the panel draws on its own
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def screen_png(self) -> bytes:
        if self.device is None:
            from luma.core.device import dummy

            self.device = dummy(width=128, height=64, mode="1")
        self.module.ui.render(self.device)  # draws the current state: a press shows at once
        image = self.device.image.convert("RGB")
        image = image.resize((image.width * SCALE, image.height * SCALE), 0)  # 0: nearest
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()

    def state(self) -> dict:
        engine = self.module.engine
        volts = engine.snapshot().volts
        return {"gates": [int(engine.gates[1]), int(engine.gates[2])], "screen": self.module.ui.path(),
                "cv": [{"number": c.number, "range": RANGES[c.range], "volts": volts.get(c.number, 0.0)}
                       for c in self.module.profile.cv]}

    def event(self, obj) -> None:
        if not isinstance(obj, dict):
            raise EventsFileError("panel event: expected a JSON object")
        self.board.apply(parse_event({"t": 0.0, **obj}, "panel event"))

    def start(self, port: int = 8080) -> "Panel":
        panel = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # the journal is for the module, not for page polls
                pass

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/":
                    self._send(200, (ui_dir() / "panel.html").read_bytes(), "text/html; charset=utf-8")
                elif self.path.startswith("/screen.png"):
                    self._send(200, panel.screen_png(), "image/png")
                elif self.path == "/state":
                    self._send(200, json.dumps(panel.state()).encode(), "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self):
                if self.path != "/event":
                    return self._send(404, b"not found", "text/plain")
                try:
                    length = int(self.headers.get("Content-Length", 0))
                    panel.event(json.loads(self.rfile.read(length) or b"null"))
                except (ValueError, NeurorackError) as exc:
                    return self._send(400, str(exc).encode(), "text/plain")
                self._send(204, b"", "text/plain")

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # localhost only
        except OSError as exc:
            raise NeurorackError(f"cannot serve the panel on 127.0.0.1:{port}: {exc.strerror}") from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="panel", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
