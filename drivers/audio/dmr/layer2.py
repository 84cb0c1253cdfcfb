r"""DMR layer 2 (ETSI TS 102 361-1 clauses 6, 9; TS 102 361-2 clause 7): bursts, slot type, EMB, CACH,
link control, CSBK, data headers and data blocks, and how to build each of them (the encoder used by
tests and benches).

A burst is 264 bits = 132 symbols (27.5 ms); a base station fills the 2.5 ms between two bursts with
the CACH (24 bits), so its outbound channel is a continuous 144 symbols per 30 ms timeslot (9.1, 9.2)::

      CACH 12 sym | payload 49 sym | slot type 5 | SYNC 24 sym      | slot type 5 | payload 49 sym     data/control
      CACH 12 sym | voice 54 sym                 | SYNC or EMB+ES   |               voice 54 sym      voice
                                                   EMB 4 | embedded 16 | EMB 4

    CACH    TACT (AT, TC, LCSS, Hamming(7,4,3)) on bits 0 4 8 12 14 18 22, the short LC on the rest (9.3.1)
    slot    Golay(20,8): colour code (4 bits) + data type (4 bits) (9.3.6, table 6.? data types)
    EMB     QR(16,7,6): colour code (4), PI (1), LCSS (2) (9.1.2)
    sync    48 bits, all +-3 symbols: which kind of burst, from whom (9.1.1, table 9.2)

Full LC (9 octets, TS 102 361-2 7.1.1.1)::

    | PF R FLCO(6) | FID | service options | target (3 octets) | source (3 octets) |
      service options (7.2.1): bit 7 emergency, 6 privacy, 3 broadcast, 2 OVCM, 1-0 priority
      FLCO 0 group voice, 3 unit-to-unit voice, 8 GPS info (7.1.1.4: | pos err 3 | lon 25 | lat 24 |)

CSBK (12 octets, 9.1.5/TS 102 361-2 7.1.2): | LB PF CSBKO(6) | FID | 8 octets | CRC (mask A5A5) |

Data header (12 octets, 9.2.6)::

    | G/I A HC POC4 DPF(4) | SAP(4) POC(4) | dst 3 | src 3 | F BF(7) | S N(S)3 FSN4 | CRC (mask CCCC) |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from drivers.audio.dmr import fec
from drivers.audio.dmr.fec import Bits

Symbols = npt.NDArray[np.float64]

BURST_SYMBOLS = 132
CACH_SYMBOLS = 12
SLOT_SYMBOLS = 144  # CACH + burst: one timeslot, 30 ms
SYNC_AT = 54  # first sync symbol within a burst
SYNC_SYMBOLS = 24


class SyncKind(IntEnum):
    BS_VOICE = 0
    BS_DATA = 1
    MS_VOICE = 2
    MS_DATA = 3
    TDMA1_VOICE = 4
    TDMA1_DATA = 5
    TDMA2_VOICE = 6
    TDMA2_DATA = 7


# Table 9.2 (48 bits each, first sent first).
SYNC_WORDS: dict[SyncKind, int] = {
    SyncKind.BS_VOICE: 0x755FD7DF75F7,
    SyncKind.BS_DATA: 0xDFF57D75DF5D,
    SyncKind.MS_VOICE: 0x7F7D5DD57DFD,
    SyncKind.MS_DATA: 0xD5D7F77FD757,
    SyncKind.TDMA1_VOICE: 0x5D577F7757FF,
    SyncKind.TDMA1_DATA: 0xF7FDD5DDFD55,
    SyncKind.TDMA2_VOICE: 0x7DFFD5F55D5F,
    SyncKind.TDMA2_DATA: 0xD7557F5FF7F5,
}
VOICE_SYNCS = frozenset({SyncKind.BS_VOICE, SyncKind.MS_VOICE, SyncKind.TDMA1_VOICE, SyncKind.TDMA2_VOICE})
SYNC_SLOT = {SyncKind.TDMA1_VOICE: 1, SyncKind.TDMA1_DATA: 1, SyncKind.TDMA2_VOICE: 2, SyncKind.TDMA2_DATA: 2}
SYNC_SOURCE = {k: ("BS" if k.name.startswith("BS") else "MS" if k.name.startswith("MS") else "direct")
               for k in SyncKind}


class DataType(IntEnum):
    """Slot type data types (9.3.6, table 9.? ``DT``)."""

    PI_HEADER = 0
    VOICE_LC_HEADER = 1
    TERMINATOR_WITH_LC = 2
    CSBK = 3
    MBC_HEADER = 4
    MBC_CONTINUATION = 5
    DATA_HEADER = 6
    RATE_12_DATA = 7
    RATE_34_DATA = 8
    IDLE = 9
    RATE_1_DATA = 10
    USBD = 11


# Dibit -> symbol (10.2.1 table 10.3): 01 +3, 00 +1, 10 -1, 11 -3.
_DIBIT_SYMBOL = np.array([1.0, 3.0, -1.0, -3.0])


def bits_to_symbols(bits: Bits) -> Symbols:
    b = np.asarray(bits, np.uint8).reshape(-1, 2)
    symbols: Symbols = _DIBIT_SYMBOL[b[:, 0] * 2 + b[:, 1]]
    return symbols


def symbols_to_soft(symbols: Symbols) -> fec.Soft:
    """Soft bits (+1 = 0, -1 = 1) from symbol values in level units (along the last axis): the first bit of
    a dibit is the sign, the second says outer (|s| = 3, bit 1... for +3 it is 1) or inner."""
    s = np.asarray(symbols, np.float64)
    soft = np.empty((*s.shape[:-1], 2 * s.shape[-1]))  # (.., n) symbols -> (.., 2n)
    # (minimum and maximum rather than np.clip, whose dispatch costs more than the work on a burst)
    first, second = soft[..., 0::2], soft[..., 1::2]
    np.divide(np.minimum(np.maximum(s, -2.0), 2.0), 2.0, out=first)  # positive symbol -> first bit 0
    # |s| near 1 -> +1 (bit 0), near 3 -> -1 (bit 1). For +3 the dibit is 01 (second bit 1) and for -3
    # it is 11 (second bit 1): outer means 1 either way.
    np.minimum(np.maximum(2.0 - np.abs(s), -1.0), 1.0, out=second)
    return soft


def symbols_to_bits(symbols: Symbols) -> Bits:
    """The hard bits of :func:`symbols_to_soft` (``fec.hard`` of them), without the soft values: a dibit's
    first bit says negative, its second outer (beyond +-2)."""
    s = np.asarray(symbols, np.float64)
    bits = np.empty((*s.shape[:-1], 2 * s.shape[-1]), np.uint8)
    bits[..., 0::2] = s / 2.0 < 0  # halved as the soft bit is: a subnormal below zero halves to -0.0, a 0
    bits[..., 1::2] = np.abs(s) > 2.0
    return bits


def sync_symbols(kind: SyncKind) -> Symbols:
    return bits_to_symbols(fec.bits_of(SYNC_WORDS[kind], 48))


# --------------------------------------------------------------------------- small fields


def slot_type_bits(color_code: int, data_type: int) -> Bits:
    return fec.golay2087_encode((color_code & 0xF) << 4 | (data_type & 0xF))


def emb_bits(color_code: int, lcss: int, pi: bool = False) -> Bits:
    return fec.qr1676_encode((color_code & 0xF) << 3 | int(pi) << 2 | (lcss & 3))


_TACT_POS = np.array([0, 4, 8, 12, 14, 18, 22], np.int64)
_CACH_PAYLOAD_POS = np.array([i for i in range(24) if i not in _TACT_POS], np.int64)


def cach_bits(slot: int, *, busy: bool = True, lcss: int = 0, payload: Bits | None = None) -> Bits:
    """24 CACH bits whose TC says the burst that follows is in ``slot`` (1 or 2)."""
    tact = fec.hamming_encode(np.array([int(busy), slot - 1, lcss >> 1 & 1, lcss & 1], np.uint8), fec.H7_4)
    out = np.zeros(24, np.uint8)
    out[_TACT_POS] = tact
    out[_CACH_PAYLOAD_POS] = payload if payload is not None else np.zeros(17, np.uint8)
    return out


def decode_tact(soft: fec.Soft) -> tuple[int, int] | None:
    """(slot of the following burst, bits corrected) from the CACH's soft bits; None if damaged."""
    got = fec.hamming_correct(fec.hard(np.asarray(soft)[_TACT_POS]), fec.H7_4, 4)
    if got is None:
        return None
    word, fixed = got
    return int(word[1]) + 1, fixed


