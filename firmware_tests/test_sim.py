"""The simulated board: the events file and OSC (over real UDP, with python-osc's client)."""
import json
import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from neurorack import logs
from neurorack.hal.profile import load_profile
from neurorack.hal.sim import EventsFileError, SimBoard, SimEvent, load_events


class Recorder:
    """A ControlSink that writes down what the board told it."""

    def __init__(self, gate_takes_s: float = 0.0):
        self.calls, self.arrivals, self.handled = [], [], []
        self.gate_takes_s = gate_takes_s

    def gate(self, edge):
        self.calls.append(("gate", int(edge.gate), edge.on))
        self.arrivals.append(edge.at_ns)
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
    ('{"t": 1, "knob": 3}', "needs exactly one of"),
    ('{"t": 1, "gate": 1, "cv": 2}', "needs exactly one of"),
    ('{"t": 1, "gate": 1, "on": "false"}', "'on' must be true or false"),
    ('{"t": 1, "gate": 1, "velocity": 3}', "unknown key 'velocity' for a gate event"),
    ('{"t": 1e300, "gate": 1}', "'t' must be a time in seconds, 0 to 86400"),
    ('{"t": 1, "cv": 2, "volts": 1e999}', "'volts' must be a number"),
    ('{"t": 1, "encoder": 100000000000}', "'encoder' must be -64..64"),
    ('[' * 100000 + ']' * 100000, "nested too deeply"),
])
def test_a_bad_events_line_is_named(tmp_path, line, message):
    path = write_lines(tmp_path / "e.jsonl", [{"t": 0.1, "gate": 1}, line])
    with pytest.raises(EventsFileError, match=message):
        load_events(path)


def test_cvs_are_clamped_and_warnings_are_limited_by_kind_not_by_text(caplog):
    logs.reset()
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    board.apply(SimEvent(0, "cv", 2, 7.5))
    board.apply(SimEvent(0, "cv", 2, float("nan")))
    for i in range(2000):  # distinct values and inputs: each would be a new text
        board.apply(SimEvent(0, "cv", 9 + i, 1.0))
        board.apply(SimEvent(0, "gate", 3 + i, True))
        board.apply(SimEvent(0, "cv", 1, 6.0 + i / 1000))
    # Clamped, CV 1 reads 5 V every time: it moved once, so it is passed on once.
    assert sink.calls == [("cv", 2, 5.0), ("cv", 1, 5.0)]
    assert board.cvs.bad_values == 1  # the NaN: ignored and counted (the module's health reports it)
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("no CV input" in w for w in warnings) == 1 and sum("no gate input" in w for w in warnings) == 1
    assert sum("is outside -5..5 V" in w for w in warnings) == 1 and "7.5 V is outside -5..5 V" in warnings[0]
    assert len(warnings) == 3  # one per kind: range, unknown CV, unknown gate
    assert logs.counts()["unknown-gate"] == 2000 and logs.counts()["cv-range"] == 2001


def test_held_back_warnings_are_counted_on_the_next_line(caplog, monkeypatch):
    logs.reset()
    now = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    board = SimBoard(load_profile("sim"), Recorder())
    for _ in range(5):
        board.apply(SimEvent(0, "gate", 7, True))
    now[0] += 1.5
    logs.flush_held()
    board.apply(SimEvent(0, "gate", 8, True))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["no gate input 7 on board sim", "4 more unknown-gate warnings held back"]
    now[0] += 1.5
    board.apply(SimEvent(0, "gate", 9, True))
    assert caplog.records[-1].getMessage() == "no gate input 9 on board sim (and 1 more like it held back)"


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
    assert sink.calls == [("gate", 1, True), ("gate", 1, False), ("cv", 2, pytest.approx(3.3)),
                          ("encoder", 1), ("button", "press"), ("button", "long"), ("gate", 2, True)]


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


def _bundle(timetag: float | None, address: str = "/gate/1", value=1) -> bytes:
    """An OSC bundle (python-osc's builder) of one message: timetag None is "immediately"."""
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    bundle = OscBundleBuilder(IMMEDIATELY if timetag is None else timetag)
    message = OscMessageBuilder(address)
    message.add_arg(value)
    bundle.add_content(message.build())
    return bundle.build().dgram


