"""Differentiable synthesis blocks. Each splits get_controls (network outputs to
physical controls) from get_frames (the DSP); all meet as spectra in ImpactSynth."""
from .impact_synth import ImpactSynth

__all__ = ["ImpactSynth"]
