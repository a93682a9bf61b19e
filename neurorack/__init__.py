"""neurorack: a neural impact-sound generator for a Eurorack module.

>>> import neurorack
>>> gen = neurorack.load_model()
>>> audio = gen.render({"descriptors": ...})   # see neurorack.model.generator
"""
__version__ = "0.1.0"


def load_model(path=None, backend: str = "auto", threads=None, **options):
    """Load a trained generator; see neurorack.model.generator.load_model."""
    from .model.generator import load_model as _load

    return _load(path, backend, threads, **options)


__all__ = ["load_model", "__version__"]
