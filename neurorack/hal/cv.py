"""CV inputs: ADC pin volts to module volts, two-point calibration, and safe clamping.

The input stage (op-amp scaling, see hardware/README.md) maps module volts into the ADC's
range; the profile gives it as v_module = (v_adc - offset) * gain. Calibration then corrects
the real parts' tolerances from two known voltages, as libDaisy's VoctCalibration does with
1 V and 3 V: v_calibrated = scale * v_module + shift.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

RANGES = {"bipolar": (-5.0, 5.0), "unipolar": (0.0, 10.0)}


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
    def from_two_points(cls, measured_low: float, measured_high: float, low: float = 1.0, high: float = 3.0):
        """Readings taken while `low` and `high` volts were applied (1 V and 3 V by default)."""
        if not (math.isfinite(measured_low) and math.isfinite(measured_high)) or abs(measured_high - measured_low) < 0.1:
            raise ValueError("the two calibration readings must differ by at least 0.1 V; was the voltage applied?")
        scale = (high - low) / (measured_high - measured_low)
        if not 0.5 <= scale <= 2.0:
            raise ValueError(f"calibration would scale by {scale:.2f}: check the patch and try again")
        return cls(scale, low - scale * measured_low)

    def apply(self, volts: float) -> float:
        return self.scale * volts + self.shift

    def undo(self, volts: float) -> float:
        """The reading `apply` made `volts` of."""
        return (volts - self.shift) / self.scale


@dataclass(frozen=True)
class CvInput:
    """One CV jack: its ADC channel, input stage, range and calibration."""

    number: int
    channel: int
    gain: float
    offset: float
    range: str = "bipolar"
    calibration: Calibration = Calibration()

    def to_volts(self, adc_volts: float) -> float:
        """Module volts, calibrated and clamped to the input's range. NaN (a failed read) gives 0 V."""
        if not math.isfinite(adc_volts):
            return 0.0
        low, high = RANGES[self.range]
        return min(high, max(low, self.calibration.apply((adc_volts - self.offset) * self.gain)))

    def to_unit(self, adc_volts: float) -> float:
        """The same reading as 0..1 over the input's range (for modulation depth)."""
        low, high = RANGES[self.range]
        return (self.to_volts(adc_volts) - low) / (high - low)
