"""MIDI in through a real MIDI path: a keyboard client's JACK MIDI port on a JACK server (dummy
driver), python-rtmidi's JACK input as the module opens it (hal/midi.py), mido's messages.
(This machine has no ALSA sequencer, /dev/snd/seq; on a Pi the same code opens ALSA's.)

On this shared machine the dummy server is sometimes late (an xrun), and a late cycle's MIDI
is lost between JACK clients (or, where the writer missed the cycle, its buffer from the cycle
before is read again). So where a test checks that everything arrived, it holds each
message the keyboard sent to arrive, in order, except that each xrun the server reported to the
keyboard meanwhile may lose one or deliver the one before it twice (no xrun: all, once each)."""
import logging
import os
import threading
import time

import pytest
from conftest import wait_for_ports

from neurorack.bench.midi import JackKeyboard
from neurorack.hal.midi import MAX_RATE, MidiInput


class Sink:
    def __init__(self):
        self.messages, self.lock = [], threading.Lock()

    def __call__(self, message, at_ns):
        with self.lock:
            self.messages.append((message, at_ns))

    def wait(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [m for m, _ in self.messages]


@pytest.fixture
def keyboard(server):
    k = JackKeyboard()
    yield k
    k.close()


def assert_delivered(got: list, sent: list, xruns: int) -> None:
    """`got` is `sent` (items all distinct) in order, except that an xrun may lose one item or
    read the one before again: at most `xruns` lost and at most `xruns` read twice."""
    assert len(set(sent)) == len(sent), "sent items must be distinct to tell order"
    at, repeats = 0, 0
    for g in got:
        if at and g == sent[at - 1]:  # the cycle before's buffer, read again
            repeats += 1
            continue
        assert g in sent[at:], f"{g!r} out of order, or not sent"
        at = sent.index(g, at) + 1
    lost = len(sent) - (len(got) - repeats)
    assert lost <= xruns, f"{lost} lost with {xruns} xruns"
    assert repeats <= xruns, f"{repeats} read twice with {xruns} xruns"


def opened(sink, port="keyboard", **kwargs):
    midi = MidiInput(sink, port=port, api="jack", poll_s=0.1, **kwargs).start()
    assert wait_for_ports(midi) == ["keyboard:out"]
    return midi


def test_notes_and_ccs_arrive_parsed_and_stamped_at_their_arrival(keyboard):
    sink = Sink()
    midi = opened(sink)
    try:
        xruns = keyboard.xruns
        before = time.monotonic_ns()
        keyboard.send(bytes([0x90, 60, 100]))
        keyboard.send(bytes([0xB0, 21, 127]))
        keyboard.send(bytes([0x80, 60, 0]))
        messages = sink.wait(3, timeout=2)
        after = time.monotonic_ns()
    finally:
        midi.close()
    assert_delivered([str(m) for m in messages], ["note_on channel=0 note=60 velocity=100 time=0",
                                                  "control_change channel=0 control=21 value=127 time=0",
                                                  "note_off channel=0 note=60 velocity=0 time=0"],
                     keyboard.xruns - xruns)
    stamps = [at for _, at in sink.messages]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after
    # Each stamp is its event's arrival, within a block or two of the moment the keyboard wrote it.
    if len(messages) == 3:
        for (_, at), written in zip(sink.messages, keyboard.sent_ns):
            assert -1_000_000 <= at - written < 20_000_000
    assert midi.received == len(messages) and midi.last == str(messages[-1])


def test_running_status_sysex_and_undefined_bytes_through_jack(keyboard, caplog):
    sink = Sink()
    midi = opened(sink)
    try:
        with caplog.at_level(logging.WARNING):
            # Running status, a sysex (an identity request), an undefined status byte, all in one
            # cycle's event so that no xrun can take one part and leave another.
            for _ in range(5):  # again only if the server lost the cycle (an xrun)
                xruns = keyboard.xruns
                keyboard.send(bytes([0x90, 60, 100, 62, 100, 64, 0, 0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7, 0xF4,
                                     0x91, 65, 80]))
                messages = sink.wait(4, timeout=1)
                if messages or keyboard.xruns == xruns:
                    break
    finally:
        midi.close()
    assert [(m.type, m.channel, m.note, m.velocity) for m in messages] == [
        ("note_on", 0, 60, 100), ("note_on", 0, 62, 100), ("note_on", 0, 64, 0), ("note_on", 1, 65, 80)]
    lines = [r.getMessage() for r in caplog.records]
    assert sum("system exclusive" in line for line in lines) == 1 and sum("0xF4" in line for line in lines) == 1


def test_a_flood_of_a_thousand_messages_a_second_is_all_delivered_in_order(keyboard):
    sink = Sink()
    midi = opened(sink)
    try:
        xruns = keyboard.xruns
        t0 = time.monotonic()
        for k in range(1000):  # 1000 in about a second: one event in each of ~3 of every 4 cycles
            keyboard.send(bytes([0xB0, 20 + k // 128, k % 128]))  # distinct, so order can be told
            time.sleep(max(0.0, t0 + (k + 1) / 1000 - time.monotonic()))
        messages = sink.wait(1000, timeout=3)
    finally:
        midi.close()
    assert midi.dropped == 0  # 1000 a second is within the rate a MIDI cable carries: nothing dropped
    assert_delivered([(m.control, m.value) for m in messages], [(20 + k // 128, k % 128) for k in range(1000)],
                     keyboard.xruns - xruns)


def test_a_flood_beyond_the_rate_limit_is_dropped_with_one_line_and_the_input_keeps_working(keyboard, caplog):
    sink = Sink()
    midi = opened(sink)
    try:
        with caplog.at_level(logging.WARNING):
            xruns, notes = keyboard.xruns, 0
            t0 = time.monotonic()
            for _ in range(200):  # 100 messages in each cycle: tens of thousands a second
                keyboard.send(*[bytes([0xB0, 22, 1])] * 100)
            seconds = time.monotonic() - t0
            time.sleep(0.3)
            for _ in range(5):  # again only if the server lost the cycle (an xrun)
                keyboard.send(bytes([0x90, 70, 99]))
                notes += 1
                time.sleep(0.3)
                if str(sink.messages[-1][0]).startswith("note_on"):
                    break
            xruns = keyboard.xruns - xruns
    finally:
        midi.close()
    # A second's worth passes at once (4000), then 4000 a second; the rest is dropped and counted.
    assert midi.dropped > 0 and len(sink.messages) <= MAX_RATE * (1 + seconds + 0.7) + notes
    # Each message is delivered or counted as dropped, never both. (In a late cycle JACK may hand
    # the input the keyboard's buffer from the cycle before, whose events then arrive twice: at
    # most one cycle's worth, 100, for each xrun.)
    assert midi.dropped + len(sink.messages) <= 200 * 100 + notes + 100 * xruns
    assert str(sink.messages[-1][0]).startswith("note_on channel=0 note=70")  # through after the flood
    assert 1 <= sum("dropped" in r.getMessage() for r in caplog.records) <= 3  # rate-limited lines


def two_notes_across_a_loss(midi, sink, keyboard, lose, restore) -> None:
    """A note; then `lose(keyboard)` takes its port away, and the input must let go of it; then
    `restore()` and the keyboard back under the same name, and a second note: both arrive."""
    try:
        keyboard.send(bytes([0x90, 60, 100]))
        sink.wait(1, timeout=1)
        xruns = keyboard.xruns
        lose(keyboard)
        deadline = time.monotonic() + 5
        while midi.ports() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert midi.ports() == [] and midi.lost == 1
        restore()
        keyboard = JackKeyboard()
        # A new server under a loaded machine (the whole suite on two cores) can take seconds to
        # take clients: wait longer than the poll needs, and say so if the port never came back.
        assert wait_for_ports(midi, 15.0) == ["keyboard:out"], "the port was not opened again"
        keyboard.send(bytes([0x90, 62, 100]))
        messages = sink.wait(2, timeout=2)
        xruns += keyboard.xruns
    finally:
        midi.close()
        keyboard.close()
    assert_delivered([m.note for m in messages], [60, 62], xruns)
    assert midi.lost == 1 and midi.ports() == []  # closed by close()


def test_a_device_unplugged_and_plugged_back_is_opened_again(server, caplog):
    sink, changes = Sink(), []
    keyboard = JackKeyboard()
    midi = opened(sink, on_change=lambda name, present: changes.append((name, present)))
    two_notes_across_a_loss(midi, sink, keyboard, lose=lambda k: k.close(), restore=lambda: None)  # unplugged
    # Came, went, came back: the module hears of each (MidiControl then picks knobs up again).
    assert changes == [("keyboard:out", True), ("keyboard:out", False), ("keyboard:out", True)]
    assert any("is gone" in r.getMessage() for r in caplog.records)


def test_a_jack_server_restarted_under_open_ports_is_noticed_and_its_ports_opened_again(server, caplog):
    sink, changes = Sink(), []
    keyboard = JackKeyboard()
    midi = opened(sink, on_change=lambda name, present: changes.append((name, present)))

    def stop_the_server(k):  # with the keyboard's port and ours open: their clients die with it
        server.stop()
        k.close()
    two_notes_across_a_loss(midi, sink, keyboard, lose=stop_the_server, restore=server.start)  # same name, new server
    assert changes == [("keyboard:out", True), ("keyboard:out", False), ("keyboard:out", True)]
    assert sum("JACK server stopped" in r.getMessage() for r in caplog.records) == 1


def test_port_all_opens_every_input_and_a_virtual_port_takes_connections(keyboard):
    import jack

    sink = Sink()
    midi = MidiInput(sink, port="all", api="jack", poll_s=0.1).start()
    try:
        wait_for_ports(midi)
        assert midi.ports() == ["keyboard:out"]
    finally:
        midi.close()
    virtual = MidiInput(sink, port="virtual", api="jack").start()
    try:
        probe = jack.Client("probe", no_start_server=True)
        [port] = [p.name for p in probe.get_ports(is_midi=True, is_input=True) if p.name.startswith("neurorack")]
        probe.close()
        keyboard.connect_to(port)  # what a DAW does
        keyboard.send(bytes([0xC0, 3]))
        messages = sink.wait(1)
    finally:
        virtual.close()
    assert messages[-1].type == "program_change" and messages[-1].program == 3


def test_with_no_midi_system_auto_says_so_in_one_error_and_a_named_port_waits_for_its_device(server, monkeypatch):
    from neurorack.errors import NeurorackError
    from neurorack.hal.midi import choose_api

    sequencer = os.path.exists("/dev/snd/seq")
    assert choose_api("auto") == ("alsa" if sequencer else "jack")  # here: the test's JACK server
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "nrtest-no-such-server")
    if sequencer:
        assert choose_api("auto") == "alsa"
    else:
        with pytest.raises(NeurorackError, match="no ALSA sequencer .* and no JACK server running"):
            MidiInput(lambda m, t: None, port="all", api="auto")
    monkeypatch.undo()
    waiting = MidiInput(lambda m, t: None, port="KeyStep", api="jack", poll_s=0.1).start()
    try:
        time.sleep(0.3)
        assert waiting.ports() == [] and waiting.lost == 0  # nothing of that name yet: it keeps looking
    finally:
        waiting.close()


@pytest.mark.skipif(not os.path.exists("/dev/snd/seq"),
                    reason="no ALSA sequencer on this machine (/dev/snd/seq, kernel module snd-seq); a Pi has one")
def test_notes_arrive_through_the_alsa_sequencer_from_another_client():
    import rtmidi

    sink = Sink()
    keyboard = rtmidi.MidiOut(rtmidi.API_LINUX_ALSA, name="nrtest-keyboard")
    keyboard.open_virtual_port("out")
    midi = MidiInput(sink, port="nrtest-keyboard", api="alsa", poll_s=0.1).start()
    try:
        assert wait_for_ports(midi)
        keyboard.send_message([0x90, 60, 100])
        keyboard.send_message([0x80, 60, 0])
        messages = sink.wait(2)
    finally:
        midi.close()
        keyboard.delete()
    assert [(m.type, m.note) for m in messages] == [("note_on", 60), ("note_off", 60)]
