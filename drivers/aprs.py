"""APRS information fields: parse what a station sent into typed, frozen results.

One function per packet family (after aprslib), each with the wire format drawn above it. The
references are the APRS Protocol Reference 1.0.1 ("APRS 1.01", chapters cited as "ch N") and the
APRS 1.2 addenda (DAO precision, base-91 comment telemetry, UTF-8 text). Failures raise
:class:`AprsError` whose ``code`` uses the result codes of Ham::APRS::FAP (``loc_inv``,
``sym_inv_table``, ``mice_inv`` ...), so logs read the same as in the tools operators already know.

Bytes and text: an info field is bytes. The parser works on it decoded as Latin-1, one character per
byte, so every offset below is a byte offset and no byte is lost. Free text (comments, status,
messages) is handed out decoded as UTF-8 when the bytes are valid UTF-8 (APRS 1.2 allows it) and as
Latin-1 otherwise.

Units in the results are those of the wire, named in the field (knots, degrees), except altitude,
which is always metres: Mic-E sends metres, the other formats feet.

    packet = parse(info, source="BG5ABC-9", destination="APDW16", now=now)
    decoded = aprs_to_decoded(frame, packet, now)   # -> gateway Decoded, or None for non-events

The same :func:`aprs_to_decoded` serves every transport that delivers AX.25 (KISS now, the AFSK
audio decoder later).
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from drivers.ax25 import Ax25Frame
from gateway.events import Decoded, Kind, Position

KNOT_MPS = 1852 / 3600  # one international knot in m/s
FOOT_M = 0.3048
# APRS 1.01 ch 8: an uncompressed position is given to 0.01 minute of arc, 18.52 m of latitude.
HUNDREDTH_MINUTE_M = 18.52
# FAP's figure for the resolution of a compressed position (APRS 1.01 ch 9: "0.3 m" at the equator).
COMPRESSED_RESOLUTION_M = 0.291
# APRS 1.01 ch 5: a "!" anywhere in the first 40 characters still marks a position (old TNC beacons).
LAST_RESORT_SPAN = 40


class ErrorCode(StrEnum):
    """Why a packet did not parse; the values are Ham::APRS::FAP result codes where FAP has one."""

    PACKET_NO_BODY = "packet_nobody"
    SRCCALL_BADCHARS = "srccall_badchars"
    DSTCALL_BADCHARS = "dstcall_badchars"
    DIGICALL_BADCHARS = "digicall_badchars"
    TYPE_NOT_SUPPORTED = "type_not_supported"
    EXP_UNSUPPORTED = "exp_unsupp"
    LOC_SHORT = "loc_short"
    LOC_INV = "loc_inv"
    LOC_LARGE = "loc_large"
    LOC_AMB_INV = "loc_amb_inv"
    SYM_INV_TABLE = "sym_inv_table"
    COMP_SHORT = "comp_short"  # FAP fails these without a code
    COMP_INV = "comp_inv"
    MICE_SHORT = "mice_short"
    MICE_INV = "mice_inv"  # destination is not a Mic-E encoded latitude
    MICE_INV_INFO = "mice_inv_info"
    MICE_AMB_LARGE = "mice_amb_large"
    MICE_AMB_INV = "mice_amb_inv"
    NMEA_INV = "nmea_inv"
    NMEA_INV_CKSUM = "nmea_inv_cksum"
    NMEA_UNSUPPORTED = "nmea_unsupp"
    GPRMC_FEWFIELDS = "gprmc_fewfields"
    GPRMC_NOFIX = "gprmc_nofix"
    GPRMC_INV_TIME = "gprmc_inv_time"
    GPRMC_INV_DATE = "gprmc_inv_date"
    OBJ_SHORT = "obj_short"
    OBJ_INV = "obj_inv"
    ITEM_SHORT = "item_short"
    ITEM_INV = "item_inv"
    MSG_INV = "msg_inv"
    TIMESTAMP_INV_LOC = "timestamp_inv_loc"
    TIMESTAMP_INV_OBJ = "timestamp_inv_obj"
    TIMESTAMP_INV_STA = "timestamp_inv_sta"
    TLM_INV = "tlm_inv"


class AprsError(ValueError):
    """An info field that is not usable APRS. ``packet_type`` names the family, when it was recognised."""

    def __init__(self, code: ErrorCode, message: str, packet_type: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.packet_type = packet_type


class Format(StrEnum):
    UNCOMPRESSED = "uncompressed"
    COMPRESSED = "compressed"
    MICE = "mice"
    NMEA = "nmea"


class MicEMessage(StrEnum):
    """The three Mic-E message bits (APRS 1.01 ch 10, "Mic-E Message Codes")."""

    OFF_DUTY = "off_duty"  # 111 standard, M0
    EN_ROUTE = "en_route"  # 110, M1
    IN_SERVICE = "in_service"  # 101, M2
    RETURNING = "returning"  # 100, M3
    COMMITTED = "committed"  # 011, M4
    SPECIAL = "special"  # 010, M5
    PRIORITY = "priority"  # 001, M6
    EMERGENCY = "emergency"  # 000: all bits zero; neither standard nor custom
    CUSTOM_0 = "custom_0"  # 111 custom, C0 ... C6 likewise
    CUSTOM_1 = "custom_1"
    CUSTOM_2 = "custom_2"
    CUSTOM_3 = "custom_3"
    CUSTOM_4 = "custom_4"
    CUSTOM_5 = "custom_5"
    CUSTOM_6 = "custom_6"
    UNKNOWN = "unknown"  # standard and custom "1" bits mixed: undefined by the spec


@dataclass(frozen=True, slots=True)
class Timestamp:
    raw: str  # as sent: "092345z", "092345/", "234517h", or the NMEA "hhmmss ddmmyy"
    time: datetime  # resolved to a full UTC time against the receiver's clock
    local: bool = False  # "/" form: the sender's local time, read as UTC because the zone is not sent


@dataclass(frozen=True, slots=True)
class Telemetry:
    sequence: int | None
    values: tuple[float | None, ...]  # analog channels 1-5; None where the packet leaves one out
    bits: str | None = None  # digital channels 1-8 as "0"/"1", channel 1 first


@dataclass(frozen=True, slots=True)
class Weather:
    """A weather report (APRS 1.01 ch 12), in SI units: m/s, degrees Celsius, mm, hPa."""

    wind_direction: int | None = None
    wind_speed: float | None = None
    wind_gust: float | None = None
    temperature: float | None = None
    rain_1h: float | None = None
    rain_24h: float | None = None
    rain_midnight: float | None = None
    humidity: int | None = None
    pressure: float | None = None
    luminosity: int | None = None
    software: str | None = None


@dataclass(frozen=True, slots=True)
class PositionReport:
    format: Format
    lat: float  # degrees, north positive; the centre of the box when the position is ambiguous
    lon: float
    symbol_table: str  # "/", "\\" or an overlay character
    symbol_code: str
    resolution_m: float
    ambiguity: int = 0  # APRS 1.01 ch 6: number of trailing digits blanked, 0-4
    messaging: bool | None = None  # the station can receive messages ("=" and "@"); None: not said
    timestamp: Timestamp | None = None
    course: int | None = None  # degrees 1-360 (360 = north); None when unknown (APRS 1.01 ch 7: 000)
    speed_knots: float | None = None
    altitude_m: float | None = None
    phg: str | None = None  # power-height-gain-directivity digits (APRS 1.01 ch 7)
    range_miles: float | None = None  # radio range (RNG extension or compressed "{")
    comment: str | None = None
    dao_datum: str | None = None  # APRS 1.2 "!DAO!": datum byte, "W" = WGS-84
    telemetry: Telemetry | None = None
    weather: Weather | None = None
    mic_e_bits: str | None = None  # A, B, C as "0" (zero), "1" (standard one), "2" (custom one)
    mic_e_message: MicEMessage | None = None
    mic_e_mangled: bool = False  # accepted with a byte lost (see ``accept_broken_mice``)
    checksum_ok: bool | None = None  # NMEA sentences only


@dataclass(frozen=True, slots=True)
class StatusReport:
    text: str
    timestamp: Timestamp | None = None


@dataclass(frozen=True, slots=True)
class Message:
    addressee: str  # without the padding: "OH7LZB", "BLN1"
    text: str | None  # None for an ack or rej
    message_id: str | None = None  # "{id" at the end: the sender wants an ack
    reply_ack: str | None = None  # APRS 1.1 reply-ack "{id}ackid": "" when the sender only offers it
    ack_id: str | None = None  # this is "ack<id>"
    rej_id: str | None = None  # this is "rej<id>"


@dataclass(frozen=True, slots=True)
class ObjectReport:
    """An object (";") or item (")"): a position of something other than the sender (APRS 1.01 ch 11)."""

    name: str  # as sent, objects keep their 9-character padding
    alive: bool  # False: killed ("_")
    item: bool
    report: PositionReport  # the position and its extensions; objects carry a timestamp in it


@dataclass(frozen=True, slots=True)
class TelemetryReport:
    telemetry: Telemetry
    comment: str | None = None


AprsPacket = PositionReport | StatusReport | Message | ObjectReport | TelemetryReport


@dataclass(frozen=True, slots=True)
class Tnc2Packet:
    """A packet in TNC2 monitor / APRS-IS text form: ``SRC>DST,PATH,PATH*:info``."""

    source: str
    destination: str
    path: tuple[str, ...]  # as written, a trailing "*" on the digipeater that last repeated
    info: bytes


# --- helpers ---------------------------------------------------------------------------------


def _text(working: str) -> str:
    """Free text out of the Latin-1 working form: UTF-8 when the bytes are UTF-8, else Latin-1."""
    raw = working.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return working


def text_of(raw: bytes) -> str:
    """How this module turns bytes into text, for callers comparing with it."""
    return _text(raw.decode("latin-1"))


_BLANK = " \t\r\n\f\v"  # not str.strip(): Python also strips 0x1C-0x1F, which Mic-E uses as data


def _comment(working: str) -> str | None:
    stripped = working.strip(_BLANK)
    return _text(stripped) if stripped else None


def _base91(chars: str) -> int:
    value = 0
    for c in chars:
        value = value * 91 + ord(c) - 33
    return value


def _symbol_table_ok(table: str, compressed: bool = False) -> bool:
    # APRS 1.01 ch 5/20: primary "/", alternate "\", or an overlay: digit or upper-case letter;
    # compressed positions write overlay digits as "a"-"j" (ch 9).
    if table in "/\\":
        return True
    if not table.isascii():
        return False
    return table.isupper() or table.isdigit() or (compressed and "a" <= table <= "j")


def _minutes(mmhh: str, ambiguity: int) -> float:
    """Minutes from the digits MMhh, keeping the first 4-ambiguity and taking the middle of the box."""
    if ambiguity >= 4:
        return 30.0
    kept = mmhh[: 4 - ambiguity]
    hundredths = int(kept) * 10**ambiguity if kept else 0
    half_box = 5 * 10 ** (ambiguity - 1) if ambiguity else 0
    return (hundredths + half_box) / 100


def _resolution(ambiguity: int) -> float:
    # APRS 1.01 ch 6: each blanked digit widens the box tenfold; all four blanked leave whole degrees.
    return 111120.0 if ambiguity >= 4 else HUNDREDTH_MINUTE_M * 10**ambiguity


# --- timestamps ------------------------------------------------------------------------------
#
#   DDHHMMz   day, hour, minute, zulu        (APRS 1.01 ch 6)
#   DDHHMM/   day, hour, minute, local time
#   HHMMSSh   hour, minute, second, zulu
#
# The month (or for HMS the day) is not sent. A report tells of the past, so take the latest candidate
# that is not further ahead of the receiver's clock than plausible skew: a day for DHM (a sender
# mixing up its time zone), an hour for HMS.


def _resolve_timestamp(raw: str, now: datetime) -> Timestamp:
    now = now.astimezone(UTC)
    a, b, c, kind = int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), raw[6]
    candidates: list[datetime] = []
    if kind == "h":
        if a > 23 or b > 59 or c > 59:
            raise ValueError(f"no such time {raw}")
        base = now.replace(hour=a, minute=b, second=c, microsecond=0)
        candidates = [base + timedelta(days=d) for d in (-1, 0, 1)]
        latest = now + timedelta(hours=1)
    else:
        if not 1 <= a <= 31 or b > 23 or c > 59:
            raise ValueError(f"no such day and time {raw}")
        for months in (-2, -1, 0, 1):
            year, month = divmod(now.year * 12 + now.month - 1 + months, 12)
            if a <= calendar.monthrange(year, month + 1)[1]:
                candidates.append(datetime(year, month + 1, a, b, c, tzinfo=UTC))
        latest = now + timedelta(days=1)
    plausible = [t for t in candidates if t <= latest]
    if not plausible:
        raise ValueError(f"{raw} names no time near {now:%Y-%m-%d}")
    return Timestamp(raw=raw, time=max(plausible), local=kind == "/")


_TIMESTAMP_RE = re.compile(r"^\d{6}[zh/]")


# --- comments: data extensions, altitude, telemetry, DAO --------------------------------------
#
#   CSE/SPD     7 bytes right after the symbol: course (deg) / speed (knots)   APRS 1.01 ch 7
#   PHGphgd     power, height, gain, directivity (optional 5th: beacon rate)
#   RNGrrrr     pre-calculated radio range, miles
#   /A=aaaaaa   altitude in feet, anywhere in the comment (may be "-aaaaa")    APRS 1.01 ch 6
#   |ssAAbb..|  base-91 telemetry: sequence, 1-5 channels, optional bits      APRS 1.2
#   !DAO!       extra precision and datum                                      APRS 1.2


@dataclass(frozen=True, slots=True)
class _Extras:
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
    values: list[float | None] = [float(_base91(p)) for p in pairs[:5]]
    values += [None] * (5 - len(values))
    bits = None
    if len(pairs) == 6:
        bits = "".join("1" if _base91(pairs[5]) >> i & 1 else "0" for i in range(8))
    return m.group(1) + m.group(4), Telemetry(_base91(m.group(2)), tuple(values), bits)


def _dao(comment: str) -> tuple[str, _Extras] | None:
    m = _DAO_RE.match(comment)
    if m is None:
        return None
    datum, digits = m.group(2), m.group(3)
    if "A" <= datum <= "Z" and digits.isdigit():
        # Human-readable: a third decimal of the minutes, 1.852 m.
        extras = _Extras(
            dao_datum=datum,
            dao_lat_minutes=int(digits[0]) * 0.001,
            dao_lon_minutes=int(digits[1]) * 0.001,
            dao_resolution_m=1.852,
        )
    elif "a" <= datum <= "z" and " " not in digits:
        # Base-91: 0-90 in 91ths of 0.01 minute, about 0.19 m.
        extras = _Extras(
            dao_datum=datum.upper(),
            dao_lat_minutes=_base91(digits[0]) / 91 * 0.01,
            dao_lon_minutes=_base91(digits[1]) / 91 * 0.01,
            dao_resolution_m=0.1852,
        )
    elif digits == "  ":
        extras = _Extras(dao_datum=datum.upper())  # the datum alone
    else:
        return None
    return m.group(1) + m.group(4), extras


def _comment_extras(rest: str, *, data_extension: bool) -> _Extras:
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
    return _common_extras(rest, course=course, speed=speed, phg=phg, range_miles=range_miles)


def _common_extras(
    rest: str,
    *,
    course: int | None = None,
    speed: float | None = None,
    phg: str | None = None,
    range_miles: float | None = None,
    altitude_m: float | None = None,
    telemetry: Telemetry | None = None,
) -> _Extras:
    if m := _ALTITUDE_RE.search(rest):
        altitude_m = int(m.group(1)) * FOOT_M
        rest = rest[: m.start()] + rest[m.end() :]
    rest, b91 = _base91_telemetry(rest)
    telemetry = b91 or telemetry
    dao = _dao(rest)
    if dao is None:
        dao_extras = _Extras()
    else:
        rest, dao_extras = dao
    return _Extras(
        comment=_comment(rest),
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


def _apply_dao(lat: float, lon: float, resolution: float, extras: _Extras) -> tuple[float, float, float]:
    # The DAO digits extend the minutes, so they move the position away from the equator/meridian.
    # FAP applies them to compressed positions too (its t/25 vector), and so does this.
    lat += math.copysign(extras.dao_lat_minutes / 60, lat)
    lon += math.copysign(extras.dao_lon_minutes / 60, lon)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        # Base-91 and Mic-E encodings can express a little beyond the poles and the date line.
        raise AprsError(ErrorCode.LOC_LARGE, f"position {lat:.5f}, {lon:.5f} is off the globe", "location")
    return lat, lon, extras.dao_resolution_m or resolution


# --- weather in a position comment -----------------------------------------------------------
#
#   _ symbol, then  DDD/SSS  gGGG tTTT rRRR pPPP PPPP hHH bBBBBB L/lLLL  then software / comment
#   wind dir (deg) / speed (mph), gust (mph), temp (F), rain last hour / 24 h / since midnight
#   (hundredths of an inch), humidity (%, 00 = 100), pressure (tenths of hPa), luminosity (W/m2)
#   "..." or spaces mean "no data".   APRS 1.01 ch 12

_WX_WIDTH = {"g": 3, "t": 3, "r": 3, "p": 3, "P": 3, "h": 2, "b": 5, "L": 3, "l": 3}
_MPH = 0.44704
_HUNDREDTH_INCH_MM = 0.254


def _weather(rest: str, wind: tuple[int | None, float | None] | None = None) -> tuple[Weather, str] | None:
    """Weather fields at the start of ``rest``; ``wind`` (direction, m/s) when the position carried it."""
    values: dict[str, Any] = {}
    if wind is not None:
        values["wind_direction"], values["wind_speed"] = wind
    else:
        m = re.match(r"^_?([0-9. ]{3})/([0-9. ]{3})", rest) or re.match(r"^c([0-9. ]{3})s([0-9. ]{3})", rest)
        if m is None:
            return None
        if m.group(1).isdigit():
            values["wind_direction"] = int(m.group(1))
        if m.group(2).isdigit():
            values["wind_speed"] = int(m.group(2)) * _MPH
        rest = rest[m.end() :]
    while True:
        field = rest[:1]
        width = _WX_WIDTH.get(field)
        if width is None:
            break
        raw = rest[1 : 1 + width]  # a negative temperature spends one of its three bytes on "-"
        if len(raw) < width or not re.fullmatch(r"-?\d+|[. ]+", raw):
            break
        rest = rest[1 + width :]
        if not re.fullmatch(r"-?\d+", raw):
            continue  # "no data"
        n = int(raw)
        if field == "g":
            values["wind_gust"] = n * _MPH
        elif field == "t":
            values["temperature"] = (n - 32) / 1.8
        elif field == "r":
            values["rain_1h"] = n * _HUNDREDTH_INCH_MM
        elif field == "p":
            values["rain_24h"] = n * _HUNDREDTH_INCH_MM
        elif field == "P":
            values["rain_midnight"] = n * _HUNDREDTH_INCH_MM
        elif field == "h":
            values["humidity"] = 100 if n == 0 else n
        elif field == "b":
            values["pressure"] = n / 10
        elif field == "L":
            values["luminosity"] = n
        elif field == "l":
            values["luminosity"] = n + 1000
    # APRS 1.01 ch 12: a one-letter software type and a 2-4 letter unit type may follow.
    if sw := re.fullmatch(r"([A-Za-z0-9_-]{3,5})", rest.strip(_BLANK)):
        values["software"] = sw.group(1)
        rest = ""
    return Weather(**values), rest


# --- uncompressed position -------------------------------------------------------------------
#
#   lat       table lon        code  comment
#   DDMM.hhN  /     DDDMM.hhE  >     [CSE/SPD | PHGphgd | RNGrrrr][text][/A=aaaaaa]
#   0         8     9          18    19
#
#   Digits of the minutes may be blanked with spaces from the right (ambiguity, APRS 1.01 ch 6);
#   the longitude takes the latitude's ambiguity.   APRS 1.01 ch 8

_UNCOMPRESSED_RE = re.compile(r"^(\d{2})([0-9 ]{2}\.[0-9 ]{2})([NnSs])(.)(\d{3})([0-9 ]{2}\.[0-9 ]{2})([EeWw])(.)")


def parse_uncompressed(body: str, *, messaging: bool | None, timestamp: Timestamp | None) -> PositionReport:
    if len(body) < 19:
        raise AprsError(ErrorCode.LOC_SHORT, f"uncompressed position needs 19 bytes, got {len(body)}", "location")
    m = _UNCOMPRESSED_RE.match(body)
    if m is None:
        raise AprsError(ErrorCode.LOC_INV, f"invalid uncompressed location {body[:19]!r}", "location")
    lat_deg, lat_min, ns, table, lon_deg, lon_min, ew, code = m.groups()
    if not _symbol_table_ok(table):
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
    lat = int(lat_deg) + _minutes(kept, ambiguity) / 60
    lon = int(lon_deg) + _minutes(lon_kept, ambiguity) / 60
    lat = -lat if ns in "Ss" else lat
    lon = -lon if ew in "Ww" else lon
    rest = body[19:]
    weather = None
    if code == "_":
        # APRS 1.01 ch 12: with the weather symbol the comment carries the weather report. When it
        # does not parse, FAP drops the comment (its t/20 vector); so does this.
        weather, rest = _weather(rest) or (None, "")
    extras = _comment_extras(rest, data_extension=weather is None)
    lat, lon, resolution = _apply_dao(lat, lon, _resolution(ambiguity), extras)
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


# --- compressed position ---------------------------------------------------------------------
#
#   table  YYYY  XXXX  code  c s  T    comment
#   /      5L!!  <*e7  >     7 P  [    ...
#   0      1     5     9     10   12   13
#
#   YYYY, XXXX: base-91 (chars 33-123); lat = 90 - Y/380926, lon = -180 + X/190463.
#   cs: " " = nothing; "{" = range 2*1.08^s miles; T bits 4-3 = 10 (GGA) -> altitude 1.002^(c*91+s) ft;
#   else course (c-33)*4 deg, speed 1.08^(s-33)-1 knots.   APRS 1.01 ch 9

_COMPRESSED_RE = re.compile(r"^(.)([!-{]{4})([!-{]{4})(.)([ -{])([ -{])([!-{])")


def parse_compressed(body: str, *, messaging: bool | None, timestamp: Timestamp | None) -> PositionReport:
    if len(body) < 13:
        raise AprsError(ErrorCode.COMP_SHORT, f"compressed position needs 13 bytes, got {len(body)}", "location")
    m = _COMPRESSED_RE.match(body)
    if m is None:
        raise AprsError(ErrorCode.COMP_INV, f"invalid compressed position {body[:13]!r}", "location")
    table, y, x, code, c, s, t = m.groups()
    if not _symbol_table_ok(table, compressed=True):
        raise AprsError(ErrorCode.SYM_INV_TABLE, f"invalid symbol table or overlay {table!r}", "location")
    if "a" <= table <= "j":
        table = chr(ord(table) - ord("a") + ord("0"))
    lat = 90 - _base91(y) / 380926
    lon = -180 + _base91(x) / 190463
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
        weather, rest = _weather(rest, wind) or (None, rest)
        course = speed = None
    extras = _common_extras(rest, course=course, speed=speed, range_miles=range_miles, altitude_m=altitude_m)
    lat, lon, resolution = _apply_dao(lat, lon, COMPRESSED_RESOLUTION_M, extras)
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


def _position(body: str, *, messaging: bool | None, timestamp: Timestamp | None) -> PositionReport:
    """Uncompressed when it starts with a latitude digit, else compressed (APRS 1.01 ch 9)."""
    if body[:1].isdigit():
        return parse_uncompressed(body, messaging=messaging, timestamp=timestamp)
    return parse_compressed(body, messaging=messaging, timestamp=timestamp)


# --- position with or without timestamp -------------------------------------------------------
#
#   ! or =   position, no timestamp       ("=": the station can receive messages)
#   / or @   DDHHMMz|DDHHMM/|HHMMSSh + position
#   APRS 1.01 ch 8


def parse_position(info: str, now: datetime) -> PositionReport:
    kind = info[0]
    messaging = kind in "=@"
    body = info[1:]
    timestamp = None
    if kind in "/@":
        if not _TIMESTAMP_RE.match(body):
            raise AprsError(ErrorCode.TIMESTAMP_INV_LOC, f"invalid timestamp {body[:7]!r}", "location")
        try:
            timestamp = _resolve_timestamp(body[:7], now)
        except ValueError as exc:
            raise AprsError(ErrorCode.TIMESTAMP_INV_LOC, str(exc), "location") from None
        body = body[7:]
    return _position(body, messaging=messaging, timestamp=timestamp)


# --- Mic-E -----------------------------------------------------------------------------------
#
#   destination (6 chars): latitude digits, message bits A B C, N/S, longitude offset, W/E
#     char   digit  bit          4th: N/S   5th: lon +100   6th: W/E
#     0-9    0-9    0                 S          +0               E
#     A-J    0-9    1 custom          -          -                -     (chars 1-3 only)
#     K      space  1 custom          -          -                -     (chars 1-3 only)
#     L      space  0                 S          +0               E
#     P-Y    0-9    1 standard        N          +100             W
#     Z      space  1 standard        N          +100             W
#
#   info:  ` or '  d+28 m+28 h+28  SP+28 DC+28 SE+28  code table  [status text]
#          0       1    2    3     4     5     6      7    8      9
#     speed = (SP-28)*10 + (DC-28)/10 (knots, -800 if >= 800)
#     course = (DC-28)%10*100 + (SE-28) (degrees, -400 if >= 400)
#   status text: optional type byte, altitude "xxx}" (base-91 metres + 10000), telemetry, DAO
#   APRS 1.01 ch 10

_MICE_DEST_RE = re.compile(r"^[0-9A-LP-Z]{3}[0-9LP-Z]{3}$")
_MICE_STANDARD = {
    "111": MicEMessage.OFF_DUTY,
    "110": MicEMessage.EN_ROUTE,
    "101": MicEMessage.IN_SERVICE,
    "100": MicEMessage.RETURNING,
    "011": MicEMessage.COMMITTED,
    "010": MicEMessage.SPECIAL,
    "001": MicEMessage.PRIORITY,
    "000": MicEMessage.EMERGENCY,
}
_MICE_CUSTOM = {
    "111": MicEMessage.CUSTOM_0,
    "110": MicEMessage.CUSTOM_1,
    "101": MicEMessage.CUSTOM_2,
    "100": MicEMessage.CUSTOM_3,
    "011": MicEMessage.CUSTOM_4,
    "010": MicEMessage.CUSTOM_5,
    "001": MicEMessage.CUSTOM_6,
}
# Mic-E telemetry (APRS 1.01 ch 10): "'" + 2 hex bytes (channels 1 and 3), "`" + 5 hex bytes. FAP
# also takes a UTF-8 left single quote (E2 80 98) for "`", apparently copied from a typeset spec.
_MICE_TLM2_RE = re.compile(r"^'([0-9a-fA-F]{2})([0-9a-fA-F]{2})")
_MICE_TLM5_RE = re.compile(r"^(?:`|\xe2\x80\x98)((?:[0-9a-fA-F]{2}){5})")
_MICE_ALTITUDE_RE = re.compile(r"^(.?)([!-{]{3})\}")


def _mice_digit(ch: str) -> str:
    if ch in "KLZ":
        return " "
    if ch <= "9":
        return ch
    return chr(ord(ch) - (ord("A") if ch <= "J" else ord("P")) + ord("0"))


def mic_e_message(bits: str) -> MicEMessage:
    """The message for bits A B C written "0" / "1" (standard) / "2" (custom)."""
    if "1" in bits and "2" in bits:
        return MicEMessage.UNKNOWN
    if "2" in bits:
        return _MICE_CUSTOM[bits.replace("2", "1")]
    return _MICE_STANDARD[bits]


def parse_mic_e(info: str, destination: str, *, accept_broken: bool = False) -> PositionReport:
    dest = destination.split("-")[0]
    if not _MICE_DEST_RE.match(dest):
        raise AprsError(ErrorCode.MICE_INV, f"destination {destination!r} is not a Mic-E latitude", "location")
    if len(info) < 9:
        raise AprsError(ErrorCode.MICE_SHORT, f"Mic-E info needs 9 bytes, got {len(info)}", "location")
    digits = "".join(_mice_digit(ch) for ch in dest)
    bits = "".join("0" if ch in "0123456789L" else "2" if ch <= "K" else "1" for ch in dest[:3])
    north, plus100, west = dest[3] >= "P", dest[4] >= "P", dest[5] >= "P"
    kept = digits.rstrip(" ")
    ambiguity = 6 - len(kept)
    if " " in kept:
        raise AprsError(ErrorCode.MICE_AMB_INV, f"blanked latitude digits not at the end: {dest!r}", "location")
    if ambiguity > 4:
        raise AprsError(ErrorCode.MICE_AMB_LARGE, f"ambiguity {ambiguity} in {dest!r}", "location")
    if int(digits[:2]) > 89 or (kept[2:4].isdigit() and int(kept[2:4]) > 59):
        raise AprsError(ErrorCode.MICE_INV, f"latitude out of range in destination {dest!r}", "location")
    lat = int(digits[:2]) + _minutes(kept[2:], ambiguity) / 60

    d, m, h = (ord(ch) - 28 for ch in info[1:4])
    table, code = info[8], info[7]
    mangled = False
    if not _symbol_table_ok(table) and accept_broken and _symbol_table_ok(info[7]):
        # One byte of speed/course lost (seen from the ISS digipeater): FAP's "accept_broken_mice".
        table, code, mangled = info[7], info[6], True
    # Valid bytes: degrees 0x26-0x7F, minutes 0x26-0x61, hundredths 0x1C-0x7F (APRS 1.01 ch 10).
    if not 10 <= d <= 99 or not 10 <= m <= 69 or not 0 <= h <= 99:
        raise AprsError(ErrorCode.MICE_INV_INFO, f"invalid Mic-E longitude bytes {info[1:4]!r}", "location")
    if not _symbol_table_ok(table):
        raise AprsError(ErrorCode.SYM_INV_TABLE, f"invalid symbol table or overlay {table!r}", "location")
    if plus100:
        d += 100
    if 180 <= d <= 189:
        d -= 80
    elif 190 <= d <= 199:
        d -= 190
    if d > 179:
        raise AprsError(ErrorCode.MICE_INV_INFO, f"longitude degrees {d} out of range", "location")
    m = m - 60 if m >= 60 else m
    lon = d + _minutes(f"{m:02d}{h:02d}", ambiguity) / 60
    lat = lat if north else -lat
    lon = -lon if west else lon

    course: int | None = None
    speed: float | None = None
    if not mangled:
        sp, dc, se = (ord(ch) - 28 for ch in info[4:7])
        if not (0 <= sp <= 99 and 0 <= dc <= 99 and 0 <= se <= 99):
            raise AprsError(ErrorCode.MICE_INV_INFO, f"invalid Mic-E speed/course bytes {info[4:7]!r}", "location")
        knots = sp * 10 + dc // 10
        knots = knots - 800 if knots >= 800 else knots
        cse = dc % 10 * 100 + se
        cse = cse - 400 if cse >= 400 else cse
        speed = float(knots)
        course = cse if 1 <= cse <= 360 else None

    rest = info[8 if mangled else 9 :]
    telemetry = None
    if tm := _MICE_TLM5_RE.match(rest):
        raw = bytes.fromhex(tm.group(1))
        telemetry = Telemetry(None, tuple(float(b) for b in raw))
        rest = rest[tm.end() :]
    elif tm := _MICE_TLM2_RE.match(rest):
        # Two channels are channels 1 and 3; channel 2 is not sent.
        telemetry = Telemetry(None, (float(int(tm.group(1), 16)), None, float(int(tm.group(2), 16))))
        rest = rest[tm.end() :]
    altitude_m = None
    if am := _MICE_ALTITUDE_RE.match(rest):
        altitude_m = float(_base91(am.group(2)) - 10000)
        rest = am.group(1) + rest[am.end() :]
    extras = _common_extras(rest, course=course, speed=speed, altitude_m=altitude_m, telemetry=telemetry)
    lat, lon, resolution = _apply_dao(lat, lon, _resolution(ambiguity), extras)
    return PositionReport(
        format=Format.MICE,
        lat=lat,
        lon=lon,
        symbol_table=table,
        symbol_code=code,
        resolution_m=resolution,
        ambiguity=ambiguity,
        course=extras.course,
        speed_knots=extras.speed_knots,
        altitude_m=extras.altitude_m,
        comment=extras.comment,
        dao_datum=extras.dao_datum,
        telemetry=extras.telemetry,
        mic_e_bits=bits,
        mic_e_message=mic_e_message(bits),
        mic_e_mangled=mangled,
    )


# --- NMEA sentence as the info field ----------------------------------------------------------
#
#   $GPRMC,hhmmss[.ss],A,ddmm.mm,N,dddmm.mm,W,knots,course,ddmmyy,magvar,E*cs
#   APRS 1.01 ch 5 allows raw GPS sentences; only RMC is read here (it has date, fix and motion).

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


def parse_nmea(info: str) -> PositionReport:
    sentence = info.rstrip(_BLANK)
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


# --- status ----------------------------------------------------------------------------------
#
#   > [DDHHMMz] status text        APRS 1.01 ch 16


def parse_status(info: str, now: datetime) -> StatusReport:
    body = info[1:]
    timestamp = None
    if re.match(r"^\d{6}z", body):
        try:
            timestamp = _resolve_timestamp(body[:7], now)
        except ValueError as exc:
            raise AprsError(ErrorCode.TIMESTAMP_INV_STA, str(exc), "status") from None
        body = body[7:]
    return StatusReport(text=_text(body.rstrip(_BLANK)), timestamp=timestamp)


# --- message ---------------------------------------------------------------------------------
#
#   : addressee(9, space padded) : text {id           id: 1-5 alphanumerics
#   : addressee                  : ackid | rejid
#   : addressee                  : text {id}replyack  APRS 1.1 reply-ack
#   APRS 1.01 ch 14

_MESSAGE_RE = re.compile(r"^:([A-Za-z0-9_ -]{9}):(.*)$", re.DOTALL)
_ACK_RE = re.compile(r"^(ack|rej)([A-Za-z0-9]{1,5})(?:\}[A-Za-z0-9]{0,5})?[" + _BLANK + r"]*$")
_MESSAGE_ID_RE = re.compile(r"^([^{]*)\{([A-Za-z0-9]{1,5})(?:\}([A-Za-z0-9]{0,5}))?[" + _BLANK + r"]*$", re.DOTALL)


def parse_message(info: str) -> Message:
    m = _MESSAGE_RE.match(info)
    if m is None:
        raise AprsError(ErrorCode.MSG_INV, f"invalid message {info[:12]!r}", "message")
    addressee, body = m.group(1).rstrip(" "), m.group(2)
    if a := _ACK_RE.match(body):
        if a.group(1) == "ack":
            return Message(addressee=addressee, text=None, ack_id=a.group(2))
        return Message(addressee=addressee, text=None, rej_id=a.group(2))
    if i := _MESSAGE_ID_RE.match(body):
        return Message(addressee=addressee, text=_text(i.group(1)), message_id=i.group(2), reply_ack=i.group(3))
    return Message(addressee=addressee, text=_text(body))


# --- object and item -------------------------------------------------------------------------
#
#   ; name(9) *|_ DDHHMMz|DDHHMM/|HHMMSSh  position (uncompressed or compressed)  comment
#   ) name(3-9) !|_                        position                               comment
#   "*" / "!" = alive, "_" = killed.   APRS 1.01 ch 11


def parse_object(info: str, now: datetime) -> ObjectReport:
    if len(info) < 31:
        raise AprsError(ErrorCode.OBJ_SHORT, f"object needs 31 bytes, got {len(info)}", "object")
    m = re.match(r"^;([\x20-\x7e]{9})([*_])(\d{6}[zh/])", info)
    if m is None:
        raise AprsError(ErrorCode.OBJ_INV, f"invalid object {info[:18]!r}", "object")
    try:
        timestamp = _resolve_timestamp(m.group(3), now)
    except ValueError as exc:
        raise AprsError(ErrorCode.TIMESTAMP_INV_OBJ, str(exc), "object") from None
    try:
        report = _position(info[18:], messaging=None, timestamp=timestamp)
    except AprsError as exc:
        raise AprsError(exc.code, str(exc), "object") from None
    return ObjectReport(name=_text(m.group(1)), alive=m.group(2) == "*", item=False, report=report)


def parse_item(info: str) -> ObjectReport:
    m = re.match(r"^\)([\x20\x22-\x5e\x60-\x7e]{3,9})([!_])", info)
    if m is None:
        code = ErrorCode.ITEM_SHORT if len(info) < 18 else ErrorCode.ITEM_INV
        raise AprsError(code, f"invalid item {info[:12]!r}", "item")
    try:
        report = _position(info[m.end() :], messaging=None, timestamp=None)
    except AprsError as exc:
        raise AprsError(exc.code, str(exc), "item") from None
    return ObjectReport(name=_text(m.group(1)), alive=m.group(2) == "!", item=True, report=report)


# --- telemetry -------------------------------------------------------------------------------
#
#   T#sss,a1,a2,a3,a4,a5,bbbbbbbb[comment]     APRS 1.01 ch 13 (values relaxed to any decimal,
#   as APRS 1.2 and current trackers send)

_TLM_VALUE_RE = re.compile(r"-?(\d+\.?\d*|\.\d+)")


def parse_telemetry(info: str) -> TelemetryReport:
    m = re.match(r"^T#(\d{1,3}|MIC),?(.*)$", info, re.DOTALL)
    if m is None:
        raise AprsError(ErrorCode.TLM_INV, f"invalid telemetry {info[:12]!r}", "telemetry")
    sequence = None if m.group(1) == "MIC" else int(m.group(1))
    fields = m.group(2).split(",")
    values: list[float | None] = []
    for raw in fields[:5]:
        raw = raw.strip(" ")
        if raw == "":
            values.append(None)
        elif _TLM_VALUE_RE.fullmatch(raw) and not raw.endswith("."):
            values.append(float(raw))
        elif raw[:1].isdigit() or raw[:1] in "-.":
            raise AprsError(ErrorCode.TLM_INV, f"invalid telemetry value {raw!r}", "telemetry")
        else:
            break
    values += [None] * (5 - len(values))
    bits = comment = None
    if len(fields) > 5 and (b := re.match(r"^([01]{8})(.*)$", ",".join(fields[5:]), re.DOTALL)):
        bits, comment = b.group(1), _comment(b.group(2))
    return TelemetryReport(Telemetry(sequence, tuple(values), bits), comment)


# --- the info field as a whole ---------------------------------------------------------------
#
#   The first byte says what follows (APRS 1.01 ch 5, "APRS Data Type Identifiers"):
#   ! = / @ position   ` ' 0x1C 0x1D Mic-E   > status   : message   ; object   ) item
#   $ NMEA   T telemetry   {{ experimental   anything else: a "!" in the first 40 bytes, or not APRS


_UNREAD_TYPES = {
    "}": "third-party traffic",
    "<": "station capabilities",
    "?": "query",
    "[": "Maidenhead locator beacon",
    "{": "user-defined data",
    "#": "Peet Bros weather",
    "*": "Peet Bros weather",
    "%": "Agrelo DF",
    "&": "map feature",
    "+": "shelter data",
    ",": "invalid or test data",
    ".": "space weather",
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
    kind = text[0]
    if kind in "!=/@":
        if text.startswith("!!"):
            raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, "Peet Bros '!!' weather logging is not read", "wx")
        return parse_position(text, now)
    if kind in "`'\x1c\x1d":
        return parse_mic_e(text, destination, accept_broken=accept_broken_mice)
    if kind == ">":
        return parse_status(text, now)
    if kind == ":":
        return parse_message(text)
    if kind == ";":
        return parse_object(text, now)
    if kind == ")":
        return parse_item(text)
    if kind == "$":
        if text.startswith("$ULTW"):
            raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, "Peet Bros '$ULTW' weather is not read", "wx")
        return parse_nmea(text)
    if text.startswith("T#"):
        return parse_telemetry(text)
    if text.startswith("{{"):
        raise AprsError(ErrorCode.EXP_UNSUPPORTED, "experimental packet format '{{'")
    if kind == "_":
        raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, "positionless weather is not read", "wx")
    if kind in _UNREAD_TYPES:
        # Known identifiers, so no "!" search: a third-party packet's "!" is someone else's position.
        raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, f"{_UNREAD_TYPES[kind]} ({kind!r}) is not read")
    bang = text.find("!", 0, LAST_RESORT_SPAN)
    if bang > 0:
        return parse_position(text[bang:], now)
    raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, f"data type {kind!r} is not read (or not APRS)")


# --- TNC2 / APRS-IS text ---------------------------------------------------------------------
#
#   SRC>DST,DIGI1*,DIGI2,qAR,IGATE:info
#   Calls here are APRS-IS calls: up to 9 letters, digits and "-"; "*" marks a repeated hop. After a
#   "qAI" trace construct, APRS-IS servers may add their IPv6 address as 32 hex digits.

_IS_CALL_RE = re.compile(r"^[A-Za-z0-9-]{1,9}$")
_IS_DIGI_RE = re.compile(r"^[A-Za-z0-9-]{1,9}\*?$")
_IPV6_HOP_RE = re.compile(r"^[0-9A-F]{32}$")


def parse_tnc2(line: bytes) -> Tnc2Packet:
    """Split a TNC2 monitor line into header and info; raises :class:`AprsError` for a bad header."""
    header, sep, info = line.partition(b":")
    if not sep:
        raise AprsError(ErrorCode.PACKET_NO_BODY, "no ':' between header and information field")
    head = header.decode("latin-1")
    source, gt, rest = head.partition(">")
    if not gt or not _IS_CALL_RE.match(source):
        raise AprsError(ErrorCode.SRCCALL_BADCHARS, f"source callsign {source!r}")
    destination, *path = rest.split(",")
    if not _IS_CALL_RE.match(destination):
        raise AprsError(ErrorCode.DSTCALL_BADCHARS, f"destination callsign {destination!r}")
    after_qai = False
    for hop in path:
        if not (_IS_DIGI_RE.match(hop) or (after_qai and _IPV6_HOP_RE.match(hop))):
            raise AprsError(ErrorCode.DIGICALL_BADCHARS, f"digipeater callsign {hop!r}")
        after_qai = after_qai or hop == "qAI"
    return Tnc2Packet(source=source, destination=destination, path=tuple(path), info=info)


# --- to gateway events -----------------------------------------------------------------------


def unit_of(source: str) -> str:
    """``aprs:CALL-SSID``; SSID 0 is left out, as APRS writes it."""
    return f"aprs:{source.upper().removesuffix('-0')}"


def _fix_time(timestamp: Timestamp | None) -> datetime | None:
    # A "/" timestamp is the sender's local time in an unknown zone: not a fix time to publish.
    return timestamp.time if timestamp is not None and not timestamp.local else None


# The event schema's altitude range (gateway/events.py); a compressed altitude can encode far more.
_ALTITUDE_RANGE_M = (-1e5, 1e6)
_MAX_SPEED_MPS = 1e4  # the event schema's limit, as for the altitude


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
        detail["weather"] = {k: getattr(report.weather, k) for k in Weather.__dataclass_fields__}
    return detail


def aprs_to_decoded(frame: Ax25Frame, packet: AprsPacket, now: datetime) -> Decoded | None:
    """Map a parsed packet to a gateway event; None for packets that are not events here.

    position -> beacon (Mic-E "emergency" -> alert); status and messages -> status. Objects, items
    and telemetry describe something other than the sender's own state, so they are not events.
    """
    detail: dict[str, Any] = {
        "protocol": "aprs",
        "destination": str(frame.destination),
        "path": frame.path(),
        "raw": frame.tnc2(),
    }
    unit = unit_of(str(frame.source))
    if isinstance(packet, PositionReport):
        detail.update(_position_detail(packet))
        kind = Kind.ALERT if packet.mic_e_message is MicEMessage.EMERGENCY else Kind.BEACON
        return Decoded(kind=kind, time=now, unit=unit, position=_position_of(packet), detail=detail)
    if isinstance(packet, StatusReport):
        detail.update(type="status", text=packet.text)
        if packet.timestamp is not None:
            detail["timestamp"] = packet.timestamp.raw
        return Decoded(kind=Kind.STATUS, time=now, unit=unit, detail=detail)
    if isinstance(packet, Message):
        detail.update(type="message", addressee=packet.addressee, text=packet.text)
        optional = {
            "message_id": packet.message_id,
            "reply_ack": packet.reply_ack,
            "ack": packet.ack_id,
            "rej": packet.rej_id,
        }
        detail.update((k, v) for k, v in optional.items() if v is not None)
        return Decoded(kind=Kind.STATUS, time=now, unit=unit, detail=detail)
    return None
