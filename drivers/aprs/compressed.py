"""Compressed positions (APRS 1.01 ch 9), in ``! = / @`` packets, objects and items.

    table  YYYY  XXXX  code  c s  T    comment
    /      5L!!  <*e7  >     7 P  [    ...
    0      1     5     9     10   12   13

    YYYY, XXXX: base-91 (chars 33-123); lat = 90 - Y/380926, lon = -180 + X/190463.
    cs: " " = nothing; "{" = range 2*1.08^s miles; T bits 4-3 = 10 (GGA) -> altitude 1.002^(c*91+s) ft;
    else course (c-33)*4 deg, speed 1.08^(s-33)-1 knots.
"""

from __future__ import annotations

import re

from drivers.aprs.extensions import apply_dao, common_extras
from drivers.aprs.fields import base91, symbol_table_ok
from drivers.aprs.packets import AprsError, ErrorCode, Format, PositionReport, Timestamp
from drivers.aprs.tables import FOOT_M, KNOT_MPS
from drivers.aprs.weather import weather_fields

# FAP's figure for the resolution of a compressed position (APRS 1.01 ch 9: "0.3 m" at the equator).
COMPRESSED_RESOLUTION_M = 0.291

_COMPRESSED_RE = re.compile(r"^(.)([!-{]{4})([!-{]{4})(.)([ -{])([ -{])([!-{])")


def parse_compressed(body: str, *, messaging: bool | None, timestamp: Timestamp | None) -> PositionReport:
    if len(body) < 13:
        raise AprsError(ErrorCode.COMP_SHORT, f"compressed position needs 13 bytes, got {len(body)}", "location")
    m = _COMPRESSED_RE.match(body)
    if m is None:
        raise AprsError(ErrorCode.COMP_INV, f"invalid compressed position {body[:13]!r}", "location")
    table, y, x, code, c, s, t = m.groups()
    if not symbol_table_ok(table, compressed=True):
        raise AprsError(ErrorCode.SYM_INV_TABLE, f"invalid symbol table or overlay {table!r}", "location")
    if "a" <= table <= "j":
        table = chr(ord(table) - ord("a") + ord("0"))
    lat = 90 - base91(y) / 380926
    lon = -180 + base91(x) / 190463
    course = speed = range_miles = altitude_m = None
    if c != " ":
        cv, sv = ord(c) - 33, ord(s) - 33
        if (ord(t) - 33) & 0x18 == 0x10:
            altitude_m = 1.002 ** (cv * 91 + sv) * FOOT_M
        elif c == "{":
            range_miles = 2 * 1.08**sv
        elif 0 <= cv <= 89 and sv >= 0:  # s below '!' would give a negative speed (found by fuzzing)
            # Course 0 is sent for north; here 0 means "unknown", so north is 360 (APRS 1.01 ch 7).
            course = cv * 4 or 360
            speed = 1.08**sv - 1
    rest = body[13:]
    weather = None
    if code == "_":
        # APRS 1.01 ch 12: a compressed weather report sends wind direction and speed in cs.
        wind = (course % 360 if course else None, speed * KNOT_MPS if speed is not None else None)
        weather, rest = weather_fields(rest, wind) or (None, rest)
        course = speed = None
    extras = common_extras(rest, course=course, speed=speed, range_miles=range_miles, altitude_m=altitude_m)
    lat, lon, resolution = apply_dao(lat, lon, COMPRESSED_RESOLUTION_M, extras)
    return PositionReport(
        format=Format.COMPRESSED,
        lat=lat,
        lon=lon,
        symbol_table=table,
        symbol_code=code,
        resolution_m=resolution,
        messaging=messaging,
        timestamp=timestamp,
        course=extras.course,
        speed_knots=extras.speed_knots,
        altitude_m=extras.altitude_m,
        range_miles=extras.range_miles,
        comment=extras.comment,
        dao_datum=extras.dao_datum,
        telemetry=extras.telemetry,
        weather=weather,
    )
