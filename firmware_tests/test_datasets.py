import shutil
import subprocess

import numpy as np
import pytest

from neurorack.train import drums, procedural


def test_procedural_corpus_is_deterministic_and_varied(tmp_path):
    a, kind_a = procedural.impact(0, 1)
    b, kind_b = procedural.impact(0, 1)
    c, _ = procedural.impact(1, 1)
    assert kind_a == kind_b and np.array_equal(a, b) and not np.array_equal(a[:1000], c[:1000])
    kinds = {procedural.impact(0, i)[1] for i in range(8)}
    assert kinds == set(procedural.KINDS)
    for i in range(4):
        y, _ = procedural.impact(2, i)
        peak = np.max(np.abs(y))
        assert np.all(np.isfinite(y)) and 10 ** (-12.5 / 20) <= peak <= 10 ** (-0.9 / 20)
    paths = procedural.write_corpus(tmp_path, 3, seed=4)
    assert [p.suffix for p in paths] == [".wav"] * 3


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb to build a package")
def test_drum_kits_are_sorted_by_licence(tmp_path):
    """A real .deb laid out like hydrogen-drumkits, unpacked with dpkg as the real one is."""
    root = tmp_path / "pkg"
    kits = root / drums.DRUMKIT_DIR
    for kit in ("Audiophob", "rumpf_kit_z01_h2", "ForzeeStereo"):
        (kits / kit).mkdir(parents=True)
        (kits / kit / "kick.wav").write_bytes(b"RIFF....WAVE")
        (kits / kit / "drumkit.xml").write_text("<drumkit_info/>")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        "Package: hydrogen-drumkits\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n")
    deb = tmp_path / "hydrogen-drumkits_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    summary = drums.extract_kits(deb, tmp_path / "out")
    assert set(summary["train"]) == {"Audiophob", "rumpf_kit_z01_h2"}
    assert set(summary["eval"]) == {"ForzeeStereo"}
    assert (tmp_path / "out" / "train" / "Audiophob" / "kick.wav").exists()
    assert (tmp_path / "out" / "eval" / "ForzeeStereo" / "kick.wav").exists()
    assert (tmp_path / "out" / "LICENSES.json").exists()
