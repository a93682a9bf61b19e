"""Packaging: the package, plus the repository's top-level data folders installed inside it.

hardware/ (board profiles), ui/ (menu, fonts, panel page) and models/ (shipped checkpoints)
stay at the top of the repository; a wheel or `pip install .` carries them as
neurorack/_assets/NAME, where neurorack.assets finds them outside a checkout. All metadata is
in pyproject.toml; this file only says what goes in.
"""
from pathlib import Path

from setuptools import find_namespace_packages, setup

ASSETS = {  # top-level folder -> the files of it that ship
    "hardware": ["*.toml", "README.md"],
    "ui": ["*.toml", "*.html", "fonts/*.ttf", "fonts/*.txt"],
    "models": ["*/*.pt", "*/*.onnx", "*/*.json", "*/*.md"],
}


def asset_packages():
    """Each shipped folder and its subfolders as data-only packages (setuptools installs
    package data by package)."""
    packages, data = {}, {}
    for top, patterns in ASSETS.items():
        for pattern in patterns:
            for file in Path(top).glob(pattern):
                folder = file.parent
                name = ".".join(("neurorack", "_assets", *folder.parts))
                packages[name] = str(folder)
                data.setdefault(name, []).append(file.name)
    return packages, data


packages, data = asset_packages()
setup(
    packages=find_namespace_packages(include=["neurorack", "neurorack.*"], exclude=["*.__pycache__"]) + sorted(packages),
    package_dir=packages,
    package_data={"neurorack.sounds.factory": ["*.json"], **data},
)
