"""APRS information fields: parse what a station sent into typed, frozen results, and every frame into
a gateway event.

A module per packet family (after aprslib), each drawing its wire format; the references are the APRS
Protocol Reference 1.0.1 ("APRS 1.01", chapters cited as "ch N") and the APRS 1.2 addenda (DAO
precision, base-91 comment telemetry, UTF-8 text)::

    dispatch      the data type identifier -> the family that reads it          ch 5
    position      ! = / @ and the uncompressed position                         ch 8
    compressed    the compressed position                                       ch 9
    mic_e         Mic-E: a position in the destination address                  ch 10
    nmea          raw GPS sentences                                             ch 5
    objects       objects ; and items )                                         ch 11
    weather       weather in positions, positionless _, Peet Bros raw forms     ch 12
    telemetry     T# and its metadata PARM. UNIT. EQNS. BITS.                   ch 13
    messages      : messages, acks and rejects                                  ch 14
    status        > status reports                                              ch 16
    other         ? queries, < capabilities, { user-defined, DX spots           ch 15, 18
    third_party   } third-party traffic                                         ch 17
    tnc2          SRC>DST,PATH:info text (APRS-IS, monitors)
    extensions    what a position comment carries: CSE/SPD, PHG, RNG, /A=, |telemetry|, !DAO!
    fields        text, base-91, symbol tables, ambiguity, timestamps
    packets       the results and AprsError;  tables  units, type identifiers, Mic-E bits, weather fields
    events        frames -> gateway events

Failures raise :class:`AprsError` whose ``code`` uses the result codes of Ham::APRS::FAP (``loc_inv``,
``sym_inv_table``, ``mice_inv`` ...), so logs read the same as in the tools operators already know.

    packet = parse(info, source="BG5ABC-9", destination="APDW16", now=now)
    decoded = frame_event(frame, now)   # -> gateway Decoded, for every frame

Every frame becomes an event (:func:`frame_event`, used by every transport that delivers AX.25: a KISS
TNC, the AFSK audio decoder): positions as beacons (a Mic-E "Emergency" as an alert), objects and
items as beacons of the object, everything else as a status with its type, its text and what was read
of it; a frame that does not parse is a status with the reason, so a technician sees every frame on
the channel and nothing the radio sent is lost without a word.
"""

from __future__ import annotations

from drivers.aprs.compressed import COMPRESSED_RESOLUTION_M, parse_compressed
from drivers.aprs.dispatch import LAST_RESORT_SPAN, parse
from drivers.aprs.events import aprs_to_decoded, frame_event, object_unit, unit_of
from drivers.aprs.fields import HUNDREDTH_MINUTE_M, text_of
from drivers.aprs.messages import parse_message
from drivers.aprs.mic_e import mic_e_message, parse_mic_e
from drivers.aprs.nmea import parse_nmea
from drivers.aprs.objects import parse_item, parse_object
from drivers.aprs.other import parse_capabilities, parse_dx_spot, parse_query, parse_user_defined
from drivers.aprs.packets import (
    AprsError,
    AprsPacket,
    Capabilities,
    DxSpot,
    ErrorCode,
    Format,
    Message,
    MicEMessage,
    ObjectReport,
    OtherData,
    PositionReport,
    Query,
    StatusReport,
    Telemetry,
    TelemetryMetadata,
    TelemetryReport,
    ThirdParty,
    Timestamp,
    Tnc2Packet,
    UserDefined,
    Weather,
    WeatherFormat,
    WeatherReport,
)
from drivers.aprs.position import parse_position, parse_uncompressed
from drivers.aprs.status import parse_status
from drivers.aprs.tables import FOOT_M, KNOT_MPS
from drivers.aprs.telemetry import parse_telemetry
from drivers.aprs.third_party import parse_third_party
from drivers.aprs.tnc2 import parse_tnc2
from drivers.aprs.weather import parse_peet_bros, parse_positionless_weather, parse_ultimeter

__all__ = [
    "COMPRESSED_RESOLUTION_M",
    "FOOT_M",
    "HUNDREDTH_MINUTE_M",
    "KNOT_MPS",
    "LAST_RESORT_SPAN",
    "AprsError",
    "AprsPacket",
    "Capabilities",
    "DxSpot",
    "ErrorCode",
    "Format",
    "Message",
    "MicEMessage",
    "ObjectReport",
    "OtherData",
    "PositionReport",
    "Query",
    "StatusReport",
    "Telemetry",
    "TelemetryMetadata",
    "TelemetryReport",
    "ThirdParty",
    "Timestamp",
    "Tnc2Packet",
    "UserDefined",
    "Weather",
    "WeatherFormat",
    "WeatherReport",
    "aprs_to_decoded",
    "frame_event",
    "mic_e_message",
    "object_unit",
    "parse",
    "parse_capabilities",
    "parse_compressed",
    "parse_dx_spot",
    "parse_item",
    "parse_message",
    "parse_mic_e",
    "parse_nmea",
    "parse_object",
    "parse_peet_bros",
    "parse_position",
    "parse_positionless_weather",
    "parse_query",
    "parse_status",
    "parse_telemetry",
    "parse_third_party",
    "parse_tnc2",
    "parse_ultimeter",
    "parse_uncompressed",
    "parse_user_defined",
    "text_of",
    "unit_of",
]
