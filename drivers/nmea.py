r"""NMEA 0183: position fixes from the gateway's own GPS receiver and Kenwood's position sentences.

Sans-I/O (see :mod:`drivers.base`): bytes in, :class:`~gateway.events.Decoded` beacons and
:class:`~drivers.base.Rejected` out, resumable at any byte boundary.

One sentence per line (NMEA 0183 allows 82 characters, '$' to line end; we take up to
:data:`MAX_LINE` because receivers in the field overrun it). RMC, the minimum navigation data::

    $GPRMC,123519.00,A,4807.0380,N,01131.0000,E,022.4,084.4,230394,003.1,W,A*29<CR><LF>

     $  GP     RMC , 123519.00 , A       , 4807.0380 , N   , 01131.0000 , E   ,
     |  talker type  hhmmss.ss   status    ddmm.mmmm   N/S   dddmm.mmmm   E/W
    start            UTC         A: fix    latitude          longitude
                                 V: none

       , 022.4 , 084.4    , 230394 , 003.1     , W   , A             * 29
         speed   course     date     magnetic    E/W   mode (2.3):     checksum: XOR of the
         knots   deg true   ddmmyy   variation         A D E: fix      bytes between $ and *,
                                                       N: no fix       two hex digits, either case

GGA, the fix data (altitude and fix quality, no date), and GLL, the position alone::

    $GPGGA,123519.00,4807.0380,N,01131.0000,E,1,08,0.9,545.4,M,46.9,M,,*69

     $  GP     GGA , 123519.00 , 4807.0380 , N , 01131.0000 , E , 1       , 08         , 0.9  ,
                     time        latitude        longitude        quality   satellites   HDOP

       , 545.4     , M , 46.9             , M , (DGPS age) , (DGPS station) * 69
         altitude        geoid separation
         above MSL       (ellipsoid - MSL)

    $GPGLL,4807.0380,N,01131.0000,E,123519.00,A,A*hh       latitude, longitude, time, status A/V,
                                                            mode (2.3, as in RMC)

    quality: 0 no fix, 1 GPS, 2 DGPS, 3 PPS, 4 RTK, 5 float RTK, 6 estimated, 7 manual, 8 simulation
    talker:  GP GPS, GL GLONASS, GA Galileo, GB or BD BeiDou, GN several systems (any is accepted)

Kenwood's proprietary sentences, which a FleetSync or NX-series digital (NXDN, NEXEDGE) radio writes on
its data port for the GPS data another radio sent over the air (field order from pynmea2's
``pynmea2/types/proprietary/kwd.py``, ncssar/radiolog's ``fsParse``, and adrianmo/go-nmea's
``pknid.go``/``pknds.go``/``pknsh.go`` for the ranges of Kenwood's NX manuals)::

    $PKLSH,ddmm.mm,N/S,dddmm.mm,E/W,hhmmss,v,FFF,IIII,*hh              FleetSync fleet FFF, device IIII
    $PKNSH,ddmm.mm,N/S,dddmm.mm,E/W,hhmmss,v,NXID,*hh                  NX unit id NXID
    $PKLDS,hhmmss,v,ddmm.mm,N/S,dddmm.mm,E/W,kn,cog,ddmmyy,var,Evv,FFF,IIII,ss,ff,*hh
    $PKNDS,hhmmss,v,ddmm.mm,N/S,dddmm.mm,E/W,kn,cog,ddmmyy,var,Evv,NXID,ss,ff,*hh
    $PKNID,vv,NXID,ss,ff,*hh                                           who sent the GPS data, no position

    v     validity: A valid fix; V warning: a dead GPS on old radios, the last known (stale) position on
          newer ones (radiolog's notes on the NX-5200); Z no fix (radiolog shows "NO FIX"; no Kenwood
          document at hand confirms it)
    NXID  U + 5 digits (NXDN, U00001-U65519), U + 8 digits (24-bit ids, U00000001-U16776415: a real
          NX radio's burst carries U00001205), or 9 digits without U (robo-w/kenwood-gps-converter's
          radios, dPMR); kept as sent
    ss    the sender's status number: FleetSync 10-99 (80 = default status, Kenwood TK-2170 Function
          Reference, table 20-8), NXDN 1-255; written in 2 to 4 digits ("80", "207", "0028"), compared as
          a number; empty when the sender gave none. ff: "future", 00 or empty
    Evv   E/W of the magnetic variation and a two-digit sentence version: "W00", or "00" alone when no
          variation is given (go-nmea's reading; kwd.py calls the field ewSV)

A radio may write every sentence of one received report (the burst of a real NX radio: $PKNID,
$PKNDS, $PKNSH, $GPRMC, $GPGGA, $GPGLL, all of unit U00001205 at 16:09:02). Kenwood's manual says
$PKNID is meant to go with $GPGGA, $GPGLL or $GPRMC: it names the unit, the standard sentences carry
its position.

What comes out:

- RMC and GGA of one epoch (same UTC time of day) become **one** beacon: speed, course and date from
  RMC, altitude from GGA. An epoch is reported as soon as both have been seen, or when a sentence of
  another time arrives, or from :meth:`NmeaDecoder.tick` once it has waited :data:`FIX_TIMEOUT`; so a
  receiver that sends only RMC or only GGA still gives one beacon per fix, and the result does not
  depend on how the bytes were chunked. Epochs without a fix (RMC status V or mode N, GGA quality 0,
  7 or 8, empty position) give nothing.
- Each Kenwood position sentence is one beacon for the radio it names (``fleetsync:100-1001``,
  ``nxdn:U03001``, ``nxdn:U00001205``); a V report keeps its position with ``detail["valid"] = False``
  so that a map can show it as stale; a Z report gives nothing.
- ``$PKNID`` is a ``ptt`` event of its unit (the radio keyed up to send its GPS data and named itself),
  and the standard sentences of the next epoch, if they come within :data:`BURST`, are that unit's
  position: their beacon carries the unit, ``identified_by`` and the sender status, not ``unit``. When
  a Kenwood sentence of the same burst already gave that unit this fix (the $GPRMC after the $PKNDS of
  the real burst), they add nothing and give no beacon, unless the $PKNID's sender status is another
  (a status can make it an emergency).
- Every event is timed by the last input it came from: an epoch reported by :meth:`NmeaDecoder.tick`
  or :meth:`NmeaDecoder.flush` carries the time its last sentence was fed, not the time of the tick.
- Other sentence types are ignored. Anything malformed (bad checksum, wrong field count, a field that
  does not parse, garbage between sentences) is :class:`~drivers.base.Rejected` with its bytes, and
  decoding goes on with the next sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

from drivers.base import Output, ProtocolDecoder, Rejected
from gateway.events import Decoded, Kind, Position, is_unit

#: Longest line accepted, '$' included, line end excluded. NMEA 0183 allows 82 characters, but
#: high-precision receivers write more (every sentence of gpsd's nmea-rtk.log from a Trimble RTK
#: receiver is longer, up to 102), so leave slack.
MAX_LINE = 120

#: An epoch still waiting for its partner sentence is reported after this long (receivers report
#: once a second or faster, so by then the partner is not coming).
FIX_TIMEOUT = timedelta(seconds=1)

#: 1 knot = 1 international nautical mile (1852 m, exact by definition) per hour.
KNOT_MPS = 1852 / 3600

#: GGA fix quality values that are fixes (NMEA 0183 GGA field 6): 1 GPS, 2 DGPS, 3 PPS, 4 RTK,
#: 5 float RTK, 6 estimated (dead reckoning). 0 is no fix, 7 manual input and 8 simulation are not
#: positions of a radio.
GGA_FIX_QUALITIES = frozenset({1, 2, 3, 4, 5, 6})

#: One beacon per epoch as soon as all of these were seen for its time of day.
EPOCH_SENTENCES = frozenset({"RMC", "GGA"})

#: What a radio writes for one received GPS report arrives within this: the six sentences of the real
#: NX burst (about 330 bytes) take 2.8 s at 1200 baud, the slowest rate of a Kenwood data port (NX-5000
#: Function Reference, COM port baud rates 1200-19200), and an epoch may wait FIX_TIMEOUT more.
BURST = timedelta(seconds=10)

_BREAK = re.compile(rb"[$\r\n]")
_ADDRESS_RE = re.compile(r"^[A-Z0-9]{2,10}$")
_HEX2_RE = re.compile(r"^[0-9A-Fa-f]{2}$")


def checksum(body: str | bytes) -> int:
    """The NMEA 0183 checksum: XOR of the bytes between ``$`` and ``*``."""
    data = body.encode("ascii") if isinstance(body, str) else body
    value = 0
    for byte in data:
        value ^= byte
    return value


# --- field parsers: token -> value, None for an empty field, ValueError with the problem --------

Parser = Callable[[str], Any]

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_TIME_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})(\.\d+)?$")
_DATE_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})$")
_COORD_RE = re.compile(r"^(\d{1,3})(\d{2}(?:\.\d*)?)$")


def _number(token: str) -> float | None:
    if token == "":
        return None
    if not _NUMBER_RE.match(token):
        raise ValueError(f"not a number: {token!r}")
    return float(token)


def _unsigned(token: str) -> float | None:
    value = _number(token)
    if value is not None and value < 0:
        raise ValueError(f"negative: {token!r}")
    return value


def _integer(token: str) -> int | None:
    if token == "":
        return None
    if not token.isascii() or not token.isdigit():
        raise ValueError(f"not an integer: {token!r}")
    return int(token)


def _time_of_day(token: str) -> int | None:
    """``hhmmss[.s...]`` (UTC) as microseconds since midnight; second 60 is a leap second."""
    if token == "":
        return None
    m = _TIME_RE.match(token)
    if m is None:
        raise ValueError(f"expected hhmmss[.ss], got {token!r}")
    hh, mm, ss = int(m[1]), int(m[2]), int(m[3])
    if hh > 23 or mm > 59 or ss > 60:
        raise ValueError(f"no such time of day: {token!r}")
    fraction = round(float(m[4]) * 1_000_000) if m[4] else 0
    return ((hh * 60 + mm) * 60 + ss) * 1_000_000 + fraction


def _date(token: str) -> date | None:
    """``ddmmyy``; two-digit years 80-99 are 1980-1999 (GPS time starts in 1980), the rest 20xx."""
    if token == "":
        return None
    m = _DATE_RE.match(token)
    if m is None:
        raise ValueError(f"expected ddmmyy, got {token!r}")
    yy = int(m[3])
    try:
        return date(1900 + yy if yy >= 80 else 2000 + yy, int(m[2]), int(m[1]))
    except ValueError:
        raise ValueError(f"no such date: {token!r}") from None


def _coordinate(max_degrees: int) -> Parser:
    def parse(token: str) -> float | None:
        if token == "":
            return None
        m = _COORD_RE.match(token)
        if m is None:
            raise ValueError(f"expected (d)ddmm.mmmm, got {token!r}")
        degrees, minutes = int(m[1]), float(m[2])
        value = degrees + minutes / 60
        if minutes >= 60 or value > max_degrees:
            raise ValueError(f"out of range: {token!r}")
        return value

    return parse


def _one_of(*allowed: str, empty_ok: bool = True) -> Parser:
    def parse(token: str) -> str | None:
        if token == "" and empty_ok:
            return None
        if token not in allowed:
            raise ValueError(f"expected {' or '.join(allowed)}, got {token!r}")
        return token

    return parse


def _matching(pattern: str, what: str) -> Parser:
    regex = re.compile(pattern)

    def parse(token: str) -> str:
        if not regex.match(token):
            raise ValueError(f"expected {what}, got {token!r}")
        return token

    return parse


def _text(token: str) -> str | None:
    return token or None


# --- sentence tables (after pynmea2: a sentence is a list of named fields) --------------------


class Role(Enum):
    FIX = "fix"  # standard fixes: merged per epoch; the gateway's own receiver, or the unit of a $PKNID
    KENWOOD = "kenwood"  # another radio's position, relayed by a Kenwood radio: one beacon each
    IDENTITY = "identity"  # who sent the GPS data whose standard sentences follow ($PKNID)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    parse: Parser


@dataclass(frozen=True, slots=True)
class SentenceSpec:
    role: Role
    fields: tuple[Field, ...]
    min_fields: int  # older NMEA versions end the sentence earlier
    system: str | None = None  # Kenwood: fleetsync | nxdn
    trailing_comma: bool = False  # Kenwood ends the field list with ',' before '*'


_LAT = (Field("lat", _coordinate(90)), Field("lat_dir", _one_of("N", "S")))
_LON = (Field("lon", _coordinate(180)), Field("lon_dir", _one_of("E", "W")))
_FLEET = Field("fleet", _matching(r"^\d{3}$", "a 3-digit FleetSync fleet"))
_DEVICE = Field("device", _matching(r"^\d{4}$", "a 4-digit FleetSync device id"))
#: The id forms Kenwood's NX radios write (see the module docstring); the unit keeps the form as sent.
NX_UNIT_ID = r"U\d{5}|U\d{8}|\d{9}"
_NX_UNIT = Field("unit_id", _matching(rf"^(?:{NX_UNIT_ID})$", "an NX unit id: U + 5 digits, U + 8 digits, or 9 digits"))
_KENWOOD_STATUS = Field("status", _one_of("A", "V", "Z", empty_ok=False))
_SENDER_STATUS = Field("sender_status", _matching(r"^\d{0,4}$", "a status number of up to 4 digits"))
_VERSION = Field("version", _matching(r"^\d{0,2}$", "a 2-digit sentence version"))
#: The fix that $PKLDS and $PKNDS share, before the sender's identity.
_DS_FIX = (
    Field("time", _time_of_day),
    _KENWOOD_STATUS,
    *_LAT,
    *_LON,
    Field("sog", _unsigned),
    Field("cog", _unsigned),
    Field("date", _date),
    Field("magvar", _unsigned),
    Field("magvar_dir", _matching(r"^[EW]?(?:\d{2})?$", "E or W and a 2-digit sentence version, like W00")),
)

#: Standard sentences we use, by sentence type, for any talker.
FIX_SENTENCES: Mapping[str, SentenceSpec] = {
    "RMC": SentenceSpec(
        Role.FIX,
        (
            Field("time", _time_of_day),
            Field("status", _one_of("A", "V", empty_ok=False)),
            *_LAT,
            *_LON,
            Field("sog", _unsigned),  # knots
            Field("cog", _unsigned),  # degrees true
            Field("date", _date),
            Field("magvar", _unsigned),
            Field("magvar_dir", _one_of("E", "W")),
            Field("mode", _text),  # NMEA 2.3+: A D E F M N P R S
            Field("nav_status", _text),  # NMEA 4.1+: S C U V
        ),
        min_fields=9,
    ),
    "GGA": SentenceSpec(
        Role.FIX,
        (
            Field("time", _time_of_day),
            *_LAT,
            *_LON,
            Field("quality", _integer),
            Field("satellites", _integer),
            Field("hdop", _unsigned),
            Field("alt", _number),  # above mean sea level
            Field("alt_units", _one_of("M")),
            Field("geoid_sep", _number),
            Field("geoid_units", _one_of("M")),
            Field("dgps_age", _unsigned),
            Field("dgps_station", _text),
        ),
        min_fields=6,
    ),
    "GLL": SentenceSpec(
        Role.FIX,
        (
            *_LAT,
            *_LON,
            Field("time", _time_of_day),
            Field("status", _one_of("A", "V", empty_ok=False)),
            Field("mode", _text),  # NMEA 2.3+, as in RMC
        ),
        min_fields=6,
    ),
}

#: Proprietary sentences by full address (P + manufacturer + type).
PROPRIETARY: Mapping[str, SentenceSpec] = {
    "PKLSH": SentenceSpec(
        Role.KENWOOD,
        (*_LAT, *_LON, Field("time", _time_of_day), _KENWOOD_STATUS, _FLEET, _DEVICE),
        min_fields=8,
        system="fleetsync",
        trailing_comma=True,
    ),
    "PKNSH": SentenceSpec(
        Role.KENWOOD,
        (*_LAT, *_LON, Field("time", _time_of_day), _KENWOOD_STATUS, _NX_UNIT),
        min_fields=7,
        system="nxdn",
        trailing_comma=True,
    ),
    "PKLDS": SentenceSpec(
        Role.KENWOOD,
        (*_DS_FIX, _FLEET, _DEVICE, _SENDER_STATUS, Field("future", _text)),
        min_fields=15,
        system="fleetsync",
        trailing_comma=True,
    ),
    "PKNDS": SentenceSpec(
        Role.KENWOOD,
        (*_DS_FIX, _NX_UNIT, _SENDER_STATUS, Field("future", _text)),
        min_fields=14,
        system="nxdn",
        trailing_comma=True,
    ),
    "PKNID": SentenceSpec(
        Role.IDENTITY,
        (_VERSION, _NX_UNIT, _SENDER_STATUS, Field("future", _text)),
        min_fields=4,
        system="nxdn",
        trailing_comma=True,
    ),
}


class FieldError(ValueError):
    """A known sentence whose fields do not parse; ``field`` names the field (None: their count)."""

    def __init__(self, field_name: str | None, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}" if field_name else problem)
        self.field = field_name


def parse_fields(spec: SentenceSpec, tokens: list[str]) -> dict[str, Any]:
    """The values of one sentence's fields (tokens after the address); raises :class:`FieldError`."""
    if spec.trailing_comma and len(tokens) == len(spec.fields) + 1 and tokens[-1] == "":
        tokens = tokens[:-1]
    if not spec.min_fields <= len(tokens) <= len(spec.fields):
        most = len(spec.fields)
        expected = str(most) if spec.min_fields == most else f"{spec.min_fields}-{most}"
        raise FieldError(None, f"{len(tokens)} fields, expected {expected}")
    values: dict[str, Any] = {}
    for spec_field, token in zip(spec.fields, tokens, strict=False):
        try:
            values[spec_field.name] = spec_field.parse(token)
        except ValueError as exc:
            raise FieldError(spec_field.name, str(exc)) from None
    return values