# ------------------------------------------------------------------------------ link control


class Flco(IntEnum):
    GROUP_VOICE = 0
    UNIT_TO_UNIT_VOICE = 3
    TALKER_ALIAS_HEADER = 4
    GPS_INFO = 8


@dataclass(frozen=True, slots=True)
class LinkControl:
    """A full LC: who talks to whom, how (TS 102 361-2 7.1.1)."""

    flco: int
    fid: int
    options: int
    target: int
    source: int
    protect: bool = False

    @property
    def emergency(self) -> bool:
        return bool(self.options & 0x80)

    @property
    def call_type(self) -> str:
        names: dict[int, str] = {Flco.GROUP_VOICE: "group", Flco.UNIT_TO_UNIT_VOICE: "private"}
        return names.get(self.flco, f"flco-{self.flco}")

    def to_bytes(self) -> bytes:
        return bytes((int(self.protect) << 7 | (self.flco & 0x3F), self.fid, self.options,
                      *self.target.to_bytes(3, "big"), *self.source.to_bytes(3, "big")))

    @classmethod
    def from_bytes(cls, b: bytes) -> LinkControl:
        return cls(flco=b[0] & 0x3F, fid=b[1], options=b[2], target=int.from_bytes(b[3:6], "big"),
                   source=int.from_bytes(b[6:9], "big"), protect=bool(b[0] & 0x80))


