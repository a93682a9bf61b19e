"""deploy/install.sh on faked boards: each supported board and OS gets exactly the actions it
needs (--dry-run), what it cannot serve is refused in one line before anything changes, and
the unit it writes passes systemd-analyze verify.

A board is faked through NEURORACK_SYSROOT: a folder with the files the installer reads in
place of / (/proc/device-tree/model, /etc/os-release, /etc/nv_tegra_release, config.txt, the
overlays, /etc/passwd and /etc/group, dpkg's status).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy" / "install.sh"
APT = "apt-get install python3-venv python3-dev gcc libsndfile1 libportaudio2 alsa-utils i2c-tools"

BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
TRIXIE = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'
BULLSEYE = 'PRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"\nID=raspbian\nVERSION_ID="11"\nVERSION_CODENAME=bullseye\n'
JAMMY = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
R36 = "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, DATE: Fri Jul 19 23:24:25 UTC 2024\n"
R35 = "# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref, EABI: aarch64, DATE: Tue Feb 20 04:46:31 UTC 2024\n"


def fake_board(root: Path, model: str | None, os_release: str, *, tegra: str | None = None, rpi_os: bool = True,
               overlays=("rpi-proto", "hifiberry-dac"), config: str = "dtparam=audio=on\n[all]\n") -> Path:
    """A board's files under `root`, as a fresh install of its OS has them."""
    (root / "etc").mkdir(parents=True)
    if model is not None:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\0")
    (root / "etc/os-release").write_text(os_release)
    if tegra:
        (root / "etc/nv_tegra_release").write_text(tegra)
    elif rpi_os:
        (root / "etc/rpi-issue").write_text("Raspberry Pi reference 2024-11-19\n")
        (root / "boot/firmware/overlays").mkdir(parents=True)
        (root / "boot/firmware/config.txt").write_text(config)
        for name in overlays:
            (root / f"boot/firmware/overlays/{name}.dtbo").write_bytes(b"")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/bash\nmusician:x:1000:1000::/home/musician:/bin/bash\n")
    groups = "root:x:0:\naudio:x:29:\n" + ("gpio:x:997:\nspi:x:999:\ni2c:x:998:\n" if not tegra else "i2c:x:114:\n")
    (root / "etc/group").write_text(groups)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    return root


def install(root: Path, *args, arch: str = "arm64", user: str | None = "musician", env_extra=None, preexec=None):
    env = {**os.environ, "NEURORACK_SYSROOT": str(root), "NEURORACK_DPKG_ARCH": arch, **(env_extra or {})}
    env.pop("SUDO_USER", None)
    argv = ["bash", str(INSTALL), *args] + (["--user", user] if user else [])
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, preexec_fn=preexec)