def _lat_lon(values: Mapping[str, Any]) -> tuple[float, float] | None:
    """The signed position, None when all four fields are empty (no fix)."""
    keys = ("lat", "lat_dir", "lon", "lon_dir")
    given = [k for k in keys if values.get(k) is not None]
    if not given:
        return None
    if len(given) < len(keys):
        missing = next(k for k in keys if values.get(k) is None)
        raise FieldError(missing, "empty while the rest of the position is given")
    lat = values["lat"] if values["lat_dir"] == "N" else -values["lat"]
    lon = values["lon"] if values["lon_dir"] == "E" else -values["lon"]
    return lat, lon


def _speed_course(values: Mapping[str, Any]) -> tuple[float | None, float | None]:
    knots, course = values.get("sog"), values.get("cog")
    # Limits of the event schema (gateway/events.py): speed 0..1e4 m/s, course 0..360.
    if knots is not None and knots * KNOT_MPS > 1e4:
        raise FieldError("sog", f"implausible speed {knots} knots")
    if course is not None and course > 360:
        raise FieldError("cog", f"course {course} is outside 0..360")
    return (knots * KNOT_MPS if knots is not None else None), course


def _altitude(values: Mapping[str, Any]) -> float | None:
    alt = values.get("alt")
    if alt is not None and not -1e5 <= alt <= 1e6:  # the event schema's range
        raise FieldError("alt", f"implausible altitude {alt} m")
    return alt


