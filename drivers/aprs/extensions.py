"""The extensions a position comment may carry, read alike by every position format.

    CSE/SPD     7 bytes right after the symbol: course (deg) / speed (knots)   APRS 1.01 ch 7
    PHGphgd     power, height, gain, directivity (optional 5th: beacon rate)
    RNGrrrr     pre-calculated radio range, miles
    /A=aaaaaa   altitude in feet, anywhere in the comment (may be "-aaaaa")    APRS 1.01 ch 6
    |ssAAbb..|  base-91 telemetry: sequence, 1-5 channels, optional bits      APRS 1.2
    !DAO!       extra precision and datum                                      APRS 1.2
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from drivers.aprs.fields import base91, comment_text
from drivers.aprs.packets import AprsError, ErrorCode, Telemetry
from drivers.aprs.tables import FOOT_M


@dataclass(frozen=True, slots=True)
class Extras:
    """What the extensions of one comment said, and the comment that remains."""

    comment: str | None = None
    course: int | None = None
    speed_knots: float | None = None
    altitude_m: float | None = None
    phg: str | None = None
    range_miles: float | None = None
    telemetry: Telemetry | None = None
    dao_datum: str | None = None
    dao_lat_minutes: float = 0.0  # extra minutes of arc, added away from the equator / meridian
    dao_lon_minutes: float = 0.0
    dao_resolution_m: float | None = None


_CSE_SPD_RE = re.compile(r"^([0-9. ]{3})/([0-9. ]{3})")
_PHG_RE = re.compile(r"^PHG(\d[\x30-\x7e]\d\d[0-9A-Z]?)/|^PHG(\d[\x30-\x7e]\d\d)")
_RNG_RE = re.compile(r"^RNG(\d{4})")
_ALTITUDE_RE = re.compile(r"/A=(-\d{5}|\d{6})")
_B91_TELEMETRY_RE = re.compile(r"^(.*)\|([!-{]{2})((?:[!-{]{2}){1,6})\|(.*)$", re.DOTALL)
_DAO_RE = re.compile(r"^(.*)!([!-{])([ -{]{2})!(.*)$", re.DOTALL)


def _base91_telemetry(comment: str) -> tuple[str, Telemetry | None]:
    m = _B91_TELEMETRY_RE.match(comment)
    if m is None:
        return comment, None
    pairs = [m.group(3)[i : i + 2] for i in range(0, len(m.group(3)), 2)]
    values: list[float | None] = [float(base91(p)) for p in pairs[:5]]
    values += [None] * (5 - len(values))
    bits = None
    if len(pairs) == 6:
        bits = "".join("1" if base91(pairs[5]) >> i & 1 else "0" for i in range(8))
    return m.group(1) + m.group(4), Telemetry(base91(m.group(2)), tuple(values), bits)


def _dao(comment: str) -> tuple[str, Extras] | None:
    m = _DAO_RE.match(comment)
    if m is None:
        return None
    datum, digits = m.group(2), m.group(3)
    if "A" <= datum <= "Z" and digits.isdigit():
        # Human-readable: a third decimal of the minutes, 1.852 m.
        extras = Extras(
            dao_datum=datum,
            dao_lat_minutes=int(digits[0]) * 0.001,
            dao_lon_minutes=int(digits[1]) * 0.001,
            dao_resolution_m=1.852,
        )
    elif "a" <= datum <= "z" and " " not in digits:
        # Base-91: 0-90 in 91ths of 0.01 minute, about 0.19 m.
        extras = Extras(
            dao_datum=datum.upper(),
            dao_lat_minutes=base91(digits[0]) / 91 * 0.01,
            dao_lon_minutes=base91(digits[1]) / 91 * 0.01,
            dao_resolution_m=0.1852,
        )
    elif digits == "  ":
        extras = Extras(dao_datum=datum.upper())  # the datum alone
    else:
        return None
    return m.group(1) + m.group(4), extras


def comment_extras(rest: str, *, data_extension: bool) -> Extras:
    """Pull the extensions out of a position comment; what remains, trimmed, is the comment."""
    course: int | None = None
    speed: float | None = None
    phg = None
    range_miles = None
    if data_extension:
        if m := _CSE_SPD_RE.match(rest):
            cse, spd = m.group(1), m.group(2)
            course = int(cse) if cse.isdigit() and 1 <= int(cse) <= 360 else None
            speed = float(spd) if spd.isdigit() else None
            rest = rest[7:]
        elif m := _PHG_RE.match(rest):
            phg = m.group(1) or m.group(2)
            rest = rest[m.end() :]
        elif m := _RNG_RE.match(rest):
            range_miles = float(m.group(1))
            rest = rest[7:]
    return common_extras(rest, course=course, speed=speed, phg=phg, range_miles=range_miles)


def common_extras(
    rest: str,
    *,
    course: int | None = None,
    speed: float | None = None,
    phg: str | None = None,
    range_miles: float | None = None,
    altitude_m: float | None = None,
    telemetry: Telemetry | None = None,
) -> Extras:
    if m := _ALTITUDE_RE.search(rest):
        altitude_m = int(m.group(1)) * FOOT_M
        rest = rest[: m.start()] + rest[m.end() :]
    rest, b91 = _base91_telemetry(rest)
    telemetry = b91 or telemetry
    dao = _dao(rest)
    if dao is None:
        dao_extras = Extras()
    else:
        rest, dao_extras = dao
    return Extras(
        comment=comment_text(rest),
        course=course,
        speed_knots=speed,
        altitude_m=altitude_m,
        phg=phg,
        range_miles=range_miles,
        telemetry=telemetry,
        dao_datum=dao_extras.dao_datum,
        dao_lat_minutes=dao_extras.dao_lat_minutes,
        dao_lon_minutes=dao_extras.dao_lon_minutes,
        dao_resolution_m=dao_extras.dao_resolution_m,
    )


def apply_dao(lat: float, lon: float, resolution: float, extras: Extras) -> tuple[float, float, float]:
    # The DAO digits extend the minutes, so they move the position away from the equator/meridian.
    # FAP applies them to compressed positions too (its t/25 vector), and so does this.
    lat += math.copysign(extras.dao_lat_minutes / 60, lat)
    lon += math.copysign(extras.dao_lon_minutes / 60, lon)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        # Base-91 and Mic-E encodings can express a little beyond the poles and the date line.
        raise AprsError(ErrorCode.LOC_LARGE, f"position {lat:.5f}, {lon:.5f} is off the globe", "location")
    return lat, lon, extras.dao_resolution_m or resolution
