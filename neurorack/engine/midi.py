"""What MIDI means to the module: notes play the gates, CCs move what CVs move, program
changes pick sound A. Pure: messages (mido's, or anything with the same attributes) in,
actions out; no ports, no threads, no engine (``hal/midi.py`` brings the messages, ``module.py``
applies the actions).

- **Notes.** A note-on is a rising edge of gate 1, or of gate 2 for notes on ``gate2_channel``
  or from ``split`` up. Its pitch is ``note - root`` semitones, which the engine plays exactly
  as 1 V/oct: ``semitones / 12`` volts on the pitch (``controls.transpose``). A note-off (or a
  note-on with velocity 0) is the gate's fall once no note holds that gate any more; a chord
  is several rising edges, several voices.
- **Velocity** scales the voice's gain. ``natural`` (the default) is the curve of the MIDI
  DLS/General MIDI specifications, 40·log10(v/127) dB, i.e. (v/127)²: velocity 64 is -12 dB,
  32 is -24 dB, so equal steps of velocity sound like equal steps of effort. ``linear``: v/127;
  ``fixed``: every note at full level.
- **CCs** act on any target a CV can have (a descriptor or the morph), with depth and offset,
  and are added to the CVs. A CC maps its value onto a bipolar CV's -5..+5 V (64 is 0 V, no
  change) or, where it acts as CV N, onto CV N's own range through CV N's assignment (CC 21..24
  act as CV 1..4 by default, as the Organelle maps its knobs).
- **Pick-up or follow** (``takeover``). A controller's value is held by the module (neutral,
  64, at start; and after MIDI learn gives it a new target). ``follow``: every value applies at
  once, so the first move of a knob that sits elsewhere jumps the sound. ``pickup``: values are
  ignored until the controller reaches the held value (within ``PICKUP_WINDOW`` or crossing it
  between two messages); from then on it follows.
- **Program change** n selects the library's n-th sound (in the browser's order) as sound A.
- **Channel**: ``omni`` or 1..16 (``gate2_channel`` is listened to as well).
- **MIDI learn**: ``learn(target)``; the next CC that arrives drives ``target`` from then on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import NeurorackError
from ..hal.cv import RANGES
from ..hal.gates import Gate, GateEdge
from .controls import CvAssignment

OMNI = "omni"
TAKEOVERS = ("pickup", "follow")
VELOCITY_CURVES = ("natural", "linear", "fixed")
PICKUP_WINDOW = 2  # CC steps: close enough to the held value to take over
NEUTRAL = 64  # the CC value that is 0 V
ALL_NOTES_OFF = 123
ALL_SOUND_OFF = 120


@dataclass(frozen=True)
class CcMapping:
    """A CC acts as CV input ``cv`` (its assignment and range), or drives ``target`` itself."""

    cv: int | None = None
    target: str | None = None
    depth: float = 1.0
    offset: float = 0.0

    def __post_init__(self):
        if (self.cv is None) == (self.target is None):
            raise NeurorackError("a CC mapping names either a CV input ('cv') or a target ('target'), not both")
        if self.cv is not None and not (isinstance(self.cv, int) and 1 <= self.cv <= 64):
            raise NeurorackError(f"a CC acts as a CV input 1..64, not {self.cv!r}")
        if self.target is not None:
            CvAssignment(self.target, self.depth, self.offset)  # the same checks as a CV's

    def assignment(self) -> CvAssignment | None:
        """What this CC drives by itself (None: it acts as a CV input and takes that one's)."""
        return None if self.target is None else CvAssignment(self.target, self.depth, self.offset)

    def describe(self) -> str:
        return f"CV {self.cv}" if self.cv is not None else self.target


DEFAULT_CC = {20 + n: CcMapping(cv=n) for n in (1, 2, 3, 4)}


@dataclass(frozen=True)
class MidiConfig:
    port: str = "all"  # "all" (every input, as it appears), "off", "virtual", or (part of) a port's name
    api: str = "auto"  # the MIDI system: "auto" (ALSA where there is one, else JACK), "alsa", "jack"
    channel: str | int = OMNI
    root: int = 60  # the note that plays the sound at its own pitch (middle C)
    split: int | None = None  # notes from this one up play gate 2
    gate2_channel: int | None = None  # notes on this channel play gate 2
    velocity: str = "natural"
    takeover: str = "pickup"
    cc: dict[int, CcMapping] = field(default_factory=lambda: dict(DEFAULT_CC))

    def __post_init__(self):
        if not (self.channel == OMNI or _is_int(self.channel, 1, 16)):
            raise NeurorackError(f"midi channel must be \"omni\" or 1..16, not {self.channel!r}")
        if self.gate2_channel is not None and not _is_int(self.gate2_channel, 1, 16):
            raise NeurorackError(f"midi gate2_channel must be 1..16 (or absent), not {self.gate2_channel!r}")
        for key in ("root", "split"):
            value = getattr(self, key)
            if (value is not None or key == "root") and not _is_int(value, 0, 127):
                raise NeurorackError(f"midi {key} must be a note number 0..127, not {value!r}")
        if self.velocity not in VELOCITY_CURVES:
            raise NeurorackError(f"midi velocity must be one of {', '.join(VELOCITY_CURVES)}, not {self.velocity!r}")
        if self.takeover not in TAKEOVERS:
            raise NeurorackError(f"midi takeover must be one of {', '.join(TAKEOVERS)}, not {self.takeover!r}")
        if self.api not in ("auto", "alsa", "jack"):
            raise NeurorackError(f"midi api must be auto, alsa or jack, not {self.api!r}")
        if not isinstance(self.port, str) or not self.port.strip() or len(self.port) > 128:
            raise NeurorackError(f"midi port must be all, off, virtual or a port's name, not {self.port!r:.40}")
        for number in self.cc:
            if not _is_int(number, 0, 127):
                raise NeurorackError(f"midi cc: {number!r} is not a controller number 0..127")


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


# -- what the module does with a message -------------------------------------------------------
@dataclass(frozen=True)
class Note:
    """A gate edge from a note: rising with the note's pitch and gain; falling when no note holds the gate."""

    edge: GateEdge
    note: int = 0
    semitones: int = 0  # from the root
    gain: float = 1.0


@dataclass(frozen=True)
class Cc:
    """CC `number` now reads `volts` on the CV scale of what it drives."""

    number: int
    volts: float


@dataclass(frozen=True)
class Program:
    number: int


@dataclass(frozen=True)
class Learned:
    """MIDI learn: CC `number` now drives `mapping`."""

    number: int
    mapping: CcMapping


def velocity_gain(velocity: int, curve: str = "natural") -> float:
    """A note's gain for `velocity` 1..127 (module docstring)."""
    v = min(127, max(0, int(velocity))) / 127
    return 1.0 if curve == "fixed" else v if curve == "linear" else v * v


def cc_volts(value: int, range_: str = "bipolar") -> float:
    """A CC value 0..127 as CV volts: bipolar, 64 is 0 V and 127 is +5 V (0 and 1 are -5 V);
    unipolar 0..10 V."""
    low, high = RANGES[range_]
    if low < 0:
        return min(high, max(low, (value - NEUTRAL) / (127 - NEUTRAL) * high))
    return low + (high - low) * value / 127


class MidiMap:
    """Messages to actions, with the state that needs: held notes, picked-up controllers,
    MIDI learn. One thread at a time (the MIDI input's; the module serialises)."""

    def __init__(self, config: MidiConfig | None = None, cv_ranges: dict[int, str] | None = None):
        self.config = config or MidiConfig()
        self.cv_ranges = dict(cv_ranges or {})
        self.held: dict[Gate, set[tuple[int, int]]] = {Gate.IMPACT: set(), Gate.MORPH: set()}  # -> (channel, note)
        self.cc_values: dict[int, int] = {}  # last value seen per controller
        self.cc_held: dict[int, int] = {}  # the value the module holds per controller (pick-up)
        self.picked: set[int] = set()
        self.learning: str | None = None

    def configure(self, config: MidiConfig) -> None:
        """New settings; a controller whose mapping changed must be picked up again."""
        for number in set(self.config.cc) | set(config.cc):
            if self.config.cc.get(number) != config.cc.get(number):
                self.picked.discard(number)
        self.config = config

    def learn(self, target: str | None) -> None:
        """The next CC drives `target` (None: stop learning)."""
        if target is not None:
            CcMapping(target=target)  # a clear error for a target a CV cannot have
        self.learning = target

    def forget_controllers(self) -> None:
        """A device came back: where its knobs are now is unknown, so pick-up starts again."""
        self.picked.clear()
        self.cc_values.clear()

    def listens(self, channel: int) -> bool:
        c = self.config
        return c.channel == OMNI or channel + 1 == c.channel or channel + 1 == c.gate2_channel

    def handle(self, message, at_ns: int) -> list:
        kind = getattr(message, "type", None)
        channel = getattr(message, "channel", None)
        if channel is None or not self.listens(channel):
            return []
        if kind == "note_on" and message.velocity > 0:
            return self._note_on(channel, message.note, message.velocity, at_ns)
        if kind in ("note_on", "note_off"):
            return self._note_off(channel, message.note, at_ns)
        if kind == "control_change":
            if message.control in (ALL_NOTES_OFF, ALL_SOUND_OFF):
                return self.all_notes_off(at_ns)
            return self._cc(message.control, message.value)
        if kind == "program_change":
            return [Program(message.program)]
        return []

    def gate_of(self, channel: int, note: int) -> Gate:
        c = self.config
        if c.gate2_channel is not None and channel + 1 == c.gate2_channel:
            return Gate.MORPH
        return Gate.MORPH if c.split is not None and note >= c.split else Gate.IMPACT

    def _note_on(self, channel: int, note: int, velocity: int, at_ns: int) -> list:
        gate = self.gate_of(channel, note)
        self.held[gate].add((channel, note))
        return [Note(GateEdge(gate, True, at_ns), note, note - self.config.root,
                     velocity_gain(velocity, self.config.velocity))]

    def _note_off(self, channel: int, note: int, at_ns: int) -> list:
        gate = self.gate_of(channel, note)
        held = self.held[gate]
        if (channel, note) not in held:
            return []  # a note-off for a note this module never saw start
        held.discard((channel, note))
        return [] if held else [Note(GateEdge(gate, False, at_ns), note, note - self.config.root)]

    def all_notes_off(self, at_ns: int) -> list:
        actions = [Note(GateEdge(gate, False, at_ns)) for gate, held in self.held.items() if held]
        for held in self.held.values():
            held.clear()
        return actions

    def _cc(self, number: int, value: int) -> list:
        if self.learning is not None:
            mapping, self.learning = CcMapping(target=self.learning), None
            self.config = replace(self.config, cc={**self.config.cc, number: mapping})
            self.picked.discard(number)
            self.cc_held[number] = NEUTRAL  # a new target starts from no change
            self.cc_values[number] = value
            return [Learned(number, mapping)]
        mapping = self.config.cc.get(number)
        previous = self.cc_values.get(number)
        self.cc_values[number] = value
        if mapping is None:
            return []
        if self.config.takeover == "pickup" and number not in self.picked:
            held = self.cc_held.get(number, NEUTRAL)
            crossed = previous is not None and min(previous, value) <= held <= max(previous, value)
            if not (abs(value - held) <= PICKUP_WINDOW or crossed):
                return []
            self.picked.add(number)
        self.cc_held[number] = value
        return [Cc(number, self.volts(number, value))]

    def volts(self, number: int, value: int) -> float:
        mapping = self.config.cc[number]
        range_ = self.cv_ranges.get(mapping.cv, "bipolar") if mapping.cv is not None else "bipolar"
        return cc_volts(value, range_)

