"""Positions (APRS 1.01 ch 8): the data types ``! = / @`` and the uncompressed position they, objects and
items carry; a body that does not start with a latitude digit is compressed (:mod:`.compressed`).

Data types::

    ! or =   position, no timestamp       ("=": the station can receive messages)
    / or @   DDHHMMz|DDHHMM/|HHMMSSh + position

Uncompressed position::

    lat       table lon        code  comment
    DDMM.hhN  /     DDDMM.hhE  >     [CSE/SPD | PHGphgd | RNGrrrr][text][/A=aaaaaa]
    0         8     9          18    19

    Digits of the minutes may be blanked with spaces from the right (ambiguity, APRS 1.01 ch 6);
    the longitude takes the latitude's ambiguity.
"""

from __future__ import annotations

import re
from datetime import datetime

from drivers.aprs.compressed import parse_compressed
from drivers.aprs.extensions import apply_dao, comment_extras
from drivers.aprs.fields import (
    TIMESTAMP_RE,
    ambiguity_resolution,
    ambiguous_minutes,
    resolve_timestamp,
    symbol_table_ok,
)
from drivers.aprs.packets import AprsError, ErrorCode, Format, PositionReport, Timestamp
from drivers.aprs.weather import weather_fields

_UNCOMPRESSED_RE = re.compile(r"^(\d{2})([0-9 ]{2}\.[0-9 ]{2})([NnSs])(.)(\d{3})([0-9 ]{2}\.[0-9 ]{2})([EeWw])(.)")


def parse_uncompressed(body: str, *, messaging: bool | None, timestamp: Timestamp | None) -> PositionReport:
    if len(body) < 19:
        raise AprsError(ErrorCode.LOC_SHORT, f"uncompressed position needs 19 bytes, got {len(body)}", "location")
    m = _UNCOMPRESSED_RE.match(body)
    if m is None:
        raise AprsError(ErrorCode.LOC_INV, f"invalid uncompressed location {body[:19]!r}", "location")
    lat_deg, lat_min, ns, table, lon_deg, lon_min, ew, code = m.groups()
    if not symbol_table_ok(table):
        raise AprsError(ErrorCode.SYM_INV_TABLE, f"invalid symbol table or overlay {table!r}", "location")
    lat_digits = lat_min.replace(".", "")
    lon_digits = lon_min.replace(".", "")
    kept = lat_digits.rstrip(" ")
    ambiguity = 4 - len(kept)
    if " " in kept or " " in lon_digits[: 4 - ambiguity]:
        raise AprsError(ErrorCode.LOC_AMB_INV, f"blanked digits not at the end: {body[:19]!r}", "location")
    if int(lat_deg) > 89 or int(lon_deg) > 179 or (kept[:2].isdigit() and int(kept[:2]) > 59):
        raise AprsError(ErrorCode.LOC_LARGE, f"position out of range: {body[:19]!r}", "location")
    lon_kept = lon_digits[: 4 - ambiguity]
    if lon_kept[:2].isdigit() and int(lon_kept[:2]) > 59:
        raise AprsError(ErrorCode.LOC_LARGE, f"position out of range: {body[:19]!r}", "location")
    lat = int(lat_deg) + ambiguous_minutes(kept, ambiguity) / 60
    lon = int(lon_deg) + ambiguous_minutes(lon_kept, ambiguity) / 60
    lat = -lat if ns in "Ss" else lat
    lon = -lon if ew in "Ww" else lon
    rest = body[19:]
    weather = None
    if code == "_":
        # APRS 1.01 ch 12: with the weather symbol the comment carries the weather report. When it
        # does not parse, FAP drops the comment (its t/20 vector); so does this.
        weather, rest = weather_fields(rest) or (None, "")
    extras = comment_extras(rest, data_extension=weather is None)
    lat, lon, resolution = apply_dao(lat, lon, ambiguity_resolution(ambiguity), extras)
    return PositionReport(
        format=Format.UNCOMPRESSED,
        lat=lat,
        lon=lon,
        symbol_table=table,
        symbol_code=code,
        resolution_m=resolution,
        ambiguity=ambiguity,
        messaging=messaging,
        timestamp=timestamp,
        course=extras.course,
        speed_knots=extras.speed_knots,
        altitude_m=extras.altitude_m,
        phg=extras.phg,
        range_miles=extras.range_miles,
        comment=extras.comment,
        dao_datum=extras.dao_datum,
        telemetry=extras.telemetry,
        weather=weather,
    )


def position_body(body: str, *, messaging: bool | None, timestamp: Timestamp | None) -> PositionReport:
    """Uncompressed when it starts with a latitude digit, else compressed (APRS 1.01 ch 9)."""
    if body[:1].isdigit():
        return parse_uncompressed(body, messaging=messaging, timestamp=timestamp)
    return parse_compressed(body, messaging=messaging, timestamp=timestamp)


def parse_position(info: str, now: datetime) -> PositionReport:
    kind = info[0]
    messaging = kind in "=@"
    body = info[1:]
    timestamp = None
    if kind in "/@":
        if not TIMESTAMP_RE.match(body):
            raise AprsError(ErrorCode.TIMESTAMP_INV_LOC, f"invalid timestamp {body[:7]!r}", "location")
        try:
            timestamp = resolve_timestamp(body[:7], now)
        except ValueError as exc:
            raise AprsError(ErrorCode.TIMESTAMP_INV_LOC, str(exc), "location") from None
        body = body[7:]
    return position_body(body, messaging=messaging, timestamp=timestamp)
