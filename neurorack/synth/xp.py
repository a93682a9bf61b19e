"""The few array operations numpy and torch spell differently, for the solves written once for
both (knobs.py, periodicity.py: ``xp`` is either module)."""
from __future__ import annotations

import numpy as np


def as_index(xp, x):
    """Integer indices from float positions."""
    return x.long() if hasattr(x, "long") else x.astype(np.int64)


def take_along(xp, x, idx):
    """x's values at idx along the last axis."""
    return xp.take_along_dim(x, idx, -1) if hasattr(xp, "take_along_dim") else xp.take_along_axis(x, idx, -1)
