"""Screens and menus, drawn through luma's real device classes (the dummy device, and the SSD1306
class over a fake serial interface that records bytes), driven by the simulated board's events."""
import json
import threading
import time
import urllib.request

import numpy as np
import pytest
from conftest import expected, pixels
from PIL import Image

from neurorack.assembly import ModuleOptions, assemble
from neurorack.hal.display import open_display, simulated_screen
from neurorack.hal.sim import SimEvent
from neurorack.settings import load_settings
from neurorack.ui.menu import DisplayLoop


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))


@pytest.fixture
def ui(module):
    module.ui.stack[1:] = []  # every test starts on the home screen
    return module.ui


def events(module, *items):
    """Controls as the board would deliver them, through the module's public seam."""
    for kind, number, value in items:
        module.apply_event(SimEvent(0.0, kind, number, value))


def test_the_menu_picks_a_sound_as_a_through_encoder_and_button(module, ui):
    names = [s.name for s in module.library.sounds()]
    events(module, ("button", 0, "press"))
    assert ui.path() == ["home", "menu"]
    # The title bar reads "Menu" and where the cursor is, inverted, as Painter draws it.
    title = expected(lambda p: p.title("Menu", f"1/{len(ui.spec.items)}"))[:12]
    assert title.sum() > 600 and (pixels(module)[:12] == title).all()
    events(module, ("button", 0, "press"))  # first entry: Sounds
    assert ui.path()[-1] == "browser"
    start = ui.screen.cursor
    target = names[(start + 2) % len(names)] if start + 2 < len(names) else names[0]
    events(module, ("encoder", 0, names.index(target) - start), ("button", 0, "press"))
    assert ui.path()[-1] == "sound-actions"
    actions = len(ui.screen.ACTIONS)
    assert (pixels(module)[:12] == expected(lambda p: p.title(target, f"1/{actions}"))[:12]).all()  # titled with the sound
    events(module, ("button", 0, "press"))  # "Set as A"
    assert module.settings.sound_a == target and module.view().sound_a == target
    assert ui.path()[-1] == "browser"
    events(module, ("button", 0, "long"), ("button", 0, "long"), ("button", 0, "long"))
    assert ui.path() == ["home"]  # a long press never leaves home


def test_home_shows_morph_meters_and_gate_activity(module, ui):
    module.settings.morph = 0.5
    module.engine.set_morph(0.5)
    events(module, ("cv", 1, 0.0), ("cv", 2, 0.0))
    before = pixels(module)
    events(module, ("encoder", 0, 6))  # home: a turn sets the morph
    assert module.settings.morph == pytest.approx(0.8)
    after = pixels(module)
    bar = slice(29, 36)  # the morph bar's rows
    assert after[bar].sum() > before[bar].sum()  # fuller
    events(module, ("cv", 2, 5.0))
    meter = after[2:53, 128 - 34 + 2 + 8:128 - 34 + 2 + 8 + 6]  # CV 2's meter
    lit = pixels(module)[2:53, 128 - 34 + 2 + 8:128 - 34 + 2 + 8 + 6]
    assert lit.sum() >= meter.sum() + 4 * 24  # +5 V fills the upper half (25 rows inside the outline)
    module.render_stale()
    dark = pixels(module)[46:56, 2:12].sum()
    events(module, ("gate", 1, True))
    assert pixels(module)[46:56, 2:12].sum() > dark  # gate 1's lamp is lit
    events(module, ("gate", 1, False))


def test_cv_assignment_edits_apply_at_once_and_persist(tmp_path, ui):
    module = assemble(ModuleOptions(board="sim", persist=True, live=False))
    try:
        # Menu, second entry (CV inputs), CV 2, edit the depth: down 10 steps of 0.05.
        events(module, ("button", 0, "press"), ("encoder", 0, 1), ("button", 0, "press"), ("encoder", 0, 1),
               ("button", 0, "press"), ("encoder", 0, 1), ("button", 0, "press"), ("encoder", 0, -10))
        assert module.ui.path()[-1] == "cv-edit"
        assert module.settings.assignments[2].depth == pytest.approx(0.5)
        assert module.view().cv(2).assignment.depth == pytest.approx(0.5)
        module.save_if_rested(force=True)
        assert load_settings("sim").assignments[2].depth == pytest.approx(0.5)
    finally:
        module.close()


