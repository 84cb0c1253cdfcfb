"""APRS frames as gateway events: every frame becomes one, so that a technician sees every frame on the
channel and nothing the radio sent is lost without a word.

    position                 -> beacon of the sender (a Mic-E "Emergency" -> alert)
    object, item             -> beacon of ``aprs:<name>``, with the sender and whether it was killed
    third-party traffic      -> the event of the packet inside, for its own station
    anything else            -> status with ``detail.type``, its text and what was read of it
    a field that does not parse -> status with its type, its text and the reason (``detail.error``)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from drivers.aprs.dispatch import parse
from drivers.aprs.objects import object_header
from drivers.aprs.packets import (
    AprsError,
    AprsPacket,
    Capabilities,
    DxSpot,
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
    UserDefined,
    WeatherReport,
)
from drivers.aprs.tables import DATA_TYPES, KNOT_MPS, TELEMETRY_METADATA_TYPES
from drivers.ax25 import Ax25Frame, display_text
from gateway.events import Decoded, Kind, Position, make_unit


def _unit_id(protocol: str, name: str) -> str | None:
    """``name`` made a unit of the event schema's alphabet (``make_unit``), or None when nothing is left."""
    try:
        return make_unit(protocol, name)
    except ValueError:
        return None


def unit_of(source: str) -> str | None:
    """``aprs:CALL-SSID``; SSID 0 is left out, as APRS writes it. A callsign off the air that AX.25 does
    not allow keeps its characters where the unit alphabet has them: ``AO27 T`` -> ``aprs:AO27_T``."""
    return _unit_id("aprs", source.upper().removesuffix("-0"))


def object_unit(name: str) -> str | None:
    """An object's or item's unit: ``aprs:`` and its name (which may hold spaces: ``aprs:SRAL_HQ``)."""
    return _unit_id("aprs", name)


def _fix_time(timestamp: Timestamp | None) -> datetime | None:
    # A "/" timestamp is the sender's local time in an unknown zone: not a fix time to publish.
    return timestamp.time if timestamp is not None and not timestamp.local else None


# The event schema's altitude range (gateway/events.py); a compressed altitude can encode far more.
_ALTITUDE_RANGE_M = (-1e5, 1e6)
_MAX_SPEED_MPS = 1e4  # the event schema's limit, as for the altitude
# Third-party packets inside third-party packets are unwrapped this deep, then shown as they are.
_MAX_NESTING = 4


def _position_of(report: PositionReport) -> Position:
    altitude = report.altitude_m
    if altitude is not None and not _ALTITUDE_RANGE_M[0] <= altitude <= _ALTITUDE_RANGE_M[1]:
        altitude = None
    speed = report.speed_knots * KNOT_MPS if report.speed_knots is not None else None
    if speed is not None and not 0 <= speed <= _MAX_SPEED_MPS:  # e.g. a $GPRMC of 232726 knots (fuzzing)
        speed = None
    return Position(
        lat=report.lat,
        lon=report.lon,
        alt_m=altitude,
        speed_mps=speed,
        course_deg=float(report.course % 360) if report.course is not None else None,
        fix_time=_fix_time(report.timestamp),
        source="aprs",
    )


def _telemetry_detail(telemetry: Telemetry) -> dict[str, Any]:
    detail: dict[str, Any] = {"sequence": telemetry.sequence, "values": list(telemetry.values)}
    if telemetry.bits is not None:
        detail["bits"] = telemetry.bits
    return detail


def _position_detail(report: PositionReport) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "type": "position",
        "format": str(report.format),
        "symbol": report.symbol_table + report.symbol_code,
        "resolution_m": report.resolution_m,
    }
    optional: dict[str, Any] = {
        "comment": report.comment,
        "ambiguity": report.ambiguity or None,
        "messaging": report.messaging,
        "timestamp": report.timestamp.raw if report.timestamp else None,
        "phg": report.phg,
        "dao_datum": report.dao_datum,
        "mic_e_message": str(report.mic_e_message) if report.mic_e_message else None,
    }
    detail.update((k, v) for k, v in optional.items() if v is not None)
    if report.weather is not None:
        detail["weather"] = report.weather.fields()
    if report.telemetry is not None:
        detail["telemetry"] = _telemetry_detail(report.telemetry)
    return detail


