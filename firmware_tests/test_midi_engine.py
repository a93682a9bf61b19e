"""MIDI through to the engine: a keyboard on JACK MIDI (its own process), the module's MIDI input
(python-rtmidi), MidiControl, the engine and its pre-render worker. What reached the engine is
read back from it: gates counted, the pitch and gain each voice played (the 'model' marks a
buffer with the pitch it was asked for), the CC targets in its control state."""
import contextlib
import time

import mido
import numpy as np
import pytest
from conftest import wait_for_ports

from neurorack import descriptors as D
from neurorack.bench.midi import JackKeyboard
from neurorack.engine.engine import Engine
from neurorack.engine.midi import CcMapping, MidiConfig, velocity_gain
from neurorack.engine.renderers import FunctionRenderer
from neurorack.hal.midi import MidiInput
from neurorack.midi_control import MidiControl

BLOCK = 128


def pitched_engine():
    def render(traj):
        audio = np.zeros(4800, np.float32)
        audio[0] = 0.9
        audio[1] = float(traj.curves[0, D.INDEX["pitch"]])
        return audio

    flat = D.Trajectory(np.full((25, 7), 0.5, np.float32), np.zeros(D.TIMBRE_BANDS, np.float32))
    return Engine(FunctionRenderer(render), lambda name: flat, "a", "b", block_size=BLOCK)


@contextlib.contextmanager
def keyboard_playing(engine, control):
    """The engine running, a JACK keyboard, and the module's MIDI input on it delivering to
    `control`, connected and settled; all closed after."""
    engine.prerender.update()
    engine.start()
    keyboard = JackKeyboard()
    midi = MidiInput(control, port="keyboard", api="jack", poll_s=0.1).start()
    try:
        wait_for_ports(midi)
        time.sleep(0.3)  # a new connection takes effect in the server's next cycles
        yield keyboard, midi
    finally:
        midi.close()
        keyboard.close()
        engine.stop()


def test_notes_and_ccs_from_a_jack_keyboard_reach_the_engine_with_pitch_velocity_and_targets(server):
    engine = pitched_engine()
    programs = []
    control = MidiControl(engine, MidiConfig(takeover="follow", cc={21: CcMapping(cv=1), 74: CcMapping(target="brightness")}),
                          {}, programs.append, lambda config: None)
    with keyboard_playing(engine, control) as (keyboard, midi):
        for data in ([0x90, 67, 100], [0x80, 67, 0], [0xB0, 74, 127], [0xB0, 21, 0], [0xC0, 3],
                     [0x90, 48, 127], [0x90, 55, 64], [0x80, 48, 0], [0x80, 55, 0]):
            # Again if it did not arrive: this test is about what the mapping does with what arrives.
            # (A cycle the dummy server ran late loses its MIDI, and the keyboard's count of xruns
            # can come after the loss; delivery itself is test_midi_jack's, xruns counted there.)
            for _ in range(3):
                before = control.messages
                keyboard.send(bytes(data))
                deadline = time.monotonic() + 1
                while control.messages == before and time.monotonic() < deadline:
                    time.sleep(0.005)
                if control.messages > before:
                    break
            time.sleep(0.05)
        assert engine.prerender.wait_ready(5)
        time.sleep(0.2)
        state = engine.snapshot()
    assert control.messages == 9
    assert engine.gates[1] == 3 and not engine.gate_on[1]  # three note-ons; all released
    assert state.cc == {74: pytest.approx(5.0), 21: pytest.approx(-5.0)}
    request = state.request()
    assert request.shifts[D.INDEX["brightness"]] == pytest.approx(1.0)
    assert request.morph == pytest.approx(0.0)  # CC 21 acts as CV 1 (the morph): -5 V = -1, clipped
    assert programs == [3]
    # The three voices, in order: +7 semitones at velocity 100, the chord -12 (127) and -5 (64).
    played = []
    while len(engine.ring):
        gate, stamp, buffer, gain = engine.ring.pop()
        played.append((gate, round(float(buffer[1]) * 72 - 36), gain))
    assert played == [(1, 7, pytest.approx(velocity_gain(100))), (1, -12, 1.0),
                      (1, -5, pytest.approx(velocity_gain(64)))]


