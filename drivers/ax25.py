r"""AX.25 frames: parse every frame type off the air, build the UI frames APRS rides in, and the HDLC
frame check sequence.

Sans-I/O: bytes in, a frozen :class:`Ax25Frame` out. KISS hands frames over without the flags and the
FCS, so :func:`parse_frame` expects exactly that; an audio HDLC decoder strips the flags and the bit
stuffing, checks the last two bytes with :func:`fcs` and passes the rest here.

Leniency: a frame that passed its FCS is what the station sent, so an address that breaks the rules of
AX.25 2.2 section 3.12 (a space inside ``AO27 T``, lower case, other characters) is read as sent and
described in :attr:`Ax25Frame.irregular`, as Dire Wolf reads it (ax25_pad.c: ax25_from_frame keeps
the bytes, ax25_check_addresses only warns). What cannot be read is refused: no address field of 2-10
addresses, or a frame too short for its control field and PID.

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

    Control field (AX.25 2.2 section 4.2, modulo 8; a monitor cannot tell modulo 128, which is
    negotiated on a connection):

        bit   7  6  5   4   3  2  1   0
        I   | N(R)    | P | N(S)    | 0 |     information, in sequence on a connection; has a PID
        S   | N(R)    |P/F| S  S| 0   1 |     RR 00, RNR 01, REJ 10, SREJ 11
        U   | M  M  M |P/F| M  M| 1   1 |     UI 0x03 (has a PID), SABM 0x2F, SABME 0x6F, DISC 0x43,
                                              DM 0x0F, UA 0x63, FRMR 0x87, XID 0xAF, TEST 0xE3

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
PID_NETROM = 0xCF
# AX.25 2.2 section 3.8, figure 3.2: the layer 3 protocols a PID names.
PID_NAMES = {
    0x01: "ISO 8208/CCITT X.25 PLP",
    0x06: "compressed TCP/IP (RFC 1144)",
    0x07: "uncompressed TCP/IP (RFC 1144)",
    0x08: "segmentation fragment",
    0xC3: "TEXNET",
    0xC4: "Link Quality Protocol",
    0xCA: "Appletalk",
    0xCB: "Appletalk ARP",
    0xCC: "ARPA Internet Protocol",
    0xCD: "ARPA Address Resolution",
    0xCE: "FlexNet",
    PID_NETROM: "NET/ROM",
    PID_NO_LAYER3: "no layer 3",
    0xFF: "escape",
}
# AX.25 2.2 section 4.3.3: the U frames, with the poll/final bit cleared.
_U_FRAMES = {0x03: "UI", 0x2F: "SABM", 0x6F: "SABME", 0x43: "DISC", 0x0F: "DM", 0x63: "UA", 0x87: "FRMR",
             0xAF: "XID", 0xE3: "TEST"}
_S_FRAMES = ("RR", "RNR", "REJ", "SREJ")  # AX.25 2.2 section 4.3.2, by the two S bits
# AX.25 2.2 section 3.9: "the I field defaults to a length of 256 octets"; some TNCs send more, so
# this is a guard against garbage, not a protocol check.
MAX_INFO_LENGTH = 2048

_CALL_RE = re.compile(r"^([A-Z0-9]{1,6})(?:-(\d{1,2}))?$")


class Ax25ErrorCode(StrEnum):
    SHORT = "frame_short"  # fewer bytes than two addresses and a control field (and a PID for I and UI)
    ADDRESS_UNTERMINATED = "addr_unterminated"  # no extension bit within 10 addresses
    ADDRESS_INVALID = "addr_invalid"  # an extension bit inside a callsign: the address field is broken
    INFO_LONG = "info_long"


class Ax25Error(ValueError):
    """Bytes that cannot be read as an AX.25 frame; ``code`` says why in one word."""

    def __init__(self, code: Ax25ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Address:
    """A station address: callsign and SSID 0-15.

    AX.25 allows 1-6 upper-case letters or digits (section 3.12); an address read off the air is kept
    as sent, any six 7-bit characters with the padding spaces removed, and :meth:`irregularities`
    says how it breaks the rule. Text (:meth:`parse`) and what this module transmits stay strict.
    """

    callsign: str
    ssid: int = 0

    def __post_init__(self) -> None:
        if len(self.callsign) > 6 or not self.callsign.isascii() or not 0 <= self.ssid <= 15:
            raise ValueError(f"not an AX.25 address: {self.callsign!r}-{self.ssid}")

    def irregularities(self) -> list[str]:
        """How the callsign breaks AX.25 2.2 section 3.12; empty for a conforming one."""
        call = self.callsign
        if not call:
            return ["empty"]
        problems = []
        if " " in call:
            problems.append("a space inside")
        if any(c.islower() for c in call):
            problems.append("lower-case letters")
        others = sorted({c for c in call if not (c.isdigit() or c.isalpha() or c == " ")})
        if others:
            problems.append("characters " + " ".join(display_text(c.encode()) for c in others))
        return problems

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
    pid: int | None  # None: S and U frames other than UI carry no PID
    info: bytes  # binary-clean: APRS bodies may carry any byte (Mic-E uses 0x1C-0x7F, messages UTF-8)

    def path(self) -> list[str]:
        """The digipeater path as TNC2 writes it: ``*`` after the last one that has repeated."""
        last = max((i for i, d in enumerate(self.digipeaters) if d.repeated), default=-1)
        return [f"{d.address}{'*' if i == last else ''}" for i, d in enumerate(self.digipeaters)]

    @property
    def kind(self) -> str:
        """The frame type by its control field: ``UI``, ``I``, ``RR``, ``SABM``, ... (``U?`` if unknown)."""
        return frame_kind(self.control)

    @property
    def irregular(self) -> tuple[str, ...]:
        """What in the address field breaks AX.25 2.2 section 3.12, one line per address; empty if nothing."""
        roles = [("destination", self.destination), ("source", self.source)]
        roles += [(f"digipeater {i + 1}", d.address) for i, d in enumerate(self.digipeaters)]
        return tuple(
            f"{role} {display_text(address.callsign.encode())!r}: {', '.join(problems)}"
            f" (AX.25 callsigns are upper-case letters and digits)"
            for role, address in roles
            if (problems := address.irregularities())
        )

    def header(self) -> str:
        """The addresses as a monitor writes them: ``SRC>DST,DIGI*,DIGI``."""
        return display_text(",".join([f"{self.source}>{self.destination}", *self.path()]).encode())

    def tnc2(self) -> str:
        """The monitor line ``SRC>DST,DIGI*,DIGI:info`` with unprintable bytes shown as ``<0xNN>``."""
        return f"{self.header()}:{display_text(self.info)}"


def frame_kind(control: int) -> str:
    """The frame type a control field names (AX.25 2.2 section 4.2), modulo 8."""
    if control & 1 == 0:
        return "I"
    if control & 3 == 1:
        return _S_FRAMES[control >> 2 & 3]
    return _U_FRAMES.get(control & ~CONTROL_PF, "U?")


def control_fields(control: int) -> dict[str, int]:
    """The sequence numbers and the poll/final bit of a control field (modulo 8), by their names in
    AX.25 2.2: ``N(S)`` (I frames), ``N(R)`` (I and S frames), ``P/F``."""
    fields = {}
    if control & 1 == 0:
        fields["N(S)"] = control >> 1 & 7
    if control & 3 != 3:
        fields["N(R)"] = control >> 5
    fields["P/F"] = control >> 4 & 1
    return fields


def display_text(data: bytes) -> str:
    """Info bytes as text for logs and JSON: UTF-8 if it is, else Latin-1; control bytes as ``<0xNN>``.

    The ``<0xNN>`` form is what Dire Wolf prints, so lines can be compared with its monitor output.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return "".join(f"<0x{ord(c):02x}>" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def read_address(raw: bytes) -> Address:
    """One 7-byte address as AX.25 sends it (also inside NET/ROM broadcasts); raises :class:`Ax25Error`."""
    if len(raw) != ADDRESS_LENGTH:
        raise Ax25Error(Ax25ErrorCode.SHORT, f"an address has {ADDRESS_LENGTH} bytes, got {len(raw)}")
    return _decode_address(raw, 0)[0]


def _decode_address(raw: bytes, position: int) -> tuple[Address, bool]:
    chars = []
    for b in raw[:6]:
        # Every callsign byte is shifted left, so its low bit (the extension bit) must be 0: a 1 here
        # ends the address field in the middle of an address, which no reading can mend.
        if b & 1:
            raise Ax25Error(Ax25ErrorCode.ADDRESS_INVALID, f"address {position}: extension bit inside the callsign")
        chars.append(chr(b >> 1))
    # Only trailing spaces are padding (Dire Wolf, ax25_get_addr_with_ssid, trims the same way).
    call = "".join(chars).rstrip(" ")
    ssid_byte = raw[6]
    return Address(call, (ssid_byte >> 1) & 0x0F), bool(ssid_byte & 0x80)


def parse_frame(data: bytes) -> Ax25Frame:
    """Parse a frame of any type without flags or FCS (as KISS delivers it); raises :class:`Ax25Error`.

    I and UI frames carry a PID; S and the other U frames have none (``pid`` is None) and whatever
    follows the control field is their info (FRMR, XID and TEST carry some)."""
    minimum = 2 * ADDRESS_LENGTH + 1
    if len(data) < minimum:
        raise Ax25Error(Ax25ErrorCode.SHORT, f"{len(data)} bytes, an AX.25 frame has at least {minimum}")
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
    if not rest:
        raise Ax25Error(Ax25ErrorCode.SHORT, "no control field after the address field")
    control = rest[0]
    pid: int | None = None
    if frame_kind(control) in ("I", "UI"):
        if len(rest) < 2:
            raise Ax25Error(Ax25ErrorCode.SHORT, f"no PID after the control field of an {frame_kind(control)} frame")
        pid = rest[1]
    info = rest[1 if pid is None else 2 :]
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
    pid: int | None = PID_NO_LAYER3,
    control: int = CONTROL_UI,
) -> bytes:
    """Build a UI frame without FCS (what KISS sends). Digipeaters may be TNC2 text (``WIDE1-1*``).

    Another ``control`` builds that frame type, without a PID when ``pid`` is None (S and U frames).

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
    out += bytes([control] if pid is None else [control, pid])
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
