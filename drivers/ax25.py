r"""AX.25 UI frames: parse and build the frames APRS rides in, and the HDLC frame check sequence.

Sans-I/O: bytes in, a frozen :class:`Ax25Frame` out. KISS hands frames over without the flags and the
FCS, so :func:`parse_frame` expects exactly that; an audio HDLC decoder strips the flags and the bit
stuffing, checks the last two bytes with :func:`fcs` and passes the rest here.

Frame (AX.25 2.2, section 3; the UI frame is section 4.3.3.6)::

    | flag | destination | source | digipeaters | control | PID | info      | FCS | flag |
    | 7E   | 7 bytes     | 7 bytes| 0-8 x 7     | 1 byte  | 1   | 0-256     | 2   | 7E   |
           \____________________ what KISS carries ____________________/

    One address (AX.25 2.2 section 3.12): six callsign bytes, each ASCII shifted left by one and
    padded with spaces, then the SSID byte:

        bit   7     6  5   4  3  2  1   0
            | C/H | R  R | S  S  I  D | X |

        C   command/response bit (destination and source)
        H   has-been-repeated bit (digipeaters)
        R   reserved, sent as 1
        X   extension bit: 1 on the last address of the field

    A UI frame has control 0x03 (0x13 with the poll/final bit); APRS uses PID 0xF0, no layer 3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# AX.25 2.2 section 3.12: at most 8 digipeaters after destination and source.
MAX_DIGIPEATERS = 8
ADDRESS_LENGTH = 7
CONTROL_UI = 0x03
CONTROL_PF = 0x10  # poll/final bit (AX.25 2.2 section 4.2.2)
PID_NO_LAYER3 = 0xF0  # AX.25 2.2 section 3.8, table 3
# AX.25 2.2 section 3.9: "the I field defaults to a length of 256 octets"; some TNCs send more, so
# this is a guard against garbage, not a protocol check.
MAX_INFO_LENGTH = 2048

_CALL_RE = re.compile(r"^([A-Z0-9]{1,6})(?:-(\d{1,2}))?$")


class Ax25ErrorCode(StrEnum):
    SHORT = "frame_short"  # fewer bytes than two addresses, control and PID
    ADDRESS_UNTERMINATED = "addr_unterminated"  # no extension bit within 10 addresses
    ADDRESS_INVALID = "addr_invalid"  # a callsign byte that is not an upper-case letter or digit
    NOT_UI = "not_ui"  # an I, S or non-UI U frame: not something APRS carries
    INFO_LONG = "info_long"


class Ax25Error(ValueError):
    """A frame that is not a valid AX.25 UI frame; ``code`` says why in one word."""

    def __init__(self, code: Ax25ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Address:
    """A station address: callsign (1-6 upper-case letters or digits) and SSID 0-15."""

    callsign: str
    ssid: int = 0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z0-9]{1,6}", self.callsign) or not 0 <= self.ssid <= 15:
            raise ValueError(f"not an AX.25 address: {self.callsign!r}-{self.ssid}")

    @classmethod
    def parse(cls, text: str) -> Address:
        """``N0CALL-9`` -> Address("N0CALL", 9); ``WIDE1`` -> Address("WIDE1", 0)."""
        m = _CALL_RE.match(text)
        if m is None or int(m.group(2) or 0) > 15:
            raise ValueError(f"not an AX.25 callsign with SSID 0-15: {text!r}")
        return cls(m.group(1), int(m.group(2) or 0))

    def __str__(self) -> str:
        # TNC2 and APRS-IS write SSID 0 as the bare callsign.
        return self.callsign if self.ssid == 0 else f"{self.callsign}-{self.ssid}"


@dataclass(frozen=True, slots=True)
class Digipeater:
    address: Address
    repeated: bool = False  # the H bit: this digipeater has already relayed the frame

    @classmethod
    def parse(cls, text: str) -> Digipeater:
        """``WIDE1-1*`` -> repeated; a TNC2 ``*`` marks a digipeater that has relayed the frame."""
        return cls(Address.parse(text.removesuffix("*")), text.endswith("*"))


@dataclass(frozen=True, slots=True)
class Ax25Frame:
    source: Address
    destination: Address
    digipeaters: tuple[Digipeater, ...]
    control: int
    pid: int
    info: bytes  # binary-clean: APRS bodies may carry any byte (Mic-E uses 0x1C-0x7F, messages UTF-8)

    def path(self) -> list[str]:
        """The digipeater path as TNC2 writes it: ``*`` after the last one that has repeated."""
        last = max((i for i, d in enumerate(self.digipeaters) if d.repeated), default=-1)
        return [f"{d.address}{'*' if i == last else ''}" for i, d in enumerate(self.digipeaters)]

    def tnc2(self) -> str:
        """The monitor line ``SRC>DST,DIGI*,DIGI:info`` with unprintable bytes shown as ``<0xNN>``."""
        header = ",".join([f"{self.source}>{self.destination}", *self.path()])
        return f"{header}:{display_text(self.info)}"


def display_text(data: bytes) -> str:
    """Info bytes as text for logs and JSON: UTF-8 if it is, else Latin-1; control bytes as ``<0xNN>``.

    The ``<0xNN>`` form is what Dire Wolf prints, so lines can be compared with its monitor output.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return "".join(f"<0x{ord(c):02x}>" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def _decode_address(raw: bytes, position: int) -> tuple[Address, bool]:
    chars = []
    for b in raw[:6]:
        # Every callsign byte is shifted left, so its low bit (the extension bit) must be 0.
        if b & 1:
            raise Ax25Error(Ax25ErrorCode.ADDRESS_INVALID, f"address {position}: extension bit inside the callsign")
        chars.append(chr(b >> 1))
    call = "".join(chars).rstrip(" ")
    if not re.fullmatch(r"[A-Z0-9]{1,6}", call):
        raise Ax25Error(Ax25ErrorCode.ADDRESS_INVALID, f"address {position}: bad callsign {''.join(chars)!r}")
    ssid_byte = raw[6]
    return Address(call, (ssid_byte >> 1) & 0x0F), bool(ssid_byte & 0x80)


def parse_frame(data: bytes) -> Ax25Frame:
    """Parse a UI frame without flags or FCS (as KISS delivers it); raises :class:`Ax25Error`."""
    minimum = 2 * ADDRESS_LENGTH + 2
    if len(data) < minimum:
        raise Ax25Error(Ax25ErrorCode.SHORT, f"{len(data)} bytes, a UI frame has at least {minimum}")
    end = None
    for index in range(2 + MAX_DIGIPEATERS):
        last_byte = (index + 1) * ADDRESS_LENGTH - 1
        if last_byte >= len(data):
            break
        if data[last_byte] & 1:
            end = index + 1
            break
    if end is None or end < 2:
        raise Ax25Error(Ax25ErrorCode.ADDRESS_UNTERMINATED, "no address with the extension bit set among the first 10")
    addresses = [_decode_address(data[i * ADDRESS_LENGTH : (i + 1) * ADDRESS_LENGTH], i) for i in range(end)]
    rest = data[end * ADDRESS_LENGTH :]
    if len(rest) < 2:
        raise Ax25Error(Ax25ErrorCode.SHORT, "no control and PID after the address field")
    control, pid = rest[0], rest[1]
    if control & ~CONTROL_PF != CONTROL_UI:
        raise Ax25Error(Ax25ErrorCode.NOT_UI, f"control 0x{control:02x} is not a UI frame")
    info = rest[2:]
    if len(info) > MAX_INFO_LENGTH:
        raise Ax25Error(Ax25ErrorCode.INFO_LONG, f"{len(info)} info bytes")
    return Ax25Frame(
        destination=addresses[0][0],
        source=addresses[1][0],
        digipeaters=tuple(Digipeater(address, repeated) for address, repeated in addresses[2:]),
        control=control,
        pid=pid,
        info=info,
    )


def _encode_address(address: Address, flag_bit: bool, last: bool) -> bytes:
    call = address.callsign.ljust(6).encode("ascii")
    # Reserved bits 6-5 are sent as 1 (AX.25 2.2 section 3.12.2).
    ssid_byte = 0x60 | (address.ssid << 1) | (0x80 if flag_bit else 0) | (1 if last else 0)
    return bytes(b << 1 for b in call) + bytes([ssid_byte])


def encode_ui(
    source: Address | str,
    destination: Address | str,
    info: bytes,
    digipeaters: Iterable[Digipeater | str] = (),
    *,
    pid: int = PID_NO_LAYER3,
    control: int = CONTROL_UI,
) -> bytes:
    """Build a UI frame without FCS (what KISS sends). Digipeaters may be TNC2 text (``WIDE1-1*``).

    A TNC2 ``*`` marks the last digipeater that has repeated, so every one before it is marked too.
    Destination and source carry the AX.25 2.0 "command" bits (C=1 on destination, C=0 on source).
    """
    src = Address.parse(source) if isinstance(source, str) else source
    dst = Address.parse(destination) if isinstance(destination, str) else destination
    digis = [Digipeater.parse(d) if isinstance(d, str) else d for d in digipeaters]
    if len(digis) > MAX_DIGIPEATERS:
        raise ValueError(f"{len(digis)} digipeaters, AX.25 allows {MAX_DIGIPEATERS}")
    last_repeated = max((i for i, d in enumerate(digis) if d.repeated), default=-1)
    out = bytearray(_encode_address(dst, True, False))
    out += _encode_address(src, False, not digis)
    for i, digi in enumerate(digis):
        out += _encode_address(digi.address, i <= last_repeated, i == len(digis) - 1)
    out += bytes([control, pid])
    out += info
    return bytes(out)


def _fcs_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_FCS_TABLE = _fcs_table()


def fcs(data: bytes | Sequence[int]) -> int:
    """AX.25 frame check sequence: CRC-16/X.25 (ISO 3309, AX.25 2.2 section 3.10).

    Reflected polynomial 0x8408 (x^16 + x^12 + x^5 + 1), initial value 0xFFFF, final XOR 0xFFFF; it is
    sent low byte first. Check value: ``fcs(b"123456789") == 0x906E``.
    """
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _FCS_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF
