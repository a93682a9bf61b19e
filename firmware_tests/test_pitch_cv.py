"""Pitch at 1 V/oct as a musician tunes it: through the module (bench cv's measurement)."""
from neurorack import descriptors as D
from neurorack.bench.cv import OCTAVES, bench_cv


def test_the_pitch_cv_tracks_one_volt_per_octave_within_5_cents_over_five_octaves_after_calibration():
    result = bench_cv(sweep_sounds=(), tonal_sounds=("Sub Boom",))
    pitch = result["pitch"][0]
    assert pitch["volts"][-1] - pitch["volts"][0] == OCTAVES
    assert min(pitch["frames_measured"]) >= 20  # the render stays tonal and inside the range
    assert abs(pitch["calibration"]["scale_cents_per_volt"] - 1200) <= 10  # a trim, not a rescue
    assert pitch["max_error_cents_calibrated"] <= 5.0
    low, high = (440 * 2 ** ((m - 69) / 12) for m in (D.SCALES["pitch"].low, D.SCALES["pitch"].high))
    assert low <= pitch["median_hz_at_lowest"] < pitch["median_hz_at_highest"] <= high
