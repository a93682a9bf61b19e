"""What MIDI means (engine/midi.py) and how its bytes are read (hal/midi.MidiDecoder): notes,
velocity, CCs with pick-up or follow, program change, channels, MIDI learn, running status and
the bytes that are not messages. Real mido messages throughout."""
import logging

import mido
import pytest

from neurorack import descriptors as D
from neurorack.engine.controls import ControlState, CvAssignment, RenderRequest, transpose
from neurorack.engine.midi import (DEFAULT_CC, Cc, CcMapping, Learned, MidiConfig, MidiMap, Note, Program, cc_volts,
                                   velocity_gain)
from neurorack.errors import NeurorackError
from neurorack.hal.gates import Gate, GateEdge
from neurorack.hal.midi import MidiDecoder, RateLimit


def msg(*data):
    return mido.Message.from_bytes(list(data))


def test_a_note_on_raises_gate_1_with_its_pitch_from_the_root_and_its_velocity_gain():
    midi = MidiMap(MidiConfig(root=60))
    [note] = midi.handle(msg(0x90, 67, 100), at_ns=123)
    assert note == Note(GateEdge(Gate.IMPACT, True, 123), note=67, semitones=7, gain=pytest.approx((100 / 127) ** 2))


def test_velocity_follows_the_dls_curve_40_log10_and_can_be_linear_or_fixed():
    assert velocity_gain(127) == 1.0
    assert velocity_gain(64) == pytest.approx(10 ** (-11.9 / 20), rel=0.01)  # about -12 dB
    assert velocity_gain(32) == pytest.approx(10 ** (-24.0 / 20), rel=0.02)
    assert velocity_gain(64, "linear") == pytest.approx(64 / 127)
    assert velocity_gain(1, "fixed") == 1.0


def test_note_off_and_velocity_zero_note_on_are_the_gate_falling_once_no_note_holds_it():
    midi = MidiMap()
    midi.handle(msg(0x90, 60, 90), 1)
    midi.handle(msg(0x90, 64, 90), 2)  # a chord: two rising edges
    assert midi.handle(msg(0x80, 60, 0), 3) == []  # 64 still holds the gate
    [off] = midi.handle(msg(0x90, 64, 0), 4)  # velocity 0: a note-off
    assert off.edge == GateEdge(Gate.IMPACT, False, 4)
    assert midi.handle(msg(0x80, 50, 0), 5) == []  # a note that never started


def test_a_chord_is_one_rising_edge_per_note():
    midi = MidiMap()
    notes = [a for n in (60, 64, 67) for a in midi.handle(msg(0x90, n, 100), n)]
    assert [(n.edge.gate, n.edge.on, n.semitones) for n in notes] == [(1, True, 0), (1, True, 4), (1, True, 7)]


def test_gate_2_is_chosen_by_channel_or_by_note_range():
    by_channel = MidiMap(MidiConfig(channel=1, gate2_channel=10))
    assert by_channel.handle(msg(0x99, 36, 100), 0)[0].edge.gate == Gate.MORPH  # channel 10 (index 9)
    assert by_channel.handle(msg(0x90, 36, 100), 0)[0].edge.gate == Gate.IMPACT
    assert by_channel.handle(msg(0x92, 36, 100), 0) == []  # channel 3: not listened to
    split = MidiMap(MidiConfig(split=72))
    assert [split.handle(msg(0x90, n, 100), 0)[0].edge.gate for n in (71, 72, 90)] == [1, 2, 2]


def test_omni_hears_every_channel_and_a_set_channel_only_its_own():
    assert all(MidiMap().handle(msg(0x90 | ch, 60, 100), 0) for ch in range(16))
    five = MidiMap(MidiConfig(channel=5))
    assert [bool(five.handle(msg(0x90 | ch, 60, 100), 0)) for ch in range(16)] == [ch == 4 for ch in range(16)]