def _status_detail(packet: AprsPacket) -> dict[str, Any]:
    """What a packet that is no position says, for the detail of its status event."""
    detail: dict[str, Any]
    if isinstance(packet, StatusReport):
        timestamp = packet.timestamp.raw if packet.timestamp else None
        detail = {"type": "status", "text": packet.text, "timestamp": timestamp}
    elif isinstance(packet, Message):
        detail = {
            "type": "message",
            "addressee": packet.addressee,
            "text": packet.text,
            "message_id": packet.message_id,
            "reply_ack": packet.reply_ack,
            "ack": packet.ack_id,
            "rej": packet.rej_id,
        }
        # A directed query is a message whose text is the query (APRS 1.01 ch 15: ?APRSP, ?APRSD, ...).
        if packet.text and (q := re.match(r"^\?([A-Z]{3,})", packet.text)):
            detail["query"] = q.group(1)
    elif isinstance(packet, TelemetryReport):
        detail = {"type": "telemetry", **_telemetry_detail(packet.telemetry), "comment": packet.comment}
    elif isinstance(packet, TelemetryMetadata):
        detail = {
            "type": f"telemetry_{TELEMETRY_METADATA_TYPES[packet.kind]}",
            "station": packet.station,
            "names": list(packet.names) if packet.kind in ("PARM", "UNIT") else None,
            "coefficients": list(packet.coefficients) if packet.kind == "EQNS" else None,
            "bits": packet.bits,
            "project": packet.project,
        }
    elif isinstance(packet, WeatherReport):
        detail = {
            "type": "weather",
            "format": str(packet.format),
            "weather": packet.weather.fields(),
            "timestamp": packet.timestamp.raw if packet.timestamp else None,
            "comment": packet.comment,
            "text": packet.raw,
        }
    elif isinstance(packet, Query):
        area = packet.footprint
        footprint = {"lat": area[0], "lon": area[1], "radius_miles": area[2]} if area else None
        detail = {"type": "query", "query": packet.query, "text": packet.text, "footprint": footprint}
    elif isinstance(packet, Capabilities):
        detail = {"type": "capabilities", "capabilities": dict(packet.tokens), "text": packet.text}
    elif isinstance(packet, UserDefined):
        detail = {"type": "user_defined", "user_id": packet.user_id, "packet_type": packet.packet_type,
                  "text": packet.data}
    elif isinstance(packet, DxSpot):
        detail = {"type": "dx_spot", "spotter": packet.spotter, "frequency_khz": packet.frequency_khz,
                  "dx_call": packet.dx_call, "text": packet.text}
    elif isinstance(packet, ThirdParty):  # nested past _MAX_NESTING
        inner = packet.inner
        header = ",".join([f"{inner.source}>{inner.destination}", *inner.path])
        detail = {"type": "third_party", "text": f"{header}:{display_text(inner.info)}"}
    elif isinstance(packet, OtherData):
        detail = {"type": packet.kind, "text": packet.text}
    else:  # positions and objects have events of their own
        raise TypeError(f"no status for {type(packet).__name__}")
    return {k: v for k, v in detail.items() if v is not None}


def _type_of(text: str) -> str:
    """The APRS type an information field claims by its first bytes (APRS 1.01 ch 5)."""
    if not text:
        return "empty"
    if text.startswith(("!!", "$ULTW")):
        return "weather"
    if text.startswith("{{"):
        return "experimental"
    if text.startswith("T#"):
        return "telemetry"
    return DATA_TYPES.get(text[0], "unknown")


def _frame_detail(frame: Ax25Frame) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "protocol": "aprs",
        "destination": str(frame.destination),
        "path": frame.path(),
        "raw": frame.tnc2(),
    }
    if frame.irregular:
        detail["irregular"] = list(frame.irregular)
    return detail


def frame_event(frame: Ax25Frame, now: datetime) -> Decoded:
    """The event of an APRS frame (UI, PID 0xF0), whatever it carries.

    position -> beacon (Mic-E "emergency" -> alert); object or item -> beacon of ``aprs:<name>``, the
    sender and whether it was killed in the detail; third-party traffic -> the event of the packet
    inside, for its own station, with the station that sent it in ``detail.third_party``; anything
    else -> status with ``detail.type`` and what was read. A field that does not parse is a status with
    its type, its text and ``detail.error``; an object whose position is unreadable is a status of the
    object (it has a name but no place to show).
    """
    return _info_event(str(frame.source), str(frame.destination), frame.info, _frame_detail(frame), now, 0)


def aprs_to_decoded(frame: Ax25Frame, packet: AprsPacket, now: datetime) -> Decoded:
    """The event of ``packet``, already parsed from ``frame`` (see :func:`frame_event`)."""
    return _packet_event(str(frame.source), packet, _frame_detail(frame), now, 0)


def _info_event(source: str, destination: str, info: bytes, detail: dict[str, Any], now: datetime,
                depth: int) -> Decoded:
    try:
        packet = parse(info, source=source, destination=destination, now=now)
    except AprsError as exc:
        return _unread_event(source, info, exc, detail, now)
    return _packet_event(source, packet, detail, now, depth)


def _packet_event(source: str, packet: AprsPacket, detail: dict[str, Any], now: datetime, depth: int) -> Decoded:
    if isinstance(packet, PositionReport):
        detail.update(_position_detail(packet))
        kind = Kind.ALERT if packet.mic_e_message is MicEMessage.EMERGENCY else Kind.BEACON
        return Decoded(kind=kind, time=now, unit=unit_of(source), position=_position_of(packet), detail=detail)
    if isinstance(packet, ObjectReport):
        detail.update(_position_detail(packet.report))
        detail.update(type="item" if packet.item else "object", name=packet.name, sender=source)
        detail["killed"] = not packet.alive
        unit = object_unit(packet.name)
        return Decoded(kind=Kind.BEACON, time=now, unit=unit, position=_position_of(packet.report), detail=detail)
    if isinstance(packet, ThirdParty) and depth < _MAX_NESTING:
        inner = packet.inner
        outer = {"sender": source, "destination": detail["destination"], "path": detail["path"]}
        detail.setdefault("third_party", outer)
        detail.update(destination=inner.destination, path=list(inner.path))
        return _info_event(inner.source, inner.destination, inner.info, detail, now, depth + 1)
    detail.update(_status_detail(packet))
    return Decoded(kind=Kind.STATUS, time=now, unit=unit_of(source), detail=detail)


def _unread_event(source: str, info: bytes, error: AprsError, detail: dict[str, Any], now: datetime) -> Decoded:
    text = info.decode("latin-1")
    kind = _type_of(text)
    detail.update(type=kind, data_type=display_text(info[:1]), text=display_text(info), error=str(error))
    unit = unit_of(source)
    if kind in ("object", "item") and (header := object_header(text)):
        name, alive = header
        detail.update(name=name, sender=source, killed=not alive)
        unit = object_unit(name) or unit
    return Decoded(kind=Kind.STATUS, time=now, unit=unit, detail=detail)
