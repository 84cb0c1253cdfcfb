"""The information field as a whole: its first bytes say which family reads it (APRS 1.01 ch 5, "APRS
Data Type Identifiers").

    ! = / @ position   ` ' 0x1C 0x1D Mic-E   > status   : message   ; object   ) item   $ NMEA
    _ # * weather   T# telemetry   ? query   < capabilities   { user-defined   } third party
    !! and $ULTW  Ultimeter weather   {{ experimental
    anything else: a DX spot, a "!" in the first 40 bytes, or not APRS
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from drivers.aprs.fields import BLANK, free_text
from drivers.aprs.messages import parse_message
from drivers.aprs.mic_e import parse_mic_e
from drivers.aprs.nmea import parse_nmea
from drivers.aprs.objects import parse_item, parse_object
from drivers.aprs.other import parse_capabilities, parse_dx_spot, parse_query, parse_user_defined
from drivers.aprs.packets import AprsError, AprsPacket, ErrorCode, OtherData
from drivers.aprs.position import parse_position
from drivers.aprs.status import parse_status
from drivers.aprs.tables import OTHER_TYPES
from drivers.aprs.telemetry import parse_telemetry
from drivers.aprs.third_party import parse_third_party
from drivers.aprs.weather import parse_peet_bros, parse_positionless_weather, parse_ultimeter

# APRS 1.01 ch 5: a "!" anywhere in the first 40 characters still marks a position (old TNC beacons).
LAST_RESORT_SPAN = 40

#: A family's reader: (info as Latin-1 text, destination, now, accept_broken_mice) -> packet.
Reader = Callable[[str, str, datetime, bool], AprsPacket]


def _other(text: str) -> OtherData:
    # Known identifiers, so no "!" search: their "!" is no position of the sender's.
    return OtherData(OTHER_TYPES[text[0]], free_text(text[1:].rstrip(BLANK)))


# Types known by more than their first byte come first.
_BY_PREFIX: tuple[tuple[str, Reader], ...] = (
    ("!!", lambda text, dest, now, broken: parse_ultimeter(text)),
    ("$ULTW", lambda text, dest, now, broken: parse_ultimeter(text)),
    ("T#", lambda text, dest, now, broken: parse_telemetry(text)),
)
_BY_TYPE: dict[str, Reader] = {
    **dict.fromkeys("!=/@", lambda text, dest, now, broken: parse_position(text, now)),
    **dict.fromkeys("`'\x1c\x1d", lambda text, dest, now, broken: parse_mic_e(text, dest, accept_broken=broken)),
    ">": lambda text, dest, now, broken: parse_status(text, now),
    ":": lambda text, dest, now, broken: parse_message(text),
    ";": lambda text, dest, now, broken: parse_object(text, now),
    ")": lambda text, dest, now, broken: parse_item(text),
    "$": lambda text, dest, now, broken: parse_nmea(text, now),
    "_": lambda text, dest, now, broken: parse_positionless_weather(text, now),
    **dict.fromkeys("#*", lambda text, dest, now, broken: parse_peet_bros(text)),
    "?": lambda text, dest, now, broken: parse_query(text),
    "<": lambda text, dest, now, broken: parse_capabilities(text),
    "{": lambda text, dest, now, broken: parse_user_defined(text),
    "}": lambda text, dest, now, broken: parse_third_party(text),
    **dict.fromkeys(OTHER_TYPES, lambda text, dest, now, broken: _other(text)),
}


def parse(info: bytes, *, source: str, destination: str, now: datetime, accept_broken_mice: bool = False) -> AprsPacket:
    """Parse one APRS information field; raises :class:`AprsError` with a FAP-style code.

    ``source`` and ``destination`` are callsigns as text (``N0CALL-9``); Mic-E reads its latitude from
    the destination. ``now`` resolves timestamps that leave out the month or day.
    ``accept_broken_mice`` accepts Mic-E packets that lost one speed/course byte (as FAP does).
    """
    del source  # no family read here depends on it; it is part of the call so that callers need not change
    text = info.decode("latin-1")
    if not text:
        raise AprsError(ErrorCode.PACKET_NO_BODY, "empty information field")
    reader = next((r for prefix, r in _BY_PREFIX if text.startswith(prefix)), None) or _BY_TYPE.get(text[0])
    if reader is not None:
        return reader(text, destination, now, accept_broken_mice)
    if dx := parse_dx_spot(text):
        return dx
    bang = text.find("!", 0, LAST_RESORT_SPAN)
    if bang > 0:
        return parse_position(text[bang:], now)
    raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, f"data type {text[0]!r} is not APRS")