def test_default_ccs_21_to_24_act_as_cv_1_to_4_on_their_ranges():
    assert {n: m.cv for n, m in DEFAULT_CC.items()} == {21: 1, 22: 2, 23: 3, 24: 4}
    midi = MidiMap(MidiConfig(takeover="follow"), cv_ranges={2: "unipolar"})
    assert midi.handle(msg(0xB0, 21, 127), 0) == [Cc(21, 5.0)]
    assert midi.handle(msg(0xB0, 21, 64), 0) == [Cc(21, 0.0)]
    assert midi.handle(msg(0xB0, 21, 0), 0) == [Cc(21, -5.0)]
    assert midi.handle(msg(0xB0, 22, 127), 0) == [Cc(22, 10.0)]
    assert midi.handle(msg(0xB0, 30, 127), 0) == []  # unmapped


def test_cc_volts_add_to_the_cvs_through_the_assignment_of_the_cv_they_act_as():
    state = ControlState("a", "b", morph=0.5, cc_map=dict(DEFAULT_CC))
    state.volts = {2: 2.5}
    state.cc = {22: 2.5, 21: -2.5, 99: 5.0}
    request = state.request()
    assert request.shifts[D.INDEX["richness"]] == pytest.approx(1.0)  # CV 2 + CC 22, both richness
    assert request.morph == pytest.approx(0.0)  # CC 21 acts as CV 1: the morph, -2.5 V = -0.5
    state.cc_map[40] = CcMapping(target="brightness", depth=0.5, offset=0.1)
    state.cc = {40: 5.0}
    assert state.request().shifts[D.INDEX["brightness"]] == pytest.approx(0.6)


def test_pickup_ignores_a_knob_until_it_reaches_the_held_value_then_follows():
    midi = MidiMap(MidiConfig(takeover="pickup"))
    assert midi.handle(msg(0xB0, 21, 120), 0) == []  # the knob sits far from the held 64: no jump
    assert midi.handle(msg(0xB0, 21, 100), 0) == []
    [cc] = midi.handle(msg(0xB0, 21, 60), 0)  # it crossed 64 on the way down: picked up
    assert cc.number == 21 and cc.volts == pytest.approx(cc_volts(60))
    assert midi.handle(msg(0xB0, 21, 127), 0) == [Cc(21, 5.0)]  # from now on it follows


def test_follow_applies_every_value_at_once():
    midi = MidiMap(MidiConfig(takeover="follow"))
    assert midi.handle(msg(0xB0, 21, 120), 0) == [Cc(21, cc_volts(120))]


def test_a_device_that_comes_back_is_picked_up_again():
    midi = MidiMap()
    midi.handle(msg(0xB0, 21, 64), 0)
    midi.handle(msg(0xB0, 21, 100), 0)
    midi.forget_controllers()
    assert midi.handle(msg(0xB0, 21, 10), 0) == []  # where 100 was held; the knob is elsewhere now


def test_midi_learn_maps_the_next_controller_to_the_target_and_it_starts_unpicked():
    midi = MidiMap()
    midi.learn("brightness")
    [learned] = midi.handle(msg(0xB0, 74, 10), 0)
    assert learned == Learned(74, CcMapping(target="brightness"))
    assert midi.config.cc[74] == CcMapping(target="brightness") and midi.learning is None
    assert midi.handle(msg(0xB0, 74, 20), 0) == []  # far from neutral: pick-up first
    assert midi.handle(msg(0xB0, 74, 63), 0) == [Cc(74, cc_volts(63))]
    with pytest.raises(NeurorackError, match="can modulate"):
        midi.learn("volume")


def test_program_change_and_all_notes_off():
    midi = MidiMap()
    assert midi.handle(msg(0xC0, 5), 0) == [Program(5)]
    midi.handle(msg(0x90, 60, 100), 0)
    midi.handle(msg(0x90, 80, 100), 0)
    assert midi.handle(msg(0xB0, 123, 0), 9) == [Note(GateEdge(Gate.IMPACT, False, 9))]
    assert all(not held for held in midi.held.values())