def group_call(source: int, group: int, *, emergency: bool = False, fid: int = 0) -> LinkControl:
    return LinkControl(Flco.GROUP_VOICE, fid, 0x80 if emergency else 0, group, source)


def private_call(source: int, target: int, *, emergency: bool = False, fid: int = 0) -> LinkControl:
    return LinkControl(Flco.UNIT_TO_UNIT_VOICE, fid, 0x80 if emergency else 0, target, source)


def gps_info_lc(lat: float, lon: float, *, position_error: int = 2) -> bytes:
    """GPS info LC (TS 102 361-2 7.1.1.4): | FLCO 8 | FID 0 | R4 perr3 lon25 lat24 |."""
    lon_v = round(lon * (1 << 25) / 360.0) & 0x1FFFFFF
    lat_v = round(lat * (1 << 24) / 180.0) & 0xFFFFFF
    body = (position_error & 7) << 49 | lon_v << 24 | lat_v
    return bytes((Flco.GPS_INFO, 0)) + body.to_bytes(7, "big")


def parse_gps_info(lc: bytes) -> tuple[float, float, int]:
    body = int.from_bytes(lc[2:9], "big")
    lon_v, lat_v = body >> 24 & 0x1FFFFFF, body & 0xFFFFFF
    lon = (lon_v - (1 << 25) if lon_v & (1 << 24) else lon_v) * 360.0 / (1 << 25)
    lat = (lat_v - (1 << 24) if lat_v & (1 << 23) else lat_v) * 180.0 / (1 << 24)
    return lat, lon, body >> 49 & 7


# ------------------------------------------------------------------------------------- CSBK

CSBK_NAMES = {
    0x04: "unit_to_unit_voice_request",  # TS 102 361-2 7.1.2.1
    0x05: "unit_to_unit_answer_response",
    0x1F: "call_alert",  # FID 0x10 (Motorola) on the air; ETSI Tier III CSBKO table too
    0x20: "ack_response",
    0x24: "radio_check",
    0x26: "nack_response",
    0x38: "bs_outbound_activation",
    0x3D: "preamble",  # 7.1.2.3: data or CSBK to follow
}


@dataclass(frozen=True, slots=True)
class Csbk:
    opcode: int
    fid: int
    data: bytes  # octets 2-9
    last_block: bool = True

    @property
    def target(self) -> int:
        return int.from_bytes(self.data[2:5], "big")

    @property
    def source(self) -> int:
        return int.from_bytes(self.data[5:8], "big")

    def to_bytes(self) -> bytes:
        return fec.with_ccitt(bytes((int(self.last_block) << 7 | (self.opcode & 0x3F), self.fid)) + self.data,
                             fec.MASK_CSBK)


def preamble_csbk(source: int, target: int, blocks: int, *, group: bool = False) -> Csbk:
    body = bytes((0x80 | int(group) << 6, blocks)) + target.to_bytes(3, "big") + source.to_bytes(3, "big")
    return Csbk(0x3D, 0, body)


# ------------------------------------------------------------------------------------- data

DPF_NAMES = {0: "udt", 1: "response", 2: "unconfirmed", 3: "confirmed", 13: "defined_short", 14: "raw_short",
             15: "proprietary"}
SAP_IP = 4  # 9.3.? table: IP based packet data
SAP_NAMES = {0: "udt", 2: "tcp_ip_compressed", 3: "udp_ip_compressed", 4: "ip", 5: "arp", 9: "proprietary",
             10: "short_data"}
BLOCK_BYTES = {DataType.RATE_12_DATA: 12, DataType.RATE_34_DATA: 18, DataType.RATE_1_DATA: 24}
BLOCK_MASK = {DataType.RATE_12_DATA: fec.MASK_RATE12_BLOCK, DataType.RATE_34_DATA: fec.MASK_RATE34_BLOCK,
              DataType.RATE_1_DATA: fec.MASK_RATE1_BLOCK}


