"""The virtual panel against hostile clients: other sites, DNS rebinding, odd bodies, floods,
stalled connections, and pairing when it is offered beyond localhost. Real HTTP over sockets."""
import http.client
import json
import socket
import threading
import time

import pytest

from neurorack.hal.display import simulated_screen
from neurorack.ui import panel as panel_mod
from neurorack.ui.panel import Panel


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))


@pytest.fixture
def panel(module):
    module.ui.stack[1:] = []
    p = Panel(module, simulated_screen()).start(0)
    yield p
    p.stop()


def request(panel, method, path, body=None, headers=None, host=None, port=None):
    conn = http.client.HTTPConnection("127.0.0.1", port or panel.port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host if host is not None else f"127.0.0.1:{panel.port}")
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, response


JSON = {"Content-Type": "application/json"}


def test_a_cross_site_text_plain_post_cannot_open_the_menu(panel, module):
    body = json.dumps({"button": "press"}).encode()
    status, _, _ = request(panel, "POST", "/event", body, {"Content-Type": "text/plain"})
    assert status == 415 and module.ui.path() == ["home"]
    status, _, _ = request(panel, "POST", "/event", body,
                           {**JSON, "Origin": "http://evil.example"})
    assert status == 403 and module.ui.path() == ["home"]
    status, _, _ = request(panel, "POST", "/event", body, {**JSON, "Origin": "null"})
    assert status == 403 and module.ui.path() == ["home"]
    # The page itself (same origin) still plays.
    status, _, _ = request(panel, "POST", "/event", body, {**JSON, "Origin": f"http://127.0.0.1:{panel.port}"})
    assert status == 204 and module.ui.path() == ["home", "menu"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "", "127.0.0.1:{port}x",
                                  "localhost.evil.example:{port}", "192.168.1.10:{port}"])
def test_a_foreign_host_cannot_read_state_or_screen(panel, module, host):
    for path in ("/state", "/screen.png", "/"):
        status, body, _ = request(panel, "GET", path, host=host.format(port=panel.port))
        assert status == 403 and b"PNG" not in body and b"gates" not in body
    assert module.status()["! panel-refused"] == "3"  # the Status screen counts warnings by kind


def test_loopback_names_are_the_panel(panel):
    for host in (f"127.0.0.1:{panel.port}", f"localhost:{panel.port}"):
        status, body, _ = request(panel, "GET", "/state", host=host)
        assert status == 200 and "gates" in json.loads(body)


def test_huge_or_missing_lengths_and_bad_bodies_are_refused_without_reading(panel, module):
    conn = socket.create_connection(("127.0.0.1", panel.port), timeout=5)
    t0 = time.monotonic()
    conn.sendall(f"POST /event HTTP/1.1\r\nHost: 127.0.0.1:{panel.port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: 10000000000\r\n\r\n".encode())
    reply = conn.recv(1000)
    conn.close()
    assert reply.startswith(b"HTTP/1.0 413") and time.monotonic() - t0 < 2
    for body, code in ((b"[" * 500 + b"]" * 500, 400), (b"\xff\xfe", 400), (b"{}", 400),
                       (b'{"gate": 1, "on": "false"}', 400), (b'{"encoder": 1e400}', 400)):
        status, _, _ = request(panel, "POST", "/event", body, JSON)
        assert status == code
    status, _, _ = request(panel, "POST", "/event", None, JSON)  # no Content-Length
    assert status == 411
    assert module.ui.path() == ["home"]


def test_a_stalled_client_is_dropped_and_others_are_served(module, monkeypatch):
    monkeypatch.setattr(panel_mod, "TIMEOUT_S", 0.5)
    p = Panel(module, simulated_screen()).start(0)
    try:
        stalled = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        stalled.sendall(b"POST /event HTTP/1.1\r\n")  # and then nothing
        status, _, _ = request(p, "GET", "/state")
        assert status == 200
        t0 = time.monotonic()
        assert stalled.recv(100) == b""  # closed by the panel
        assert time.monotonic() - t0 < 3
        stalled.close()
    finally:
        p.stop()


def test_two_hundred_clients_at_once_are_all_answered_quickly(panel):
    results = []

    def client():
        try:
            status, _, _ = request(panel, "GET", "/state")
            results.append(status)
        except OSError as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(200)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 200 and set(results) <= {200, 503}, set(results)
    assert results.count(200) >= 32
    assert time.monotonic() - t0 < 10


def test_beyond_localhost_every_request_needs_the_pairing_code(module):
    p = Panel(module, simulated_screen(), host="0.0.0.0").start(0)
    try:
        assert p.pairing is not None and len(p.pairing) == 8
        here = f"127.0.0.1:{p.port}"
        assert request(p, "GET", "/state")[0] == 403
        assert request(p, "GET", "/?pair=00000000" if p.pairing != "00000000" else "/?pair=1")[0] == 403
        time.sleep(1.05)  # one guess a second
        status, _, response = request(p, "GET", f"/?pair={p.pairing}")
        assert status == 303
        cookie = response.getheader("Set-Cookie").split(";")[0]
        assert p.pairing not in cookie and "HttpOnly" in response.getheader("Set-Cookie")
        assert request(p, "GET", "/state", headers={"Cookie": cookie})[0] == 200
        # A phone on the network names the module by its address; a rebinding page by a name.
        assert request(p, "GET", "/state", headers={"Cookie": cookie}, host=f"192.168.1.10:{p.port}")[0] == 200
        assert request(p, "GET", "/state", headers={"Cookie": cookie}, host=f"evil.example:{p.port}")[0] == 403
        assert request(p, "GET", "/state", headers={"X-Neurorack-Pair": p.pairing}, host=here)[0] == 200
        assert module.status()["Pair"] == p.pairing  # shown on the Status screen
    finally:
        p.stop()
        module.panel_pairing = None


EVIL_PAGE = """<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" action="http://127.0.0.1:{port}/event" target="sink">
<input name='{{"button": "press", "x": "' value='"}}'></form>
<iframe name="sink"></iframe>
<script>
window.results = {{}};
const panel = "http://127.0.0.1:{port}";
fetch(panel + "/event", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                          body: '{{"button": "press"}}'}}).then(() => results.simple = "sent", e => results.simple = "" + e);
fetch(panel + "/event", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                          body: '{{"encoder": 5}}'}}).then(() => results.json = "sent", e => results.json = "blocked");
fetch(panel + "/state").then(r => r.text()).then(t => results.read = t, e => results.read = "blocked");
document.getElementById("f").submit();
</script></body></html>"""


def test_a_page_from_another_site_in_chromium_cannot_drive_or_read_the_panel(panel, module, tmp_path):
    """A real browser on a page of another origin (another port) tries every way a page can."""
    import http.server
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    (tmp_path / "evil.html").write_text(EVIL_PAGE.format(port=panel.port))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or ""
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    level, morph = module.engine.level, module.settings.morph
    try:
        driver.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
        deadline = time.monotonic() + 10
        results = {}
        while time.monotonic() < deadline and len(results) < 3:
            results = driver.execute_script("return window.results") or {}
            time.sleep(0.1)
        time.sleep(0.5)  # the form's post too
    finally:
        driver.quit()
        evil.shutdown()
    assert results.get("json") == "blocked" and results.get("read") == "blocked", results
    assert module.ui.path() == ["home"]  # no press arrived
    assert module.engine.level == level and module.settings.morph == morph