def test_calibration_wizard_stores_and_a_bad_reading_shows_an_error(module, ui):
    ui.press()
    ui.screen.cursor = [i["screen"] for i in ui.spec.items].index("calibration")
    ui.press()
    ui.turn(1)  # CV 2
    ui.press()
    events(module, ("cv", 2, 0.98))
    ui.press()
    events(module, ("cv", 2, 2.94))
    ui.press()
    ui.press()  # store
    c = module.settings.calibration[2]
    assert c.apply(0.98) == pytest.approx(1.0) and c.apply(2.94) == pytest.approx(3.0)
    events(module, ("cv", 2, 2.94))
    assert module.view().cv(2).volts == pytest.approx(3.0)  # the board reads through it now
    assert ui.path()[-1] == "menu"
    ui.press()
    ui.press()
    ui.press()
    ui.press()  # the same reading twice: no voltage was applied
    assert ui.path()[-1] == "error" and "differ by at least 0.1 V" in ui.screen.message
    assert pixels(module)[:12].sum() > 0
    ui.press()
    assert ui.path()[-1] == "calibration"  # back where it failed, nothing stored
    assert module.settings.calibration[2] == c


def test_settings_level_applies_live(module, ui):
    ui.press()
    ui.screen.cursor = [i["screen"] for i in ui.spec.items].index("settings")
    ui.press()
    level = module.settings.level_db
    ui.press()
    ui.turn(-4)
    assert module.settings.level_db == level - 2.0
    assert module.engine.level == pytest.approx(10 ** ((level - 2.0) / 20))
    ui.screen.cursor = [f["key"] for f in ui.spec.settings].index("board")
    ui.press()  # read-only: no editing
    assert not ui.screen.editing


def test_midi_learn_on_the_screen_maps_the_next_controller_and_stores_it_per_board(tmp_path, ui):
    module = assemble(ModuleOptions(board="sim", persist=True, live=False))
    try:
        ui = module.ui
        ui.press()
        ui.screen.cursor = [i["screen"] for i in ui.spec.items].index("midi")
        ui.press()
        assert ui.path()[-1] == "midi"
        ui.press()  # Learn
        ui.turn(2)  # noisiness
        ui.press()
        assert module.view().midi.learning == "noisiness"
        events(module, ("midi", 0, (0xB0, 71, 64)))  # a knob on the keyboard moves
        assert module.view().midi.learning is None and module.view().midi.controllers[71] == "noisiness"
        assert load_settings("sim").midi.cc[71].target == "noisiness"  # stored at once, for this board
        lit = pixels(module)
        ui.press()  # done
        assert ui.path()[-1] == "midi" and lit.sum() > 200
        events(module, ("midi", 0, (0xB0, 71, 127)))  # then it drives noisiness (+5 V: +1)
        assert module.engine.snapshot().request().shifts[2] == pytest.approx(1.0)
        ui.press()  # learn again, then cancel with a long press: nothing changes
        ui.press()
        ui.long_press()
        assert module.view().midi.learning is None and ui.path()[-1] == "midi"
    finally:
        module.close()


def test_the_midi_channel_and_takeover_are_settings_on_the_screen(module, ui):
    ui.press()
    ui.screen.cursor = [i["screen"] for i in ui.spec.items].index("settings")
    ui.press()
    ui.screen.cursor = [f["key"] for f in ui.spec.settings].index("midi.channel")
    ui.press()
    ui.turn(2)  # omni -> 1 -> 2
    assert module.settings.midi.channel == 2
    before = module.engine.gates[1]
    events(module, ("midi", 0, (0x90, 60, 100)), ("midi", 0, (0x91, 60, 100)))  # channel 1, then 2
    module.render_stale()
    assert module.engine.gates[1] == before + 1  # only channel 2's note played
    events(module, ("midi", 0, (0x81, 60, 0)))  # released: the shared module's gate 1 is low again
    assert not module.view().gate_on(1)
    ui.long_press()
    ui.screen.cursor = [f["key"] for f in ui.spec.settings].index("midi.takeover")
    ui.press()
    ui.turn(1)
    assert module.settings.midi.takeover == "follow" and module.midi.map.config.takeover == "follow"
    module.apply_setting("midi.channel", "omni")  # the module fixture is shared: as it was
    module.apply_setting("midi.takeover", "pickup")


