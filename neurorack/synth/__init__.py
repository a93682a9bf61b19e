"""Differentiable synthesis blocks. Each splits get_controls (network outputs to
physical controls) from get_frames (the DSP); all meet as spectra in ImpactSynth.

``ImpactSynth`` (torch) is the definition, used in training and by the torch backends;
``numpy_synth.NumpyImpactSynth`` renders the same audio without torch (the module's
runtime), checked against it by the tests. ``grid`` holds what both share. Importing this
package does not import torch: ``ImpactSynth`` loads on first use.
"""


def __getattr__(name):
    if name == "ImpactSynth":
        from .impact_synth import ImpactSynth

        return ImpactSynth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ImpactSynth"]
