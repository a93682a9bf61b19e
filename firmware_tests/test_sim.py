"""The simulated board: the events file and OSC (over real UDP, with python-osc's client)."""
import json
import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from neurorack.hal.profile import load_profile
from neurorack.hal.sim import EventsFileError, SimBoard, SimEvent, load_events


class Recorder:
    """A ControlSink that writes down what the board told it."""

    def __init__(self, gate_takes_s: float = 0.0):
        self.calls, self.arrivals, self.handled = [], [], []
        self.gate_takes_s = gate_takes_s

    def gate(self, number, on, frame=None, at_ns=None):
        self.calls.append(("gate", number, on, frame))
        self.arrivals.append(at_ns)
        self.handled.append(time.monotonic_ns())
        time.sleep(self.gate_takes_s)

    def cv(self, number, volts):
        self.calls.append(("cv", number, volts))

    def wait_for(self, calls: int, seconds: float = 5.0):
        """Until `calls` calls have come (OSC arrives on the board's own thread)."""
        deadline = time.monotonic() + seconds
        while len(self.calls) < calls and time.monotonic() < deadline:
            time.sleep(0.01)

    def encoder(self, steps):
        self.calls.append(("encoder", steps))

    def button(self, kind):
        self.calls.append(("button", kind))


def write_lines(path, objs):
    path.write_text("\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n")
    return path


def test_events_file_is_parsed_and_sorted(tmp_path):
    path = write_lines(tmp_path / "e.jsonl", [
        {"t": 1.2, "button": "press"}, "# a comment", "",
        {"t": 0.5, "gate": 1, "on": True}, {"t": 0.7, "cv": 2, "volts": 1.5},
        {"t": 1.0, "encoder": -2}, {"t": 1.3, "button": "long"}])
    events = load_events(path)
    assert [(e.t, e.kind, e.number, e.value) for e in events] == [
        (0.5, "gate", 1, True), (0.7, "cv", 2, 1.5), (1.0, "encoder", 0, -2),
        (1.2, "button", 0, "press"), (1.3, "button", 0, "long")]


@pytest.mark.parametrize("line, message", [
    ('{"t": 0.5, "gate": 1', "e.jsonl:2: not JSON"),
    ('{"gate": 1}', "e.jsonl:2: 't' must be"),
    ('{"t": -1, "gate": 1}', "e.jsonl:2: 't' must be"),
    ('{"t": 1, "gate": 0}', "'gate' must be a number from 1"),
    ('{"t": 1, "cv": 2, "volts": "loud"}', "'volts' must be a number"),
    ('{"t": 1, "button": "double"}', "'button' must be one of"),
    ('{"t": 1, "knob": 3}', "needs one of"),
])
def test_a_bad_events_line_is_named(tmp_path, line, message):
    path = write_lines(tmp_path / "e.jsonl", [{"t": 0.1, "gate": 1}, line])
    with pytest.raises(EventsFileError, match=message):
        load_events(path)


def test_cvs_are_clamped_and_unknown_inputs_warned_once(caplog):
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    board.apply(SimEvent(0, "cv", 2, 7.5))
    board.apply(SimEvent(0, "cv", 2, float("nan")))
    for _ in range(3):
        board.apply(SimEvent(0, "cv", 9, 1.0))
        board.apply(SimEvent(0, "gate", 3, True))
    assert sink.calls == [("cv", 2, 5.0)]
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("no CV input 9" in w for w in warnings) == 1 and sum("no gate input 3" in w for w in warnings) == 1
    assert any("7.5 V is outside -5..5 V" in w for w in warnings)


def test_osc_messages_reach_the_sink():
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/gate/1", 1)
        client.send_message("/gate/1", 0)
        client.send_message("/cv/2", 3.3)
        client.send_message("/encoder", 1)
        client.send_message("/button", 1)
        client.send_message("/button", 2)
        client.send_message("/cv/2", "x")  # a wrong argument is reported, not fatal
        client.send_message("/gate/2", 1)
        sink.wait_for(7)
    finally:
        board.close()
    assert sink.calls == [("gate", 1, True, None), ("gate", 1, False, None), ("cv", 2, pytest.approx(3.3)),
                          ("encoder", 1), ("button", "press"), ("button", "long"), ("gate", 2, True, None)]


def test_an_osc_gate_carries_the_moment_its_packet_arrived():
    sink = Recorder(gate_takes_s=0.05)  # a busy handler: the packets behind it wait in the socket
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    assert board._server.stamped  # the kernel stamps this socket's packets
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        sent = []
        for _ in range(3):
            sent.append(time.monotonic_ns())
            client.send_message("/gate/1", 1)
        sink.wait_for(3)
    finally:
        board.close()
    assert len(sink.arrivals) == 3
    for sent_ns, arrived in zip(sent, sink.arrivals):
        assert sent_ns <= arrived <= sent_ns + 20_000_000  # in the kernel within 20 ms of sending
    assert sink.handled[2] - sink.arrivals[2] >= 80_000_000  # handled after two 50 ms handlers: stamped before


def test_osc_port_in_use_is_a_clear_error():
    first = SimBoard(load_profile("sim"), Recorder())
    port = first.start_osc(0)
    try:
        with pytest.raises(Exception, match=f"cannot listen for OSC on 127.0.0.1:{port}"):
            SimBoard(load_profile("sim"), Recorder()).start_osc(port)
    finally:
        first.close()