def actions(result) -> list[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [re.sub(r"venv-[0-9a-f]{12}", "venv-STAMP", line) for line in result.stdout.splitlines()]
    return [line.replace(str(REPO), "SRC") for line in lines]


def pi_actions(extra: str, overlay: str, spi=True, i2c=True) -> list[str]:
    return [
        f"would: {APT}",
        "would: build the runtime /opt/neurorack/venv-STAMP, then point /opt/neurorack/venv at it: "
        f"python3 -m venv; pip install SRC[{extra}]",
        *(["would: enable SPI: raspi-config nonint do_spi 0"] if spi else []),
        *(["would: enable I2C: raspi-config nonint do_i2c 0"] if i2c else []),
        f"would: add dtoverlay={overlay} to /boot/firmware/config.txt",
        "would: add musician to group gpio",
        "would: add musician to group spi",
        "would: add musician to group i2c",
        "would: add musician to group audio",
        "would: create the data folder /var/lib/neurorack (boards/, sounds/, cache/) owned by musician",
        "would: write /etc/profile.d/neurorack.sh (neurorack on PATH; the service's settings and sounds in a shell)",
        "would: write /etc/systemd/system/neurorack.service (board {board}, user musician)",
        "would: enable neurorack.service (starts at boot)",
        "note: systemd is not running here (an image or a chroot): the service starts at the next boot",
        "dry run: nothing was changed",
    ]


PI_MODELS = {  # device-tree model -> (what the installer calls it, GPIO extra, the profile tried on it)
    "Raspberry Pi 3 Model B Plus Rev 1.3": ("pi3", "pi", "pi-mcp3208"),
    "Raspberry Pi 4 Model B Rev 1.5": ("pi4", "pi", "pi-mcp3208"),
    "Raspberry Pi 5 Model B Rev 1.0": ("pi5", "pi5", "pi-ads1115"),
    "Raspberry Pi Zero 2 W Rev 1.0": ("pizero2", "pi", "pi-ads1115"),
}
PI_OSES = {"bookworm": BOOKWORM, "trixie": TRIXIE}
PI_CASES = {f"{kind}-{codename}": (model, PI_OSES[codename], board, kind, f"Raspberry Pi OS {codename}", extra)
            for model, (kind, extra, board) in PI_MODELS.items() for codename in PI_OSES}
OVERLAY = {"pi-mcp3208": ("wm8731", "rpi-proto"), "pi-ads1115": ("pcm5102a", "hifiberry-dac")}


@pytest.mark.parametrize("case", PI_CASES)
def test_a_pi_gets_its_gpio_library_the_torch_free_runtime_spi_i2c_its_overlay_groups_and_the_unit(tmp_path, case):
    model, os_release, board, kind, os_name, extra = PI_CASES[case]
    root = fake_board(tmp_path, model, os_release)
    (root / "etc/group").write_text("root:x:0:\naudio:x:29:\ngpio:x:997:\nspi:x:999:\ni2c:x:998:\n")
    output, overlay = OVERLAY[board]
    got = actions(install(root, "--board", board, "--dry-run"))
    assert got[0] == f"board: {model} ({kind}); OS: {os_name} (arm64); profile: {board} (audio: {output}, backend: onnx)"
    assert got[1:] == [line.replace("{board}", board) for line in pi_actions(extra, overlay)]
    assert not any("torch" in line or "cuda" in line.lower() for line in got)


def test_groups_a_fresh_system_lacks_are_created_first(tmp_path):
    root = fake_board(tmp_path, "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    (root / "etc/group").write_text("root:x:0:\naudio:x:29:musician\n")
    got = actions(install(root, "--board", "pi-mcp3208", "--dry-run"))
    start = got.index("would: create group gpio")
    assert got[start:start + 6] == ["would: create group gpio", "would: add musician to group gpio",
                                    "would: create group spi", "would: add musician to group spi",
                                    "would: create group i2c", "would: add musician to group i2c"]
    assert "ok: musician is in group audio" in got


def test_a_jetson_on_jetpack_6_keeps_its_own_torch_and_gets_jetson_gpio(tmp_path):
    root = fake_board(tmp_path, "NVIDIA Jetson Orin Nano Developer Kit", JAMMY, tegra=R36)
    got = actions(install(root, "--board", "jetson-orin-nano", "--dry-run"))
    assert got == [
        "board: NVIDIA Jetson Orin Nano Developer Kit (jetson); OS: JetPack 6 (L4T R36, Ubuntu 22.04); "
        "profile: jetson-orin-nano (audio: usb, backend: auto)",
        f"would: {APT}",
        "would: build the runtime /opt/neurorack/venv-STAMP, then point /opt/neurorack/venv at it: "
        "python3 -m venv --system-site-packages; pip install SRC[jetson]",
        "ok: I2C is on (JetPack enables the header's I2C buses)",
        "would: create group gpio",
        "would: add musician to group gpio",
        "would: create group spi",
        "would: add musician to group spi",
        "would: add musician to group i2c",
        "would: add musician to group audio",
        "would: install Jetson.GPIO's udev rules as /etc/udev/rules.d/99-neurorack-gpio.rules "
        "(the gpio group may use the pins)",
        "would: create the data folder /var/lib/neurorack (boards/, sounds/, cache/) owned by musician",
        "would: write /etc/profile.d/neurorack.sh (neurorack on PATH; the service's settings and sounds in a shell)",
        "would: write /etc/systemd/system/neurorack.service (board jetson-orin-nano, user musician)",
        "would: enable neurorack.service (starts at boot)",
        "note: systemd is not running here (an image or a chroot): the service starts at the next boot",
        "dry run: nothing was changed",
    ]


def checkout_with_profile(tmp_path: Path, name: str, extra: str, backend: str | None = None) -> Path:
    """A copy of the checkout whose profile `name` has `extra` appended (and `backend` as its
    [model] backend)."""
    checkout = tmp_path / "checkout"
    for folder in ("deploy", "hardware", "neurorack", "ui", "models"):
        shutil.copytree(REPO / folder, checkout / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    for file in ("setup.py", "pyproject.toml"):
        shutil.copy(REPO / file, checkout / file)
    profile = checkout / "hardware" / f"{name}.toml"
    text = profile.read_text()
    if backend:
        assert 'backend = "onnx"' in text
        text = text.replace('backend = "onnx"', f'backend = "{backend}"')
    profile.write_text(text + extra)
    return checkout


def test_a_pi_whose_profile_wants_torch_gets_the_cpu_only_build_from_pytorchs_index(tmp_path):
    root = fake_board(tmp_path / "root", "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    checkout = checkout_with_profile(tmp_path, "pi-mcp3208", "", backend="cpu")
    result = subprocess.run(["bash", str(checkout / "deploy/install.sh"), "--board", "pi-mcp3208", "--dry-run",
                             "--user", "musician"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "NEURORACK_SYSROOT": str(root), "NEURORACK_DPKG_ARCH": "arm64"})
    build = [line for line in result.stdout.splitlines() if "build the runtime" in line]
    assert result.returncode == 0, result.stderr
    assert "backend: cpu" in result.stdout.splitlines()[0]
    assert build and "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu;" in build[0]


@pytest.mark.parametrize("extra, backend, message", [
    ("", "tensorrt", "profile pi-mcp3208: backend tensorrt needs a GPU; a Raspberry Pi runs onnx"),
    ("\nbogus = [\n", None, "pi-mcp3208.toml: not valid TOML"),
])
def test_a_profile_the_board_cannot_play_is_refused_before_anything_changes(tmp_path, extra, backend, message):
    root = fake_board(tmp_path / "root", "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    checkout = checkout_with_profile(tmp_path, "pi-mcp3208", extra, backend)
    before = snapshot(root)
    result = subprocess.run(["bash", str(checkout / "deploy/install.sh"), "--board", "pi-mcp3208", "--user", "musician"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "NEURORACK_SYSROOT": str(root), "NEURORACK_DPKG_ARCH": "arm64"})
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert snapshot(root) == before


def test_a_profile_with_a_wrong_audio_output_is_refused_with_neuroracks_own_message(tmp_path):
    root = fake_board(tmp_path / "root", "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    checkout = checkout_with_profile(tmp_path, "pi-mcp3208", "")
    profile = checkout / "hardware/pi-mcp3208.toml"
    profile.write_text(profile.read_text().replace('output = "wm8731"', 'output = "wm8960"'))
    result = subprocess.run(["bash", str(checkout / "deploy/install.sh"), "--board", "pi-mcp3208", "--dry-run",
                             "--user", "musician"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "NEURORACK_SYSROOT": str(root), "NEURORACK_DPKG_ARCH": "arm64"})
    assert result.returncode != 0
    assert result.stderr == ("install.sh: pi-mcp3208.toml: [audio] output must be one of pcm5102a, wm8731, usb, "
                             "default, not 'wm8960'\n")


def test_a_second_run_on_an_installed_board_does_nothing(tmp_path):
    root = fake_board(tmp_path, "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    first = actions(install(root, "--board", "pi-mcp3208", "--dry-run"))
    stamp = re.search(r"venv-([0-9a-f]{12})", install(root, "--board", "pi-mcp3208", "--dry-run").stdout).group(1)
    # What the first run leaves behind:
    (root / "var/lib/dpkg/status").write_text("".join(
        f"Package: {p}\nStatus: install ok installed\nVersion: 1\nArchitecture: arm64\n\n" for p in APT.split()[2:]))
    venv = root / f"opt/neurorack/venv-{stamp}"
    venv.mkdir(parents=True)
    (venv / ".neurorack-stamp").write_text(stamp + "\n")
    (root / "opt/neurorack/venv").symlink_to(f"venv-{stamp}")
    config = root / "boot/firmware/config.txt"
    config.write_text(config.read_text() + "dtparam=spi=on\ndtparam=i2c_arm=on\n[all]\ndtoverlay=rpi-proto\n")
    (root / "etc/group").write_text("root:x:0:\naudio:x:29:pi,musician\ngpio:x:997:musician\nspi:x:999:musician\n"
                                    "i2c:x:998:musician\n")
    for folder in ("boards", "sounds", "cache"):
        (root / "var/lib/neurorack" / folder).mkdir(parents=True)
    (root / "etc/profile.d").mkdir(parents=True)
    (root / "etc/profile.d/neurorack.sh").write_text("")
    unit = install(root, "--board", "pi-mcp3208", "--print-unit").stdout
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (root / "etc/systemd/system/neurorack.service").write_text(unit)
    (wants / "neurorack.service").symlink_to("/etc/systemd/system/neurorack.service")
    again = actions(install(root, "--board", "pi-mcp3208", "--dry-run"))
    assert len(first) > 10 and not any(line.startswith("would:") for line in again), again
    assert again[-1] == "dry run: nothing to do"
    assert "ok: runtime /opt/neurorack/venv is built from this checkout" in again
    assert "ok: overlay rpi-proto is in /boot/firmware/config.txt" in again


def test_uninstall_undoes_what_the_install_recorded_and_keeps_the_data(tmp_path):
    root = fake_board(tmp_path, "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    (root / "opt/neurorack").mkdir(parents=True)
    (root / "opt/neurorack/install.state").write_text("spi=enabled\noverlay=rpi-proto\ngroup=musician:gpio\n")
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/neurorack.service").write_text("[Unit]\n")
    got = actions(install(root, "--uninstall", "--dry-run", user=None))
    assert got == [
        "would: stop and disable the neurorack service",
        "would: remove /etc/systemd/system/neurorack.service",
        "would: disable SPI: raspi-config nonint do_spi 1",
        "would: remove the neurorack block (dtoverlay=rpi-proto) from /boot/firmware/config.txt",
        "would: remove musician from group gpio",
        "would: remove the runtime /opt/neurorack",
        "kept: /var/lib/neurorack (settings, sounds, engines): remove it by hand if you want them gone",
    ]


def test_read_only_root_turns_on_the_overlay_last_when_the_data_folder_is_its_own_file_system(tmp_path):
    root = fake_board(tmp_path, "Raspberry Pi 5 Model B Rev 1.0", BOOKWORM)
    (root / "etc/fstab").write_text("PARTUUID=abc-01 /boot/firmware vfat defaults 0 2\n"
                                    "PARTUUID=abc-02 / ext4 defaults,noatime 0 1\n"
                                    "PARTUUID=abc-03 /var/lib/neurorack ext4 defaults,noatime 0 2\n")
    got = actions(install(root, "--board", "pi-mcp3208", "--read-only-root", "--dry-run"))
    assert got[-3:] == [
        "would: turn on the overlay file system (read-only root): raspi-config nonint do_overlayfs 0",
        "read-only root: /var/lib/neurorack stays writable (its own file system); everything else resets at each boot",
        "dry run: nothing was changed",
    ]


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


REFUSALS = {
    "pi-2": (dict(model="Raspberry Pi 2 Model B Rev 1.1", os_release=BOOKWORM), ["--board", "pi-mcp3208"], {},
             "unsupported board: Raspberry Pi 2 Model B Rev 1.1 (needs a 64-bit Raspberry Pi: 3, 4, 5 or Zero 2 W)"),
    "no-board": (dict(model=None, os_release=BOOKWORM, rpi_os=False), ["--board", "pi-mcp3208"], {},
                 "unsupported board: neither a Raspberry Pi"),
    "other-board": (dict(model="Pine64 RockPro64 v2.1", os_release=BOOKWORM), ["--board", "pi-mcp3208"], {},
                    "unsupported board: Pine64 RockPro64 v2.1"),
    "32-bit-os": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM), ["--board", "pi-mcp3208"],
                  {"arch": "armhf"}, "unsupported OS: armhf packages (32-bit?); install Raspberry Pi OS 64-bit"),
    "bullseye": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BULLSEYE), ["--board", "pi-mcp3208"], {},
                 "unsupported OS: Raspberry Pi OS bullseye (needs Bookworm or Trixie, 64-bit)"),
    "plain-debian": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM, rpi_os=False),
                     ["--board", "pi-mcp3208"], {}, "unsupported OS: plain Debian bookworm; install Raspberry Pi OS"),
    "jetpack-5": (dict(model="NVIDIA Jetson Xavier NX Developer Kit", os_release=JAMMY, tegra=R35),
                  ["--board", "jetson-orin-nano"], {}, "unsupported OS: L4T R35 is not JetPack 6 (L4T R36)"),
    "missing-overlay": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM, overlays=("hifiberry-dac",)),
                        ["--board", "pi-mcp3208"], {}, "profile pi-mcp3208 names the overlay rpi-proto, which this board lacks"),
    "wrong-profile": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM), ["--board", "jetson-orin-nano"], {},
                      "profile jetson-orin-nano is for a jetson board, and this is a Raspberry Pi 4 Model B Rev 1.5"),
    "unknown-profile": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM), ["--board", "pi-mcp9999"], {},
                        "no board profile pi-mcp9999 (profiles: jetson-orin-nano pi-ads1115 pi-mcp3208 sim"),
    "no-profile": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM), [], {},
                   "say which board profile: --board NAME"),
    "unknown-user": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM), ["--board", "pi-mcp3208"],
                     {"user": "nobody-here"}, "no user nobody-here on this system"),
    "root-user": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM), ["--board", "pi-mcp3208"],
                  {"user": "root"}, "the module should not run as root"),
    "read-only-without-data-partition": (dict(model="Raspberry Pi 4 Model B Rev 1.5", os_release=BOOKWORM),
                                         ["--board", "pi-mcp3208", "--read-only-root"], {},
                                         "--read-only-root: /var/lib/neurorack is not its own file system"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_what_the_installer_cannot_serve_is_refused_in_one_line_before_anything_changes(tmp_path, case):
    board, args, options, message = REFUSALS[case]
    root = fake_board(tmp_path / "root", **board)
    before = snapshot(root)
    result = install(root, *args, **options)  # not a dry run: it would act if it went on
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("install.sh: "), result.stderr
    assert message in result.stderr, result.stderr
    assert not any(line.startswith(("doing:", "would:")) for line in result.stdout.splitlines())
    assert snapshot(root) == before


def test_a_run_without_root_is_refused_before_anything_changes():
    with tempfile.TemporaryDirectory() as folder:  # pytest's own are private to root
        os.chmod(folder, 0o755)
        _refused_without_root(Path(folder))


def _refused_without_root(tmp_path):
    root = fake_board(tmp_path / "root", "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    before = snapshot(root)
    result = install(root, "--board", "pi-mcp3208", preexec=lambda: (os.setgid(65534), os.setuid(65534)))
    assert result.returncode != 0
    assert result.stderr.strip() == f"install.sh: run it as root: sudo {INSTALL} --board pi-mcp3208 (or look first: --dry-run)"
    assert snapshot(root) == before
    assert install(root, "--board", "pi-mcp3208", "--dry-run",
                   preexec=lambda: (os.setgid(65534), os.setuid(65534))).returncode == 0  # looking needs no root


def _offline(argv_env):
    return shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _offline(None), reason="needs unshare -n (a network namespace) to take the network away")
def test_no_network_during_install_is_one_line_and_switches_nothing(tmp_path):
    """Root, a real run, the network gone: pip fails, the half-built runtime is removed, the
    board's settings are not touched. (apt is skipped: its packages are faked as installed.)"""
    root = fake_board(tmp_path / "root", "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    (root / "var/lib/dpkg/status").write_text("".join(
        f"Package: {p}\nStatus: install ok installed\nVersion: 1\nArchitecture: arm64\n\n" for p in APT.split()[2:]))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "raspi-config").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/raspi-config.calls\n")
    (bin_dir / "raspi-config").chmod(0o755)
    before = snapshot(root)
    env = {**os.environ, "NEURORACK_SYSROOT": str(root), "NEURORACK_DPKG_ARCH": "arm64",
           "PATH": f"{bin_dir}:{os.environ['PATH']}", "PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": "",
           "PIP_EXTRA_INDEX_URL": "", "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "5", "TMPDIR": str(tmp_path)}
    result = subprocess.run(["unshare", "-n", "bash", str(INSTALL), "--board", "pi-mcp3208", "--user", "musician"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("install.sh: pip could not install the runtime (no network?)")
    assert "nothing was switched" in result.stderr
    assert snapshot(root) == before  # no venv, no half-built venv-*, config.txt as it was
    assert not (tmp_path / "raspi-config.calls").exists()


def test_the_unit_the_installer_writes_passes_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip(reason="systemd-analyze is not on PATH (deploy/apt-packages-test.txt installs systemd)")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (prefix / "venv").symlink_to(REPO / ".venv")  # an ExecStart that exists: verify checks it
    unit = tmp_path / "neurorack.service"
    result = install(tmp_path, "--board", "pi-mcp3208", "--print-unit", "--prefix", str(prefix))
    unit.write_text(result.stdout)
    text = unit.read_text()
    for line in ("User=musician", f"ExecStart={prefix}/venv/bin/neurorack run --board pi-mcp3208", "Restart=always",
                 "LimitRTPRIO=95", "LimitMEMLOCK=infinity", "RequiresMountsFor=/var/lib/neurorack"):
        assert line in text.splitlines(), line
    assert "ExecStartPre=+/bin/sh -c 'for g in /sys/devices/system/cpu/cpufreq/policy*/scaling_governor;" in text
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace(f"{prefix}/venv/bin/neurorack", f"{prefix}/nowhere/neurorack"))
    assert subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True).returncode != 0


def test_spi_that_cannot_be_enabled_stops_the_install_in_one_line_with_the_steps_after_it_not_started(tmp_path):
    """Everything before SPI is done already; raspi-config refuses SPI (as on a board whose
    config.txt it cannot write): the install stops there, I2C, the overlay and the unit untouched."""
    root = fake_board(tmp_path / "root", "Raspberry Pi 4 Model B Rev 1.5", BOOKWORM)
    (root / "var/lib/dpkg/status").write_text("".join(
        f"Package: {p}\nStatus: install ok installed\nVersion: 1\nArchitecture: arm64\n\n" for p in APT.split()[2:]))
    stamp = re.search(r"venv-([0-9a-f]{12})", install(root, "--board", "pi-mcp3208", "--dry-run").stdout).group(1)
    (root / f"opt/neurorack/venv-{stamp}").mkdir(parents=True)
    (root / f"opt/neurorack/venv-{stamp}/.neurorack-stamp").write_text(stamp + "\n")
    (root / "opt/neurorack/venv").symlink_to(f"venv-{stamp}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "raspi-config").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\nexit 1\n")
    (bin_dir / "raspi-config").chmod(0o755)
    before = snapshot(root)
    result = install(root, "--board", "pi-mcp3208", env_extra={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.returncode != 0
    assert result.stderr == ("install.sh: failed: enable SPI: raspi-config nonint do_spi 0 (nothing after this step "
                             "was started; fix it and run again)\n")
    assert (tmp_path / "calls").read_text() == "nonint do_spi 0\n"  # I2C was not tried
    assert snapshot(root) == before  # no overlay, no groups, no unit, nothing recorded as done


@pytest.mark.parametrize("model", ["Raspberry Pi 4 Model B Rev 1.5", "Raspberry Pi 5 Model B Rev 1.0",
                                   "Raspberry Pi Zero 2 W Rev 1.0"])
def test_usb_midi_turns_the_pis_usb_port_into_a_midi_device_once(tmp_path, model):
    root = fake_board(tmp_path, model, BOOKWORM)
    planned = actions(install(root, "--board", "pi-ads1115", "--usb-midi", "--dry-run"))
    assert "would: add dtoverlay=dwc2,dr_mode=peripheral to /boot/firmware/config.txt (USB device mode)" in planned
    assert ("would: load the USB MIDI gadget at boot (dwc2, g_midi): /etc/modules-load.d/neurorack-usb-midi.conf"
            in planned)
    assert not any("dwc2" in line for line in actions(install(root, "--board", "pi-ads1115", "--dry-run")))
    # Where a first run left both (the two steps' own files), a second one says so and does neither.
    config = root / "boot/firmware/config.txt"
    config.write_text(config.read_text() + "# neurorack: begin\n[all]\ndtoverlay=dwc2,dr_mode=peripheral\n# neurorack: end\n")
    (root / "etc/modules-load.d").mkdir(parents=True)
    (root / "etc/modules-load.d/neurorack-usb-midi.conf").write_text("dwc2\ng_midi\n")
    again = actions(install(root, "--board", "pi-ads1115", "--usb-midi", "--dry-run"))
    assert "ok: dtoverlay=dwc2 is in /boot/firmware/config.txt" in again
    assert "ok: the USB MIDI gadget loads at boot" in again and not any("g_midi" in line for line in again)


def test_usb_midi_on_a_pi_3_is_refused_before_anything_changes(tmp_path):
    root = fake_board(tmp_path, "Raspberry Pi 3 Model B Plus Rev 1.3", BOOKWORM)
    before = snapshot(root)
    result = install(root, "--board", "pi-ads1115", "--usb-midi")
    assert result.returncode == 1 and "has no USB port that can be a device" in result.stderr
    assert snapshot(root) == before
