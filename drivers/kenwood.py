r"""Kenwood FleetSync / NXDN (NEXEDGE) radio data port: caller IDs, texts, status, replies and GPS.

Sans-I/O (see :mod:`drivers.base`). A Kenwood mobile's serial port carries two framings on one
stream: control frames between STX (0x02) and ETX (0x03), and NMEA lines (``$PKLSH`` and friends,
decoded by :class:`~drivers.nmea.NmeaDecoder`)::

    ... 02 'I' '1' '1' '0' '0' '1' '0' '0' '1' ... 03  '$' 'P' 'K' 'L' 'S' 'H' ',' ... '*' '3' 'F' 0D 0A ...
        \___________ frame ______________________/   \_____________ NMEA line ______________________/

A radio whose port is set to "Data + GPS data output" may also put each sentence in a frame of its
own, with an optional two-digit sequence number after the line end (robo-w/kenwood-gps-converter's
stream tests; OH2LAK's NEXEDGE tracker counts its columns from an STX before the '$')::

    02 '$' 'P' 'K' 'N' 'D' 'S' ',' ... '*' '0' '0' 0A ['4' '2'] 03
       \______________ NMEA line _____________________/  \_ nn _/

Such a sentence is decoded like any other; a frame of this kind that ends at the next STX without its
ETX loses nothing (the sentence carries its own checksum), so it is not reported; digits after the
sentence other than a sequence number before ETX are.

Frames (the bytes between STX and ETX; FFF = FleetSync fleet, 3 digits; IIII = device id, 4 digits;
Uuuuuu = NXDN unit id, 'U' and 5 digits; Gggggg = NXDN group; NXID = an NX unit id as in the $PKN
sentences, see :mod:`drivers.nmea`: Uuuuuu, U + 8 digits, or 9 digits)::

    caller ID, FleetSync   I  b  FFF IIII  [FFF IIII]     b: 1 = begin of transmission (BOT),
    caller ID, NXDN        g I  b  NXID  [NXID]              0 = end (EOT); the id is repeated
    identification         D  FFF IIII                    a FleetSync caller ID without BOT/EOT
    text, FleetSync        F|G  FFF IIII  text            F: short message (up to 48 characters),
    text, NXDN             g F|G  Uuuuuu|Gggggg  text        G: long message
    GPS poll, FleetSync    R 3  FFF IIII  [nn]            host -> radio ("send me your position");
    GPS poll, NXDN         g R 3  Uuuuuu|Gggggg  [nn]        nn: an old sequence number
    reply                  0 | 1                          the radio's answer to a host command:
                                                             0 = done / acknowledged, 1 = no response
    status, NX             x E  NXID NXID ssss [nn]       sender, destination (9 characters each),
                                                             status, sequence number
    status, FleetSync      S  FFF IIII  ss                UNCONFIRMED layout, see below
    status, NXDN           g S  Uuuuuu  ss[s]             UNCONFIRMED layout, see below

What comes out: a caller ID or an identification is a ``ptt`` event for ``fleetsync:FFF-IIII`` or
``nxdn:NXID``; a text is a ``status`` event carrying the text; a status is a ``status`` event, or an
``alert`` when its number is listed in the ``emergency_status`` option; a ``$PKLDS``/``$PKNDS``
position or a ``$PKNID`` whose sender status is listed there is an ``alert`` instead of a ``beacon``
or ``ptt``. Status numbers are compared as numbers ("0099" is 99). Replies are no events (they answer
our own commands): the latest is kept in :attr:`KenwoodDecoder.last_reply`. Echoed GPS polls (our own
commands, seen on a loop-back or a spy port) are recognised and dropped.

What public sources confirm, and what they do not:

- Caller-ID layout and BOT/EOT, the NXDN caller ID, the reply codes 0/1, the text and GPS-poll
  layouts, and the validity letter Z ("NO FIX"): ncssar/radiolog @ 8a1a507a ``radiolog.py``
  (``fsParse``, ``sendText``, ``pollGPS``; GPL-3.0, read for facts only), copied into
  ``tests/data/kenwood/kenwood.jsonl``. radiolog itself accepts 6-19 digits after ``I0``/``I1`` and
  does not insist on the repetition; we take 7 or 14 digits and report a second id that differs.
- The ``D`` identification (``D`` + fleet + device): erinn/ksync ``kmessage.py`` reads it as a caller
  ID ("Identification"), its tests with fleet 200 device 1814; it names no begin or end.
- The ``xE`` status of NX radios: the field map of OH2LAK's "Kenwood NEXEDGE radio tracker" (2017;
  sender in columns 5-11, destination 14-20, status 23-24 of ``xE0000001010000009990002`` counted
  from the STX, i.e. the 9-character ids ``000000101`` and ``000000999`` and status ``0002``), and
  a real NX radio's ``xEU00001205U00001500001202`` (ids ``U00001205``, ``U00001500``, status
  ``0012``, then ``02``, read as the sequence number other frames carry). Both were quoted without
  their STX and ETX. The meaning of NX status numbers is the system's own (1-255, programmed).
- Status numbers: Kenwood TK-2170 series Function Reference (K) Ver. 1.01, section 20.3.3, table 20-8
  "Reserved Status List" (:data:`RESERVED_STATUS`: 10-79 for users, 80 default, 88 emergency reset,
  90-94 remote stun, 95-99 reserved for emergency mode with 98 man-down and 99 emergency; seen at
  manualarchiveguide.com/manuals/Kenwood-TK-2170-Series-Function-Reference-3619670?page=101); the
  TK-3180 Function Reference 1.11, chapter 22 (FleetSync status messages, page 105), says a radio
  goes into its emergency alert when it receives such a reserved status. Hence the default
  ``emergency_status`` 95-99. These are statuses *over the air*; how the radio writes one on its
  serial port is the unconfirmed part below.
- ``$PKLDS`` carries the sender's status (pynmea2 ``kwd.py`` field ``senderstatus``; the TK-880
  service manual, page 13: "$GPGLL + Fleet + ID + Status"); the pynmea2 sample's 80 is the default.
- NOT confirmed by any public source we found: the serial layout of a FleetSync or NXDN (``g``)
  *received status message* (the ``S`` rows above are our assumption, by analogy with the caller
  ID), whether an emergency also arrives as a frame of its own, and that a text frame *from* a radio
  has the same layout as one sent to it (with the sender's id). Unknown frames are rejected with
  their bytes in hex, so that a capture from a real radio shows what to add to :data:`FRAME_TYPES`
  (a table: a new frame type is a new row).
- A text frame may end in a two-digit sequence number (radiolog's older comments show one); it
  cannot be told apart from the text, so it stays part of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from drivers.base import Output, ProtocolDecoder, Rejected
from drivers.nmea import NX_UNIT_ID, NmeaDecoder
from gateway.events import Decoded, Kind

STX = 0x02
ETX = 0x03

#: Longest frame accepted, STX and ETX included. Caller IDs are 17 bytes; FleetSync long messages
#: (G) may be longer than this, so the option ``max_frame_bytes`` raises it where they are used.
MAX_FRAME = 256

#: Short messages (F) hold up to 48 characters (radiolog ``sendText``); longer ones are sent as G.
SHORT_MESSAGE_MAX = 48

#: Statuses that mean an emergency by default: 95-99 are "reserved status for emergency mode"
#: (TK-2170 Function Reference, table 20-8).
DEFAULT_EMERGENCY_STATUS: tuple[str, ...] = ("95", "96", "97", "98", "99")

#: Meaning of FleetSync's reserved status numbers (TK-2170 Function Reference, table 20-8).
RESERVED_STATUS: dict[str, str] = {
    "80": "default status",
    "88": "emergency reset command",
    "89": "horn alert activation command",
    "90": "remote stun: transmit restriction command",
    "91": "remote stun: transmit and receive restriction command",
    "92": "remote stun reset command",
    "93": "remote stun: transmit restriction response",
    "94": "remote stun: transmit and receive restriction response",
    "95": "reserved for emergency mode",
    "96": "reserved for emergency mode",
    "97": "reserved for emergency mode",
    "98": "man-down",
    "99": "emergency",
}


# --- frames -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerId:
    system: str  # fleetsync | nxdn
    unit_id: str  # "100-1001" | "U03001"
    begin: bool  # True: begin of transmission (BOT), False: end (EOT)
    second_id: str | None = None  # the repeated id, only when it differs from the first


@dataclass(frozen=True, slots=True)
class Identification:
    system: str
    unit_id: str  # "200-1814"


@dataclass(frozen=True, slots=True)
class TextMessage:
    system: str
    peer_id: str  # "100-1001", "000-0000" (all), "U03001", "G00000" (NXDN group)
    long: bool  # G rather than F
    text: str


@dataclass(frozen=True, slots=True)
class StatusMessage:
    system: str
    unit_id: str
    status: str  # as sent
    to: str | None = None  # the destination, where the frame names one
    sequence: str | None = None


@dataclass(frozen=True, slots=True)
class GpsPoll:
    system: str
    target_id: str
    sequence: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool  # STX '0' ETX: done / acknowledged; STX '1' ETX: the target did not respond


Frame = CallerId | Identification | TextMessage | StatusMessage | GpsPoll | Reply


class FrameError(ValueError):
    """A frame that does not match its layout; the message says which and why."""


@dataclass(frozen=True, slots=True)
class FrameType:
    prefix: bytes  # the type bytes after STX
    name: str  # caller_id | identification | text | gps_poll | status | reply
    system: str  # fleetsync | nxdn | radio
    layout: str  # what follows the prefix, for error messages
    pattern: re.Pattern[bytes]  # the rest of the body, matched whole
    confirmed: bool  # by a public source (see the module docstring)


def _fs_id(fleet: bytes, device: bytes) -> str:
    return f"{fleet.decode()}-{device.decode()}"


_NXDN = rb"(U\d{5})"
_NXDN_OR_GROUP = rb"([UG]\d{5})"
# A caller ID's layout is fixed, so every id form of the $PKN sentences can be told apart by length;
# a text's id is followed by free text, so there only the 5-digit form radiolog shows is taken.
_NX = b"(" + NX_UNIT_ID.encode() + b")"
_NX_STATUS_ID = rb"(U\d{8}|\d{9})"  # 9 characters in both xE samples

#: Every frame type we know, longest prefix first. Add a row (and a case in ``_to_frame``) for a new one.
FRAME_TYPES: tuple[FrameType, ...] = (
    FrameType(b"gI", "caller_id", "nxdn", "1|0 NXID [NXID]", re.compile(rb"([01])" + _NX + _NX + b"?"), True),
    FrameType(b"gF", "text", "nxdn", "Uuuuuu|Gggggg text", re.compile(_NXDN_OR_GROUP + rb"(.*)", re.S), True),
    FrameType(b"gG", "text", "nxdn", "Uuuuuu|Gggggg text", re.compile(_NXDN_OR_GROUP + rb"(.*)", re.S), True),
    FrameType(b"gR3", "gps_poll", "nxdn", "Uuuuuu|Gggggg [nn]", re.compile(_NXDN_OR_GROUP + rb"(\d{2})?"), True),
    FrameType(b"gS", "status", "nxdn", "Uuuuuu ss[s]", re.compile(_NXDN + rb"(\d{2,3})"), False),
    FrameType(
        b"xE",
        "status",
        "nxdn",
        "NXID NXID ssss [nn]",
        re.compile(_NX_STATUS_ID + _NX_STATUS_ID + rb"(\d{4})(\d{2})?"),
        True,
    ),
    FrameType(
        b"I", "caller_id", "fleetsync", "1|0 FFF IIII [FFF IIII]", re.compile(rb"([01])(\d{3})(\d{4})(\d{7})?"), True
    ),
    FrameType(b"D", "identification", "fleetsync", "FFF IIII", re.compile(rb"(\d{3})(\d{4})"), True),
    FrameType(b"F", "text", "fleetsync", "FFF IIII text", re.compile(rb"(\d{3})(\d{4})(.*)", re.S), True),
    FrameType(b"G", "text", "fleetsync", "FFF IIII text", re.compile(rb"(\d{3})(\d{4})(.*)", re.S), True),
    FrameType(b"R3", "gps_poll", "fleetsync", "FFF IIII [nn]", re.compile(rb"(\d{3})(\d{4})(\d{2})?"), True),
    FrameType(b"S", "status", "fleetsync", "FFF IIII ss", re.compile(rb"(\d{3})(\d{4})(\d{2})"), False),
    FrameType(b"0", "reply", "radio", "nothing", re.compile(b""), True),
    FrameType(b"1", "reply", "radio", "nothing", re.compile(b""), True),
)

_TEXT_PREFIXES = (b"F", b"G", b"gF", b"gG")


def _frame_type(body: bytes) -> FrameType | None:
    return next((t for t in FRAME_TYPES if body.startswith(t.prefix)), None)


def parse_frame(body: bytes, *, text_encoding: str = "latin-1") -> Frame:
    """One frame from the bytes between STX and ETX; raises :class:`FrameError` saying why not."""
    spec = _frame_type(body)
    if spec is None:
        shown = body[:2] if body.startswith((b"g", b"x")) else body[:1]
        raise FrameError(f"unknown frame type {shown!r}" if body else "empty frame")
    rest = body[len(spec.prefix) :]
    m = spec.pattern.fullmatch(rest)
    label = f"{spec.system} {spec.name.replace('_', ' ')} frame {spec.prefix.decode()!r}"
    if m is None:
        # Ids are digits, NXDN ones after U or G; in a text frame only the id is checked, not the text.
        ids = rest[: 6 if spec.system == "nxdn" else 7] if spec.name == "text" else rest
        odd = next((bytes([c]) for c in ids if not (0x30 <= c <= 0x39 or c in b"UG")), None)
        problem = f"unexpected {odd!r} in an id" if odd is not None else "wrong length"
        raise FrameError(f"{label}: {problem}: expected {spec.layout}, got {len(rest)} bytes {rest[:40]!r}")
    return _to_frame(spec, m, text_encoding)


def _to_frame(spec: FrameType, m: re.Match[bytes], text_encoding: str) -> Frame:
    if spec.name == "caller_id":
        begin = m[1] == b"1"
        if spec.system == "nxdn":
            first, second = m[2].decode(), m[3].decode() if m[3] else None
        else:
            first = _fs_id(m[2], m[3])
            second = _fs_id(m[4][:3], m[4][3:]) if m[4] else None
        return CallerId(spec.system, first, begin, second if second != first else None)
    if spec.name == "text":
        long = spec.prefix.endswith(b"G")
        if spec.system == "nxdn":
            return TextMessage(spec.system, m[1].decode(), long, m[2].decode(text_encoding, errors="replace"))
        return TextMessage(spec.system, _fs_id(m[1], m[2]), long, m[3].decode(text_encoding, errors="replace"))
    if spec.name == "gps_poll":
        if spec.system == "nxdn":
            return GpsPoll(spec.system, m[1].decode(), m[2].decode() if m[2] else None)
        return GpsPoll(spec.system, _fs_id(m[1], m[2]), m[3].decode() if m[3] else None)
    if spec.name == "identification":
        return Identification(spec.system, _fs_id(m[1], m[2]))
    if spec.name == "status":
        if spec.prefix == b"xE":
            return StatusMessage(
                spec.system, m[1].decode(), m[3].decode(), m[2].decode(), (m[4] or b"").decode() or None
            )
        if spec.system == "nxdn":
            return StatusMessage(spec.system, m[1].decode(), m[2].decode())
        return StatusMessage(spec.system, _fs_id(m[1], m[2]), m[3].decode())
    return Reply(ok=spec.prefix == b"0")


# --- encoders (host -> radio) -----------------------------------------------------------------

# ASCII digits only: a unit id may hold any printable character, and a radio reads only these.
_FLEET_RE = re.compile(r"^\d{3}$", re.ASCII)
_DEVICE_RE = re.compile(r"^\d{4}$", re.ASCII)
_NXDN_ID_RE = re.compile(r"^[UG]\d{5}$", re.ASCII)
_UNIT_FS_RE = re.compile(r"^fleetsync:(\d{3})-(\d{4})$", re.ASCII)
_UNIT_NXDN_RE = re.compile(r"^nxdn:(U\d{5})$", re.ASCII)


def _fleetsync_id(fleet: int | str, device: int | str) -> bytes:
    f = f"{fleet:03d}" if isinstance(fleet, int) else fleet
    d = f"{device:04d}" if isinstance(device, int) else device
    if not _FLEET_RE.match(f) or not _DEVICE_RE.match(d):
        raise ValueError(f"FleetSync id: expected fleet 000-999 and device 0000-9999, got {fleet!r}, {device!r}")
    return (f + d).encode()


def _nxdn_id(unit_id: str) -> bytes:
    if not _NXDN_ID_RE.match(unit_id):
        raise ValueError(f"NXDN id: expected U or G and 5 digits (G00000: everyone), got {unit_id!r}")
    return unit_id.encode()


def _message(text: str, encoding: str) -> tuple[bytes, bytes]:
    data = text.encode(encoding)
    if any(b < 0x20 for b in data):
        raise ValueError(f"text: control characters (STX, ETX, line ends) cannot be sent: {text!r}")
    return (b"F" if len(text) <= SHORT_MESSAGE_MAX else b"G"), data


def encode_text(fleet: int | str, device: int | str, text: str, *, encoding: str = "ascii") -> bytes:
    """A FleetSync text to one radio (fleet 000 device 0000: every radio), ``STX F|G FFF IIII text ETX``."""
    code, data = _message(text, encoding)
    return bytes([STX]) + code + _fleetsync_id(fleet, device) + data + bytes([ETX])


def encode_nxdn_text(unit_id: str, text: str, *, encoding: str = "ascii") -> bytes:
    """An NXDN text to ``Uuuuuu`` (or group ``Gggggg``; G00000 is everyone), ``STX g F|G id text ETX``."""
    code, data = _message(text, encoding)
    return b"\x02g" + code + _nxdn_id(unit_id) + data + bytes([ETX])


def encode_gps_poll(fleet: int | str, device: int | str) -> bytes:
    """Ask a FleetSync radio for its position, ``STX R 3 FFF IIII ETX``; it answers with a reply
    frame and, if it has a fix, a ``$PKLSH``."""
    return b"\x02R3" + _fleetsync_id(fleet, device) + bytes([ETX])


def encode_nxdn_gps_poll(unit_id: str) -> bytes:
    """Ask an NXDN radio for its position, ``STX g R 3 Uuuuuu ETX``."""
    return b"\x02gR3" + _nxdn_id(unit_id) + bytes([ETX])


def encode_text_to(unit: str, text: str, *, encoding: str = "ascii") -> bytes:
    """A text to a unit named as in events: ``fleetsync:100-1001`` or ``nxdn:U03001``."""
    if m := _UNIT_FS_RE.match(unit):
        return encode_text(m[1], m[2], text, encoding=encoding)
    if m := _UNIT_NXDN_RE.match(unit):
        return encode_nxdn_text(m[1], text, encoding=encoding)
    raise ValueError(f"not a Kenwood unit: {unit!r} (expected fleetsync:FFF-IIII or nxdn:Uuuuuu)")


def encode_gps_poll_to(unit: str) -> bytes:
    """A GPS poll to a unit named as in events: ``fleetsync:100-1001`` or ``nxdn:U03001``."""
    if m := _UNIT_FS_RE.match(unit):
        return encode_gps_poll(m[1], m[2])
    if m := _UNIT_NXDN_RE.match(unit):
        return encode_nxdn_gps_poll(m[1])
    raise ValueError(f"not a Kenwood unit: {unit!r} (expected fleetsync:FFF-IIII or nxdn:Uuuuuu)")


# --- the decoder ------------------------------------------------------------------------------


class _Mode(Enum):
    NMEA = "nmea"  # outside frames: bytes go to the NMEA decoder
    FRAME = "frame"  # inside STX ... ETX
    SENTENCE = "sentence"  # a sentence inside STX ... ETX: bytes go to the NMEA decoder up to its line end
    AFTER_SENTENCE = "after_sentence"  # after that line end: a sequence number, then ETX
    DISCARD = "discard"  # after an overlong frame: dropping bytes up to the next STX or '$'


_FRAME_STOPS = re.compile(rb"[\x02\x03$\r\n]")  # a fixed-layout frame never contains '$' or line ends
_TEXT_STOPS = re.compile(rb"[\x02\x03]")  # a text may contain them
_RESYNC = re.compile(rb"[\x02$]")
_SENTENCE_STOPS = re.compile(rb"[\x02\x03\r\n]")
_NOT_AFTER_SENTENCE = re.compile(rb"[^0-9\r\n]")
_SEQUENCE = re.compile(rb"[\r\n]*(\d{2})?[\r\n]*")
#: What may stand between a framed sentence's line end and its ETX: line ends and a sequence number.
MAX_AFTER_SENTENCE = 8


def _status_number(status: str) -> str:
    """Statuses compare as numbers: "0099", "099" and "99" are one status."""
    return str(int(status))


class KenwoodDecoder(ProtocolDecoder):
    """A Kenwood FleetSync / NXDN data port (see the module docstring).

    Options:

    - ``emergency_status``: status numbers that mean an emergency (default 95-99, the statuses Kenwood
      reserves for emergency mode); they turn status frames and ``$PKLDS``/``$PKNDS`` positions into
      alerts.
    - ``require_checksum``: NMEA sentences without ``*hh`` are rejected (default True).
    - ``text_encoding``: how text bytes are read (default latin-1, which keeps every byte; the raw
      bytes are in the event's detail either way).
    - ``max_frame_bytes``: the longest frame accepted, STX and ETX included (default 256).
    """

    name = "kenwood"

    def __init__(
        self,
        *,
        emergency_status: Sequence[str] = DEFAULT_EMERGENCY_STATUS,
        require_checksum: bool = True,
        text_encoding: str = "latin-1",
        max_frame_bytes: int = MAX_FRAME,
    ) -> None:
        super().__init__()
        if isinstance(emergency_status, str | bytes) or not all(
            isinstance(s, str) and s.isascii() and s.isdigit() for s in emergency_status
        ):
            raise TypeError(
                f"option emergency_status: expected a list of status numbers as strings like '99', "
                f"got {emergency_status!r}"
            )
        try:
            b"a".decode(text_encoding, errors="replace")  # also refuses non-text codecs like base64
        except (LookupError, TypeError):
            raise ValueError(f"option text_encoding: unknown encoding {text_encoding!r}") from None
        if isinstance(max_frame_bytes, bool) or not isinstance(max_frame_bytes, int) or max_frame_bytes < 16:
            raise ValueError(f"option max_frame_bytes: expected an integer of at least 16, got {max_frame_bytes!r}")
        self.emergency_status = frozenset(_status_number(s) for s in emergency_status)
        self.text_encoding = text_encoding
        self.max_frame_bytes = max_frame_bytes
        self.last_reply: Reply | None = None
        self.last_reply_time: datetime | None = None
        self._nmea = NmeaDecoder(require_checksum=require_checksum)
        self._mode = _Mode.NMEA
        self._body = bytearray()  # FRAME: the frame so far; AFTER_SENTENCE: what followed the sentence

    def feed(self, data: bytes, now: datetime) -> list[Output]:
        out: list[Output] = []
        i, n = 0, len(data)
        while i < n:
            if self._mode is _Mode.NMEA:
                j = data.find(STX, i)
                if j < 0:
                    self._from_nmea(self._nmea.feed(data[i:], now), out)
                    break
                self._from_nmea(self._nmea.feed(data[i:j], now), out)
                self._from_nmea(self._nmea.break_line(now), out)  # STX ends any line in progress
                self._mode, self._body = _Mode.FRAME, bytearray()
                i = j + 1
            elif self._mode is _Mode.FRAME:
                i = self._feed_frame(data, i, now, out)
            elif self._mode is _Mode.SENTENCE:
                i = self._feed_sentence(data, i, now, out)
            elif self._mode is _Mode.AFTER_SENTENCE:
                i = self._feed_after_sentence(data, i, out)
            else:
                m = _RESYNC.search(data, i)
                if m is None:
                    break
                if data[m.start()] == STX:
                    self._mode, self._body = _Mode.FRAME, bytearray()
                    i = m.start() + 1
                else:
                    self._mode = _Mode.NMEA  # the '$' is the NMEA decoder's
                    i = m.start()
        return out

    def tick(self, now: datetime) -> list[Output]:
        out: list[Output] = []
        self._from_nmea(self._nmea.tick(now), out)
        return out

    def flush(self) -> list[Output]:
        """End of input: a frame still open has lost its ETX and is rejected; the NMEA side ends its
        last line and reports its pending epoch."""
        out: list[Output] = []
        if self._mode is _Mode.FRAME:
            out.append(Rejected(self.name, "frame without its ETX at the end of the input", self._raw()))
        elif self._mode is _Mode.AFTER_SENTENCE:
            self._end_after_sentence(False, out)
        self._mode, self._body = _Mode.NMEA, bytearray()
        self._from_nmea(self._nmea.flush(), out)
        return out

    # --- framing ---

    def _feed_frame(self, data: bytes, i: int, now: datetime, out: list[Output]) -> int:
        body = self._body
        if not body and data[i] == 0x24:  # STX '$': a sentence in a frame of its own
            self._mode = _Mode.SENTENCE
            return i
        is_text = body.startswith(_TEXT_PREFIXES)
        # Until the type bytes are in, '$' and line ends may or may not belong to the frame: take
        # one byte at a time so that the answer never depends on where a chunk ends.
        limit = i + 1 if not is_text and len(body) < 2 else len(data)
        m = (_TEXT_STOPS if is_text else _FRAME_STOPS).search(data, i, limit)
        end = m.start() if m else limit
        room = self.max_frame_bytes - 2 - len(body)
        if end - i > room:
            body += data[i : i + room + 1]
            out.append(Rejected(self.name, f"frame longer than {self.max_frame_bytes} bytes without ETX", self._raw()))
            self._mode = _Mode.DISCARD
            return i + room + 1
        body += data[i:end]
        if m is None:
            return end
        stop = data[end]
        if stop == ETX:
            self._mode = _Mode.NMEA
            out.extend(self._frame(bytes(body), now))
            return end + 1
        out.append(Rejected(self.name, f"frame cut short by {bytes([stop])!r} before its ETX", self._raw()))
        if stop == STX:
            body.clear()  # and stay in FRAME: this STX starts the next one
            return end + 1
        self._mode = _Mode.NMEA  # '$' starts a sentence, a line end is nothing: the NMEA side's
        return end

    def _feed_sentence(self, data: bytes, i: int, now: datetime, out: list[Output]) -> int:
        m = _SENTENCE_STOPS.search(data, i)
        if m is None:
            self._from_nmea(self._nmea.feed(data[i:], now), out)
            return len(data)
        end, stop = m.start(), data[m.start()]
        if stop in b"\r\n":  # the sentence's own line end: the NMEA side reads it
            self._from_nmea(self._nmea.feed(data[i : end + 1], now), out)
            self._mode, self._body = _Mode.AFTER_SENTENCE, bytearray()
            return end + 1
        self._from_nmea(self._nmea.feed(data[i:end], now), out)
        self._from_nmea(self._nmea.break_line(now), out)  # ETX or STX ends the line as well
        if stop == ETX:
            self._mode = _Mode.NMEA
        else:
            self._mode, self._body = _Mode.FRAME, bytearray()
        return end + 1

    def _feed_after_sentence(self, data: bytes, i: int, out: list[Output]) -> int:
        m = _NOT_AFTER_SENTENCE.search(data, i)
        end = m.start() if m else len(data)
        room = MAX_AFTER_SENTENCE - len(self._body)
        if end - i > room:  # too much for a sequence number: what follows is the NMEA side's
            self._body += data[i : i + room]
            self._end_after_sentence(False, out)
            return i + room
        self._body += data[i:end]
        if m is None:
            return end
        if data[end] == ETX:
            self._end_after_sentence(True, out)
            return end + 1
        self._end_after_sentence(False, out)  # no ETX: the next STX, '$' or byte is the NMEA side's
        return end

    def _end_after_sentence(self, etx: bool, out: list[Output]) -> None:
        """What came between a framed sentence and its ETX (or what stands for it) is settled."""
        tail = bytes(self._body)
        self._mode, self._body = _Mode.NMEA, bytearray()
        if _SEQUENCE.fullmatch(tail) and (etx or not tail.strip()):
            return  # line ends, maybe a sequence number before ETX: nothing of ours is lost
        why = "before ETX" if etx else "without ETX"
        out.append(Rejected(self.name, f"after a sentence in a frame, {why}: expected a 2-digit sequence number", tail))

    def _raw(self) -> bytes:
        return bytes([STX]) + bytes(self._body)

    # --- frames to events ---

    def _frame(self, body: bytes, now: datetime) -> list[Output]:
        raw = bytes([STX]) + body + bytes([ETX])
        try:
            frame = parse_frame(body, text_encoding=self.text_encoding)
        except FrameError as exc:
            return [Rejected(self.name, str(exc), raw)]
        if isinstance(frame, Reply):
            self.last_reply, self.last_reply_time = frame, now
            return []
        if isinstance(frame, GpsPoll):
            return []  # our own command, echoed
        if isinstance(frame, CallerId):
            detail: dict[str, Any] = {
                "protocol": frame.system,
                "frame": "caller_id",
                "transmission": "begin" if frame.begin else "end",
            }
            if frame.second_id is not None:
                detail["second_id"] = frame.second_id
            detail["raw"] = raw.hex()
            return [Decoded(kind=Kind.PTT, time=now, unit=f"{frame.system}:{frame.unit_id}", detail=detail)]
        if isinstance(frame, Identification):
            detail = {"protocol": frame.system, "frame": "identification", "raw": raw.hex()}
            return [Decoded(kind=Kind.PTT, time=now, unit=f"{frame.system}:{frame.unit_id}", detail=detail)]
        if isinstance(frame, TextMessage):
            group = frame.peer_id.startswith("G")
            detail = {"protocol": frame.system, "frame": "text", "text": frame.text, "long": frame.long}
            if group:
                detail["group"] = frame.peer_id
            detail["raw"] = raw.hex()
            unit = None if group else f"{frame.system}:{frame.peer_id}"
            return [Decoded(kind=Kind.STATUS, time=now, unit=unit, detail=detail)]
        status = _status_number(frame.status)
        emergency = status in self.emergency_status
        detail = {"protocol": frame.system, "frame": "status", "status": status, "emergency": emergency}
        if frame.system == "fleetsync" and status in RESERVED_STATUS:
            detail["meaning"] = RESERVED_STATUS[status]
        if frame.to is not None:
            detail["to"] = frame.to
        if frame.sequence is not None:
            detail["sequence"] = frame.sequence
        detail["raw"] = raw.hex()
        kind = Kind.ALERT if emergency else Kind.STATUS
        return [Decoded(kind=kind, time=now, unit=f"{frame.system}:{frame.unit_id}", detail=detail)]

    def _from_nmea(self, outputs: list[Output], out: list[Output]) -> None:
        for item in outputs:
            if isinstance(item, Rejected):
                out.append(replace(item, protocol=self.name))
            elif item.detail.get("sender_status") in self.emergency_status:
                detail = dict(item.detail)
                detail["emergency"] = True
                status = detail["sender_status"]
                if detail.get("system") == "fleetsync" and status in RESERVED_STATUS:
                    detail["meaning"] = RESERVED_STATUS[status]
                out.append(replace(item, kind=Kind.ALERT, detail=detail))
            else:
                out.append(item)