def _near(time_of_day_us: int, ref: datetime) -> datetime:
    """The instant with this UTC time of day that lies within 12 hours of ``ref`` (date from ``ref``,
    across midnight when the report is from just before or just after it)."""
    ref = ref.astimezone(UTC)
    t = ref.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(microseconds=time_of_day_us)
    if t - ref > timedelta(hours=12):
        t -= timedelta(days=1)
    elif ref - t > timedelta(hours=12):
        t += timedelta(days=1)
    return t


def _fix_time(day: date | None, time_of_day_us: int | None, ref: datetime) -> datetime | None:
    if time_of_day_us is None:
        return None
    if day is None:
        return _near(time_of_day_us, ref)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(microseconds=time_of_day_us)


# --- the decoder ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FixReport:
    """What one RMC or GGA sentence says about an epoch."""

    sentence: str  # "GPRMC"
    type: str  # "RMC"
    time_of_day_us: int | None
    day: date | None
    lat_lon: tuple[float, float] | None
    valid: bool  # the sentence says it has a fix
    status: str | None  # RMC status letter
    speed_mps: float | None
    course_deg: float | None
    alt_m: float | None
    extra: Mapping[str, Any]


def _fix_report(sentence: str, sentence_type: str, values: Mapping[str, Any]) -> FixReport:
    status = values.get("status")
    # RMC: status A, and not the NMEA 2.3 mode indicator N ("data not valid"). The NMEA 4.1
    # navigational status V only says the receiver gives no such status (u-blox always sends V,
    # see ublox-f9p-hpnmea.log), so it is not a no-fix. GGA: a fix quality that is a fix.
    valid = values.get("status", "A") == "A" and values.get("mode") != "N"
    if "quality" in values:
        valid = valid and values["quality"] in GGA_FIX_QUALITIES
    speed, course = _speed_course(values)
    extra = {k: values[k] for k in ("quality", "satellites", "hdop") if values.get(k) is not None}
    if values.get("geoid_sep") is not None:
        extra["geoid_sep_m"] = values["geoid_sep"]
    if values.get("mode") is not None:
        extra["mode"] = values["mode"]
    return FixReport(
        sentence=sentence,
        type=sentence_type,
        time_of_day_us=values.get("time"),
        day=values.get("date"),
        lat_lon=_lat_lon(values),
        valid=valid,
        status=status,
        speed_mps=speed,
        course_deg=course,
        alt_m=_altitude(values),
        extra=extra,
    )


