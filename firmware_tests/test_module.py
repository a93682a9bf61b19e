"""The assembled module: complete when returned, calibration owned by the board, and health in
one place (counted, logged once per change, on the Status screen and the home badge)."""
import logging
import os
import signal

import pytest

from chips import FakeMCP3x08
from neurorack.assembly import ModuleOptions, assemble
from neurorack.hal.board import HardwareBoard
from neurorack.hal.cv import CV_DEADBAND_V, Calibration, CvBank, CvInput
from neurorack.hal.gates import Gate, GateEdge
from neurorack.hal.gpio import RpiGpioPins
from neurorack.hal.sim import SimEvent


def emulated_board(chip, gpio):
    def make(profile, sink, calibration, options):
        return HardwareBoard(profile, sink, calibration, pins=RpiGpioPins(gpio), adc_bus=chip)
    return make


def test_an_assembled_module_is_complete_when_returned():
    module = assemble(ModuleOptions(board="sim", persist=False, live=False))
    try:
        assert module.board is not None and module.ui is not None and module.health is not None
        assert module.audio is None and module.offline  # offline: no audio output, the render's own clock
        module.render_stale()
        module.apply_event(SimEvent(0.0, "gate", 1, True))  # through the board to the engine
        assert module.view().gate_counts[Gate.IMPACT] == 1
    finally:
        module.close()


def test_one_deadband_and_one_rule_for_readings_that_are_not_numbers():
    bank = CvBank([CvInput(1, 0, 1.0, 0.0)])
    assert bank.read(1, 1.0) == 1.0
    assert bank.read(1, 1.0 + CV_DEADBAND_V / 2) is None  # ADC noise: nothing moved
    assert bank.read(1, 1.0 + 2 * CV_DEADBAND_V) == pytest.approx(1.0 + 2 * CV_DEADBAND_V)
    assert bank.read(1, float("nan")) is None and bank.bad_values == 1  # ignored, counted, last value kept
    assert bank.raw_volts(1) == pytest.approx(1.0 + 2 * CV_DEADBAND_V)
    bank.set_calibration(1, Calibration(1.5, 0.0))
    assert bank.read(1, 1.0) == pytest.approx(1.5)  # the first reading after a new calibration passes


def test_the_board_owns_calibration_and_the_wizard_reads_through_it(gpio):
    chip = FakeMCP3x08(volts={1: 1.65 - 0.98 * 0.33})  # CV 2 reads 0.98 V before calibration
    module = assemble(ModuleOptions(board="pi-mcp3208", persist=False, live=False),
                      make_board=emulated_board(chip, gpio))
    try:
        module.board.poll_once()
        assert module.raw_volts(2) == pytest.approx(0.98, abs=0.003)
        module.store_calibration(2, Calibration.from_two_points(0.98, 2.94))
        module.board.poll_once()
        assert module.view().cv(2).volts == pytest.approx(1.0, abs=0.005)  # the board applies it
        assert module.raw_volts(2) == pytest.approx(0.98, abs=0.003)  # raw stays raw
        assert module.settings.calibration[2].scale == pytest.approx(2 / 1.96)  # settings store it
    finally:
        module.close()


def test_adc_errors_and_dropped_gates_are_counted_shown_and_logged_once(gpio, caplog):
    chip = FakeMCP3x08(volts={})
    module = assemble(ModuleOptions(board="pi-mcp3208", persist=False, live=False),
                      make_board=emulated_board(chip, gpio))
    try:
        module.render_stale()
        chip.fail = True
        for _ in range(3):
            module.board.poll_once()
        for _ in range(module.engine.ring.capacity + 5):  # a gate storm the audio never drains
            module.engine.gate(GateEdge(Gate.IMPACT, True, 0))
        view = module.view()
        assert view.health["adc_errors"] == 3 and view.health["dropped"] == 5
        assert "SPI" in view.error and module.ui.badge() == "ERR"
        status = module.status()
        assert status["Adc errors"] == "3" and status["Dropped"] == "5"
        with caplog.at_level(logging.WARNING):
            first, again = module.health.report(), module.health.report()
        assert any("3 ADC reads that failed" in line for line in first) and again == []
        chip.fail = False
        module.board.poll_once()
        assert module.view().error is None
    finally:
        module.close()


def test_a_render_process_restart_is_counted_on_the_status_screen(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path))
    module = assemble(ModuleOptions(board="sim", persist=False, backend="onnx"))
    try:
        module.render_stale()
        os.kill(module.renderer.info.pid, signal.SIGKILL)
        module.apply_event(SimEvent(0.0, "cv", 2, 2.0))
        module.render_stale()  # fails on the dead child, which is started again
        assert module.view().health["render_restarts"] == 1
        assert module.status()["Render restarts"] == "1"
    finally:
        module.close()
