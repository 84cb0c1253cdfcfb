"""Raw GPS sentences as the information field (APRS 1.01 ch 5): a position from a GPS receiver wired
straight to the TNC.

    $GPRMC,hhmmss[.ss],A,ddmm.mm,N,dddmm.mm,W,knots,course,ddmmyy,magvar,E*cs
    $GPGGA,hhmmss[.ss],ddmm.mm,N,dddmm.mm,W,quality,sats,hdop,altitude,M,...*cs   quality 0: no fix
    $GPGLL,ddmm.mm,N,dddmm.mm,W[,hhmmss[.ss],A]*cs                              A: valid

Any talker (GP, GN, BD, ...). RMC gives date, fix and motion; GGA and GLL only the time of day,
resolved against the receiver's clock like "HHMMSSh".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from drivers.aprs.fields import BLANK, resolve_timestamp
from drivers.aprs.packets import AprsError, ErrorCode, Format, PositionReport, Timestamp

_NMEA_COORD_RE = re.compile(r"^(\d{2,3})(\d{2}(?:\.(\d+))?)$")


def _nmea_coordinate(value: str, hemisphere: str, negative: str, max_degrees: int) -> tuple[float, int]:
    m = _NMEA_COORD_RE.match(value)
    if m is None or hemisphere not in ("NS" if max_degrees == 90 else "EW"):
        raise AprsError(ErrorCode.NMEA_INV, f"invalid coordinate {value!r} {hemisphere!r}", "location")
    degrees, minutes = int(m.group(1)), float(m.group(2))
    if degrees >= max_degrees or minutes >= 60:
        raise AprsError(ErrorCode.NMEA_INV, f"coordinate out of range {value!r}", "location")
    result = degrees + minutes / 60
    return (-result if hemisphere == negative else result), len(m.group(3) or "")


def parse_nmea(info: str, now: datetime) -> PositionReport:
    sentence = info.rstrip(BLANK)
    checksum_ok = None
    if (star := sentence.rfind("*")) != -1:
        stated = sentence[star + 1 : star + 3]
        computed = 0
        for ch in sentence[1:star]:
            computed ^= ord(ch)
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", stated) or int(stated, 16) != computed:
            raise AprsError(ErrorCode.NMEA_INV_CKSUM, f"checksum {stated!r}, computed {computed:02X}", "location")
        checksum_ok = True
        sentence = sentence[:star]
    fields = sentence.split(",")
    if re.fullmatch(r"\$[A-Z]{2}(GGA|GLL)", fields[0]):
        return _nmea_gga_gll(fields, now, checksum_ok)
    if not re.fullmatch(r"\$[A-Z]{2}RMC", fields[0]):
        raise AprsError(ErrorCode.NMEA_UNSUPPORTED, f"NMEA sentence {fields[0]!r} is not read", "location")
    if len(fields) < 10:
        raise AprsError(ErrorCode.GPRMC_FEWFIELDS, f"{len(fields)} fields, RMC has at least 10", "location")
    if fields[2] != "A":
        raise AprsError(ErrorCode.GPRMC_NOFIX, f"status {fields[2]!r}: no fix", "location")
    if not (t := re.fullmatch(r"(\d{2})(\d{2})(\d{2})(?:\.\d+)?", fields[1])):
        raise AprsError(ErrorCode.GPRMC_INV_TIME, f"invalid time {fields[1]!r}", "location")
    if not (d := re.fullmatch(r"(\d{2})(\d{2})(\d{2})", fields[9])):
        raise AprsError(ErrorCode.GPRMC_INV_DATE, f"invalid date {fields[9]!r}", "location")
    try:
        # NMEA 0183 two-digit years: 70-99 are 19xx (the same pivot GPS software commonly uses).
        year = int(d.group(3)) + (1900 if int(d.group(3)) >= 70 else 2000)
        hour, minute, second = (int(g) for g in t.groups())
        fix_time = datetime(year, int(d.group(2)), int(d.group(1)), hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise AprsError(ErrorCode.GPRMC_INV_DATE, f"invalid date/time: {exc}", "location") from None
    lat, lat_decimals = _nmea_coordinate(fields[3], fields[4], "S", 90)
    lon, _ = _nmea_coordinate(fields[5], fields[6], "W", 180)
    speed = float(fields[7]) if re.fullmatch(r"\d+(\.\d*)?", fields[7]) else None
    course = None
    if re.fullmatch(r"\d+(\.\d*)?", fields[8]) and speed:
        course = round(float(fields[8])) or 360
    return PositionReport(
        format=Format.NMEA,
        lat=lat,
        lon=lon,
        symbol_table="/",
        symbol_code="/",  # APRS 1.01 ch 5: raw GPS data has no symbol; "/" (dot) is the default
        resolution_m=1852 * 10.0**-lat_decimals,
        timestamp=Timestamp(raw=f"{fields[1]} {fields[9]}", time=fix_time),
        course=course if course is None or course <= 360 else None,
        speed_knots=speed,
        checksum_ok=checksum_ok,
    )


def _nmea_gga_gll(fields: list[str], now: datetime, checksum_ok: bool | None) -> PositionReport:
    gga = fields[0].endswith("GGA")
    if gga:
        if len(fields) < 11:
            raise AprsError(ErrorCode.GPGGA_FEWFIELDS, f"{len(fields)} fields, GGA has at least 11", "location")
        if not fields[6].isdigit() or int(fields[6]) == 0:
            raise AprsError(ErrorCode.GPGGA_NOFIX, f"fix quality {fields[6]!r}: no fix", "location")
        time_field, coordinates = fields[1], fields[2:6]
    else:
        if len(fields) < 5:
            raise AprsError(ErrorCode.GPGLL_FEWFIELDS, f"{len(fields)} fields, GLL has at least 5", "location")
        if len(fields) > 6 and fields[6] != "A":
            raise AprsError(ErrorCode.GPGLL_NOFIX, f"status {fields[6]!r}: no fix", "location")
        time_field, coordinates = (fields[5] if len(fields) > 5 else ""), fields[1:5]
    lat, lat_decimals = _nmea_coordinate(coordinates[0], coordinates[1], "S", 90)
    lon, _ = _nmea_coordinate(coordinates[2], coordinates[3], "W", 180)
    timestamp = None
    if time_field:
        code = ErrorCode.TIMESTAMP_INV_GPGGA if gga else ErrorCode.TIMESTAMP_INV_GPGLL
        if not (t := re.fullmatch(r"(\d{6})(?:\.\d+)?", time_field)):
            raise AprsError(code, f"invalid time {time_field!r}", "location")
        try:
            timestamp = resolve_timestamp(t.group(1) + "h", now)
        except ValueError as exc:
            raise AprsError(code, str(exc), "location") from None
    altitude = None
    if gga and re.fullmatch(r"-?\d+(\.\d*)?", fields[9]) and fields[10] == "M":
        altitude = float(fields[9])
    return PositionReport(
        format=Format.NMEA,
        lat=lat,
        lon=lon,
        symbol_table="/",
        symbol_code="/",
        resolution_m=1852 * 10.0**-lat_decimals,
        timestamp=timestamp,
        altitude_m=altitude,
        checksum_ok=checksum_ok,
    )