def test_the_status_screen_shows_midi_activity_and_the_last_message(module, ui):
    events(module, ("midi", 0, (0x91, 62, 90)), ("midi", 0, (0xB1, 123, 0)))  # a note, then all notes off
    status = module.status()
    assert status["MIDI last"] == "cc123=0 c2" and status["MIDI msgs"].startswith("* ")
    assert not module.view().gate_on(1)
    assert status["MIDI in"] == "off"  # offline: no MIDI port, the events file only
    ui.press()
    ui.screen.cursor = [i["screen"] for i in ui.spec.items].index("status")
    ui.press()
    assert ("MIDI last", "cc123=0 c2") in ui.screen.entries(ui)


def test_status_and_about_say_what_runs(module, ui):
    status, about = module.status(), module.about()
    assert status["Inference"].startswith("onnx") and status["Model"].startswith("default")  # auto, no GPU here
    assert status["Memory"].endswith("MB") or "MB+" in status["Memory"]
    assert about["neurorack"] and about["Board"] == "sim"


def test_no_ui_action_or_drawing_holds_anything_the_audio_callback_needs(module, ui):
    out = np.zeros(128, np.float32)
    done = threading.Event()
    with ui.lock, module.engine._lock:  # a slow draw and a control change, both mid-way
        t = threading.Thread(target=lambda: (module.engine.process(out), done.set()))
        t.start()
        t.join(2)
    assert done.is_set()


class RecordingSerial:
    """A luma serial interface that keeps what the SSD1306 driver sends, as luma's tests do."""

    def __init__(self, fail=False):
        self.commands, self.sent, self.fail = [], [], fail

    def command(self, *cmd):
        self.commands.append(list(cmd))

    def data(self, data):
        if self.fail:
            raise OSError(121, "Remote I/O error")
        self.sent.append(list(data))

    def cleanup(self):
        pass


@pytest.mark.parametrize("driver, width, bits", [("ssd1306", 128, 1), ("sh1106", 128, 1), ("ssd1309", 128, 1),
                                                  ("ssd1322", 256, 4)])
def test_each_panel_gets_its_init_sequence_and_a_full_frame(module, ui, driver, width, bits):
    serial = RecordingSerial()
    device = open_display({"driver": driver, "interface": "spi", "width": width, "height": 64}, serial=serial)
    assert serial.commands and device.size == (width, 64)  # luma's own init sequence went out
    serial.sent.clear()
    module.ui.render(device)
    frame, full = sum(len(d) for d in serial.sent), width * 64 * bits // 8
    if driver == "ssd1322":  # luma sends a grey panel only the box around what was drawn
        assert full // 2 < frame <= full
    else:
        assert frame == full  # the whole panel, one bit per pixel


def test_a_display_that_stops_answering_is_logged_once_and_retried(module, ui, caplog):
    serial = RecordingSerial()
    device = open_display({"driver": "sh1106", "interface": "i2c", "width": 128, "height": 64}, serial=serial)
    loop = DisplayLoop(ui, device, refresh_s=0.0)  # every frame goes out, changed or not
    assert loop.draw_once()
    serial.fail = True
    assert not loop.draw_once() and not loop.draw_once()
    assert sum("display stopped answering" in r.getMessage() for r in caplog.records) == 1
    serial.fail = False
    assert loop.draw_once() and loop.problem is None


def test_the_display_loop_sends_a_frame_only_when_it_changed(module, ui):
    serial = RecordingSerial()
    device = open_display({"driver": "sh1106", "interface": "i2c", "width": 128, "height": 64}, serial=serial)
    serial.sent.clear()
    loop = DisplayLoop(ui, device, refresh_s=3600)
    assert loop.draw_once() and loop.sent == 1
    time.sleep(0.2)  # a gate lamp lit by an earlier test goes out
    loop.draw_once()
    sent, after_first = loop.sent, len(serial.sent)
    assert loop.draw_once() and loop.draw_once() and loop.draw_once()
    assert loop.frames == 5 and loop.sent == sent  # drawn again, nothing sent: nothing changed
    assert after_first > 0 and len(serial.sent) == after_first
    ui.press()  # home -> menu: a new frame goes out
    loop.draw_once()
    assert loop.sent == sent + 1 and len(serial.sent) > after_first
    loop.refresh_s = 0.0  # a refresh is due: sent although nothing changed
    loop.draw_once()
    assert loop.sent == sent + 2
    serial.fail = True  # the panel stops answering, and comes back (maybe blank): sent whole again
    assert not loop.draw_once()
    loop.refresh_s = 3600
    serial.fail = False
    assert loop.draw_once() and loop.sent == sent + 3
    ui.long_press()


