"""ADC drivers, register-level: MCP3008/MCP3208 over SPI, ADS1015/ADS1115 over I2C.

Each driver takes an already opened bus object (``spidev.SpiDev``, ``smbus2.SMBus``, or a test
emulator with the same methods) and returns the voltage at the ADC pin. Scaling to module
volts, calibration and clamping live in ``neurorack.hal.cv``.

Example, on a Pi with an MCP3208 on SPI0 CE0::

    import spidev
    spi = spidev.SpiDev(); spi.open(0, 0); spi.max_speed_hz = 1_000_000; spi.mode = 0
    adc = MCP3x08(spi, bits=12, vref=3.3)
    volts = adc.read_volts(0)
"""
from __future__ import annotations

import time

from ..errors import NeurorackError


class AdcError(NeurorackError):
    """The ADC did not answer, or answered something impossible."""


class MCP3x08:
    """Microchip MCP3008 (10-bit) and MCP3208 (12-bit): 8 single-ended inputs, SPI mode 0.

    A conversion is one 3-byte transfer. The host sends a start bit, SGL/DIFF = 1 and the
    channel D2 D1 D0, placed so that the chip's null bit and its result end exactly at the
    last clock (datasheet, "Using the MCP3x08 with microcontroller SPI ports").
    """

    CHANNELS = 8

    def __init__(self, spi, bits: int = 12, vref: float = 3.3):
        if bits not in (10, 12):
            raise ValueError("MCP3008 has 10 bits, MCP3208 12")
        self.spi = spi
        self.bits = bits
        self.vref = vref
        self.full_scale = (1 << bits) - 1

    def command(self, channel: int) -> list[int]:
        """The three bytes that request a single-ended conversion of `channel`."""
        if not 0 <= channel < self.CHANNELS:
            raise ValueError(f"channel {channel} outside 0..7")
        if self.bits == 12:  # start bit at bit 5 of byte 0: 0 0 0 0 0 1 SGL D2 | D1 D0 x x x x x x
            return [0x06 | (channel >> 2), (channel & 0x03) << 6, 0x00]
        return [0x01, (0x08 | channel) << 4, 0x00]  # 0 ... 1 | SGL D2 D1 D0 x x x x

    def read_raw(self, channel: int) -> int:
        try:
            reply = self.spi.xfer2(self.command(channel))
        except OSError as exc:
            raise AdcError(f"SPI transfer to the MCP3{'2' if self.bits == 12 else '0'}08 failed: {exc}") from None
        if len(reply) != 3:
            raise AdcError(f"SPI reply of {len(reply)} bytes, expected 3")
        high_mask = 0x0F if self.bits == 12 else 0x03
        # The bit just before the result is the chip's null bit: always 0. A 1 there means the
        # line floats high (chip missing or unpowered).
        null_bit = reply[1] & (high_mask + 1)
        if null_bit:
            raise AdcError("ADC sent no null bit: is the chip connected and powered?")
        return ((reply[1] & high_mask) << 8) | reply[2]

    def read_volts(self, channel: int) -> float:
        return self.read_raw(channel) * self.vref / self.full_scale


# ADS1x15 registers and config fields (datasheet SBAS444, section 8.6).
REG_CONVERSION, REG_CONFIG = 0x00, 0x01
OS_START = 0x8000  # write: start a single conversion; read: 1 = idle
MODE_SINGLE = 0x0100
COMP_DISABLE = 0x0003
PGA_FULL_SCALE = {6.144: 0b000, 4.096: 0b001, 2.048: 0b010, 1.024: 0b011, 0.512: 0b100, 0.256: 0b101}
ADS1115_RATES = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 250: 5, 475: 6, 860: 7}
ADS1015_RATES = {128: 0, 250: 1, 490: 2, 920: 3, 1600: 4, 2400: 5, 3300: 6}


class ADS1x15:
    """TI ADS1015 (12-bit) and ADS1115 (16-bit): 4 single-ended inputs over I2C.

    Single-shot: write the config with OS = 1 and the channel's MUX, wait until OS reads back 1,
    read the conversion register. Continuous: write the config once with MODE = 0, then read the
    conversion register whenever wanted (one channel at a time, as the chip converts one MUX).
    """

    CHANNELS = 4

    def __init__(self, bus, address: int = 0x48, bits: int = 16, full_scale: float = 4.096,
                 rate: int | None = None, timeout_s: float = 0.05):
        if bits not in (12, 16):
            raise ValueError("ADS1015 has 12 bits, ADS1115 16")
        if full_scale not in PGA_FULL_SCALE:
            raise ValueError(f"full scale must be one of {sorted(PGA_FULL_SCALE)} V")
        rates = ADS1115_RATES if bits == 16 else ADS1015_RATES
        rate = rate or (860 if bits == 16 else 3300)
        if rate not in rates:
            raise ValueError(f"data rate must be one of {sorted(rates)} samples/s")
        self.bus, self.address, self.bits = bus, address, bits
        self.full_scale, self.rate = full_scale, rate
        self._rate_bits = rates[rate]
        self.timeout_s = timeout_s

    def config(self, channel: int) -> int:
        """The 16-bit config word for a single-shot, single-ended conversion of `channel`.

        Single-shot only: the poller reads every CV channel in turn, and the multiplexer must
        settle and convert anew after each switch whichever mode the chip is in; continuous
        mode would save I2C time only on a board with a single channel."""
        if not 0 <= channel < self.CHANNELS:
            raise ValueError(f"channel {channel} outside 0..3")
        word = ((0b100 | channel) << 12) | (PGA_FULL_SCALE[self.full_scale] << 9) | (self._rate_bits << 5) | COMP_DISABLE
        return word | OS_START | MODE_SINGLE

    def _write(self, register: int, word: int) -> None:
        try:
            self.bus.write_i2c_block_data(self.address, register, [(word >> 8) & 0xFF, word & 0xFF])
        except OSError as exc:
            raise AdcError(f"I2C write to the ADS1x15 at 0x{self.address:02x} failed: {exc}") from None

    def _read(self, register: int) -> int:
        try:
            data = self.bus.read_i2c_block_data(self.address, register, 2)
        except OSError as exc:
            raise AdcError(f"I2C read from the ADS1x15 at 0x{self.address:02x} failed: {exc}") from None
        if len(data) != 2:
            raise AdcError(f"I2C reply of {len(data)} bytes, expected 2")
        return (data[0] << 8) | data[1]

    def _code_to_volts(self, word: int) -> float:
        signed = word - 0x10000 if word & 0x8000 else word
        if self.bits == 12:
            signed >>= 4  # left-aligned 12-bit result
            return signed * self.full_scale / 2048
        return signed * self.full_scale / 32768

    def read_volts(self, channel: int) -> float:
        """Single-shot conversion (the chip sleeps between conversions)."""
        self._write(REG_CONFIG, self.config(channel))
        deadline = time.monotonic() + self.timeout_s
        time.sleep(1.0 / self.rate)  # one conversion period, then poll
        while not self._read(REG_CONFIG) & OS_START:
            if time.monotonic() > deadline:
                raise AdcError(f"ADS1x15 conversion did not finish within {self.timeout_s * 1000:.0f} ms")
            time.sleep(0.0002)
        return self._code_to_volts(self._read(REG_CONVERSION))
