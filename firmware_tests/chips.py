"""Emulated chips for the hardware tests: they answer the protocol, so the real drivers run.

FakeMCP3x08 is an SPI device (spidev's xfer2) that decodes the command bit by bit as the
MCP3008/MCP3208 datasheet describes and clocks out a null bit and the result. FakeADS1x15 is
an I2C device (smbus2's block reads and writes) holding the ADS1015/ADS1115 registers.
"""
from __future__ import annotations


class FakeMCP3x08:
    def __init__(self, bits: int = 12, vref: float = 3.3, volts=None):
        self.bits, self.vref = bits, vref
        self.volts = dict(volts or {})
        self.sent: list[list[int]] = []
        self.fail = False

    def code(self, channel: int) -> int:
        v = min(max(self.volts.get(channel, 0.0), 0.0), self.vref)
        return round(v / self.vref * ((1 << self.bits) - 1))

    def xfer2(self, data):
        if self.fail:
            raise OSError(5, "Input/output error")
        self.sent.append(list(data))
        bits_in = [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]
        bits_out = [1] * len(bits_in)  # DOUT is high-impedance (pulled up) until the null bit
        start = bits_in.index(1)
        single_ended = bits_in[start + 1]
        assert single_ended == 1, "differential mode was not asked for"
        channel = (bits_in[start + 2] << 2) | (bits_in[start + 3] << 1) | bits_in[start + 4]
        null = start + 6  # one sampling clock after D0, then the null bit
        value = self.code(channel)
        bits_out[null] = 0
        for i in range(self.bits):
            if null + 1 + i < len(bits_out):
                bits_out[null + 1 + i] = (value >> (self.bits - 1 - i)) & 1
        return [sum(bit << (7 - i) for i, bit in enumerate(bits_out[k:k + 8])) for k in range(0, len(bits_out), 8)]


class FakeADS1x15:
    PGA = {0: 6.144, 1: 4.096, 2: 2.048, 3: 1.024, 4: 0.512, 5: 0.256, 6: 0.256, 7: 0.256}

    def __init__(self, bits: int = 16, address: int = 0x48, volts=None, busy_reads: int = 2):
        self.bits, self.address = bits, address
        self.volts = dict(volts or {})
        self.registers = {0: 0x0000, 1: 0x8583, 2: 0x8000, 3: 0x7FFF}  # power-on values
        self.busy_reads = busy_reads
        self._busy = 0
        self.writes: list[tuple[int, list[int]]] = []
        self.silent = False

    def _check(self, address):
        if self.silent or address != self.address:
            raise OSError(121, "Remote I/O error")  # no ACK, as an absent chip answers

    def _convert(self):
        config = self.registers[1]
        mux = (config >> 12) & 0b111
        assert mux & 0b100, "only single-ended inputs are wired"
        fs = self.PGA[(config >> 9) & 0b111]
        v = self.volts.get(mux & 0b011, 0.0)
        if self.bits == 16:
            code = max(-32768, min(32767, round(v / fs * 32768)))
        else:
            code = max(-2048, min(2047, round(v / fs * 2048))) << 4
        self.registers[0] = code & 0xFFFF

    def write_i2c_block_data(self, address, register, data):
        self._check(address)
        self.writes.append((register, list(data)))
        word = (data[0] << 8) | data[1]
        if register == 1:
            single = word & 0x0100
            self.registers[1] = word & 0x7FFF  # OS reads 0 while converting
            if single and word & 0x8000:
                self._busy = self.busy_reads
                self._convert()
            elif not single:
                self._convert()
        else:
            self.registers[register] = word

    def read_i2c_block_data(self, address, register, length):
        self._check(address)
        if register == 1:
            word = self.registers[1]
            if self._busy:
                self._busy -= 1
            elif word & 0x0100:
                word |= 0x8000  # idle again: conversion done
        else:
            if register == 0 and not self.registers[1] & 0x0100:
                self._convert()  # continuous mode: always the latest sample
            word = self.registers[register]
        return [(word >> 8) & 0xFF, word & 0xFF][:length]


