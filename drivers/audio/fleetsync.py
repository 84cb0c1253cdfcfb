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
- Text messages (:func:`text_message`, read back as ``name`` "message" with ``detail["text"]``):
  Kaufman's ``_dispatch`` reads message type 0x42 as a payload whose length is bytes 9-10 of the
  message (block 2, bytes 3-4, big-endian) and whose bytes follow from block 3 on, six to a block in
  reverse order (payload byte i at message byte ``11 + 6 * (i // 6 + 1) - i % 6``)::

        block 2:  to fleet - 99 | 0 | 0 | length hi | length lo | 0
        block 3:  p5 p4 p3 p2 p1 p0        block 4: p11 ... p6     (the last block padded with 0 in front)

  UNCONFIRMED: the sub byte (byte 0) of a text message. Kaufman names 0xF4 for GPS and no other; we
  send 0xFE (no flag set, as an ANI with no flag) and read every 0x42 message whose sub byte is not
  0xF4 and whose payload is complete as a text. No public source gives the length limit over the air
  either: we send at most :data:`SHORT_MESSAGE_MAX` characters, the data port's short message.
- Emergency acknowledgement: FleetSync has an acknowledge message type (sdrtrunk); that a radio
  leaves emergency mode on one addressed to it is NOT confirmed. :func:`emergency_ack` builds it;
  status 88 "emergency reset" (Kenwood reserved status) is the other candidate, :func:`status_message`.

How it decodes (per bit rate; the sample-level stages are numpy with carried filter state, Python loops
only over the bits after a sync). FleetSync is plain MSK: relative to the centre frequency the phase
turns -90 degrees over a 1 and +90 over a 0, so at the end of bit n the baseband turned back by j^n is
C * (-1)^c[n], c[n] the parity of the zeros sent so far: BPSK of c, and a data bit is 1 where c stays.
The same holds for MDC-1200's precoded MSK, and the stages up to the turned-back samples of each bit are
the receiver both share (:mod:`drivers.audio.msk`)::

    samples x e^{-j2pi fc t} (fc = centre of the two tones) -> [x2 zero-stuffed below 10 samples a bit]
      -> Butterworth low-pass -> decimate (about 8 samples a bit) -> MSK matched filter (half-cosine)
      -> sync search: at every sample, the 32 bit-spaced samples of 0xAAAA23EB (and 0xAAAA052B)
         against their expected signs, coherent in 4 segments of 8 bits, over their energy (an FFT
         convolution); local maxima over SYNC_THRESHOLD are candidates, tried one after the other
      -> per candidate: the bit timing and bit rate that fit the sync best (+-0.2 bit, +-1.5 %), then
         up to eight demodulators (VARIANTS: timing offsets, blind carrier phase, loop widths), each
         with carrier phase and frequency from the sync; its c bits must be within 3 errors of the
         pattern. A decision-directed loop tracks carrier phase (its quadrature error
         freed of the matched filter's ISI), frequency and bit clock through the blocks
      -> soft data bits (min-sum of neighbouring c), once with the phase re-estimated from the
         neighbours on both sides, once as tracked
      -> FleetSync I: CRC-15 + parity, Chase over the 4 least reliable bits; FleetSync II: each
         BCH(15,7) word decoded soft (maximum likelihood over its 128 code words), then the CRC,
         Chase over the runner-up words -> blocks until one fails -> events

The first demodulator whose first block checks without repair (or, for FleetSync II, with few) reads
the message; a block that needed more is taken only when a second demodulator gets the same block
(measured: 2 wrong units in 200 bursts at 3 dB SNR without that rule, none with it). Syncs inside a
message read are skipped, and messages are reported in the order they were sent, whatever the rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from drivers.audio.base import AudioDecoder, Samples
from drivers.audio.msk import VARIANTS as MSK_VARIANTS
from drivers.audio.msk import Acquired, HeldAudio, Loop, MskReceiver, SyncCandidate, Track, Variant, acquire, track
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
MAX_SYNC_ERRORS = 3  # Kaufman FSYNC_GDTHRESH 4: fewer than 4 bit errors in the 32 (here: of c, below)
CRC_POLY = 0x6815  # sdrtrunk CRCFleetsync: x^15+x^14+x^13+x^11+x^4+x^2+1
MAX_BLOCKS = 24  # Kaufman keeps up to 128 payload bytes (about 23 blocks)
GPS_BLOCKS = 8  # sdrtrunk LocationReport.getBlockCount
GPS_SUB = 0xF4  # byte 0 of a GPS report (Kaufman fsync_decode.c: "GPS message (subcmd 0xf4)")
TEXT_SUB = 0xFE  # byte 0 of a text message: UNCONFIRMED, see the module docstring
SHORT_MESSAGE_MAX = 48  # characters of a short message (Kenwood data port 'F' frame, drivers/kenwood.py)
DEFAULT_EMERGENCY_STATUS = (95, 96, 97, 98, 99)  # Kenwood: reserved for emergency mode (kenwood.py)
CHUNK_SECONDS = 0.25  # audio is demodulated in pieces of at least this length (see feed)

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


def _syndromes() -> npt.NDArray[np.int64]:
    """:func:`_syndrome` of every 15-bit word at once (the loop over them took most of a second to import)."""
    words = np.arange(1 << 15, dtype=np.int64)
    return sum(((np.bitwise_count(words & c) & 1) << i for i, c in enumerate(BCH_CHECKS)), np.zeros_like(words))


def _bch_table(syndromes: npt.NDArray[np.int64]) -> npt.NDArray[np.int16]:
    """Decoding table over all 16-bit words: the data nibble, or -1 where more than one bit is wrong."""
    words = np.arange(1 << 16, dtype=np.int64)
    s = syndromes[words & 0x7FFF]
    flip = np.full(256, -1, np.int64)  # the bit a syndrome of one error points at
    for syndrome, bit in _SINGLE.items():
        flip[syndrome] = bit
    fixed = np.where(s == 0, words, np.where(flip[s] >= 0, words ^ (1 << np.maximum(flip[s], 0)), -1))
    return np.where(fixed >= 0, (fixed >> 8) & 0xF, -1).astype(np.int16)


_ALL_SYNDROMES = _syndromes()
# Bits 14..8 are an information set of the code: one code word for each of their 128 values.
_CODEWORDS = {int(v) >> 8: int(v) for v in np.flatnonzero(_ALL_SYNDROMES == 0)}
_BCH_NIBBLE = _bch_table(_ALL_SYNDROMES)

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


def text_message(to_fleet: int, to_unit: int, text: str, *, fleet: int | None = None, unit: int | None = None,
                 encoding: str = "ascii") -> FleetSyncMessage:
    """A short text message to one radio (type 0x42, the payload layout in the module docstring); from
    fleet/unit ``fleet``/``unit``, or from none (0, as the fixed station's acknowledge)."""
    data = text.encode(encoding)  # UnicodeEncodeError (a ValueError) names the character
    if len(data) > SHORT_MESSAGE_MAX:
        raise ValueError(f"a FleetSync short message holds at most {SHORT_MESSAGE_MAX} characters, not {len(data)}")
    if any(b < 0x20 or b == 0x7F for b in data):
        raise ValueError(f"a FleetSync short message holds no control characters: {text!r}")
    header = bytes([0, 0, 0, len(data) >> 8, len(data) & 0xFF, 0])  # byte 0 becomes the destination fleet
    chunks = [data[i : i + 6] for i in range(0, len(data), 6)]
    payload = tuple(bytes(6 - len(c)) + c[::-1] for c in chunks)  # six to a block, reversed, padded in front
    return FleetSyncMessage(TEXT_SUB, T_STATUS | T_GPS, fleet, unit, to_fleet, to_unit, (header, *payload))


def message_payload(blocks: Sequence[bytes]) -> bytes | None:
    """The payload of a type 0x42 message (Kaufman's layout, module docstring), or None where the length
    field asks for more blocks than were read."""
    if len(blocks) < 2:
        return None
    length = blocks[1][3] << 8 | blocks[1][4]
    need = -(-length // 6)
    if len(blocks) < 2 + need:
        return None
    data = b"".join(block[::-1] for block in blocks[2 : 2 + need])
    return data[:length]


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
        # 4095 is "no heading"; 13 bits reach 819.1 degrees, and a course past 360 is no course (fuzzing)
        course_deg=None if heading == 4095 or heading > 3600 else heading / 10,
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
    bit_s = 1 / (baud * (1 + baud_error))
    parts = [np.zeros(round(lead_s * rate))]
    phase = 0.0
    for k, msg in enumerate(messages):
        bits = np.asarray([*message_bits(msg, version=version, preamble_bits=preamble_bits), 1, 0, 1, 0])
        # Phase-exact FFSK: tones change at the true bit boundaries, between samples if need be, and the
        # phase is integrated exactly, so even 3.3 samples a bit (2400 bps at 8 kHz) keep a clean signal.
        freq = np.where(bits == 1, one, zero)
        cycles = np.concatenate([[0.0], np.cumsum(freq * bit_s)])  # at the start of each bit
        t = np.arange(round(len(bits) * bit_s * rate)) / rate
        b = np.minimum((t / bit_s).astype(np.int64), len(bits) - 1)
        inst = phase + 2 * np.pi * (cycles[b] + freq[b] * (t - b * bit_s))
        phase = (phase + 2 * np.pi * cycles[-1]) % (2 * np.pi)
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


# --- decoder: audio -> soft bits ------------------------------------------------------------------
# (the module docstring draws the chain; the receiver is drivers/audio/msk.py's, at either bit rate,
# with FleetSync's own bits and blocks)

# The MSK receiver's six and two between them, tried in this order on every sync candidate; the last two
# give a repaired block more chances to be confirmed (FleetSync II, 100 bursts at 3 dB SNR, 8000 Hz: 76
# decoded with six, 83 with eight).
VARIANTS: tuple[Variant, ...] = (
    *MSK_VARIANTS,
    Variant("G", -0.125, loop=0.7),
    Variant("H", 0.125, loop=1.3),
)
# Carrier loop gains per bit: the receiver's (msk.py), measured on MDC-1200. Bit clock gains: half and a
# quarter of mdc1200.py's, as FleetSync messages run to 2000 bits, unscrambled (a run of one tone gives
# the clock nothing to pull on): with mdc1200.py's loop, 11 of this suite's FleetSync II round trips and
# mistuned-clock tests at 2400 baud fail (an 8-block GPS report loses its clock).
CLOCK_GAIN, CLOCK_RATE_GAIN = 0.03, 0.001
MAX_CLOCK_ERROR = 0.02  # the bit clock may run this far off nominal (FleetSync: 1 %, see the tests)
# The MSK matched filter leaves this much (of the in-phase amplitude) of the neighbouring bits in the
# quadrature part at a tone change (measured 0.29-0.30; the half-cosine pulses give about 1/pi).
ISI_Q = 0.3
LOOP = Loop(CLOCK_GAIN, CLOCK_RATE_GAIN, MAX_CLOCK_ERROR, ISI_Q)
# Twice the carrier loop gains where there are fewer than 10 samples a bit (2400 baud below 24 kHz):
# tones switched on the sample grid (this module's encoder, and any that makes 2400 baud at 8 kHz the
# same way) turn the phase by up to 0.3 rad at each tone change, which the loop must follow. Measured
# on 20 FleetSync II bursts at 8000 Hz: 1x 17-20 of 20 clean, 2x 20 (and 20 at 6 dB SNR).
LOW_RATE_LOOP = 2.0
#: Sync metric (0..1; 1 = the 32 sync bits exactly, any carrier phase) from which a position is tried.
#: Measured at 8000 Hz: bursts at 3 dB SNR (4 kHz band) peak at 0.72 and up, white noise at most 0.68
#: in 10 minutes (about 40 local maxima a second over 0.5), speech about once a second over 0.7.
SYNC_THRESHOLD = 0.7
# The sync search's first pass at every third position keeps those at 0.8 x the threshold or more (see
# msk.MskReceiver): one sample either side of any position over the threshold, the metric was never
# under 0.86 of it (10 minutes of a busy channel at 22050 Hz, 0.90; the data-burst sweeps at 8000 Hz
# down to -3 dB, 0.86), and 0.8 keeps about 0.5 % of the first pass's positions for the exact one.
SYNC_COARSE = 0.8
SYNC_SHIFTS = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])  # bit-timing offsets tried on a sync (bits)
SYNC_RATES = np.array([-0.015, -0.0075, 0.0, 0.0075, 0.015])  # and bit-rate offsets
SYNC_SEGMENTS = 4  # the sync is summed coherently in 4 pieces of 8 bits (a tone 2 % off turns 70° in 8)
#: Chase decoding of a FleetSync I block: the CRC is tried with every combination of these many least
#: reliable data bits flipped (an error in c, the usual one of coherent MSK, makes two neighbouring data
#: bits equally weak).
CHASE_BITS = 4
CHASE_SYNC_ERRORS = 1  # ... and only after a sync heard with at most this many bit errors
#: FleetSync II: the CRC is tried with the runner-up code word in up to these many least certain words.
CHASE_WORDS = 3
#: Each block is also tried with the phase of each bit estimated from this many decided neighbours on
#: either side (:func:`smoothed`): measured when it came in, on 20 FleetSync II bursts at 6 dB SNR,
#: 8000 Hz, 1: 18, 2: 18, 3: 18, 5: 18, and without it 15-16.
SMOOTH_BITS = 2
#: A FleetSync II block is given up when its 16 code words differ from the bits heard in more places.
MAX_FS2_REPAIRS = 24
#: A first block is taken from one demodulator when it needed no repair (FleetSync I) or at most this
#: many bits (FleetSync II, no runner-up word): a garbled code word is 2 or more bits from the nearest
#: in 94 % of cases. Anything else must be found by a second demodulator too (see _first_block).
FS2_SURE_REPAIRS = 6
#: ... FleetSync I: at most this many bits flipped, and no more bits than that weaker than WEAK_BIT
#: (a clean 2400 baud burst at 8000 Hz can have one or two, see LOW_RATE_LOOP).
FS1_SURE_REPAIRS = 2
WEAK_BIT = 0.25
SWAP_REPAIRS = 16  # counted for a runner-up code word, or a FleetSync I block with many weak bits


def _c_signs(pattern: int) -> Float:
    """The expected sign of the turned-back baseband at the end of each bit of a 32-bit pattern."""
    bits = np.array([(pattern >> (31 - i)) & 1 for i in range(32)], np.int64)
    return np.asarray(1.0 - 2.0 * (np.cumsum(1 - bits) % 2), np.float64)


SYNC_SIGNS = (_c_signs(0xAAAA0000 | SYNC), _c_signs(0xAAAA0000 | ALT_SYNC))
# Every BCH(15,7) code word as +-1 per bit (bit 14 first; +1 where the bit is 1).
_CW_VALUES = np.array(sorted(_CODEWORDS.values()), np.int64)
_CW_SIGNS = np.array([[1.0 if (v >> (14 - k)) & 1 else -1.0 for v in _CW_VALUES] for k in range(15)])
_CW_NIBBLE = (_CW_VALUES >> 8) & 0xF


def _blocks_ok(bits: Bits) -> npt.NDArray[np.bool_]:
    """block_ok for each row of 64 bits, vectorised: the CRC is linear (the XOR of per-bit syndromes)."""
    crc = np.bitwise_xor.reduce(np.where(bits[:, :48] == 1, CRC_SYNDROMES[None, :], 0), axis=1) ^ 1
    sent = (bits[:, 48:63].astype(np.int64) << np.arange(14, -1, -1)[None, :]).sum(axis=1)
    return np.asarray((crc == sent) & (bits.sum(axis=1) % 2 == 0))


def coherent_soft(u: Complex) -> Float:
    """Soft data bits (positive: 1) from the turned-back samples of the bit before a block and of each
    of its bits: a 1 where the sign of c stays, as sure as the less sure of the two (min-sum)."""
    c = np.clip(u.real, -1.5, 1.5)
    return np.asarray(np.sign(c[1:] * c[:-1]) * np.minimum(np.abs(c[1:]), np.abs(c[:-1])))


def smoothed(u: Complex, half: int) -> Complex:
    """The samples turned by a two-sided phase estimate: for each bit, the mean phase of its ``half``
    neighbours either side (decision-directed, their quadrature ISI taken out). The carrier loop only
    looks back; where the phase wanders from bit to bit (tones switched on the sample grid of 8000 Hz
    audio turn it by up to 0.3 rad at each tone change) a centred estimate follows it better."""
    d = np.where(u.real >= 0, 1.0, -1.0)
    c = d < 0
    tone = np.concatenate(([0.0], np.where(c[1:] != c[:-1], 1.0, -1.0)))  # tone of bit n (n >= 1)
    after = np.concatenate((tone[1:], [0.0]))
    isi = np.where((tone != 0) & (after != 0), ISI_Q * (after - tone), 0.0)
    v = u * d - 1j * isi
    kernel = np.ones(2 * half + 1)
    kernel[half] = 0.0
    ref = np.convolve(v, kernel, mode="same")
    return np.asarray(u * np.exp(-1j * np.angle(ref)))


_CHASE_MASKS = np.array([[(m >> i) & 1 for i in range(CHASE_BITS)] for m in range(1 << CHASE_BITS)], np.uint8)
_CHASE_MASKS = _CHASE_MASKS[np.argsort(_CHASE_MASKS.sum(axis=1), kind="stable")]  # fewest flips first


def fs1_decode_soft(soft: Float, *, chase: bool = True) -> tuple[int, int] | None:
    """A FleetSync I block from its 64 soft bits (positive: 1) and how many bits were repaired, or None.
    Chase: the hard decisions, then the least reliable bits flipped in every combination; the first
    (fewest flips) that passes the CRC and the parity wins."""
    hard = (soft > 0).astype(np.uint8)
    masks = _CHASE_MASKS if chase else _CHASE_MASKS[:1, :0]
    weak = np.argsort(np.abs(soft), kind="stable")[: masks.shape[1]]
    trials = np.repeat(hard[None, :], masks.shape[0], axis=0)
    trials[:, weak] ^= masks
    ok = np.flatnonzero(_blocks_ok(trials))
    if ok.size == 0:
        return None
    flips = int(masks[int(ok[0])].sum())
    # A block that slipped or drowned has many weak bits; one with a few, all repaired, is no worry.
    if flips and np.count_nonzero(np.abs(soft) < WEAK_BIT) > FS1_SURE_REPAIRS:
        flips += SWAP_REPAIRS
    return _bits_to_int(trials[int(ok[0])]), flips


def _fs2_value(nibbles: npt.NDArray[np.int64]) -> int:
    value = 0
    for group in range(4):
        for offset in _FS2_ORDER:
            value = value << 4 | int(nibbles[group * 4 + offset // 16])
    return value


def fs2_decode_soft(soft: Float, *, chase: bool = True) -> tuple[int, int] | None:
    """A FleetSync II block from its 256 soft bits (positive: 1) and how many bits were repaired, or
    None: each 15-bit word decoded to the nearest code word (soft, maximum likelihood over all 128),
    then the CRC; failing that, the runner-up code word tried in the least certain words."""
    scores = soft.reshape(16, 16)[:, 1:] @ _CW_SIGNS  # (word, code word)
    order = np.argsort(-scores, axis=1)[:, :2]
    best, second = order[:, 0], order[:, 1]
    rows = np.arange(16)
    hard = soft.reshape(16, 16)[:, 1:] > 0
    repairs = int(np.count_nonzero(hard != (_CW_SIGNS[:, best].T > 0)))
    if repairs > MAX_FS2_REPAIRS:
        return None  # noise: a random word is 2-3 bits from the nearest code word, about 40 in all
    nibbles = _CW_NIBBLE[best]
    margin = scores[rows, best] - scores[rows, second]
    weak = np.argsort(margin, kind="stable")[: CHASE_WORDS if chase else 0]
    for m in range(1 << weak.size):
        trial = nibbles.copy()
        for i, w in enumerate(weak.tolist()):
            if m >> i & 1:
                trial[w] = _CW_NIBBLE[second[w]]
        value = _fs2_value(trial)
        if block_ok(value):
            return value, repairs + (SWAP_REPAIRS if m else 0)
    return None


@dataclass
class _Reader:
    """One demodulator reading the blocks after a sync."""

    track: Track
    start: float  # baseband index of the end of the sync
    prev: complex  # the turned-back sample of the last bit read
    version: int = 0
    words: list[int] = field(default_factory=list)
    end: float = 0.0  # baseband index of the end of the last good block


@dataclass
class _Message:
    start: float  # native sample index of the end of the sync
    end: float  # of the end of the last block
    baud: int
    version: int
    words: tuple[int, ...]
    demod: str


@dataclass
class _Channel:
    """The demodulation at one bit rate: the MSK receiver, its candidates and the message being read."""

    baud: int
    loop: float  # scales the carrier loop gains
    rx: MskReceiver
    pending: list[SyncCandidate] = field(default_factory=list)
    active: _Reader | None = None
    done_until: float = -math.inf  # baseband index before which no new sync is looked at


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
        self._n = 0
        self._held = HeldAudio()
        self._channels = [self._channel(baud) for baud in sorted(set(bauds))]
        self._done: list[_Message] = []

    def _channel(self, baud: int) -> _Channel:
        r = self.rate
        # At 3.3 samples a bit (2400 baud at 8000 Hz) the tracking loops lose the clock in long runs of
        # one tone (measured: 18 of 20 clean FleetSync II bursts); twice that holds it.
        up = 2 if r < 6 * baud else 1
        # Wide enough for the tones (+-baud/4) and their sidebands; the matched filter does the rest.
        rx = MskReceiver(r, baud, sum(TONES[baud]) / 2, 0.85 * baud, up=up,
                         dec=max(1, r * up // (baud * 8)),  # about 8 samples a bit
                         patterns=SYNC_SIGNS, segments=SYNC_SEGMENTS, threshold=SYNC_THRESHOLD, coarse=SYNC_COARSE)
        return _Channel(baud=baud, loop=LOW_RATE_LOOP if r < 10 * baud else 1.0, rx=rx)

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        if self._held.add(block, start) < CHUNK_SECONDS * self.rate:
            return []
        return self._process(final=False, now=start)

    def flush(self, now: datetime) -> list[Output]:
        return self._process(final=True, now=now)

    def _process(self, *, final: bool, now: datetime) -> list[Output]:
        x, start = self._held.take(now)
        first = self._n
        self._n += x.size
        for ch in self._channels:
            if x.size:
                ch.rx.feed(x, first)
            ch.pending += ch.rx.search(final)
            self._read(ch, final)
            needed = [c.pos for c in ch.pending[:1]] + ([ch.active.track.pos] if ch.active is not None else [])
            ch.rx.trim(needed)
        return self._release(start, first, final)

    # --- candidates -> blocks -----------------------------------------------------------------------

    def _available(self, ch: _Channel, pos: float, bits: int) -> bool:
        """Whether the audio for ``bits`` more bits after ``pos`` is all here (the clock may run fast)."""
        return pos + (bits * (1 + MAX_CLOCK_ERROR) + 1) * ch.rx.spb + 2 < ch.rx.end

    def _read(self, ch: _Channel, final: bool) -> None:
        """Read the message in progress, then try the candidates in order; each waits for its audio, so
        that how the audio was split changes nothing."""
        while True:
            if ch.active is not None:
                if not self._continue(ch, ch.active, final):
                    return
                ch.active = None
                continue
            if not ch.pending:
                return
            cand = ch.pending[0]
            if cand.pos < ch.done_until:
                ch.pending.pop(0)  # a sync inside the message just read, or another peak of its sync
                continue
            if not final and not self._available(ch, cand.pos, 256 + 1):
                return
            ch.pending.pop(0)
            ch.active = self._first_block(ch, cand)

    def _first_block(self, ch: _Channel, cand: SyncCandidate) -> _Reader | None:
        """The first demodulator whose first block checks as heard, as FleetSync I (64 bits) or else II
        (256); a block that needed repair only once a second demodulator gets the same: a burst badly
        hit gives the decoders many tries, each a 2^-16 chance of a wrong word passing the CRC (2 in
        100 bursts at 3 dB SNR when the first repaired block was taken), and those do not agree."""
        fit = self._fit(ch, cand)
        repaired: dict[int, _Reader] = {}
        memo: Acquired = {}
        for variant in VARIANTS:
            reader = self._start(ch, cand, variant, fit, memo)
            if reader is None:
                continue
            u = self._bits(ch, reader, 64)
            found = self._decode(reader, u, 1)
            if found is None:
                u = np.concatenate((u, self._bits(ch, reader, 192)))
                found = self._decode(reader, u, 2)
            if found is None:
                continue
            word, repairs = found
            reader.version = 1 if u.size == 64 else 2
            reader.words.append(word)
            reader.end = reader.track.pos
            reader.prev = complex(u[-1])
            sure = FS1_SURE_REPAIRS if reader.version == 1 else FS2_SURE_REPAIRS
            if repairs <= sure or word in repaired:
                return repaired.get(word, reader)
            repaired[word] = reader
        return None

    @staticmethod
    def _decode(reader: _Reader, u: Complex, version: int) -> tuple[int, int] | None:
        """A block from the turned-back samples of its bits: with the phase smoothed, else as tracked."""
        full = np.concatenate(([reader.prev], u))
        smooth, plain = coherent_soft(smoothed(full, SMOOTH_BITS)), coherent_soft(full)
        # Each CRC tried is a 2^-16 chance for noise to pass: Chase on the better soft bits only, and
        # only after a clean sync (noise that passes the sync check mostly has 3 errors in it, a burst
        # at 3 dB SNR 0 or 1).
        chase = reader.track.sync_errors <= CHASE_SYNC_ERRORS
        decode = fs1_decode_soft if version == 1 else fs2_decode_soft
        found = decode(smooth, chase=chase)
        return found if found is not None else decode(plain, chase=False)

    def _continue(self, ch: _Channel, reader: _Reader, final: bool) -> bool:
        """Read further blocks while there is audio for them; True once the message has ended."""
        size = 64 if reader.version == 1 else 256
        while len(reader.words) < MAX_BLOCKS:
            if not final and not self._available(ch, reader.track.pos, size):
                return False
            u = self._bits(ch, reader, size)
            found = self._decode(reader, u, reader.version)
            if found is None:
                break
            reader.words.append(found[0])
            reader.end = reader.track.pos
            reader.prev = complex(u[-1])
        self._finish(ch, reader)
        return True

    def _finish(self, ch: _Channel, reader: _Reader) -> None:
        ch.done_until = reader.end
        native = (ch.rx.native(reader.start), ch.rx.native(reader.end))
        self._done.append(
            _Message(
                start=native[0],
                end=native[1],
                baud=ch.baud,
                version=reader.version,
                words=tuple(reader.words),
                demod=f"{ch.baud}{reader.track.variant.name}",
            )
        )

    def _fit(self, ch: _Channel, cand: SyncCandidate) -> tuple[float, float]:
        """The end of the sync and the bit length that fit its 32 samples best: the search found the
        peak for the nominal rate, and a clock 1 % off is 0.3 bit off at the ends of the sync, and more
        after a long run of one tone, where the loop has nothing to pull on."""
        n = np.arange(-31, 1)
        shift = np.repeat(SYNC_SHIFTS, len(SYNC_RATES))[:, None] * ch.rx.spb
        step = ch.rx.spb * (1 + np.tile(SYNC_RATES, len(SYNC_SHIFTS)))[:, None]
        ends = cand.pos + shift
        y = ch.rx.at_many((ends + n[None, :] * step).ravel()).reshape(ends.shape[0], 32)
        turned = y * (1j ** (n % 4)) * SYNC_SIGNS[cand.pattern]
        fit = np.abs(turned.reshape(-1, SYNC_SEGMENTS, 32 // SYNC_SEGMENTS).sum(axis=2)).sum(axis=1)
        best = int(np.argmax(fit))
        return float(ends[best, 0]), float(step[best, 0])

    @staticmethod
    def _start(ch: _Channel, cand: SyncCandidate, variant: Variant, fit: tuple[float, float],
               memo: Acquired) -> _Reader | None:
        """Carrier phase and frequency from the 32 sync samples, and the sync bits checked against them."""
        end, spb = fit
        signs = SYNC_SIGNS[cand.pattern]
        t = acquire(ch.rx, end, spb, signs, variant, SYNC_SEGMENTS, MAX_SYNC_ERRORS, memo)
        return None if t is None else _Reader(t, cand.pos, prev=complex(signs[-1]))

    @staticmethod
    def _bits(ch: _Channel, r: _Reader, count: int) -> Complex:
        """The turned-back samples of the next ``count`` bits (:func:`drivers.audio.msk.track`)."""
        return track(ch.rx, r.track, count, LOOP, ch.loop)

    # --- messages -> events -------------------------------------------------------------------------

    def _release(self, start: datetime, first: int, final: bool) -> list[Output]:
        """Report messages in the order they were sent: one waits while a candidate or a message of the
        other bit rate that began earlier is still undecided."""
        undecided = math.inf
        if not final:
            for ch in self._channels:
                if ch.active is not None:
                    undecided = min(undecided, ch.rx.native(ch.active.start))
                if ch.pending:
                    undecided = min(undecided, ch.rx.native(ch.pending[0].pos))
        ready = sorted((m for m in self._done if m.start < undecided), key=lambda m: m.start)
        self._done = [m for m in self._done if m.start >= undecided]
        return [self._event(m, self.at(start, round(m.end) - first)) for m in ready]

    def _event(self, c: _Message, now: datetime) -> Decoded:
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
        elif type_bits == T_STATUS | T_GPS and b0 & 0xFE != GPS_SUB and (text := message_payload(blocks)) is not None:
            detail.update(name="message", text=text.decode("latin-1"), payload=text.hex())
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