def test_a_program_change_to_no_sound_and_a_learn_are_one_line_and_a_stored_mapping():
    engine = pitched_engine()
    stored = []

    def select(n):
        if n > 7:
            from neurorack.errors import NeurorackError
            raise NeurorackError(f"no sound {n} in the library (it has 8)")

    control = MidiControl(engine, MidiConfig(), {}, select, stored.append)
    control(mido.Message("program_change", program=20), 0)
    assert control.failed == 1
    control.learn("noisiness")
    control(mido.Message("control_change", control=30, value=64), 0)
    assert stored[-1].cc[30] == CcMapping(target="noisiness")
    assert engine.snapshot().cc_map[30] == CcMapping(target="noisiness")
    control(mido.Message("control_change", control=30, value=127), 0)  # pick-up: 64 was held
    control(mido.Message("control_change", control=30, value=64), 0)
    assert engine.snapshot().cc[30] == pytest.approx(0.0)
    assert control.rows()["MIDI last"] == "cc30=64 c1" and control.rows()["MIDI in"] == "off"


def test_a_flood_of_notes_a_thousand_a_second_loses_no_state(server):
    """500 note-ons and their note-offs, 1000 messages a second, each a new pitch: every note the
    engine heard is played, dropped (new pitches faster than renders) or counted, and the held
    notes end released."""
    engine = pitched_engine()
    control = MidiControl(engine, MidiConfig(), {}, lambda n: None, lambda config: None)
    with keyboard_playing(engine, control) as (keyboard, midi):
        t0 = time.monotonic()
        for k in range(1000):
            note = 30 + (k // 2) % 60
            keyboard.send(bytes([0x90, note, 100] if k % 2 == 0 else [0x80, note, 0]))
            time.sleep(max(0.0, t0 + (k + 1) / 1000 - time.monotonic()))
        deadline = time.monotonic() + 5
        while (len(engine.prerender._note_jobs) or control.messages < 1000) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    ons = (control.messages + 1) // 2
    assert control.messages >= 1000 - keyboard.xruns and midi.dropped == 0
    assert engine.gates[1] + engine.prerender.notes_dropped + engine.ring.dropped >= ons - keyboard.xruns
    assert engine.gates[1] > 0
    # Released at the end, unless the server lost a note-off in a late cycle (as a cable would).
    lost = control.messages < 1000
    assert not engine.gate_on[1] or lost, (control.messages, keyboard.xruns)
    assert all(not held for held in control.map.held.values()) or lost


def test_the_assembled_live_module_listens_to_its_midi_port_and_closes_it(server, tmp_path, monkeypatch):
    """`neurorack run`'s own assembly: the MIDI input opened on the port the options name (here the
    JACK keyboard), notes through to the engine, its counters on the Status screen, closed with
    the module."""
    from neurorack.assembly import ModuleOptions, assemble

    monkeypatch.setenv("NEURORACK_CONFIG", str(tmp_path / "config"))
    keyboard = JackKeyboard()
    module = assemble(ModuleOptions(board="sim", persist=False, device="jack", midi="keyboard"))
    try:
        midi = module.midi.input
        assert midi is not None and midi.api == "jack" and midi.ports() == ["keyboard:out"]
        module.render_stale()
        module.engine.start()
        time.sleep(0.3)
        for _ in range(3):  # again only if the server lost that cycle (an xrun)
            xruns = keyboard.xruns
            keyboard.send(bytes([0x90, 60, 100]))
            deadline = time.monotonic() + 2
            while module.engine.gates[1] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            if module.engine.gates[1] or keyboard.xruns == xruns:
                break
        assert module.engine.gates[1] == 1 and module.view().midi.last == "on 60 v100 c1"
        status = module.status()
        assert status["MIDI in"] == "keyboard:out" and status["Midi lost"] == "0"
    finally:
        module.close()
        keyboard.close()
    assert midi.ports() == [] and not midi._thread.is_alive()
