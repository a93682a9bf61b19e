"""A real board: GPIO gates, encoder and button on edges; CVs (and ADC gates) polled on a thread.

Everything comes from the profile; the bus objects can be handed in (tests pass chip emulators,
so the real drivers run). The poller reads each CV channel ``poll_hz`` times a second, turns
ADC volts into calibrated module volts (``CvBank``: the calibration's one owner, the one
deadband) and tells the sink when a value moved. An ADC that fails or answers garbage is
reported once; its inputs keep their last good value, and the poller keeps trying. A GPIO gate
reaches the sink as a ``GateEdge`` stamped by the pin layer at the edge.

    board = HardwareBoard(load_profile("pi-mcp3208"), sink, calibration=settings.calibration)
    board.start()
"""
from __future__ import annotations

import logging
import threading
import time

from ..errors import NeurorackError
from .adc import ADS1x15, MCP3x08, AdcError
from .cv import Calibration, CvBank, CvInput
from .gates import Gate, GateEdge
from .gpio import GateInput, Pins, PushButton, RotaryEncoder, open_pins
from .profile import AdcGateSpec, BoardProfile
from .sim import ControlSink

log = logging.getLogger(__name__)


def open_adc(adc: dict, bus=None):
    """The profile's ADC driver over `bus` (opened here from the profile when None)."""
    chip = adc["chip"]
    if chip in ("mcp3008", "mcp3208"):
        if bus is None:
            try:
                import spidev
                bus = spidev.SpiDev()
                bus.open(int(adc.get("bus", 0)), int(adc.get("device", 0)))
            except (ImportError, OSError) as exc:
                raise NeurorackError(f"cannot open SPI {adc.get('bus', 0)}.{adc.get('device', 0)} for the {chip}: {exc}") from None
            bus.max_speed_hz = int(adc.get("max_speed_hz", 1_000_000))
            bus.mode = 0
        return MCP3x08(bus, bits=12 if chip == "mcp3208" else 10, vref=float(adc.get("vref", 3.3)))
    if chip in ("ads1015", "ads1115"):
        if bus is None:
            try:
                import smbus2
                bus = smbus2.SMBus(int(adc.get("bus", 1)))
            except (ImportError, OSError) as exc:
                raise NeurorackError(f"cannot open I2C bus {adc.get('bus', 1)} for the {chip}: {exc}") from None
        return ADS1x15(bus, address=int(adc.get("address", 0x48)), bits=16 if chip == "ads1115" else 12,
                       full_scale=float(adc.get("full_scale", 4.096)))
    raise NeurorackError(f"no driver for ADC chip {chip!r}")


class SchmittGate:
    """Edges from a sampled voltage with hysteresis."""

    def __init__(self, spec: AdcGateSpec):
        self.spec, self.on = spec, False

    def update(self, adc_volts: float) -> bool | None:
        """The new state if it changed, else None."""
        volts = (adc_volts - self.spec.offset) * self.spec.gain
        if not self.on and volts >= self.spec.on_volts:
            self.on = True
            return True
        if self.on and volts <= self.spec.off_volts:
            self.on = False
            return False
        return None


class HardwareBoard:
    def __init__(self, profile: BoardProfile, sink: ControlSink, calibration: dict[int, Calibration] | None = None,
                 pins: Pins | None = None, adc_bus=None, poll_hz: float | None = None, jacks: bool = True):
        """`jacks` False: the CVs only, no GPIO claimed (`neurorack calibrate`, beside a running module)."""
        self.profile, self.sink = profile, sink
        self.cvs = CvBank((CvInput(c.number, c.channel, c.gain, c.offset, c.range) for c in profile.cv), calibration)
        self.adc = open_adc(profile.adc, adc_bus)
        self.poll_hz = float(poll_hz or profile.adc.get("poll_hz", 500))
        self.schmitt = [SchmittGate(spec) for spec in profile.adc_gates.values()]
        self.gate_inputs, self.encoder, self.button = [], None, None
        if jacks:
            self.pins = pins if pins is not None else open_pins(profile.gpio)
            self.gate_inputs = [GateInput(self.pins, pin, Gate(number), sink.gate)
                                for number, pin in profile.gates.items()]
            enc = profile.encoder
            if "a" in enc and "b" in enc:
                self.encoder = RotaryEncoder(self.pins, enc["a"], enc["b"], sink.encoder)
            if "button" in enc:
                self.button = PushButton(self.pins, enc["button"], sink.button)
        self.adc_errors = 0
        self.adc_problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_calibration(self, number: int, calibration: Calibration) -> None:
        self.cvs.set_calibration(number, calibration)

    def raw_volts(self, number: int) -> float:
        """CV `number` at the last poll, before calibration."""
        return self.cvs.raw_volts(number)

    @property
    def dropped_gates(self) -> int:
        """Rising gates dropped by the debounce (a bouncing contact, a gate storm)."""
        return sum(g.dropped for g in self.gate_inputs)

    def poll_once(self) -> None:
        """Read every CV and ADC gate once and pass on what changed (the poller's loop body)."""
        try:
            for cv in self.cvs.inputs.values():
                volts = self.cvs.read(cv.number, self.adc.read_volts(cv.channel))
                if volts is not None:
                    self.sink.cv(cv.number, volts)
            for gate in self.schmitt:
                at = time.monotonic_ns()
                edge = gate.update(self.adc.read_volts(gate.spec.channel))
                if edge is not None:
                    self.sink.gate(GateEdge(Gate(gate.spec.number), edge, at))
        except AdcError as exc:
            self.adc_errors += 1
            if self.adc_problem != str(exc):
                log.error("%s; CVs hold their last values, still trying", exc)
            self.adc_problem = str(exc)
            return
        if self.adc_problem:
            log.warning("the ADC answers again")
            self.adc_problem = None

    def start(self) -> None:
        def run():
            period = 1.0 / self.poll_hz
            while not self._stop.wait(period):
                self.poll_once()
        self._thread = threading.Thread(target=run, name="cv-poll", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        for part in (*self.gate_inputs, self.encoder, self.button):
            if part is not None:
                part.close()
