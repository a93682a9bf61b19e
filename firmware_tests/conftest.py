"""Shared fixtures: small real signals and a small untrained model, made on the fly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

SR = 48000


def sine(freq: float, seconds: float = 1.0, db: float = -20.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rms = 10 ** (db / 20)
    return (np.sqrt(2) * rms * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def white_noise(seconds: float = 1.0, db: float = -20.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 10 ** (db / 20), int(seconds * sr))).astype(np.float32)


def traced_allocation(call, times: int) -> tuple[int, int]:
    """(peak, growth) in bytes of traced memory over `times` calls, after one call to warm up;
    numpy's buffers are traced."""
    import tracemalloc

    tracemalloc.start()
    call()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    for _ in range(times):
        call()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - base, current - base


@pytest.fixture(autouse=True, scope="session")
def _own_sound_folder(tmp_path_factory):
    """No test writes the user's sound library (the screens and the panel save sounds): the
    default folder is a temporary one for the whole run, child processes included."""
    import os

    os.environ["NEURORACK_SOUNDS"] = str(tmp_path_factory.mktemp("user-sounds"))
    yield


@pytest.fixture(autouse=True)
def _deterministic():
    from neurorack import logs

    torch.manual_seed(0)
    np.random.seed(0)
    logs.reset()  # warnings are rate-limited by kind: one test's lines never hide the next one's


@pytest.fixture
def model():
    from neurorack.model.impact_model import ImpactModel

    return ImpactModel().eval()


@pytest.fixture
def curves():
    """A plausible 1 s trajectory: a decaying, fairly tonal impact."""
    t = np.linspace(0, 1, 100)
    c = np.empty((100, 7), np.float32)
    c[:, 0] = np.clip(0.9 - 0.8 * t, 0, 1)
    c[:, 1] = np.where(t < 0.03, 0.8, 0.05)
    c[:, 2] = 0.3
    c[:, 3] = 0.6
    c[:, 4] = 0.35
    c[:, 5] = 0.5 - 0.2 * t
    c[:, 6] = 0.4
    return c


@pytest.fixture
def gpio():
    """The fake RPi.GPIO module (firmware_tests/chips.py), in BCM mode as on a Pi."""
    from chips import FakeGPIO

    g = FakeGPIO()
    g.setmode(g.BCM)
    return g


@pytest.fixture(scope="module")
def module():
    """An offline sim module (no render process, no audio), both impacts rendered: for the
    screens and the panel. Tests that store settings point NEURORACK_CONFIG elsewhere first."""
    from neurorack.assembly import ModuleOptions, assemble

    m = assemble(ModuleOptions(board="sim", persist=False, live=False))
    m.render_stale()
    yield m
    m.close()


def at_frame(gate: int, frame: int, on: bool = True, rate: int = 48000):
    """A gate edge at stream frame `frame` of an offline engine (whose clock is the render's time)."""
    from neurorack.hal.gates import Gate, GateEdge

    return GateEdge(Gate(gate), on, round(frame * 1_000_000_000 / rate))


@pytest.fixture
def server():
    """A JACK server on its dummy driver (clocked like a sound card), for this test only."""
    from neurorack.bench.jack import JackServer

    s = JackServer().start()
    yield s
    s.stop()


def pixels(module):
    """The module's current screen as luma's dummy device shows it: True where lit."""
    import numpy as np

    from neurorack.hal.display import simulated_screen

    device = simulated_screen()
    module.ui.render(device)
    return np.array(device.image.convert("L")) > 0


def expected(paint):
    """What `paint(painter)` alone draws: the reference for a part of a screen."""
    import numpy as np
    from PIL import Image, ImageDraw

    from neurorack.ui.paint import Painter

    image = Image.new("1", (128, 64))
    paint(Painter(ImageDraw.Draw(image), image.size))
    return np.array(image.convert("L")) > 0


def wait_for_ports(midi, seconds: float = 5.0) -> list:
    """Until the MIDI input has opened a port (its thread opens them), or `seconds` have passed."""
    import time

    deadline = time.monotonic() + seconds
    while not midi.ports() and time.monotonic() < deadline:
        time.sleep(0.05)
    return midi.ports()
