r"""Kenwood FleetSync I / II over audio: MSK bursts in a radio's voice audio -> ptt / status / alert /
beacon events, and the encoder that makes such bursts. Sans-I/O and vectorised with numpy/scipy.

On the air (one burst; every field MSB first; bits are the tones themselves, not NRZI)::

    1200 baud: 1 = 1200 Hz, 0 = 1800 Hz        2400 baud: 1 = 1200 Hz, 0 = 2400 Hz
    (both MSK: the tones are half the bit rate apart, and the phase is continuous)

    ... 1010 1010 1010 1010 | 0010 0011 1110 1011 | block 1 | block 2 | ... | block n
        dotting (>= 16 bits)    sync 0x23EB           64 bits each (FleetSync I), or 256 (II)

    block (64 bits):  48 data bits | CRC-15 (15 bits) | even parity (1 bit)
        CRC-15: generator x^15+x^14+x^13+x^11+x^4+x^2+1 (0x6815) over the 48 data bits, MSB first,
        register starting at 0 and the result XORed with 1; the parity bit makes the 64 bits even.

    data of block 1 (6 bytes):
        byte 0   flags / status    bits 7..1: status number - 9 (7 bits) in a status message;
                                   otherwise flags that are SET WHEN 0: 0x40 emergency, 0x10 lone
                                   worker, 0x04 paging, 0x02 end of transmission; bit 0: "all" flag
        byte 1   message type      0x80 ANI, 0x40 status, 0x20 acknowledge (0x04 also set),
                                   0x02 GPS extension, 0x01 fleet extension (block 2 byte 0 = to fleet)
        byte 2   from fleet - 99   (fleet 100..354; 0 = none/all)
        byte 3, high nibble of 4   from unit - 999 (12 bits: unit 1000..5094; 0 = none/all)
        low nibble of 4, byte 5    to unit - 999
    FleetSync II sends each 64-bit block as 16 BCH(15,7) code words of 16 bits (256 bits): code
    word k of a 64-bit group carries data nibble k in its bits 11..8; a group's four 16-bit words are
    in the order (bits 16-31, 0-15, 48-63, 32-47) of that group, and four groups make one block.

Sources (read for facts, no code taken):

- Matthew Kaufman's fsync Encoder/Decoder Library, fsync_decode.c / fsync_common.c
  (github.com/atmatthewat/fsync-encode-decode, GPL-2.0): the tones and bit rates (correlators at
  1200/1800 Hz for 1200 baud and 1200/2400 Hz for 2400 baud, 1200 Hz = 1), the 32-bit sync window
  0xAAAA23EB (and 0xAAAA052B, "or can also be"), the CRC with its parity bit, the FleetSync II
  (15,7) parity-check and repair tables and nibble order, the byte layout (fleet + 99, unit + 999,
  bit 0 of byte 0 "all", bit 0 of byte 1 fleet extension), and multi-block messages that end at the
  first block that fails.
- sdrtrunk (github.com/DSheirer/sdrtrunk), module/decode/fleetsync2 and edac/CRCFleetsync.java: the
  5 bit reversals + sync 0x23EB (bits/SyncPattern), the flags of bytes 0 and 1 and which of them are
  inverted, the status field, the CRC-15 generator, its per-bit syndrome table (our bit-exact test
  vectors, tests/data/fleetsync) and the even parity bit, and the GPS LocationReport field layout.
- MattCheramie/GopherTrunk internal/radio/fleetsync: the same framing decodes real Kenwood off-air
  FleetSync I and FleetSync II ANI bursts (fleet 107 unit 1772, its testdata README) -- at 1200 baud
  for both.

What is confirmed, and what is not:

- Confirmed by two or more independent sources: sync, tones, CRC-15 + parity, the id fields.
- "FleetSync II" is the error-corrected block coding (Kaufman's ``is_fsync2``); the bit rate is
  independent of it (Kaufman reports ``is_2400`` apart, GopherTrunk decodes FleetSync II at 1200 baud).
  So ``version`` here is the coding and ``baud`` the rate; the encoder's default baud is 1200 for
  version 1 and 2400 for version 2, as Kenwood markets them. The decoder tries both codings at both
  rates.
- FleetSync II: bits 14..12 and 15 of each code word are not read by any source; we send 0.
- Status number = 7-bit field + 9: sdrtrunk's older FleetsyncMessage.getStatus (its newer code
  reports the field itself). It fits Kenwood's status numbers 10..99 (TK-2170 Function Reference,
  table 20-8, see :mod:`drivers.kenwood`), from which the default emergency statuses 95..99 come.
- Flag semantics (emergency, lone worker, paging, end of transmission, acknowledge) come from
  sdrtrunk alone. An emergency is checked before paging here (an alert must not be lost).
- GPS: UNCONFIRMED. sdrtrunk's LocationReport layout (8 blocks: time in block 3, latitude ddmm +
  1/10000 minute in block 4, date and longitude in block 5, heading in 6, speed in 8) is used, but
  its longitude fraction runs into the CRC bits of block 5, so only its 7 high bits are read (about
  0.013 minute, 24 m, of error), and no source knows the hemispheres (option ``gps_hemisphere``,
  default "NE"). Kaufman reads message type 0x42 as a length-prefixed byte payload instead and is
  unsure of it for GPS; that payload is kept in ``detail["payload"]``. A GPS message whose blocks
  are missing becomes a ``status`` event with its raw bytes.
- Emergency acknowledgement: FleetSync has an acknowledge message type (sdrtrunk); that a radio
  leaves emergency mode on one addressed to it is NOT confirmed. :func:`emergency_ack` builds it;
  status 88 "emergency reset" (Kenwood reserved status) is the other candidate, :func:`status_message`.

Signal chain (per bit rate, per demodulator variant; state carried between blocks, so any split of
the audio gives the same bits)::

    samples x e^{-j2π·fc·t} (fc = centre of the two tones) -> Butterworth low-pass -> decimate
      -> differential detector d = Im(z[n] · conj(z[n - T]))  (MSK turns the phase ±π/2 a bit:
         d < 0 is the 1200 Hz tone, a 1) -> zero crossings -> bit clock (a second-order loop over
         the crossings: phase and rate, so long runs of one tone keep their clock) -> one bit
         sampled half a bit after the crossing phase
      -> sync search (<= 3 bit errors in 0xAAAA23EB) -> blocks (CRC, or BCH + CRC) -> events

Several variants (low-pass widths) run at once; a message several of them decode is reported once,
the one with the most blocks (then the first variant) winning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import signal

from drivers.audio.base import AudioDecoder, Samples
from drivers.base import Output
from gateway.events import Decoded, Kind, Position

Float = npt.NDArray[np.float64]
Complex = npt.NDArray[np.complex128]
Bits = npt.NDArray[np.uint8]

#: Tones per bit rate: (frequency of a 1, frequency of a 0) -- Kaufman fsync_decode.c correlators.
TONES: dict[int, tuple[float, float]] = {1200: (1200.0, 1800.0), 2400: (1200.0, 2400.0)}
BAUDS = (1200, 2400)
SYNC = 0x23EB  # sdrtrunk SyncPattern FLEETSYNC2, Kaufman's sync window
ALT_SYNC = 0x052B  # Kaufman: "sync 23eb or can also be 0x052B?"
SYNC_WINDOW = 32  # 16 dotting bits + 16 sync bits are compared
MAX_SYNC_ERRORS = 3  # Kaufman FSYNC_GDTHRESH 4: fewer than 4 bit errors in the 32
CRC_POLY = 0x6815  # sdrtrunk CRCFleetsync: x^15+x^14+x^13+x^11+x^4+x^2+1
MAX_BLOCKS = 24  # Kaufman keeps up to 128 payload bytes (about 23 blocks)
GPS_BLOCKS = 8  # sdrtrunk LocationReport.getBlockCount
DEFAULT_EMERGENCY_STATUS = (95, 96, 97, 98, 99)  # Kenwood: reserved for emergency mode (kenwood.py)
# Bit clock: each crossing pulls the phase by this much of its error (afsk's CLOCK_INERTIA 0.8 is the
# same pull), and the rate by a second, smaller gain; a clock more than 3 % off is no FleetSync.
CLOCK_GAIN = 0.2
CLOCK_RATE_GAIN = 0.004
MAX_CLOCK_RATE = 0.03
CHUNK_SECONDS = 0.25  # audio is demodulated in pieces of at least this length (see feed)
DEDUP_BITS = 12  # two decodes of one burst start within this many bit times of each other

# Message type bits (byte 1) and inverted flags (byte 0), sdrtrunk Fleetsync2Message.
T_ANI, T_STATUS, T_ACK, T_ACK2, T_GPS, T_FLEET_EXT = 0x80, 0x40, 0x20, 0x04, 0x02, 0x01
F_EMERGENCY, F_LONE_WORKER, F_PAGING, F_EOT, F_ALL = 0x40, 0x10, 0x04, 0x02, 0x01
NO_FLAGS = 0xFE  # every inverted flag off, "all" off


# --- codes ----------------------------------------------------------------------------------------


def _crc_table() -> npt.NDArray[np.int64]:
    """The CRC-15 of each single data bit (a linear code: a block's CRC is 1 XOR those of its 1s)."""
    out = np.zeros(48, np.int64)
    for i in range(48):
        reg = 0
        for k in range(48):
            feedback = (1 if k == i else 0) ^ (reg >> 14) & 1
            reg = (reg << 1) & 0x7FFF
            if feedback:
                reg ^= CRC_POLY
        out[i] = reg
    return out


CRC_SYNDROMES = _crc_table()


def crc15(data: int) -> int:
    """CRC-15 of 48 data bits (an int, MSB first), initial fill 1 as sdrtrunk puts it."""
    value = 1
    for i in range(48):
        if data >> (47 - i) & 1:
            value ^= int(CRC_SYNDROMES[i])
    return value


def block_word(data: bytes) -> int:
    """The 64-bit block of 6 data bytes: data, CRC-15, even parity."""
    d = int.from_bytes(data, "big")
    word = d << 16 | crc15(d) << 1
    return word | (bin(word).count("1") & 1)


def block_ok(word: int) -> bool:
    return bin(word).count("1") % 2 == 0 and (word >> 1) & 0x7FFF == crc15(word >> 16)


# BCH(15,7) parity checks and their syndromes of single errors (Kaufman fsync_common.c pcheck).
BCH_CHECKS = (0x4045, 0x2067, 0x1076, 0x083B, 0x0458, 0x022C, 0x0116, 0x008B)


def _syndrome(word: int) -> int:
    return sum((bin(c & word).count("1") & 1) << i for i, c in enumerate(BCH_CHECKS))


_SINGLE = {_syndrome(1 << b): b for b in range(15)}
# Bits 14..8 are an information set of the code: one code word for each of their 128 values.
_CODEWORDS = {v >> 8: v for v in range(1 << 15) if _syndrome(v) == 0}
# Decoding table over all 16-bit words: the data nibble, or -1 where more than one bit is wrong.
_BCH_NIBBLE = np.full(1 << 16, -1, np.int16)
for _w in range(1 << 16):
    _s = _syndrome(_w & 0x7FFF)
    if _s == 0:
        _BCH_NIBBLE[_w] = (_w >> 8) & 0xF
    elif _s in _SINGLE:
        _BCH_NIBBLE[_w] = ((_w ^ (1 << _SINGLE[_s])) >> 8) & 0xF
del _w, _s

# Within each 64-bit group, the 16-bit words in nibble order (Kaufman: "swap is deliberate").
_FS2_ORDER = (16, 0, 48, 32)


def fs2_encode_block(word: int) -> list[int]:
    """The 256 bits that carry one 64-bit block in FleetSync II (bits 15 and 14..12 sent as 0)."""
    bits: list[int] = []
    for group in range(4):
        halves = [0, 0, 0, 0]
        for k, offset in enumerate(_FS2_ORDER):
            nibble = (word >> (60 - 16 * group - 4 * k)) & 0xF
            halves[offset // 16] = _CODEWORDS[nibble]
        for half in halves:
            bits.extend((half >> (15 - i)) & 1 for i in range(16))
    return bits


def fs2_decode_block(bits: Bits) -> int | None:
    """The 64-bit block from its 256 FleetSync II bits, or None where a code word is beyond repair."""
    halves = np.packbits(bits.reshape(16, 16), axis=1).astype(np.int64)
    words = halves[:, 0] << 8 | halves[:, 1]
    nibbles = _BCH_NIBBLE[words].reshape(4, 4)  # (group, 16-bit word in time order)
    if (nibbles < 0).any():
        return None
    value = 0
    for group in range(4):
        for offset in _FS2_ORDER:
            value = value << 4 | int(nibbles[group, offset // 16])
    return value


def _bits_to_int(bits: Bits) -> int:
    return int.from_bytes(np.packbits(bits).tobytes(), "big") >> (-bits.size % 8)


# --- messages -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetSyncMessage:
    """One FleetSync message: the two bytes of type and flags, the ids, and any further data blocks.

    Ids are what radios show: fleet 100..354, unit 1000..5094; None is the field's 0 ("none" or
    "all"). ``extra`` holds the 6 data bytes of every block after the first (block 2 starts with
    the destination fleet when ``to_fleet`` is given: it is filled in by :func:`data_blocks`).
    """

    byte0: int
    byte1: int
    fleet: int | None
    unit: int | None
    to_fleet: int | None = None
    to_unit: int | None = None
    extra: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for name, value, low in (("fleet", self.fleet, 100), ("to_fleet", self.to_fleet, 100)):
            if value is not None and not low <= value <= 99 + 0xFF:
                raise ValueError(f"FleetSync {name} must be 100..354, not {value}")
        for name, value in (("unit", self.unit), ("to_unit", self.to_unit)):
            if value is not None and not 1000 <= value <= 999 + 0xFFF:
                raise ValueError(f"FleetSync {name} must be 1000..5094, not {value}")
        if not (0 <= self.byte0 <= 0xFF and 0 <= self.byte1 <= 0xFF):
            raise ValueError("FleetSync byte0 and byte1 are bytes")
        if any(len(b) != 6 for b in self.extra):
            raise ValueError("FleetSync extra blocks hold 6 data bytes each")


def data_blocks(message: FleetSyncMessage) -> list[bytes]:
    """The 6 data bytes of every block of ``message``."""
    fleet = (message.fleet or 99) - 99
    unit = (message.unit or 999) - 999
    to_unit = (message.to_unit or 999) - 999
    byte1 = message.byte1
    extra = list(message.extra)
    if message.to_fleet is not None and message.to_fleet != message.fleet:
        byte1 |= T_FLEET_EXT
        first = extra[0] if extra else bytes(6)
        extra[:1] = [bytes([message.to_fleet - 99]) + first[1:]]
    first_block = bytes([message.byte0, byte1, fleet, unit >> 4, (unit & 0xF) << 4 | to_unit >> 8, to_unit & 0xFF])
    return [first_block, *extra]


def ani(fleet: int, unit: int, *, eot: bool = False) -> FleetSyncMessage:
    """PTT ID: sent on key-up (begin of transmission) or, with ``eot``, on de-key."""
    return FleetSyncMessage(NO_FLAGS & ~(F_EOT if eot else 0), T_ANI, fleet, unit)


def status_message(
    fleet: int, unit: int, status: int, *, to_fleet: int | None = None, to_unit: int | None = None
) -> FleetSyncMessage:
    """A status number 10..136 (Kenwood uses 10..99), to a unit or to everyone."""
    if not 10 <= status <= 136:
        raise ValueError(f"FleetSync status must be 10..136, not {status}")
    return FleetSyncMessage((status - 9) << 1, T_STATUS, fleet, unit, to_fleet, to_unit)


def emergency(fleet: int, unit: int, *, lone_worker: bool = False) -> FleetSyncMessage:
    return FleetSyncMessage(NO_FLAGS & ~F_EMERGENCY & ~(F_LONE_WORKER if lone_worker else 0), 0, fleet, unit)


def paging(fleet: int, unit: int, to_fleet: int | None, to_unit: int | None) -> FleetSyncMessage:
    return FleetSyncMessage(NO_FLAGS & ~F_PAGING, 0, fleet, unit, to_fleet, to_unit)


def acknowledge(fleet: int | None, unit: int | None, to_fleet: int | None, to_unit: int | None) -> FleetSyncMessage:
    return FleetSyncMessage(NO_FLAGS, T_ACK | T_ACK2, fleet, unit, to_fleet, to_unit)


def emergency_ack(
    to_fleet: int, to_unit: int, *, fleet: int | None = None, unit: int | None = None
) -> FleetSyncMessage:
    """Acknowledge a unit's emergency: an acknowledge message addressed to it (see the module
    docstring: that a radio leaves emergency mode on it is an assumption)."""
    return acknowledge(fleet, unit, to_fleet, to_unit)


@dataclass(frozen=True, slots=True)
class GpsFix:
    lat: float
    lon: float
    speed_kph: float | None = None
    course_deg: float | None = None
    time: tuple[int, int, int] | None = None  # hours, minutes, seconds (UTC)
    date: tuple[int, int, int] | None = None  # year, month, day


def _put(block: bytearray, start: int, width: int, value: int) -> None:
    for i in range(width):
        bit = (value >> (width - 1 - i)) & 1
        byte, off = divmod(start + i, 8)
        block[byte] = block[byte] & ~(0x80 >> off) | (bit << (7 - off))


def _get(block: bytes, start: int, width: int) -> int:
    return (int.from_bytes(block, "big") >> (48 - start - width)) & ((1 << width) - 1)


def _ddmm(value: float, frac_bits: int) -> tuple[int, int]:
    """ddmm and the ten-thousandths of a minute, the latter cut to its ``frac_bits`` high bits."""
    total = round(abs(value) * 600000)  # in 1/10000 minute
    degrees, rest = divmod(total, 600000)
    whole, fraction = divmod(rest, 10000)
    return degrees * 100 + whole, fraction >> (14 - frac_bits)


def gps_report(
    fleet: int, unit: int, fix: GpsFix, *, to_fleet: int | None = None, to_unit: int | None = None
) -> FleetSyncMessage:
    """A position report in the UNCONFIRMED sdrtrunk layout (see the module docstring)."""
    blocks = [bytearray(6) for _ in range(GPS_BLOCKS - 1)]  # blocks 2..8
    if fix.time:
        h, m, s = fix.time
        _put(blocks[1], 23, 5, h)
        _put(blocks[1], 28, 6, m)
        _put(blocks[1], 34, 6, s)
    lat_dm, lat_frac = _ddmm(fix.lat, 14)
    _put(blocks[2], 8, 16, lat_dm)
    _put(blocks[2], 25, 14, lat_frac)
    if fix.date:
        y, mo, d = fix.date
        _put(blocks[3], 0, 8, y // 100 - 1)
        _put(blocks[3], 8, 7, y % 100)
        _put(blocks[3], 15, 4, mo)
        _put(blocks[3], 19, 5, d)
    lon_dm, lon_frac = _ddmm(fix.lon, 7)
    _put(blocks[3], 24, 16, lon_dm)
    _put(blocks[3], 41, 7, lon_frac)
    _put(blocks[4], 12, 13, 4095 if fix.course_deg is None else round(fix.course_deg * 10) % 3600)
    if fix.speed_kph is not None:
        whole = min(255, int(fix.speed_kph))
        _put(blocks[6], 15, 8, whole)
        _put(blocks[6], 23, 8, min(255, round((fix.speed_kph - whole) * 255)))
    return FleetSyncMessage(0xF4, T_STATUS | T_GPS, fleet, unit, to_fleet, to_unit, tuple(bytes(b) for b in blocks))


def _read_gps(blocks: Sequence[bytes], hemisphere: str) -> GpsFix | None:
    if len(blocks) < GPS_BLOCKS:
        return None
    b3, b4, b5, b6, b8 = blocks[2], blocks[3], blocks[4], blocks[5], blocks[7]
    lat_dm, lat_frac = _get(b4, 8, 16), _get(b4, 25, 14)
    lon_dm, lon_frac = _get(b5, 24, 16), _get(b5, 41, 7) << 7
    if lat_dm % 100 >= 60 or lon_dm % 100 >= 60 or lat_frac >= 10000 or lon_frac >= 10000:
        return None
    lat = lat_dm // 100 + (lat_dm % 100 + lat_frac / 10000) / 60
    lon = lon_dm // 100 + (lon_dm % 100 + lon_frac / 10000) / 60
    if lat > 90 or lon > 180:
        return None
    lat = -lat if hemisphere[0] == "S" else lat
    lon = -lon if hemisphere[1] == "W" else lon
    heading = _get(b6, 12, 13)
    speed = _get(b8, 15, 8) + _get(b8, 23, 8) / 255
    h, m, s = _get(b3, 23, 5), _get(b3, 28, 6), _get(b3, 34, 6)
    year = (_get(b5, 0, 8) + 1) * 100 + _get(b5, 8, 7)
    return GpsFix(
        lat=lat,
        lon=lon,
        speed_kph=speed,
        course_deg=None if heading == 4095 else heading / 10,
        time=(h, m, s),
        date=(year, _get(b5, 15, 4), _get(b5, 19, 5)),
    )


# --- encoder --------------------------------------------------------------------------------------


def message_bits(message: FleetSyncMessage, *, version: int = 1, preamble_bits: int = 24) -> list[int]:
    """The bits of one burst: dotting (ending in 0, so that it reads ...AAAA before the sync), the
    sync and every block in the coding of ``version``."""
    if version not in (1, 2):
        raise ValueError(f"FleetSync version is 1 or 2, not {version}")
    if preamble_bits < 16:
        raise ValueError("FleetSync needs at least 16 bits of dotting before the sync")
    bits = [(preamble_bits - 1 - i) & 1 for i in range(preamble_bits)]
    bits += [(SYNC >> (15 - i)) & 1 for i in range(16)]
    for data in data_blocks(message):
        word = block_word(data)
        bits += [(word >> (63 - i)) & 1 for i in range(64)] if version == 1 else fs2_encode_block(word)
    return bits


def encode(
    message: FleetSyncMessage | Iterable[FleetSyncMessage],
    rate: int = 8000,
    version: int = 1,
    *,
    baud: int | None = None,
    preamble_bits: int = 24,
    level: float = 0.5,
    lead_s: float = 0.05,
    gap_s: float = 0.1,
    tail_s: float = 0.05,
    freq_error: float = 0.0,
    baud_error: float = 0.0,
) -> Samples:
    """Audio of one burst (or several, ``gap_s`` apart): phase-continuous FFSK at ``rate``.

    ``baud`` defaults to 1200 for version 1 and 2400 for version 2; ``freq_error`` and ``baud_error``
    shift the tones and the bit rate by that fraction (tests of a mistuned transmitter)."""
    baud = baud or (1200 if version == 1 else 2400)
    if baud not in TONES:
        raise ValueError(f"FleetSync runs at 1200 or 2400 baud, not {baud}")
    messages = [message] if isinstance(message, FleetSyncMessage) else list(message)
    one, zero = (f * (1 + freq_error) for f in TONES[baud])
    spb = rate / (baud * (1 + baud_error))
    parts = [np.zeros(round(lead_s * rate))]
    phase = 0.0
    for k, msg in enumerate(messages):
        bits = [*message_bits(msg, version=version, preamble_bits=preamble_bits), 1, 0, 1, 0]
        edges = np.round(np.arange(len(bits) + 1) * spb).astype(np.int64)
        freq = np.repeat(np.where(np.asarray(bits) == 1, one, zero), np.diff(edges))
        inst = phase + 2 * np.pi * np.cumsum(freq) / rate
        phase = float(inst[-1]) % (2 * np.pi)
        burst = np.sin(inst)
        ramp = min(burst.size // 2, max(1, round(0.002 * rate)))  # 2 ms, keeps the key-up click out
        window = np.ones(burst.size)
        window[:ramp] = np.linspace(0, 1, ramp)
        window[-ramp:] = np.linspace(1, 0, ramp)
        parts.append(level * burst * window)
        if k < len(messages) - 1:
            parts.append(np.zeros(round(gap_s * rate)))
    parts.append(np.zeros(round(tail_s * rate)))
    return np.concatenate(parts).astype(np.float32)


# --- decoder: audio -> bits -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """One demodulator: Butterworth order and cutoff (times the baud rate) of the baseband low-pass."""

    name: str
    lpf_baud: float
    order: int


# Measured on noisy round trips (see the tests): 0.6 x baud decodes the weakest bursts; the wider
# one keeps the eye open when the transmitter's tones or clock are off.
VARIANTS: tuple[Variant, ...] = (Variant("A", 0.6, 3), Variant("B", 0.9, 4))


@dataclass
class _Framer:
    """Bits of one demodulator -> messages: the sync hunt and the blocks after it."""

    bits: Bits = field(default_factory=lambda: np.zeros(0, np.uint8))
    pos: Float = field(default_factory=lambda: np.zeros(0))  # sample position of each bit
    base: int = 0  # global index of bits[0]
    searched: int = 0  # global index up to which sync windows have been checked
    pending: list[int] = field(default_factory=list)  # global index of the first bit after a sync


@dataclass
class _Demod:
    baud: int
    variant: Variant
    rank: int
    dec: int
    spb: float  # samples (at the input rate) per bit
    sos: Float
    zi: Complex
    hist: Complex  # the last decimated baseband samples, for the delayed copy
    delay: float  # the differential delay in decimated samples
    last_d: float = 0.0
    last_pos: float = -1.0
    clock_phase: float = 0.0  # in bits, at clock_ref
    clock_rate: float = 0.0  # how much the phase gains per bit (the transmitter's clock error)
    clock_ref: float = 0.0  # the time (in bits) of the last crossing
    next_cell: int = -(10**12)
    framer: _Framer = field(default_factory=_Framer)

    @property
    def name(self) -> str:
        return f"{self.baud}{self.variant.name}"


@dataclass
class _Candidate:
    start: float  # sample position of the last bit of the sync
    end: float  # of the last bit of the last block
    rank: int
    baud: int
    version: int
    words: tuple[int, ...]
    demod: str


class FleetSyncDecoder(AudioDecoder):
    """Kenwood FleetSync I and II at 1200 and 2400 baud -> ptt / status / alert / beacon events.

    Options: ``emergency_status`` (status numbers that are emergencies, default 95..99, as
    :mod:`drivers.kenwood`), ``gps_hemisphere`` ("NE", "NW", "SE" or "SW": the signs given to GPS
    latitude and longitude, which the air format is not known to carry), ``bauds`` (which bit rates
    to listen for, default both).
    """

    name: ClassVar[str] = "fleetsync"
    rates: ClassVar[tuple[int, ...]] = (22050, 8000, 11025, 16000, 32000, 44100, 48000)

    def __init__(
        self,
        rate: int | None = None,
        *,
        emergency_status: Sequence[int] = DEFAULT_EMERGENCY_STATUS,
        gps_hemisphere: str = "NE",
        bauds: Sequence[int] = BAUDS,
        **options: Any,
    ) -> None:
        super().__init__(rate, **options)
        if gps_hemisphere not in ("NE", "NW", "SE", "SW"):
            raise ValueError(f"decoder 'fleetsync': gps_hemisphere must be NE, NW, SE or SW, not {gps_hemisphere!r}")
        if isinstance(emergency_status, str | bytes) or not all(isinstance(s, int) for s in emergency_status):
            raise ValueError(
                f"decoder 'fleetsync': emergency_status must be a list of numbers, not {emergency_status!r}"
            )
        if not bauds or any(b not in TONES for b in bauds):
            raise ValueError(f"decoder 'fleetsync': bauds must be among 1200 and 2400, not {bauds!r}")
        self.emergency_status = frozenset(emergency_status)
        self.hemisphere = gps_hemisphere
        r = self.rate
        self._n = 0
        self._held: list[npt.NDArray[Any]] = []
        self._held_size = 0
        self._held_start = datetime.min
        self._lo: dict[int, tuple[Complex, int]] = {}
        self._demods: list[_Demod] = []
        for baud in bauds:
            fc = sum(TONES[baud]) / 2
            period = r // math.gcd(r, int(fc))
            self._lo[baud] = (np.exp(-2j * np.pi * fc * np.arange(period) / r), period)
            dec = max(1, r // (baud * 8))
            for variant in VARIANTS:
                sos = signal.butter(variant.order, variant.lpf_baud * baud, fs=r, output="sos").astype(np.float64)
                delay = r / dec / baud
                self._demods.append(
                    _Demod(
                        baud=baud,
                        variant=variant,
                        rank=len(self._demods),
                        dec=dec,
                        spb=r / baud,
                        sos=sos,
                        zi=np.zeros((sos.shape[0], 2), np.complex128),
                        hist=np.zeros(math.floor(delay) + 2, np.complex128),
                        delay=delay,
                    )
                )
        self._pending: list[_Candidate] = []
        self._recent: list[tuple[int, float]] = []  # (baud, start) of messages reported

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        # Gathered to CHUNK_SECONDS first: numpy calls cost the same for 20 ms as for 250 ms, and the
        # result does not depend on the split anyway.
        if not self._held:
            self._held_start = start
        self._held.append(np.asarray(block).ravel())
        self._held_size += self._held[-1].size
        if self._held_size < CHUNK_SECONDS * self.rate:
            return []
        return self._process()

    def flush(self, now: datetime) -> list[Output]:
        out = self._process() if self._held else []
        for demod in self._demods:
            self._frame(demod, final=True)
        return out + self._release(now, self._n, final=True)

    def _process(self) -> list[Output]:
        block = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        start = self._held_start
        self._held.clear()
        self._held_size = 0
        # Garbage must not poison the filter state: NaN is silence, huge values are clipped.
        x = np.nan_to_num(np.asarray(block, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(x, -4.0, 4.0, out=x)
        first = self._n
        self._n += x.size
        if x.size:
            mixed: dict[int, Complex] = {}
            for baud, (lo, period) in self._lo.items():
                mixed[baud] = lo[np.arange(first, first + x.size) % period] * x
            for demod in self._demods:
                self._demodulate(demod, mixed[demod.baud], first)
                self._frame(demod, final=False)
        return self._release(start, first, final=False)

    def _demodulate(self, d: _Demod, mixed: Complex, first: int) -> None:
        base, d.zi = signal.sosfilt(d.sos, mixed, zi=d.zi)
        keep = np.arange((-first) % d.dec, mixed.size, d.dec)
        if keep.size == 0:
            return
        z = np.concatenate((d.hist, base[keep]))
        k = math.floor(d.delay)
        a = d.delay - k
        h = d.hist.size
        now = z[h:]
        # The copy one bit earlier, linearly interpolated (the bit is rarely a whole number of samples).
        idx = np.arange(h, z.size)
        late = (1 - a) * z[idx - k] + a * z[idx - k - 1]
        d.hist = z[-h:].copy()
        metric = (now * np.conj(late)).imag
        positions = (first + keep).astype(np.float64)
        self._bits(d, metric, positions)

    def _bits(self, d: _Demod, metric: Float, pos: Float) -> None:
        """Crossings -> bit clock -> one bit per cell, sampled half a bit after the crossing phase."""
        m_all = np.concatenate(([d.last_d], metric))
        p_all = np.concatenate(([d.last_pos], pos))
        d.last_d, d.last_pos = float(metric[-1]), float(pos[-1])
        neg = m_all < 0
        change = np.flatnonzero(neg[1:] != neg[:-1])
        if p_all[0] < 0:  # the very first sample has no predecessor
            change = change[change > 0]
        T = d.spb
        tc = np.zeros(0)
        if change.size:
            m0, m1 = m_all[change], m_all[change + 1]
            tc = p_all[change] + (p_all[change + 1] - p_all[change]) * m0 / (m0 - m1)
        # A second-order loop over the crossings (a Python loop over crossings, not samples): the phase
        # follows each crossing by CLOCK_GAIN of its error, the rate by CLOCK_RATE_GAIN, so that long
        # runs of one tone (zero bytes are common, and FleetSync does not scramble) keep their clock.
        phi, omega, ref = d.clock_phase, d.clock_rate, d.clock_ref
        phases, rates, refs = [phi], [omega], [ref]
        for b in (tc / T).tolist():
            error = b - (phi + omega * (b - ref))
            error -= round(error)
            phi = phi + omega * (b - ref) + CLOCK_GAIN * error
            omega = min(MAX_CLOCK_RATE, max(-MAX_CLOCK_RATE, omega + CLOCK_RATE_GAIN * error))
            ref = b
            phases.append(phi)
            rates.append(omega)
            refs.append(ref)
        d.clock_phase, d.clock_rate, d.clock_ref = phi, omega, ref
        seg_w = np.array(rates)
        seg_c = np.array(phases) - seg_w * np.array(refs) + 0.5
        seg_lo = np.concatenate(([p_all[0]], tc))
        seg_hi = np.concatenate((tc, [p_all[-1]]))
        # Cell k of a segment is sampled at u = t/T = (k + c) / (1 - w): the phase there is
        # phase + w (u - ref), and the sample comes half a bit after it. Never twice, never backwards.
        k_lo = np.ceil(seg_lo / T * (1 - seg_w) - seg_c).astype(np.int64)
        k_hi = np.floor(seg_hi / T * (1 - seg_w) - seg_c).astype(np.int64) + 1
        prior = np.maximum.accumulate(np.concatenate(([d.next_cell], k_hi)))[:-1]
        k_lo = np.maximum(k_lo, prior)
        counts = np.maximum(k_hi - k_lo, 0)
        total = int(counts.sum())
        if total == 0:
            return
        d.next_cell = max(d.next_cell, int((k_lo + counts)[counts > 0].max()))
        seg = np.repeat(np.arange(counts.size), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        cells = k_lo[seg] + offsets
        t = (cells + seg_c[seg]) / (1 - seg_w[seg]) * T
        t = np.clip(t, p_all[0], p_all[-1])
        value = np.interp(t, p_all, m_all)
        bits = (value < 0).astype(np.uint8)
        f = d.framer
        f.bits = np.concatenate((f.bits, bits))
        f.pos = np.concatenate((f.pos, t))

    # --- bits -> messages ---------------------------------------------------------------------------

    def _frame(self, d: _Demod, *, final: bool) -> None:
        f = d.framer
        end = f.base + f.bits.size
        # Sync hunt: every 32-bit window ending at a bit not yet checked.
        lo = max(f.searched, f.base + SYNC_WINDOW)
        if end > lo:
            window = f.bits[lo - SYNC_WINDOW - f.base : end - f.base]
            views = np.lib.stride_tricks.sliding_window_view(window, SYNC_WINDOW)
            for pattern in (0xAAAA0000 | SYNC, 0xAAAA0000 | ALT_SYNC):
                ref = np.array([(pattern >> (31 - i)) & 1 for i in range(32)], np.uint8)
                errors = (views != ref).sum(axis=1)
                f.pending.extend((lo + np.flatnonzero(errors <= MAX_SYNC_ERRORS)).tolist())
            f.pending = sorted(set(f.pending))
            f.searched = end + 1
        keep: list[int] = []
        last_end = -1
        for s in f.pending:
            if s < last_end:
                continue  # a sync pattern inside the message just decoded
            result = self._blocks(d, s, final)
            if result is None:
                keep.append(s)  # its blocks have not all been heard yet
            elif result > 0:
                last_end = result
        f.pending = keep
        # Keep the bits a pending sync still needs, and enough to find a sync across the next block.
        oldest = min([*keep, end - SYNC_WINDOW])
        cut = max(0, oldest - SYNC_WINDOW - f.base)
        if cut:
            f.bits, f.pos = f.bits[cut:], f.pos[cut:]
            f.base += cut

    def _blocks(self, d: _Demod, s: int, final: bool) -> int | None:
        """Decode the message whose data starts at bit ``s``: None to wait for more bits, 0 when it is
        no message, else the global index after its last block."""
        f = d.framer
        have = f.base + f.bits.size - s
        bits = f.bits[s - f.base :]
        if have < 64:
            return None if not final else 0
        words: list[int] = []
        first = _bits_to_int(bits[:64])
        if block_ok(first):
            version, size = 1, 64
        else:
            if have < 256:
                return None if not final else 0
            word = fs2_decode_block(bits[:256])
            if word is None or not block_ok(word):
                return 0
            version, size = 2, 256
        while len(words) < MAX_BLOCKS:
            at = len(words) * size
            if at + size > have:
                if not final:
                    return None  # the next block may yet come
                break
            chunk = bits[at : at + size]
            word_or_none = _bits_to_int(chunk) if version == 1 else fs2_decode_block(chunk)
            if word_or_none is None or not block_ok(word_or_none):
                break
            words.append(word_or_none)
        after = s + len(words) * size
        self._pending.append(
            _Candidate(
                start=float(f.pos[s - 1 - f.base]),
                end=float(f.pos[after - 1 - f.base]),
                rank=d.rank,
                baud=d.baud,
                version=version,
                words=tuple(words),
                demod=d.name,
            )
        )
        return after

    # --- messages -> events -------------------------------------------------------------------------

    def _release(self, start: datetime, first: int, *, final: bool) -> list[Output]:
        """Report each burst once: the decode with the most blocks, then the first variant's. A decode
        waits while another demodulator of its bit rate is still reading blocks after the same sync."""
        busy: list[tuple[int, float]] = []
        if not final:
            for d in self._demods:
                f = d.framer
                busy.extend((d.baud, float(f.pos[s - 1 - f.base])) for s in f.pending)
        ready: list[_Candidate] = []
        waiting: list[_Candidate] = []
        for c in self._pending:
            window = DEDUP_BITS * self.rate / c.baud
            near = any(b == c.baud and abs(p - c.start) <= window for b, p in busy)
            (waiting if near else ready).append(c)
        self._pending = waiting
        ready.sort(key=lambda c: (c.start, -len(c.words), c.rank))
        out: list[Output] = []
        for c in ready:
            window = DEDUP_BITS * self.rate / c.baud
            if any(b == c.baud and abs(s - c.start) <= window for b, s in self._recent):
                continue
            rivals = (o for o in ready if o.baud == c.baud and abs(o.start - c.start) <= window)
            if any((-len(o.words), o.rank) < (-len(c.words), c.rank) for o in rivals):
                continue
            self._recent.append((c.baud, c.start))
            out.append(self._event(c, self.at(start, round(c.end) - first)))
        self._recent = [(b, s) for b, s in self._recent if self._n - s < 10 * self.rate]
        return out

    def _event(self, c: _Candidate, now: datetime) -> Decoded:
        blocks = [(w >> 16).to_bytes(6, "big") for w in c.words]
        b0, b1 = blocks[0][0], blocks[0][1]
        fleet_raw, unit_raw = blocks[0][2], blocks[0][3] << 4 | blocks[0][4] >> 4
        to_unit_raw = (blocks[0][4] & 0xF) << 8 | blocks[0][5]
        fleet = fleet_raw + 99 if fleet_raw else None
        unit_id = unit_raw + 999 if unit_raw else None
        to_fleet: int | None = fleet
        if b1 & T_FLEET_EXT:
            to_fleet = blocks[1][0] + 99 if len(blocks) > 1 and blocks[1][0] else None
        detail: dict[str, Any] = {
            "protocol": "fleetsync",
            "version": c.version,
            "baud": c.baud,
            "fleet": fleet,
            "unit_id": unit_id,
            "to_fleet": to_fleet,
            "to_unit": to_unit_raw + 999 if to_unit_raw else None,
            "cmd": b1 & 0xFE,
            "sub": b0,
            "all": bool(b0 & F_ALL),
            "blocks": len(blocks),
            "raw": "".join(f"{w:016x}" for w in c.words),
            "offset_s": round(c.end / self.rate, 4),
            "demodulator": c.demod,
        }
        unit = f"fleetsync:{fleet:03d}-{unit_id:04d}" if fleet and unit_id else None
        kind, position = Kind.STATUS, None
        type_bits = b1 & 0xFE
        if b1 & T_ACK:
            detail["name"] = "acknowledge"
        elif b1 & T_GPS:
            detail["name"] = "gps"
            if len(blocks) > 1:
                detail["payload"] = b"".join(blocks[1:]).hex()
            fix = _read_gps(blocks, self.hemisphere)
            if fix is not None:
                kind = Kind.BEACON
                position = Position(
                    lat=fix.lat,
                    lon=fix.lon,
                    speed_mps=None if fix.speed_kph is None else fix.speed_kph / 3.6,
                    course_deg=fix.course_deg,
                    source="fleetsync",
                )
                detail["gps_time"] = list(fix.time) if fix.time else None
                detail["gps_date"] = list(fix.date) if fix.date else None
                detail["position_layout"] = "sdrtrunk LocationReport (unconfirmed)"
            else:
                detail["position_layout"] = "no position read (fewer than 8 blocks, or out of range)"
        elif b1 & T_STATUS:
            number = (b0 >> 1) + 9
            detail.update(name="status", status=number)
            if number in self.emergency_status:
                kind, detail["emergency"] = Kind.ALERT, True
        elif b1 & T_ANI:
            kind = Kind.PTT
            detail.update(name="ani", eot=not b0 & F_EOT)
        elif type_bits == 0 and not b0 & F_EMERGENCY:
            kind = Kind.ALERT
            lone = not b0 & F_LONE_WORKER
            detail.update(name="lone_worker_emergency" if lone else "emergency", emergency=True, lone_worker=lone)
        elif type_bits == 0 and not b0 & F_PAGING:
            detail["name"] = "paging"
        else:
            detail["name"] = "unknown"
        return Decoded(kind=kind, time=now, unit=unit, position=position, detail=detail)