class FakeGPIO:
    """The RPi.GPIO module's API (as RPi.GPIO, rpi-lgpio and Jetson.GPIO share it), with pins a
    test drives: drive(pin, level) changes the level and fires edge callbacks like the library."""

    BCM, BOARD = 11, 10
    IN, OUT = 1, 0
    PUD_UP, PUD_DOWN, PUD_OFF = 22, 21, 20
    RISING, FALLING, BOTH = 31, 32, 33

    def __init__(self):
        self.mode = None
        self.levels: dict[int, int] = {}
        self.callbacks: dict[int, tuple[int, object]] = {}

    def setwarnings(self, flag):
        pass

    def setmode(self, mode):
        self.mode = mode

    def setup(self, pin, direction, pull_up_down=20):
        assert self.mode is not None, "setmode() must come first, as RPi.GPIO insists"
        self.levels[pin] = 1 if pull_up_down == self.PUD_UP else 0

    def input(self, pin):
        return self.levels[pin]

    def add_event_detect(self, pin, edge, callback=None, bouncetime=None):
        if pin in self.callbacks:
            raise RuntimeError("Conflicting edge detection already enabled for this GPIO channel")
        self.callbacks[pin] = (edge, callback)

    def remove_event_detect(self, pin):
        self.callbacks.pop(pin, None)

    def drive(self, pin, level):
        old, self.levels[pin] = self.levels[pin], level
        if old == level or pin not in self.callbacks:
            return
        edge, callback = self.callbacks[pin]
        if edge == self.BOTH or (edge == self.RISING) == bool(level):
            callback(pin)


class FakeLgpio:
    """The lgpio module's API over gpiochips a test drives: ``drive(pin, level, stamp_ns)``
    changes a line and calls the alert callbacks as lgpio's thread does, with the kernel's
    timestamp of the edge (``stamp_ns``), which may be well before the callback runs."""

    SET_PULL_UP, SET_PULL_DOWN = 32, 64
    RISING_EDGE, FALLING_EDGE, BOTH_EDGES = 1, 2, 3
    TIMEOUT = 2

    def __init__(self, labels=("pinctrl-rp1",)):
        self.labels = list(labels)  # gpiochip N's label
        self.levels: dict[int, int] = {}
        self.alerts: dict[int, object] = {}
        self.claimed: set[int] = set()
        self.open_handles: set[int] = set()

    def error_text(self, code):
        return {-1: "bad chip", -8: "GPIO busy"}.get(code, f"error {code}")

    def gpiochip_open(self, chip):
        if not 0 <= chip < len(self.labels):
            return -1
        handle = 100 + chip
        self.open_handles.add(handle)
        return handle

    def gpiochip_close(self, handle):
        self.open_handles.discard(handle)
        return 0

    def gpio_get_chip_info(self, handle):
        return 0, 54, f"gpiochip{handle - 100}", self.labels[handle - 100]

    def gpio_claim_input(self, handle, gpio, lFlags=0):  # noqa: N803 - lgpio's names
        self.levels[gpio] = 1 if lFlags & self.SET_PULL_UP else 0
        self.claimed.add(gpio)
        return 0

    def gpio_claim_alert(self, handle, gpio, eFlags, lFlags=0, notify_handle=None):  # noqa: N803
        if eFlags not in (self.RISING_EDGE, self.FALLING_EDGE, self.BOTH_EDGES):
            return -5
        self.levels.setdefault(gpio, 1 if lFlags & self.SET_PULL_UP else 0)
        self.claimed.add(gpio)
        return 0

    def gpio_read(self, handle, gpio):
        return self.levels[gpio]

    def gpio_free(self, handle, gpio):
        self.claimed.discard(gpio)
        self.alerts.pop(gpio, None)
        return 0

    def callback(self, handle, gpio, edge, func):
        fake = self

        class Callback:
            def cancel(self):
                fake.alerts.pop(gpio, None)

        self.alerts[gpio] = func
        return Callback()

    def drive(self, pin, level, stamp_ns):
        old, self.levels[pin] = self.levels[pin], level
        if old != level and pin in self.alerts:
            self.alerts[pin](0, pin, level, stamp_ns)
