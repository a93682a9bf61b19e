"""Regenerate the factory sounds (neurorack/sounds/factory/*.json) from procedural impacts.

    python -m neurorack.sounds.make_factory

Procedural, so their licence is the project's own. Deterministic: the same files every time.
"""
from __future__ import annotations

from .. import descriptors as D
from ..train.procedural import SAMPLE_RATE, impact
from .library import FACTORY_DIR, Sound, slug

FACTORY = [  # (name, seed, index): the first eight impacts of seed 21, two of each kind
    ("Modal Ring", 21, 0), ("Noise Burst", 21, 1), ("Sub Boom", 21, 2), ("Layered Hit", 21, 3),
    ("Glass Ring", 21, 4), ("Snap", 21, 5), ("Drop Boom", 21, 6), ("Big Impact", 21, 7),
]


def main() -> int:
    from ..fileio import write_json

    for name, seed, index in FACTORY:
        audio, kind = impact(seed, index)
        sound = Sound(name, D.analyze(audio, SAMPLE_RATE), {"source": f"procedural seed {seed} #{index} ({kind})"})
        write_json(FACTORY_DIR / f"{slug(name)}.json", sound.to_json())  # factory names are few and distinct
        print(f"{name}: {kind}, {sound.trajectory.duration:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
