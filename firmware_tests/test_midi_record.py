"""MIDI offline: the events file's MIDI events and standard MIDI files rendered by `--record`,
through the sim board's MIDI path, the module's MidiControl and the engine (real model)."""
import subprocess
import sys

import mido
import numpy as np
import pytest

from neurorack.assembly import ModuleOptions, assemble
from neurorack.bench.cv import f0_per_frame
from neurorack.engine.midi import velocity_gain
from neurorack.hal.sim import EventsFileError, SimEvent, load_events, midi_file_events, parse_event
from neurorack.runner import record

RATE, BLOCK = 48000, 128


def render(events, duration=1.5, config=None):
    module = assemble(ModuleOptions(board="sim", persist=False, live=False, config=config))
    try:
        return record(module, events, duration=duration), module
    finally:
        module.close()


def midi(t, *data):
    return SimEvent(t, "midi", 0, tuple(data))


def test_a_root_note_at_full_velocity_plays_exactly_what_gate_1_plays():
    by_note, _ = render([midi(0.25, 0x90, 60, 127)])
    by_gate, _ = render([SimEvent(0.25, "gate", 1, True)])
    assert np.abs(by_gate).max() > 0.01
    np.testing.assert_array_equal(by_note, by_gate)
    onset = int(np.flatnonzero(np.abs(by_note) > 0)[0])
    assert onset == round(0.25 * RATE) + BLOCK  # sample-accurate: one block after its moment


def test_velocity_scales_the_voice_by_the_natural_curve():
    loud, _ = render([midi(0.1, 0x90, 60, 127)])
    soft, _ = render([midi(0.1, 0x90, 60, 64)])
    np.testing.assert_allclose(soft, loud * velocity_gain(64), atol=1e-6)


def test_a_note_an_octave_up_sounds_an_octave_up_and_renders_the_same_each_time(tmp_path):
    config = tmp_path / "tonal.toml"
    config.write_text('sound_a = "Big Impact"\n')
    root, _ = render([midi(0.0, 0x90, 60, 127)], 1.0, config)
    octave, module = render([midi(0.0, 0x90, 72, 127)], 1.0, config)
    again, _ = render([midi(0.0, 0x90, 72, 127)], 1.0, config)
    np.testing.assert_array_equal(octave, again)  # deterministic
    # Frame by frame over the first second (the pitch falls as the sound's curve does).
    up, down = (f0_per_frame(np.asarray(a[BLOCK:BLOCK + RATE], np.float64), RATE, 100) for a in (octave, root))
    cents = 1200 * np.log2(up / down)
    assert np.isfinite(cents).sum() >= 50
    assert np.nanmedian(cents) == pytest.approx(1200, abs=2)
    assert module.engine.prerender.note_renders == 1


def test_a_chord_running_status_and_note_off_by_velocity_zero_in_an_events_file(tmp_path):
    path = tmp_path / "chord.jsonl"
    path.write_text('{"t": 0.1, "midi": [144, 60, 100, 64, 100, 67, 100]}\n'  # one status byte, three notes
                    '{"t": 0.5, "midi": [60, 0, 64, 0, 67, 0]}\n'  # running status, velocity 0: note-offs
                    '{"t": 0.6, "midi": [240, 126, 127, 6, 1, 247]}\n'  # a sysex: ignored, one line
                    '{"t": 0.7, "midi": [176, 21, 0]}\n')  # CC 21 (CV 1: the morph) far from 64: pick-up ignores it
    audio, module = render(load_events(path), 1.0)
    assert module.engine.gates[1] == 3 and not module.engine.gate_on[1]
    assert module.midi.messages == 7 and module.engine.snapshot().cc == {}
    assert np.abs(audio[round(0.1 * RATE) + BLOCK:]).max() > 0.01


def test_a_standard_midi_file_renders_its_notes_at_their_times(tmp_path):
    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=600000))  # 100 BPM: a beat is 0.6 s
    for k, note in enumerate((60, 62, 64)):
        track.append(mido.Message("note_on", note=note, velocity=110, time=0 if k == 0 else 240))
        track.append(mido.Message("note_off", note=note, velocity=0, time=240))
    path = tmp_path / "song.mid"
    song.save(path)
    events = midi_file_events(path)
    assert [e.t for e in events] == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.2, 1.5])
    audio, module = render(events, 2.0)
    assert module.engine.gates[1] == 3
    for t in (0.0, 0.6, 1.2):  # each note begins exactly one block after its time
        start = round(t * RATE) + BLOCK
        assert np.abs(audio[start - 64:start]).max() < np.abs(audio[start:start + 64]).max()


def test_neurorack_run_records_a_midi_file_and_refuses_a_corrupt_one_in_one_line(tmp_path):
    song = mido.MidiFile()
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.Message("note_on", note=64, velocity=100, time=0))
    track.append(mido.Message("note_off", note=64, velocity=0, time=480))
    good, out = tmp_path / "song.mid", tmp_path / "out.wav"
    song.save(good)
    run = [sys.executable, "-m", "neurorack.cli", "run", "--board", "sim"]
    done = subprocess.run(run + ["--midi-file", str(good), "--record", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 impacts" in done.stdout and out.stat().st_size > 10_000
    bad = tmp_path / "bad.mid"
    bad.write_bytes(good.read_bytes()[:30])
    failed = subprocess.run(run + ["--midi-file", str(bad), "--record", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert failed.returncode != 0 and failed.stderr.strip().splitlines() == [
        "neurorack: error: bad.mid: not a standard MIDI file (it ends too soon)"]


@pytest.mark.parametrize("data, words", [
    ([], "list of 1 to 256 bytes"), ([144, 60, 256], "0..255"), ("90 3c 64", "list"), ([144, True, 1], "bytes"),
])
def test_a_bad_midi_event_is_an_error_naming_its_line(data, words):
    with pytest.raises(EventsFileError, match=words):
        parse_event({"t": 0.5, "midi": data}, "song.jsonl:3")
    with pytest.raises(EventsFileError, match="unknown key 'velocity'"):
        parse_event({"t": 0.5, "midi": [144, 60, 1], "velocity": 3}, "song.jsonl:4")
