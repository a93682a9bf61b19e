"""Similar sounds, Shape, Vary and Save morph on the module's screen, drawn through luma's dummy
device and driven by the simulated board's encoder and button, on a library of its own."""
import numpy as np
import pytest
from conftest import expected, pixels

from neurorack.hal.gates import Gate
from neurorack.hal.sim import SimEvent
from neurorack.sounds.match import nearest
from neurorack.sounds.shape import handles, reshape, vary
from neurorack.ui.sound_screens import ALPHABET, DELETE, DONE


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))


@pytest.fixture
def maker(tmp_path):
    """A module on a sound library of its own (it saves sounds), offline, both impacts rendered."""
    from neurorack.assembly import ModuleOptions, assemble

    m = assemble(ModuleOptions(board="sim", persist=False, live=False, library=str(tmp_path / "sounds")))
    m.render_stale()
    yield m
    m.close()


def controls(module, *items):
    """Encoder turns (numbers) and button presses ("press", "long") as the board delivers them."""
    for item in items:
        kind, value = ("encoder", item) if isinstance(item, int) else ("button", item)
        module.apply_event(SimEvent(0.0, kind, 0, value))


def open_actions(module, sound):
    """Menu → Sounds → `sound` → its actions, by encoder and button."""
    controls(module, "press")
    items = [i["label"] for i in module.ui.spec.items]
    controls(module, items.index("Sounds"), "press")
    names = [s.name for s in module.library.sounds()]
    controls(module, names.index(sound) - module.ui.screen.cursor, "press")
    assert module.ui.path() == ["home", "menu", "browser", "sound-actions"]


def choose(module, action):
    screen = module.ui.screen
    controls(module, screen.ACTIONS.index(action) - screen.cursor, "press")


def test_similar_sounds_from_the_browser_lists_the_nearest_first(maker):
    open_actions(maker, "Sub Boom")
    choose(maker, "Similar sounds")
    assert maker.ui.path()[-1] == "similar"
    library = maker.library.sounds()
    want = nearest(maker.library.get("Sub Boom").trajectory, library, 8, exclude="Sub Boom")
    assert [m.name for m in maker.ui.screen.matches] == [m.name for m in want] and want[0].name == "Drop Boom"
    # Drawn as a list: the title, then the nearest sound inverted with its distance.
    shown = pixels(maker)
    assert (shown[:12] == expected(lambda p: p.title("Like Sub Boom", f"1/{len(want)}"))[:12]).all()
    first = expected(lambda p: p.row(0, want[0].name, f"{want[0].distance:.0f}", selected=True))
    assert (shown[13:26] == first[13:26]).all()
    why = expected(lambda p: p.text((2, 53), want[0].parts[0].describe(), size=9, width=124))
    assert why[53:].sum() > 20 and (shown[53:] == why[53:]).all()  # under the list: what differs most
    controls(maker, "press")  # the nearest sound's actions: audition it, set it as A
    assert maker.ui.path()[-1] == "sound-actions" and maker.ui.screen.sound == "Drop Boom"


def enter_name(module, text):
    """Type `text` on the name entry after deleting what it offers: turn to each character, press."""
    screen = module.ui.screen
    controls(module, ALPHABET.index(DELETE) - screen.index)
    for _ in range(len(screen.text)):
        controls(module, "press")
    for char in text:
        controls(module, ALPHABET.index(char) - screen.index, "press")
    controls(module, ALPHABET.index(DONE) - screen.index, "press")


def test_shape_plays_each_edit_on_gate_1_and_saves_it_under_a_name_entered_with_the_encoder(maker):
    sub = maker.library.get("Sub Boom").trajectory
    maker.select_sound("a", "Sub Boom")
    maker.render_stale()
    before = maker.engine.prerender.ready[Gate.IMPACT]
    open_actions(maker, "Sub Boom")
    choose(maker, "Shape")
    assert maker.ui.path()[-1] == "shape"
    controls(maker, "press", 10)  # edit Attack: ten steps of 10 ms
    assert maker.ui.screen.values.attack == pytest.approx(handles(sub).attack + 0.1)
    shaped = reshape(sub, handles(sub).with_value("attack", handles(sub).attack + 0.1))
    assert np.array_equal(maker.ui.screen.current.curves, shaped.curves)
    maker.render_stale()
    playing = maker.engine.prerender.ready[Gate.IMPACT]  # what gate 1 plays now: the shaped sound, 0.1 s longer
    assert len(playing) - len(before) == pytest.approx(0.1 * maker.engine.sample_rate, abs=2)
    shown = pixels(maker)  # the Attack row, being edited, reads the new time
    row = expected(lambda p: p.row(0, "Attack", f"{(handles(sub).attack + 0.1) * 1000:.0f} ms", selected=True, editing=True))
    assert (shown[13:26] == row[13:26]).all()
    controls(maker, "long", 6, "press")  # stop editing; down to "Save as…"
    assert maker.ui.path()[-1] == "name-entry" and maker.ui.screen.text == "Sub Boom shaped"
    title = expected(lambda p: p.title("Save as", f"{len('Sub Boom shaped')}/24"))
    name = expected(lambda p: p.text((2, 15), "Sub Boom shaped_", bold=True))
    assert (pixels(maker)[:28] == (title | name)[:28]).all()  # the title, then the name so far
    enter_name(maker, "Slow Boom")
    assert maker.ui.path()[-1] == "shape"
    saved = maker.library.get("Slow Boom")
    assert np.array_equal(saved.trajectory.curves, shaped.curves) and saved.meta["shaped_from"] == "Sub Boom"
    again = type(maker.library)(maker.library.user_dir).get("slow boom")  # on disk, as the next boot reads it
    assert again.trajectory.n_frames == shaped.n_frames
    controls(maker, "long")  # leaving Shape: gate 1 plays sound A again
    maker.render_stale()
    assert len(maker.engine.prerender.ready[Gate.IMPACT]) == len(before) and maker.ui.path()[-1] == "sound-actions"