@dataclass(frozen=True, slots=True)
class DataHeader:
    dpf: int
    sap: int
    target: int
    source: int
    blocks: int  # blocks to follow
    group: bool = False
    pad: int = 0  # pad octet count
    response_requested: bool = False
    full_message: bool = True
    fsn: int = 0
    raw: bytes = b""

    def to_bytes(self) -> bytes:
        b0 = int(self.group) << 7 | int(self.response_requested) << 6 | (self.pad >> 4 & 1) << 4 | (self.dpf & 0xF)
        b1 = (self.sap & 0xF) << 4 | (self.pad & 0xF)
        b8 = int(self.full_message) << 7 | (self.blocks & 0x7F)
        return fec.with_ccitt(bytes((b0, b1, *self.target.to_bytes(3, "big"), *self.source.to_bytes(3, "big"),
                                     b8, self.fsn & 0xF)), fec.MASK_DATA_HEADER)

    @classmethod
    def from_bytes(cls, b: bytes) -> DataHeader:
        return cls(dpf=b[0] & 0xF, sap=b[1] >> 4, target=int.from_bytes(b[2:5], "big"),
                   source=int.from_bytes(b[5:8], "big"), blocks=b[8] & 0x7F, group=bool(b[0] & 0x80),
                   pad=(b[0] >> 4 & 1) << 4 | (b[1] & 0xF), response_requested=bool(b[0] & 0x40),
                   full_message=bool(b[8] & 0x80), fsn=b[9] & 0xF, raw=bytes(b[:12]))

    @property
    def confirmed(self) -> bool:
        return self.dpf == 3


def packet_blocks(payload: bytes, rate: DataType, *, confirmed: bool = False) -> tuple[list[bytes], int]:
    """The data blocks (each the bytes one burst carries) of a packet and its pad octet count:
    user data, pad octets, then the CRC-32 (9.2.? / B.3.9), cut into blocks; a confirmed block starts
    with its serial number (7 bits) and CRC-9 (9 bits, masked by the rate)."""
    size = BLOCK_BYTES[rate] - (2 if confirmed else 0)
    n_blocks = max(1, -(-(len(payload) + 4) // size))
    pad = n_blocks * size - 4 - len(payload)
    body = payload + bytes(pad)
    body += fec.crc32_dmr(body).to_bytes(4, "little")
    blocks = []
    for k in range(n_blocks):
        chunk = body[k * size:(k + 1) * size]
        if confirmed:
            serial = k & 0x7F
            crc = fec.crc9(np.concatenate((fec.bytes_to_bits(chunk), fec.bits_of(serial, 7)))) ^ BLOCK_MASK[rate]
            chunk = bytes((serial << 1 | crc >> 8, crc & 0xFF)) + chunk
        blocks.append(chunk)
    return blocks, pad


@dataclass
class PacketAssembly:
    """A data header and the blocks that came after it, until it has ``header.blocks`` of them."""

    header: DataHeader
    rate: DataType | None = None
    blocks: list[bytes] = field(default_factory=list)
    bad_blocks: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.blocks) + len(self.bad_blocks) >= self.header.blocks

    def payload(self) -> bytes:
        """The user data, or FecError saying why not (a block that failed, the CRC-32)."""
        if self.bad_blocks:
            raise fec.FecError(f"{len(self.bad_blocks)} of {self.header.blocks} data block(s) failed: "
                               + "; ".join(self.bad_blocks))
        if self.rate is None or not self.blocks:
            raise fec.FecError("a data header with no blocks after it")
        body = b""
        for k, block in enumerate(self.blocks):
            if self.header.confirmed:
                serial, crc = block[0] >> 1, (block[0] & 1) << 8 | block[1]
                want = fec.crc9(np.concatenate((fec.bytes_to_bits(block[2:]), fec.bits_of(serial, 7))))
                if crc ^ BLOCK_MASK[self.rate] != want:
                    raise fec.FecError(f"confirmed data block {k}: CRC-9 fails")
                block = block[2:]
            body += block
        data, crc = body[:-4], int.from_bytes(body[-4:], "little")
        if fec.crc32_dmr(data) != crc:
            raise fec.FecError(f"packet CRC-32 fails (sent {crc:08x}, computed {fec.crc32_dmr(data):08x})")
        return data[: len(data) - self.header.pad] if self.header.pad <= len(data) else b""


def rate1_bits(block: bytes) -> Bits:
    """The 196 payload bits of a rate 1 block: 96 info bits, 4 reserved (zero), 96 info bits."""
    b = fec.bytes_to_bits(block)
    return np.concatenate((b[:96], np.zeros(4, np.uint8), b[96:])).astype(np.uint8)


def rate1_block(soft: fec.Soft) -> bytes:
    h = fec.hard(soft)
    return fec.bits_to_bytes(np.concatenate((h[:96], h[100:196])))
