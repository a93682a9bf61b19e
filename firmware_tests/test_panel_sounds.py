"""The virtual panel's sounds: the library, similar sounds, and a dropped file imported. Real
HTTP over sockets, then headless Chromium dropping a file on the page."""
import base64
import http.client
import io
import json
import shutil
import time
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf

from neurorack.hal.display import simulated_screen
from neurorack.train.procedural import impact
from neurorack.ui.panel import Panel
from neurorack.ui.upload import MAX_UPLOAD


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))


@pytest.fixture
def served(tmp_path):
    """A module on a library of its own (imports write to it), and its panel."""
    from neurorack.assembly import ModuleOptions, assemble

    module = assemble(ModuleOptions(board="sim", persist=False, live=False, library=str(tmp_path / "sounds")))
    module.render_stale()
    panel = Panel(module, simulated_screen()).start(0)
    yield module, panel
    panel.stop()
    module.close()


def wav_bytes(audio, rate=48000) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def request(panel, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", panel.port, timeout=120)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", f"127.0.0.1:{panel.port}")
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body is not None and "Content-Length" not in (headers or {}):
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    if body is not None:
        try:
            conn.send(body)
        except OSError:  # refused before the body was read: the answer is still there
            pass
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


AUDIO = {"Content-Type": "application/octet-stream"}


def upload(panel, body, name="Dropped", filename="hit.wav", headers=AUDIO):
    return request(panel, "POST", f"/import?name={quote(name)}&file={quote(filename)}", body, headers)


def test_the_panel_lists_the_library_and_a_sounds_nearest_neighbours(served):
    module, panel = served
    status, body = request(panel, "GET", "/sounds")
    listing = json.loads(body)
    assert status == 200 and "Sub Boom" in listing["sounds"] and listing["max_upload"] == MAX_UPLOAD
    status, body = request(panel, "GET", "/similar?sound=" + quote("sub boom"))
    similar = json.loads(body)["similar"]
    assert status == 200 and similar[0]["name"] == "Drop Boom" and len(similar) == 5
    assert similar[0]["distance"] < similar[-1]["distance"] and " vs " in similar[0]["why"]
    status, body = request(panel, "GET", "/similar?sound=Nothing")
    assert status == 404 and b"no sound named 'Nothing'" in body


def test_a_dropped_wav_is_imported_scored_and_matched(served):
    module, panel = served
    status, body = upload(panel, wav_bytes(impact(9, 2)[0]), "Dropped Hit", "my hit.wav")
    assert status == 200, body
    result = json.loads(body)
    assert result["lines"][0].startswith("added 'Dropped Hit'") and "resynthesis MR-STFT" in result["lines"][1]
    assert result["sound"] == "Dropped Hit" and len(result["similar"]) == 5
    assert "Dropped Hit" in module.view().sounds  # the module's library sees it at once
    assert module.library.get("dropped hit").meta["source"] == "my-hit.wav"
    assert "Dropped Hit" in json.loads(request(panel, "GET", "/sounds")[1])["sounds"]


@pytest.mark.parametrize("body, name, filename, headers, code, phrase", [
    (b"this is not audio\n" * 50, "X", "notes.wav", AUDIO, 400, "notes.wav is not a readable audio file"),
    (b"", "X", "empty.wav", AUDIO, 400, "empty.wav is empty"),
    (b"RIFF", "X", "hit.txt", AUDIO, 400, "hit.txt: neurorack imports WAV"),
    (None, "Snap", "hit.wav", AUDIO, 400, "a factory sound named 'Snap' exists"),
    (None, "up/../x", "hit.wav", AUDIO, 400, "without '/'"),
    (None, "..", "hit.wav", AUDIO, 400, "cannot hold"),
    (None, "", "hit.wav", AUDIO, 400, "cannot be empty"),
    (None, "X", "hit.wav", {"Content-Type": "text/plain"}, 415, "sent as audio"),
    (None, "X", "hit.wav", {"Content-Type": "multipart/form-data; boundary=x"}, 415, "sent as audio"),
    (b"", "X", "big.wav", {**AUDIO, "Content-Length": str(MAX_UPLOAD + 1)}, 413, "at most 16 MB"),
    (None, "X", "hit.wav", {**AUDIO, "Origin": "http://evil.example"}, 403, "other sites"),
])
def test_a_bad_drop_is_one_clear_line_and_the_library_is_untouched(served, body, name, filename, headers, code, phrase):
    module, panel = served
    before = sorted(p.name for p in module.library.user_dir.glob("*")) if module.library.user_dir.exists() else []
    body = wav_bytes(impact(9, 2)[0]) if body is None else body
    status, text = upload(panel, body, name, filename, headers)
    assert status == code and phrase in text.decode() and len(text.decode().strip().splitlines()) == 1, text
    assert "neurorack-import-" not in text.decode()  # the temporary copy's path is not shown
    after = sorted(p.name for p in module.library.user_dir.glob("*")) if module.library.user_dir.exists() else []
    assert after == before


def test_a_ten_minute_drop_is_refused_by_its_header(served):
    module, panel = served
    ten_minutes = wav_bytes(np.zeros(600 * 1000, np.float32), rate=1000)  # 1.2 MB, 600 s
    status, text = upload(panel, ten_minutes, "Long", "long.wav")
    assert status == 400 and b"long.wav is 600 s long; neurorack analyses at most 30 s" in text


DROP = """
const [b64, name] = arguments;
const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, {type: "audio/wav"}));
document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
"""


def test_a_file_dropped_on_the_page_in_headless_chromium_becomes_a_sound(served):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    module, panel = served
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or ""
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)

    def wait_for(check, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out; the page says {driver.find_element(By.ID, 'result').text!r}")

    try:
        driver.get(f"http://127.0.0.1:{panel.port}/")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#sound option"))
        driver.execute_script(DROP, base64.b64encode(b"not audio at all" * 20).decode(), "junk.wav")
        error = wait_for(lambda: driver.find_element(By.ID, "result").get_attribute("class") == "error" and
                         driver.find_element(By.ID, "result"))
        assert error.text.startswith("junk.wav is not a readable audio file")
        driver.execute_script(DROP, base64.b64encode(wav_bytes(impact(9, 2)[0])).decode(), "Page Boom.wav")
        wait_for(lambda: "added 'Page Boom'" in driver.find_element(By.ID, "result").text)
        assert "resynthesis MR-STFT" in driver.find_element(By.ID, "result").text
        assert len(driver.find_elements(By.CSS_SELECTOR, "#similar li")) == 5
        assert "Page Boom" in module.view().sounds
        wait_for(lambda: driver.find_element(By.ID, "sound").get_attribute("value") == "Page Boom")
        driver.execute_script("document.getElementById('sound').value = 'Sub Boom'")
        driver.find_element(By.ID, "find").click()
        wait_for(lambda: "nearest to Sub Boom" in driver.find_element(By.ID, "result").text)
        shown = [li.text.split(" · ")[0] for li in driver.find_elements(By.CSS_SELECTOR, "#similar li")]
        assert shown == [m.name for m in module.similar_sounds("Sub Boom", 5)]
    finally:
        driver.quit()