def test_a_name_that_is_taken_shows_the_error_and_returns_to_the_name(maker):
    open_actions(maker, "Snap")
    choose(maker, "Shape")
    controls(maker, 6, "press")  # "Save as…"
    enter_name(maker, "Snap")
    assert maker.ui.path()[-2:] == ["name-entry", "error"]
    assert "a factory sound named 'Snap' exists" in maker.ui.screen.message
    controls(maker, "press")
    assert maker.ui.path()[-1] == "name-entry"  # fix the name and save again
    enter_name(maker, "Snap..2")
    assert "cannot hold" in maker.ui.screen.message
    assert [s.name for s in maker.library.sounds() if not s.factory] == []


def test_vary_turns_through_seeds_each_played_at_once_and_saves_one(maker):
    snap = maker.library.get("Snap").trajectory
    open_actions(maker, "Snap")
    choose(maker, "Vary")
    assert maker.ui.path()[-1] == "vary"
    assert np.array_equal(maker.ui.screen.current.curves, vary(snap, 1).curves)
    controls(maker, "press", 3)  # the seed, three on
    assert maker.ui.screen.seed == 4 and np.array_equal(maker.ui.screen.current.curves, vary(snap, 4).curves)
    maker.render_stale()
    assert maker.engine.snapshot().sound_a != maker.settings.sound_a  # gate 1 plays the variation
    assert maker.view().sound_a == maker.settings.sound_a == "Snap"  # and sound A is kept
    controls(maker, "long", 2, "press")
    assert maker.ui.screen.text == "Snap v4"
    controls(maker, "press")  # OK: the name offered
    assert np.array_equal(maker.library.get("Snap v4").trajectory.curves, vary(snap, 4).curves)
    assert maker.library.get("Snap v4").meta == {"varied_from": "Snap", "seed": 4, "amount": 1.0}


def test_save_morph_keeps_the_morph_gate_2_plays(maker):
    from neurorack.sounds.morph import morph

    maker.select_sound("a", "Snap")
    maker.select_sound("b", "Sub Boom")
    maker.nudge_morph(round((0.25 - maker.settings.morph) / 0.05))
    controls(maker, "press")
    items = [i["label"] for i in maker.ui.spec.items]
    controls(maker, items.index("Save morph"), "press")
    assert maker.ui.path()[-1] == "name-entry" and maker.ui.screen.text == "Snap-Sub Boom 25"
    shown = pixels(maker)
    assert (shown[:12] == expected(lambda p: p.title("Save morph 25%", f"{len('Snap-Sub Boom 25')}/24"))[:12]).all()
    controls(maker, "press")
    saved = maker.library.get("Snap-Sub Boom 25")
    want = morph(maker.library.get("Snap").trajectory, maker.library.get("Sub Boom").trajectory, 0.25)
    assert np.allclose(saved.trajectory.curves, want.curves, atol=1e-6)
    assert saved.meta["morph"] == {"a": "Snap", "b": "Sub Boom", "amount": 0.25}
    assert maker.ui.path()[-1] == "menu"
    controls(maker, "press")  # Save morph again
    assert maker.ui.screen.text == "Snap-Sub Boom 25 2"  # the next free name


def test_saving_on_a_full_data_folder_says_so_and_loses_nothing(tmp_path):
    """A real 320 KB file system (tmpfs), filled: the name entry shows one line, the library
    (on disk and in the module) keeps what it had."""
    import os
    import subprocess

    from neurorack.assembly import ModuleOptions, assemble

    if os.geteuid() != 0:
        pytest.skip(reason="only root can mount a small file system to fill")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(reason=f"root without the right to mount here: {mounted.stderr.decode().strip()}")
    module = assemble(ModuleOptions(board="sim", persist=False, live=False, library=str(disk / "sounds")))
    try:
        module.save_sound("Kept", module.sound_trajectory("Snap"))
        before = {p.name: p.read_bytes() for p in (disk / "sounds").iterdir()}
        with open(disk / "filler", "wb", buffering=0) as f:
            with pytest.raises(OSError):
                while True:
                    f.write(b"\0" * 4096)
        open_actions(module, "Sub Boom")
        choose(module, "Vary")
        controls(module, 2, "press", "press")  # "Save as…", then OK on the name offered
        assert module.ui.path()[-1] == "error"
        assert module.ui.screen.message.startswith("cannot save 'Sub Boom v1': No space left on device")
        assert {p.name: p.read_bytes() for p in (disk / "sounds").iterdir()} == before
        assert [n for n in module.view().sounds if n in ("Kept", "Sub Boom v1")] == ["Kept"]
    finally:
        module.close()
        subprocess.run(["umount", str(disk)], check=True)