def test_a_far_future_bundle_is_refused_and_later_gates_still_play(caplog):
    import socket

    logs.reset()
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.sendto(_bundle(time.time() + 1e6), ("127.0.0.1", port))  # python-osc alone sleeps ~12 days here
        udp.sendto(_bundle(None), ("127.0.0.1", port))
        udp.sendto(_bundle(time.time() - 5, "/gate/2"), ("127.0.0.1", port))
        sink.wait_for(2, seconds=2)
        t0 = time.monotonic()
    finally:
        board.close()
        udp.close()
    assert time.monotonic() - t0 < 2  # close() returns: no thread sleeps on input
    assert sink.calls == [("gate", 1, True), ("gate", 2, True)]
    assert any("ignoring a bundle timed 1e+06 s ahead" in r.getMessage() for r in caplog.records)


def test_a_near_future_bundle_plays_at_its_time_without_holding_the_next_packet():
    import socket

    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        due = time.time() + 0.3
        udp.sendto(_bundle(due, "/gate/2"), ("127.0.0.1", port))
        udp.sendto(_bundle(None, "/gate/1"), ("127.0.0.1", port))
        sink.wait_for(2, seconds=3)
        played = time.time()
    finally:
        board.close()
        udp.close()
    assert sink.calls == [("gate", 1, True), ("gate", 2, True)]  # the later packet first
    assert due - 0.01 <= played < due + 0.5


@pytest.mark.parametrize("packet", [
    b"#bundle\x00" + b"\xff" * 28,  # a bundle whose element size runs past the end
    b"/gate/1\x00,f\x00\x00\x7f\xc0",  # a float cut short
    b"/gate/1\x00,Q\x00\x00\x00\x00\x00\x01",  # an unknown type tag
    b"/\xff\xfe\x00,i\x00\x00\x00\x00\x00\x01",  # an address that is not text
    b"/[\x00\x00,i\x00\x00\x00\x00\x00\x01",  # an address pattern that is not a valid pattern
])
def test_malformed_packets_cost_one_line_and_no_traceback(packet, capsys, caplog):
    import socket

    logs.reset()
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(50):
            udp.sendto(packet, ("127.0.0.1", port))
        udp.sendto(_bundle(None), ("127.0.0.1", port))
        sink.wait_for(1)
    finally:
        board.close()
        udp.close()
    assert sink.calls == [("gate", 1, True)]
    assert "Traceback" not in capsys.readouterr().err
    assert len(caplog.records) <= 2  # one line per kind: the packet, and at most its argument


@pytest.mark.parametrize("address, value", [
    ("/encoder", float("nan")), ("/encoder", float("inf")), ("/encoder", 3e38), ("/cv/2", float("nan")),
    ("/gate/1", float("nan")), ("/gate/99999999999999999999", 1), ("/button", float("inf")), ("/cv/2", True),
])
def test_odd_numbers_in_osc_are_refused_or_bounded(address, value, capsys):
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message(address, value)
        client.send_message("/gate/1", 1)
        sink.wait_for(1)
        time.sleep(0.05)
    finally:
        board.close()
    assert sink.calls[-1] == ("gate", 1, True)
    assert all(c[0] != "encoder" or abs(c[1]) <= 64 for c in sink.calls)
    assert "Traceback" not in capsys.readouterr().err


def test_an_osc_storm_is_cut_to_the_rate_limit_before_parsing(caplog):
    from neurorack.bench.abuse import send_udp
    from neurorack.hal import osc

    logs.reset()
    sink = Recorder()
    board = SimBoard(load_profile("sim"), sink)
    port = board.start_osc(0)
    server = board._server
    try:
        t0 = time.monotonic()
        send_udp(port, [_bundle(None, "/cv/2", 1.0)] * 8000, per_ms=8)  # about 8000 a second
        elapsed = time.monotonic() - t0
        time.sleep(0.3)
    finally:
        board.close()
    assert server.dropped > 1000
    assert len(sink.calls) <= osc.BURST + osc.MAX_RATE * (elapsed + 0.3) + 50
    assert sum("dropping the excess" in r.getMessage() for r in caplog.records) <= elapsed + 2