def test_a_missing_display_leaves_the_module_playing_without_a_screen(module, caplog):
    from dataclasses import replace

    from neurorack.runner import start_display

    real = module.profile
    module.profile = replace(real, display={"driver": "ssd1306", "interface": "i2c", "bus": 99, "address": 0x3C})
    try:
        assert start_display(module) is None
    finally:
        module.profile = real
    assert any("playing without a screen" in r.getMessage() for r in caplog.records)


def test_screenshot_writes_every_screen(tmp_path):
    from neurorack.cli import main

    assert main(["screenshot", "--board", "sim", "--out", str(tmp_path)]) == 0
    names = sorted(p.stem.split("-", 1)[1] for p in tmp_path.glob("*.png"))
    for screen in ("home", "menu", "browser", "sound-actions", "cv", "cv-edit", "calibration", "calibration-1v",
                   "calibration-result", "error", "midi", "midi-learn", "midi-learn-wait", "midi-learned", "settings",
                   "status", "about"):
        assert screen in names
    home = Image.open(next(tmp_path.glob("00-home.png")))
    assert home.size == (512, 256)
    shots = {p.stem: np.array(Image.open(p)) for p in tmp_path.glob("*.png")}
    assert len({a.tobytes() for a in shots.values()}) == len(shots)  # every screen looks different


def test_the_panel_serves_the_screen_and_takes_controls_like_osc(module, ui):
    from neurorack.ui.panel import Panel

    panel = Panel(module, simulated_screen()).start(0)
    base = f"http://127.0.0.1:{panel.port}"

    def post(obj):
        request = urllib.request.Request(f"{base}/event", json.dumps(obj).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        return urllib.request.urlopen(request, timeout=5).status

    try:
        assert b"Gate 1" in urllib.request.urlopen(base + "/", timeout=5).read()
        png = urllib.request.urlopen(base + "/screen.png", timeout=5).read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        gates = module.view().gate_counts[2]
        assert post({"gate": 2, "on": True}) == 204 and post({"gate": 2, "on": False}) == 204
        assert module.view().gate_counts[2] == gates + 1
        assert post({"cv": 3, "volts": 1.25}) == 204
        state = json.loads(urllib.request.urlopen(base + "/state", timeout=5).read())
        assert state["cv"][2]["volts"] == pytest.approx(1.25) and state["gates"][1] == gates + 1
        assert post({"button": "press"}) == 204 and module.ui.path() == ["home", "menu"]
        with pytest.raises(urllib.error.HTTPError) as bad:
            post({"gate": "one"})
        assert bad.value.code == 400
    finally:
        panel.stop()


LIT_PIXELS = """
const [x, y, w, h] = arguments;
const img = document.getElementById('screen');
if (!img.complete || !img.naturalWidth) return -1;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const g = canvas.getContext('2d');
g.drawImage(img, 0, 0);
const d = g.getImageData(x, y, w, h).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) n += d[i] > 128;
return n;
"""


def test_the_panel_plays_in_headless_chromium(module, ui):
    """Click a gate: its lamp lights on the page's screen. Move a knob: its meter moves."""
    import shutil
    import time

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from neurorack.ui.panel import SCALE, Panel

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or ""
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    events(module, ("cv", 3, 0.0))
    panel = Panel(module, simulated_screen()).start(0)

    def lit(box, timeout=5.0, until=None):
        x, y, w, h = (v * SCALE for v in box)
        deadline = time.monotonic() + timeout
        while True:
            n = driver.execute_script(LIT_PIXELS, x, y, w, h)
            if until is None or until(n) or time.monotonic() > deadline:
                return n
            time.sleep(0.1)

    try:
        driver.get(f"http://127.0.0.1:{panel.port}/")
        lamp = (2, 46, 10, 10)  # gate 1's lamp on the home screen
        dark = lit(lamp, until=lambda n: n >= 0)
        gate = driver.find_element(By.ID, "gate1")
        ActionChains(driver).click_and_hold(gate).perform()
        assert lit(lamp, until=lambda n: n > dark + 20) > dark + 20  # held: lit on the page's screen
        ActionChains(driver).release(gate).perform()
        assert module.view().gate_counts[1] >= 1
        meter = (128 - 34 + 2 + 16, 2, 6, 51)  # CV 3's meter
        before = lit(meter)
        knob = driver.find_element(By.ID, "cv3")
        ActionChains(driver).move_to_element_with_offset(knob, knob.size["width"] // 2 - 2, 0).click().perform()
        assert lit(meter, until=lambda n: n > before + 100) > before + 100
        assert module.view().cv(3).volts > 3.0
    finally:
        driver.quit()
        panel.stop()
