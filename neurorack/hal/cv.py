"""CV inputs: ADC pin volts to module volts, two-point calibration, and safe clamping.

The input stage (op-amp scaling, see hardware/README.md) maps module volts into the ADC's
range; the profile gives it as v_module = (v_adc - offset) * gain. Calibration then corrects
the real parts' tolerances from two known voltages, as libDaisy's VoctCalibration does with
1 V and 3 V: v_calibrated = scale * v_module + shift.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

RANGES = {"bipolar": (-5.0, 5.0), "unipolar": (0.0, 10.0)}
CALIBRATION_POINTS = (1.0, 3.0)  # volts applied for two-point calibration (the wizard and `neurorack calibrate`)
# A change smaller than this is ADC noise, not a move: the one deadband, in module volts. Two
# steps of a 12-bit ADC over 10 V (2.4 mV each), and 4.8 cents at 1 V/oct.
CV_DEADBAND_V = 0.004


@dataclass(frozen=True)
class Calibration:
    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self):
        # What two-point calibration can give: a stored NaN or absurd value is refused, not played.
        if not (isinstance(self.scale, (int, float)) and isinstance(self.shift, (int, float))
                and math.isfinite(self.scale) and math.isfinite(self.shift)
                and 0.5 <= self.scale <= 2.0 and abs(self.shift) <= 10.0):
            raise ValueError(f"a calibration scales by 0.5..2 and shifts by at most 10 V; "
                             f"not scale {self.scale!r}, shift {self.shift!r}")

    @classmethod
    def from_two_points(cls, measured_low: float, measured_high: float):
        """Readings taken while ``CALIBRATION_POINTS`` (1 V, then 3 V) were applied."""
        low, high = CALIBRATION_POINTS
        if not (math.isfinite(measured_low) and math.isfinite(measured_high)) or abs(measured_high - measured_low) < 0.1:
            raise ValueError("the two calibration readings must differ by at least 0.1 V; was the voltage applied?")
        scale = (high - low) / (measured_high - measured_low)
        if not 0.5 <= scale <= 2.0:
            raise ValueError(f"calibration would scale by {scale:.2f}: check the patch and try again")
        return cls(scale, low - scale * measured_low)

    def apply(self, volts: float) -> float:
        return self.scale * volts + self.shift


@dataclass(frozen=True)
class CvInput:
    """One CV jack: its ADC channel, input stage, range and calibration."""

    number: int
    channel: int
    gain: float
    offset: float
    range: str = "bipolar"
    calibration: Calibration = Calibration()

    def uncalibrated(self, adc_volts: float) -> float | None:
        """Module volts through the input stage only (what calibration measures); None for a
        reading that is not a number (the one rule for NaN: it is ignored and counted where it
        enters, and the input keeps its last value)."""
        if not math.isfinite(adc_volts):
            return None
        return (adc_volts - self.offset) * self.gain

    def to_volts(self, adc_volts: float) -> float | None:
        """Module volts, calibrated and clamped to the input's range; None for a non-number."""
        raw = self.uncalibrated(adc_volts)
        if raw is None:
            return None
        low, high = RANGES[self.range]
        return min(high, max(low, self.calibration.apply(raw)))


class CvBank:
    """A board's CV inputs: their ranges, their calibration (of which the board is the one
    owner: settings only store it) and the one deadband. Both boards read through it."""

    def __init__(self, inputs, calibration: dict[int, Calibration] | None = None):
        self.inputs: dict[int, CvInput] = {c.number: c for c in inputs}
        self._raw: dict[int, float] = {}
        self._passed: dict[int, float] = {}
        self.bad_values = 0  # readings that were not numbers, ignored
        for number, c in (calibration or {}).items():
            self.set_calibration(number, c)

    def set_calibration(self, number: int, calibration: Calibration) -> None:
        """Input `number` reads through `calibration` from its next reading on."""
        if number in self.inputs:
            self.inputs[number] = replace(self.inputs[number], calibration=calibration)
            self._passed.pop(number, None)  # the next reading passes, calibrated anew

    def read(self, number: int, adc_volts: float) -> float | None:
        """Module volts of this reading when they moved by at least the deadband since the last
        value passed on; None when they did not, or the reading is not a number (counted)."""
        cv = self.inputs[number]
        raw = cv.uncalibrated(adc_volts)
        if raw is None:
            self.bad_values += 1
            return None
        self._raw[number] = raw
        volts = cv.to_volts(adc_volts)
        if abs(volts - self._passed.get(number, math.inf)) < CV_DEADBAND_V:
            return None
        self._passed[number] = volts
        return volts

    def raw_volts(self, number: int) -> float:
        """Input `number`'s last reading before calibration (what the calibration wizard needs)."""
        return self._raw.get(number, 0.0)