@dataclass(frozen=True, slots=True, eq=False)
class _Identity:
    """A $PKNID: the unit whose standard sentences follow (compared by identity: each one is new)."""

    unit: str
    system: str
    sentence: str
    sender_status: str | None
    seen: datetime


@dataclass(slots=True)
class _Epoch:
    time_of_day_us: int | None  # None: a sentence without a time, reported alone
    first_seen: datetime
    identity: _Identity | None
    last_seen: datetime
    reports: list[FixReport] = field(default_factory=list)


def _status_number(token: str | None) -> str | None:
    """A status as a number without its leading zeros ("0028" -> "28"), None when not given."""
    return str(int(token)) if token else None


class _State(Enum):
    HUNT = "hunt"  # between sentences: skipping to the next '$', collecting what is not a sentence
    LINE = "line"  # inside a sentence
    DISCARD = "discard"  # after an overlong line: dropping bytes up to the next '$'


class NmeaDecoder(ProtocolDecoder):
    """NMEA 0183 lines in, beacons out (see the module docstring).

    Options: ``unit`` is the identity given to fixes of the gateway's own receiver (``"gps:car-7"``;
    None leaves them without a unit); ``require_checksum`` (default True) rejects sentences without
    ``*hh``.
    """

    name = "nmea"

    def __init__(self, *, unit: str | None = None, require_checksum: bool = True) -> None:
        super().__init__()
        if unit is not None and not is_unit(unit):
            raise ValueError(f"option unit: expected a protocol-qualified identity like 'gps:car-7', got {unit!r}")
        if not isinstance(require_checksum, bool):
            raise TypeError(f"option require_checksum: expected true or false, got {require_checksum!r}")
        self.unit = unit
        self.require_checksum = require_checksum
        self._state = _State.HUNT
        self._buf = bytearray()  # HUNT: the bytes that are not a sentence; LINE: the sentence so far
        self._epoch: _Epoch | None = None
        self._last_epoch: int | None = None  # time of day of the epoch reported last
        self._last_identity: _Identity | None = None  # and the $PKNID it was attributed to
        self._identity: _Identity | None = None  # a $PKNID waiting for its standard sentences
        # Per unit, the fix reported last: (time of day, lat, lon), its sender status, and when.
        self._reported: dict[str, tuple[tuple[int | None, float, float], str | None, datetime]] = {}
        self._last_input: datetime | None = None  # when the latest bytes came: the end of input's time

    def feed(self, data: bytes, now: datetime) -> list[Output]:
        out: list[Output] = []
        if data:
            self._last_input = now
        i, n = 0, len(data)
        while i < n:
            if self._state is _State.LINE:
                i = self._feed_line(data, i, now, out)
            elif self._state is _State.HUNT:
                i = self._feed_hunt(data, i, out)
            else:
                j = data.find(b"$", i)
                if j < 0:
                    break
                self._state, self._buf = _State.LINE, bytearray(b"$")
                i = j + 1
        return out

    def tick(self, now: datetime) -> list[Output]:
        out: list[Output] = []
        if self._epoch is not None and now - self._epoch.first_seen > FIX_TIMEOUT:
            self._report_epoch(out)
        return out

    def flush(self) -> list[Output]:
        """End of input: it ends the last line (a file whose writer left out the final line end still
        has its last sentence read; one cut mid-sentence fails its checksum and says so), and the epoch
        still waiting for a partner sentence is reported, timed by its last sentence."""
        out: list[Output] = []
        if self._last_input is not None:
            out += self.break_line(self._last_input)
        self._report_epoch(out)
        return out

    def break_line(self, now: datetime) -> list[Output]:
        """End the current line here, as if a line end had come (for a stream that also carries
        other framings, like a Kenwood data port where STX starts a frame)."""
        out: list[Output] = []
        if self._state is _State.LINE:
            line = bytes(self._buf)
            self._buf.clear()
            out.extend(self._sentence(line, now))
        elif self._state is _State.HUNT:
            self._flush_garbage(out)
        self._state = _State.HUNT
        return out

    # --- framing ---

    def _feed_hunt(self, data: bytes, i: int, out: list[Output]) -> int:
        m = _BREAK.search(data, i)
        end = m.start() if m else len(data)
        room = MAX_LINE - len(self._buf)
        if end - i >= room:
            self._buf += data[i : i + room]
            self._flush_garbage(out)
            return i + room
        self._buf += data[i:end]
        if m is None:
            return end
        self._flush_garbage(out)
        if data[end] == 0x24:  # '$'
            self._state = _State.LINE
            self._buf = bytearray(b"$")
        return end + 1

    def _feed_line(self, data: bytes, i: int, now: datetime, out: list[Output]) -> int:
        m = _BREAK.search(data, i)
        end = m.start() if m else len(data)
        room = MAX_LINE - len(self._buf)
        if end - i > room:
            self._buf += data[i : i + room + 1]
            out.append(Rejected(self.name, f"sentence longer than {MAX_LINE} bytes", bytes(self._buf)))
            self._buf.clear()
            self._state = _State.DISCARD
            return i + room + 1
        self._buf += data[i:end]
        if m is None:
            return end
        line = bytes(self._buf)
        self._buf.clear()
        if data[end] == 0x24:  # a new '$' before the line ended: the receiver dropped bytes
            out.append(Rejected(self.name, "sentence cut short by the next '$'", line))
            self._buf += b"$"
        else:
            self._state = _State.HUNT
            out.extend(self._sentence(line, now))
        return end + 1

    def _flush_garbage(self, out: list[Output]) -> None:
        if self._buf.strip():
            out.append(Rejected(self.name, "bytes outside any sentence (no '$' before them)", bytes(self._buf)))
        self._buf.clear()

    # --- one sentence ---

    def _sentence(self, line: bytes, now: datetime) -> list[Output]:
        line = line.rstrip(b" \t")
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            return [Rejected(self.name, "non-ASCII byte in sentence", line)]
        if not text.isprintable():
            return [Rejected(self.name, "control byte in sentence", line)]
        star = text.rfind("*")
        if star >= 0:
            stated = text[star + 1 :]
            if not _HEX2_RE.match(stated):
                return [Rejected(self.name, f"malformed checksum {stated!r}: expected two hex digits after '*'", line)]
            body = text[1:star]
            computed = checksum(body)
            if int(stated, 16) != computed:
                return [Rejected(self.name, f"bad checksum: stated {stated.upper()}, computed {computed:02X}", line)]
        elif self.require_checksum:
            return [Rejected(self.name, "no checksum ('*hh' missing) and require_checksum is on", line)]
        else:
            body = text[1:]
        tokens = body.split(",")
        address = tokens[0]
        if not _ADDRESS_RE.match(address):
            return [Rejected(self.name, f"malformed sentence address {address!r}", line)]
        if address.startswith("P"):
            spec, sentence_type = PROPRIETARY.get(address), address
        else:
            sentence_type = address[2:]
            spec = FIX_SENTENCES.get(sentence_type) if len(address) == 5 else None
        if spec is None:
            return []  # a sentence we have no use for
        try:
            values = parse_fields(spec, tokens[1:])
            if spec.role is Role.FIX:
                out: list[Output] = []
                self._on_fix(_fix_report(address, sentence_type, values), now, out)
                return out
            if spec.role is Role.IDENTITY:
                return [self._identify(address, spec, values, text, now)]
            beacon = self._kenwood(address, spec, values, text, now)
        except FieldError as exc:
            return [Rejected(self.name, f"{address}: {exc}", line)]
        return [beacon] if beacon is not None else []

    def _identify(
        self, address: str, spec: SentenceSpec, values: Mapping[str, Any], text: str, now: datetime
    ) -> Decoded:
        """A $PKNID: a ``ptt`` of its unit now, and the unit of the standard sentences that follow."""
        system = spec.system or "nxdn"
        unit = f"{system}:{values['unit_id']}"
        status = _status_number(values.get("sender_status"))
        self._identity = _Identity(unit, system, address, status, now)
        detail: dict[str, Any] = {"protocol": "kenwood", "sentence": address, "system": system}
        if status is not None:
            detail["sender_status"] = status
        if values.get("version"):
            detail["version"] = values["version"]
        detail["raw"] = text
        return Decoded(kind=Kind.PTT, time=now, unit=unit, detail=detail)

    def _repeats(
        self, unit: str, position: Position, status: str | None, now: datetime, time_of_day_us: int | None
    ) -> bool:
        """Whether this fix of ``unit`` was reported within :data:`BURST` with the same sender status (or
        none given here); remembers it either way."""
        key = (time_of_day_us, round(position.lat, 7), round(position.lon, 7))
        last = self._reported.get(unit)
        same = last is not None and last[0] == key and now - last[2] <= BURST
        if same and last is not None and status is None:
            status = last[1]  # a $PKNSH (no status) after the $PKNDS of its fix: the status stands
        repeats = same and last is not None and last[1] == status
        if len(self._reported) >= 4096:  # a few hundred radios at most; keep it bounded all the same
            self._reported = {u: r for u, r in self._reported.items() if now - r[2] <= BURST}
        self._reported[unit] = (key, status, now)
        return repeats

    def _kenwood(
        self, address: str, spec: SentenceSpec, values: Mapping[str, Any], text: str, now: datetime
    ) -> Decoded | None:
        status = values["status"]
        lat_lon = _lat_lon(values)
        speed, course = _speed_course(values)
        if status == "Z" or lat_lon is None:
            return None  # no fix: nothing to put on a map
        if spec.system == "fleetsync":
            unit = f"fleetsync:{values['fleet']}-{values['device']}"
        else:
            unit = f"nxdn:{values['unit_id']}"
        detail: dict[str, Any] = {
            "protocol": "kenwood",
            "sentence": address,
            "system": spec.system,
            "valid": status == "A",
            "status": status,
        }
        sender_status = _status_number(values.get("sender_status"))
        if sender_status is not None:
            detail["sender_status"] = sender_status
        detail["raw"] = text
        position = Position(
            lat=lat_lon[0],
            lon=lat_lon[1],
            speed_mps=speed,
            course_deg=course,
            fix_time=_fix_time(values.get("date"), values.get("time"), now),
            source="kenwood",
        )
        self._repeats(unit, position, sender_status, now, values.get("time"))  # for a $PKNID's fix to come
        return Decoded(kind=Kind.BEACON, time=now, unit=unit, position=position, detail=detail)

    # --- epochs of standard sentences: the gateway's own receiver's, or a $PKNID's unit's ---

    def _current_identity(self, now: datetime) -> _Identity | None:
        if self._identity is not None and now - self._identity.seen > BURST:
            self._identity = None  # its standard sentences never came
        return self._identity

    def _on_fix(self, report: FixReport, now: datetime, out: list[Output]) -> None:
        identity = self._current_identity(now)
        if report.time_of_day_us is None:
            # Cannot be paired with anything: reported alone.
            self._emit(_Epoch(None, now, identity, now, [report]), out)
            return
        if report.time_of_day_us == self._last_epoch and identity in (None, self._last_identity):
            return  # a third sentence of an epoch already reported (e.g. GLGGA after GPGGA and GNRMC)
        epoch = self._epoch
        if epoch is not None and (epoch.time_of_day_us != report.time_of_day_us or epoch.identity is not identity):
            self._report_epoch(out)
        if self._epoch is None:
            self._epoch = _Epoch(report.time_of_day_us, now, identity, now)
        self._epoch.reports.append(report)
        self._epoch.last_seen = now
        if {r.type for r in self._epoch.reports} >= EPOCH_SENTENCES:
            self._report_epoch(out)

    def _report_epoch(self, out: list[Output]) -> None:
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return
        self._last_epoch, self._last_identity = epoch.time_of_day_us, epoch.identity
        if epoch.identity is not None and epoch.identity is self._identity:
            self._identity = None  # its position came: the next standard sentences are no longer its
        self._emit(epoch, out)

    def _emit(self, epoch: _Epoch, out: list[Output]) -> None:
        beacon = self._beacon(epoch.reports, epoch.first_seen, epoch.last_seen)
        identity = epoch.identity
        if beacon is None or identity is None or beacon.position is None:
            if beacon is not None:
                out.append(beacon)
            return
        # The position of the unit its $PKNID named, relayed by the radio.
        position = replace(beacon.position, source="kenwood")
        status = identity.sender_status
        if self._repeats(identity.unit, position, status, epoch.last_seen, epoch.time_of_day_us):
            return  # already reported from the $PKNDS or $PKNSH of the same burst
        detail = {"protocol": "kenwood", "system": identity.system, "identified_by": identity.sentence}
        if status is not None:
            detail["sender_status"] = status
        detail.update({k: v for k, v in beacon.detail.items() if k != "protocol"})
        out.append(replace(beacon, unit=identity.unit, position=position, detail=detail))

    def _beacon(self, reports: list[FixReport], first_seen: datetime, now: datetime) -> Decoded | None:
        valid = [r for r in reports if r.valid]
        base = next((r for r in valid if r.lat_lon is not None), None)
        if base is None or base.lat_lon is None:
            return None

        def first(attr: str) -> Any:
            return next((getattr(r, attr) for r in valid if getattr(r, attr) is not None), None)

        detail: dict[str, Any] = {
            "protocol": "nmea",
            "sentence": base.sentence,
            "sentences": [r.sentence for r in reports],
            "valid": True,
            # RMC's status letter; a GGA-only epoch has none, and a fix quality > 0 means the same.
            "status": first("status") or "A",
        }
        for r in reversed(valid):
            detail.update(r.extra)
        position = Position(
            lat=base.lat_lon[0],
            lon=base.lat_lon[1],
            alt_m=first("alt_m"),
            speed_mps=first("speed_mps"),
            course_deg=first("course_deg"),
            fix_time=_fix_time(first("day"), base.time_of_day_us, first_seen),
            source="nmea",
        )
        return Decoded(kind=Kind.BEACON, time=now, unit=self.unit, position=position, detail=detail)