def test_messages_without_a_channel_do_nothing():
    midi = MidiMap()
    assert midi.handle(mido.Message("clock"), 0) == []
    assert midi.handle(mido.Message("sysex", data=[1, 2]), 0) == []
    assert midi.handle(mido.Message("pitchwheel", pitch=100), 0) == []


def test_midi_settings_are_validated_with_clear_errors():
    for kwargs, words in (({"channel": 17}, "channel"), ({"channel": "all"}, "omni"), ({"root": 128}, "root"),
                          ({"split": -1}, "split"), ({"velocity": "hard"}, "velocity"),
                          ({"takeover": "jump"}, "takeover"), ({"gate2_channel": 0}, "gate2_channel"),
                          ({"api": "coreaudio"}, "api"), ({"cc": {200: CcMapping(cv=1)}}, "controller")):
        with pytest.raises(NeurorackError, match=words):
            MidiConfig(**kwargs)
    with pytest.raises(NeurorackError, match="either"):
        CcMapping(cv=1, target="pitch")
    with pytest.raises(NeurorackError, match="can modulate"):
        CcMapping(target="volume")


def test_a_note_transposes_through_the_one_volt_per_octave_path():
    request = RenderRequest("a", "b", 0.5, (0.0,) * len(D.NAMES))
    up = transpose(request, 12)
    assert up.shifts[D.INDEX["pitch"]] == pytest.approx(CvAssignment("pitch").amount(1.0))
    assert transpose(request, 0) is request


# -- bytes ---------------------------------------------------------------------------------------
def test_running_status_reuses_the_last_status_byte():
    decoder = MidiDecoder()
    messages = decoder.feed([0x90, 60, 100, 62, 90, 64, 0, 0xB0, 21, 5, 22, 6])
    assert [(m.type, getattr(m, "note", None) or getattr(m, "control", None)) for m in messages] == [
        ("note_on", 60), ("note_on", 62), ("note_on", 64), ("control_change", 21), ("control_change", 22)]
    assert messages[2].velocity == 0


def test_real_time_bytes_inside_a_message_keep_running_status():
    messages = MidiDecoder().feed([0x90, 60, 0xF8, 100, 61, 100])
    assert [m.type for m in messages] == ["clock", "note_on", "note_on"]  # the clock when it came
    assert (messages[1].note, messages[1].velocity, messages[2].note) == (60, 100, 61)


def test_sysex_unknown_status_and_stray_bytes_are_ignored_with_one_line_each(caplog):
    decoder = MidiDecoder("MIDI test")
    with caplog.at_level(logging.WARNING):
        messages = decoder.feed([0xF0, 0x7E, 1, 2, 0xF7, 0xF4, 5, 0x90, 60, 100, 0xF5, 0x91])
        messages += decoder.feed([61, 80])
    assert [(m.type, m.note) for m in messages] == [("note_on", 60), ("note_on", 61)]
    assert decoder.ignored == 4  # the sysex, 0xF4, the stray 5, 0xF5
    lines = [r.getMessage() for r in caplog.records]
    assert any("system exclusive" in line for line in lines) and any("0xF4" in line for line in lines)
    assert any("no status" in line for line in lines)  # 5 after 0xF4: running status was cancelled


def test_a_message_cut_short_by_a_new_status_is_dropped_and_the_next_one_kept():
    decoder = MidiDecoder()
    messages = decoder.feed([0x90, 60, 0x80, 60, 0])
    assert [(m.type, m.note) for m in messages] == [("note_off", 60)] and decoder.ignored == 1


def test_the_rate_limit_lets_a_second_of_messages_through_then_the_rate():
    now = [0.0]
    limit = RateLimit(rate=1000, clock=lambda: now[0])
    assert sum(limit.allow() for _ in range(1500)) == 1000
    now[0] += 0.5
    assert sum(limit.allow() for _ in range(1000)) == 500
