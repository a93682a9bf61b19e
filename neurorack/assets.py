"""Where the shipped data lives: board profiles, the menu, fonts and panel page, the models.

In a checkout they are the top-level hardware/, ui/ and models/ folders; an installed package
(a wheel, `pip install .`) carries copies inside itself (neurorack/_assets/, see setup.py).
An environment variable overrides each.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def asset_dir(name: str, env: str) -> Path:
    """$`env`, else the checkout's top-level `name`/ folder, else the installed copy."""
    if os.environ.get(env):
        return Path(os.environ[env])
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / name).is_dir():
        return CHECKOUT / name
    return PACKAGE / "_assets" / name
