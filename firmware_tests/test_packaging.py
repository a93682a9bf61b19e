"""The package as a user installs it: a wheel in a fresh environment, away from the checkout,
and code that runs on the oldest Python that pyproject.toml's requires-python names."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def oldest_python() -> str:
    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(3\.\d+)", spec)
    assert match, f"requires-python {spec!r} is not of the form >=3.N"
    return match.group(1)


def vermin(*paths) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "vermin"), f"--target={oldest_python()}-", "--no-tips",
                           "--violations", "--eval-annotations", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_no_code_needs_a_newer_python_than_requires_python_names():
    result = vermin(REPO / "neurorack", REPO / "firmware_tests", REPO / "setup.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_python_version_check_catches_a_module_the_oldest_python_lacks(tmp_path):
    (tmp_path / "newer.py").write_text("import tomllib\n")  # 3.11's, as ui/menu.py once imported it
    result = vermin(tmp_path)
    assert result.returncode != 0
    assert "tomllib" in result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed in a fresh venv in a temporary folder.
    Its dependencies come from the test environment's site-packages (a .pth line, so nothing
    is downloaded); neurorack itself only from the wheel."""
    root = tmp_path_factory.mktemp("installed")
    source, wheels = root / "source", root / "wheels"  # a clean copy: no build/ left from another build
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "out", "*.egg-info",
                                                                "__pycache__", "data", ".pytest_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("neurorack-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    work = root / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURORACK_")}
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"), XDG_DATA_HOME=str(root / "data"),
               XDG_CACHE_HOME=str(root / "cache"), PYTHONPATH="")

    def neurorack(*args):
        result = subprocess.run([str(venv / "bin" / "neurorack"), *map(str, args)], cwd=work, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    neurorack.venv, neurorack.work, neurorack.python, neurorack.env = venv, work, python, env
    return neurorack


def test_the_installed_package_finds_its_profiles_menu_fonts_page_and_models_inside_itself(installed):
    where = subprocess.run(
        [str(installed.python), "-c",
         "import json, neurorack; from neurorack.hal.profile import hardware_dir, available_profiles;"
         "from neurorack.ui.paint import ui_dir; from neurorack.model.paths import default_models_dir, installed_models;"
         "print(json.dumps([neurorack.__file__, str(hardware_dir()), str(ui_dir()), str(default_models_dir()),"
         " available_profiles(), installed_models()]))"],
        cwd=installed.work, env=installed.env, capture_output=True, text=True, check=True)
    package, hardware, ui, models, profiles, model_names = json.loads(where.stdout)
    inside = str(installed.venv)
    assert package.startswith(inside) and not package.startswith(str(REPO))
    for folder in (hardware, ui, models):
        assert folder.startswith(inside), folder
    assert {"sim", "pi-mcp3208", "pi-ads1115", "jetson-orin-nano"} <= set(profiles)
    assert "default" in model_names
    for shipped in ("menu.toml", "panel.html", "fonts/DejaVuSansCondensed.ttf", "fonts/DejaVuSansCondensed-Bold.ttf"):
        assert (Path(ui) / shipped).is_file(), shipped


def test_the_installed_package_renders_an_impact(installed):
    installed("sounds", "export", "snap", "snap.json")
    installed("render", "--descriptors", "snap.json", "--out", "snap.wav")
    audio, rate = sf.read(installed.work / "snap.wav")
    assert rate == 48000 and len(audio) > rate // 10
    assert 0.01 < np.abs(audio).max() <= 1.0


def test_the_installed_package_draws_the_screens_in_its_own_fonts(installed):
    result = installed("screenshot", "--board", "sim", "--out", "screens")
    pictures = sorted((installed.work / "screens").glob("*.png"))
    assert len(pictures) >= 10, result.stdout
    assert any(p.name.startswith("00-home") for p in pictures)


def test_the_installed_package_records_a_patch_offline(installed):
    events = [{"t": 0.1, "gate": 1, "on": True}, {"t": 0.15, "gate": 1, "on": False},
              {"t": 0.3, "cv": 2, "volts": 2.0}, {"t": 0.5, "gate": 2, "on": True}]
    (installed.work / "patch.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    result = installed("run", "--board", "sim", "--events", "patch.jsonl", "--record", "patch.wav",
                       "--duration", "1.5")
    assert "2 impacts" in result.stdout
    audio, rate = sf.read(installed.work / "patch.wav")
    assert rate == 48000 and np.abs(audio).max() > 0.01
