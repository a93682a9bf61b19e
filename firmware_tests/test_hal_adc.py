import pytest

from chips import FakeADS1x15, FakeMCP3x08
from neurorack.hal.adc import ADS1x15, AdcError, MCP3x08


def test_mcp3208_sends_the_datasheet_bytes_and_reads_every_channel():
    chip = FakeMCP3x08(bits=12, vref=3.3, volts={c: 0.4 * c for c in range(8)})
    adc = MCP3x08(chip, bits=12, vref=3.3)
    assert adc.command(0) == [0x06, 0x00, 0x00]
    assert adc.command(5) == [0x07, 0x40, 0x00]
    assert adc.command(7) == [0x07, 0xC0, 0x00]
    for c in range(8):
        assert adc.read_volts(c) == pytest.approx(min(0.4 * c, 3.3), abs=3.3 / 4095)
    assert chip.sent[5] == [0x07, 0x40, 0x00]


def test_mcp3008_ten_bit_framing():
    chip = FakeMCP3x08(bits=10, vref=3.3, volts={3: 3.3, 6: 1.0})
    adc = MCP3x08(chip, bits=10, vref=3.3)
    assert adc.command(3) == [0x01, 0xB0, 0x00]
    assert adc.read_raw(3) == 1023
    assert adc.read_volts(6) == pytest.approx(1.0, abs=3.3 / 1023)


def test_mcp_missing_chip_and_bus_errors_are_clear():
    class Floating:  # MISO pulled high, no chip: every bit reads 1, the null bit too
        def xfer2(self, data):
            return [0xFF] * len(data)

    with pytest.raises(AdcError, match="null bit"):
        MCP3x08(Floating()).read_volts(0)
    chip = FakeMCP3x08()
    chip.fail = True
    with pytest.raises(AdcError, match="SPI transfer"):
        MCP3x08(chip).read_volts(0)
    with pytest.raises(ValueError):
        MCP3x08(FakeMCP3x08()).read_volts(8)


@pytest.mark.parametrize("bits", [16, 12])
def test_ads1x15_single_shot_writes_the_config_and_waits_for_the_conversion(bits):
    chip = FakeADS1x15(bits=bits, volts={0: 1.25, 1: -0.5, 2: 3.9, 3: 5.0}, busy_reads=3)
    adc = ADS1x15(chip, bits=bits, full_scale=4.096)
    lsb = 4.096 / (32768 if bits == 16 else 2048)
    assert adc.read_volts(0) == pytest.approx(1.25, abs=lsb)
    assert adc.read_volts(1) == pytest.approx(-0.5, abs=lsb)
    assert adc.read_volts(2) == pytest.approx(3.9, abs=lsb)
    assert adc.read_volts(3) == pytest.approx(4.096 - lsb, abs=lsb)  # clipped at full scale
    rate = 0b111 if bits == 16 else 0b110  # 860 or 3300 samples/s
    # OS=1, MUX=100 (AIN0/GND), PGA=001 (4.096 V), MODE=1, DR, comparator off
    assert chip.writes[0] == (0x01, [0xC3, (rate << 5) | 0x03])


def test_ads_absent_or_stuck_chip_is_reported():
    chip = FakeADS1x15()
    chip.silent = True
    with pytest.raises(AdcError, match="I2C write"):
        ADS1x15(chip).read_volts(0)
    stuck = FakeADS1x15(busy_reads=10 ** 6)
    with pytest.raises(AdcError, match="did not finish"):
        ADS1x15(stuck, timeout_s=0.01).read_volts(0)
