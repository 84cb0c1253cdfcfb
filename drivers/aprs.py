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
    decoded = frame_event(frame, now)   # -> gateway Decoded, for every frame

Every frame becomes an event (:func:`frame_event`, used by every transport that delivers AX.25: a KISS
TNC, the AFSK audio decoder): positions as beacons (a Mic-E "Emergency" as an alert), objects and
items as beacons of the object, everything else as a status with its type, its text and what was read
of it; a frame that does not parse is a status with the reason, so a technician sees every frame on
the channel and nothing the radio sent is lost without a word.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from drivers.ax25 import Ax25Frame, display_text
from gateway.events import Decoded, Kind, Position, make_unit

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
    WX_UNSUPP = "wx_unsupp"
    GPGGA_FEWFIELDS = "gpgga_fewfields"
    GPGGA_NOFIX = "gpgga_nofix"
    GPGLL_FEWFIELDS = "gpgll_fewfields"
    GPGLL_NOFIX = "gpgll_nofix"
    TIMESTAMP_INV_GPGGA = "timestamp_inv_gpgga"
    TIMESTAMP_INV_GPGLL = "timestamp_inv_gpgll"
    THIRD_PARTY_INV = "third_party_inv"  # not a FAP code: FAP does not read third-party packets


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
    snow_24h: float | None = None
    rain_raw: int | None = None  # "#": the raw rain counter
    rain_total: float | None = None  # Ultimeter: the long-term rain total
    temperature_inside: float | None = None  # Ultimeter logging mode
    humidity_inside: int | None = None

    def fields(self) -> dict[str, Any]:
        """The values that were sent, by name (for an event's detail)."""
        return {k: getattr(self, k) for k in Weather.__dataclass_fields__ if getattr(self, k) is not None}


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


class WeatherFormat(StrEnum):
    POSITIONLESS = "positionless"  # "_" + MDHM timestamp + fields
    ULTIMETER_PACKET = "ultimeter_packet"  # "$ULTW" + hex words
    ULTIMETER_LOGGING = "ultimeter_logging"  # "!!" + hex words
    PEET_BROS_U2 = "peet_bros_u2"  # "#" or "*": the layout is not published; kept raw


@dataclass(frozen=True, slots=True)
class WeatherReport:
    """Weather without a position: the positionless form and the raw weather station forms (ch 12)."""

    format: WeatherFormat
    weather: Weather
    timestamp: Timestamp | None = None
    comment: str | None = None
    raw: str = ""  # the data after the data type identifier, as sent


@dataclass(frozen=True, slots=True)
class TelemetryMetadata:
    """PARM., UNIT., EQNS. or BITS. in a message to the station they describe (APRS 1.01 ch 13)."""

    station: str  # the addressee: the station whose telemetry this describes
    kind: str  # "PARM", "UNIT", "EQNS" or "BITS"
    names: tuple[str, ...] = ()  # PARM and UNIT: channel names / units, A1-A5 then B1-B8
    coefficients: tuple[float | None, ...] = ()  # EQNS: a, b, c of each analog channel
    bits: str | None = None  # BITS: the sense of each digital channel
    project: str | None = None  # BITS: the project title


@dataclass(frozen=True, slots=True)
class Query:
    """A general query (APRS 1.01 ch 15): ``?APRS?``, ``?IGATE?``, ``?WX?``, with a target footprint."""

    query: str | None  # None when the text is no ?NAME? query
    text: str
    footprint: tuple[float, float, int] | None = None  # lat, lon, radius in miles


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Station capabilities (APRS 1.01 ch 15): ``<IGATE,MSG_CNT=13,LOC_CNT=54``."""

    tokens: tuple[tuple[str, str | None], ...]
    text: str


@dataclass(frozen=True, slots=True)
class UserDefined:
    """User-defined data (APRS 1.01 ch 18): ``{`` user id, packet type, data."""

    user_id: str
    packet_type: str
    data: str


@dataclass(frozen=True, slots=True)
class DxSpot:
    """A DX cluster spot: ``DX de SPOTTER: 14025.0 DXCALL comment``."""

    spotter: str
    text: str
    frequency_khz: float | None = None
    dx_call: str | None = None


@dataclass(frozen=True, slots=True)
class ThirdParty:
    """Third-party traffic (APRS 1.01 ch 17): another station's packet, with its own header."""

    inner: Tnc2Packet


@dataclass(frozen=True, slots=True)
class OtherData:
    """A type APRS names but defines no fields for here: test data, DF reports, map features, ..."""

    kind: str
    text: str


AprsPacket = (
    PositionReport
    | StatusReport
    | Message
    | ObjectReport
    | TelemetryReport
    | WeatherReport
    | TelemetryMetadata
    | Query
    | Capabilities
    | UserDefined
    | DxSpot
    | ThirdParty
    | OtherData
)


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


# --- weather data ----------------------------------------------------------------------------
#
#   in a position with the _ symbol:   DDD/SSS  gGGG tTTT rRRR pPPP PPPP hHH bBBBBB L/lLLL sSSS #RRR
#   positionless (after _MDHM):        cDDD sSSS gGGG tTTT ... the same fields
#   then a software type (1 letter) and a unit type (2-4 letters), or (in a position) a comment
#
#   wind dir (deg) / speed (mph), gust (mph), temp (F), rain last hour / 24 h / since midnight
#   (hundredths of an inch), humidity (%, 00 = 100), pressure (tenths of hPa), luminosity (W/m2,
#   "l" adds 1000), snowfall in the last 24 h (inches), raw rain counter. "..." or spaces mean
#   "no data"; "a decimal point is allowed for non-integer values"; "the remaining parameters may be
#   in a different order (or may not even exist)".   APRS 1.01 ch 12

_MPH = 0.44704
_HUNDREDTH_INCH_MM = 0.254
_INCH_MM = 25.4
# field letter -> (width, name, conversion to the unit of Weather)
_WX_FIELDS: dict[str, tuple[int, str, Any]] = {
    "g": (3, "wind_gust", lambda n: n * _MPH),
    "t": (3, "temperature", lambda n: (n - 32) / 1.8),  # a negative value spends a byte on "-"
    "r": (3, "rain_1h", lambda n: n * _HUNDREDTH_INCH_MM),
    "p": (3, "rain_24h", lambda n: n * _HUNDREDTH_INCH_MM),
    "P": (3, "rain_midnight", lambda n: n * _HUNDREDTH_INCH_MM),
    "h": (2, "humidity", lambda n: 100 if n == 0 else int(n)),
    "b": (5, "pressure", lambda n: n / 10),
    "L": (3, "luminosity", int),
    "l": (3, "luminosity", lambda n: int(n) + 1000),
    "s": (3, "snow_24h", lambda n: n * _INCH_MM),
    "#": (3, "rain_raw", int),
}
_WX_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_WX_NO_DATA = re.compile(r"[. ]+")


def _wx_value(rest: str) -> tuple[str, float | None] | None:
    """The field at the start of ``rest``: (letter, value or None for "no data"), or None if there is none."""
    spec = _WX_FIELDS.get(rest[:1])
    if spec is None:
        return None
    raw = rest[1 : 1 + spec[0]]
    if len(raw) < spec[0]:
        return None
    if _WX_NUMBER.fullmatch(raw):
        return rest[0], float(raw)
    return (rest[0], None) if _WX_NO_DATA.fullmatch(raw) else None


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
    while rest:
        field = _wx_value(rest)
        if field is None:
            # One stray byte between two fields (seen from real stations: "h98Os010L500") is passed
            # over when a field with a number follows; anything else ends the weather data.
            after = _wx_value(rest[1:])
            if after is None or after[1] is None:
                break
            rest = rest[1:]
            continue
        letter, value = field
        width, name, convert = _WX_FIELDS[letter]
        rest = rest[1 + width :]
        if value is not None:
            values[name] = convert(value)
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
#   $GPGGA,hhmmss[.ss],ddmm.mm,N,dddmm.mm,W,quality,sats,hdop,altitude,M,...*cs   quality 0: no fix
#   $GPGLL,ddmm.mm,N,dddmm.mm,W[,hhmmss[.ss],A]*cs                              A: valid
#   APRS 1.01 ch 5 allows raw GPS sentences, of any talker (GP, GN, BD, ...). RMC gives date, fix and
#   motion; GGA and GLL only the time of day, resolved against the receiver's clock like "HHMMSSh".

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
            timestamp = _resolve_timestamp(t.group(1) + "h", now)
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


def parse_message(info: str) -> Message | TelemetryMetadata:
    """A message, or the telemetry metadata a station sends as a message to itself (ch 13)."""
    message = _message(info)
    if message.text is not None and (metadata := _telemetry_metadata(message.addressee, message.text)):
        return metadata
    return message


def _message(info: str) -> Message:
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


# --- telemetry metadata ----------------------------------------------------------------------
#
#   :STATION  :PARM.name,name,...       A1-A5 then B1-B8 channel names     APRS 1.01 ch 13
#   :STATION  :UNIT.unit,unit,...       the same channels' units or labels
#   :STATION  :EQNS.a,b,c,a,b,c,...     value = a*v^2 + b*v + c for A1-A5
#   :STATION  :BITS.bbbbbbbb,title      the sense of B1-B8 (1 = on is 1) and the project title


def _telemetry_metadata(station: str, text: str) -> TelemetryMetadata | None:
    m = re.match(r"^(PARM|UNIT|EQNS|BITS)\.(.*)$", text, re.DOTALL)
    if m is None:
        return None
    kind, body = m.group(1), m.group(2).rstrip(_BLANK)
    if kind in ("PARM", "UNIT"):
        return TelemetryMetadata(station, kind, names=tuple(n.strip(" ") for n in body.split(",")))
    if kind == "EQNS":
        numbers = [n.strip(" ") for n in body.split(",")]
        return TelemetryMetadata(
            station, kind, coefficients=tuple(float(n) if _TLM_VALUE_RE.fullmatch(n) else None for n in numbers)
        )
    bits, _, project = body.partition(",")
    return TelemetryMetadata(station, kind, bits=bits.strip(" "), project=project.strip(" ") or None)


# --- weather without a position ----------------------------------------------------------------
#
#   _ MMDDHHMM cDDD sSSS gGGG tTTT [fields] [software type, unit type]   positionless   APRS 1.01 ch 12
#   $ULTW hhhh hhhh ...     Peet Bros Ultimeter 2000, packet mode: 4-hex-digit words ("----": none)
#   !! hhhh hhhh ...        Peet Bros Ultimeter 2000, data logging mode
#   # or * ...              Peet Bros U-II: APRS 1.01 gives examples only, no layout; kept as sent
#
#   Ultimeter words (Peet Bros' serial specification, the same layout FAP and Xastir read), signed:
#     packet mode:  1 peak wind speed (0.1 km/h, last 5 min)  2 its direction (0-255)
#                   3 outdoor temperature (0.1 F)  4 long-term rain (0.01 in)  5 pressure (0.1 hPa)
#                   6 pressure delta  7-8 pressure correction  9 outdoor humidity (0.1 %)
#                   10 day of year  11 minute of day  12 today's rain (0.01 in)  13 1-min mean wind
#     logging mode: 1 wind speed  2 direction  3 outdoor temperature  4 long-term rain  5 pressure
#                   6 indoor temperature  7 outdoor humidity  8 indoor humidity  9 day  10 minute
#                   11 today's rain  12 1-min mean wind speed

_KMH = 1 / 3.6
# Direction 0-255 covers the circle with 255 as north again (FAP and Xastir scale by 360/255).
_ULTIMETER_DIRECTION = 360 / 255


def _resolve_mdhm(raw: str, now: datetime) -> Timestamp:
    """A positionless weather timestamp MMDDHHMM (no year): the latest that is not a day ahead."""
    now = now.astimezone(UTC)
    month, day, hour, minute = int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8])
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            candidates.append(datetime(year, month, day, hour, minute, tzinfo=UTC))
        except ValueError:
            continue
    plausible = [t for t in candidates if t <= now + timedelta(days=1)]
    if not plausible:
        raise ValueError(f"no such month, day and time {raw}")
    return Timestamp(raw=raw, time=max(plausible))


def parse_positionless_weather(info: str, now: datetime) -> WeatherReport:
    m = re.match(r"^_(\d{8})(?=c)", info)
    parsed = _weather(info[9:]) if m else None
    if m is None or parsed is None:
        raise AprsError(ErrorCode.WX_UNSUPP, f"positionless weather needs _MMDDHHMMc...s...: {info[:20]!r}", "wx")
    try:
        timestamp = _resolve_mdhm(m.group(1), now)
    except ValueError as exc:
        raise AprsError(ErrorCode.WX_UNSUPP, str(exc), "wx") from None
    weather, rest = parsed
    return WeatherReport(WeatherFormat.POSITIONLESS, weather, timestamp, _comment(rest), _text(info[1:]))


def _hex_words(data: str) -> list[int | None]:
    words: list[int | None] = []
    while m := re.match(r"^([0-9A-Fa-f]{4}|----)", data):
        value = None if m.group(1) == "----" else int(m.group(1), 16)
        words.append(value - 0x10000 if value is not None and value >= 0x8000 else value)
        data = data[4:]
    return words


def parse_ultimeter(info: str) -> WeatherReport:
    logging = info.startswith("!!")
    data = info[2:] if logging else info[5:]
    words = _hex_words(data)
    if not words:
        raise AprsError(ErrorCode.WX_UNSUPP, f"no Ultimeter data words in {info[:20]!r}", "wx")
    words += [None] * (13 - len(words))

    def scaled(index: int, factor: float) -> float | None:
        value = words[index]
        return value * factor if value is not None else None

    def percent(index: int) -> int | None:
        value = words[index]
        if value is None or not 1 <= round(value / 10) <= 100:
            return None
        return round(value / 10)

    direction = words[1]
    pressure = words[4] if words[4] is not None and words[4] >= 10 else None
    temperature = scaled(2, 0.1)
    values: dict[str, Any] = {
        "wind_direction": round((direction & 0xFF) * _ULTIMETER_DIRECTION) if direction is not None else None,
        "temperature": (temperature - 32) / 1.8 if temperature is not None else None,
        "rain_total": scaled(3, _HUNDREDTH_INCH_MM),
        "pressure": pressure / 10 if pressure is not None else None,
    }
    if logging:
        inside = scaled(5, 0.1)
        values |= {
            "temperature_inside": (inside - 32) / 1.8 if inside is not None else None,
            "humidity": percent(6),
            "humidity_inside": percent(7),
            "rain_midnight": scaled(10, _HUNDREDTH_INCH_MM),
            "wind_speed": scaled(11, 0.1 * _KMH) if words[11] is not None else scaled(0, 0.1 * _KMH),
        }
    else:
        values |= {
            "wind_gust": scaled(0, 0.1 * _KMH),
            "humidity": percent(8),
            "rain_midnight": scaled(11, _HUNDREDTH_INCH_MM),
            "wind_speed": scaled(12, 0.1 * _KMH),
        }
    form = WeatherFormat.ULTIMETER_LOGGING if logging else WeatherFormat.ULTIMETER_PACKET
    return WeatherReport(form, Weather(**values), raw=_text(info[1:]))


# --- query, capabilities, user-defined, DX spot, third party ----------------------------------------
#
#   ?APRS? [lat,long,radius]      general query; also ?IGATE?, ?WX?      APRS 1.01 ch 15
#   <IGATE,MSG_CNT=n,LOC_CNT=n    station capabilities                   APRS 1.01 ch 15
#   { U P data                    user id, user packet type, data        APRS 1.01 ch 18
#   DX de SPOTTER: freq DXCALL comment                                   DX cluster spots
#   } SRC>DST,PATH:info           third-party traffic                    APRS 1.01 ch 17

_FOOTPRINT_RE = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?),\s*(-?\d{1,3}(?:\.\d+)?),\s*(\d{1,4})")


def parse_query(info: str) -> Query:
    m = re.match(r"^\?([A-Za-z]+)\?(.*)$", info, re.DOTALL)
    if m is None:
        return Query(None, _text(info[1:].rstrip(_BLANK)))
    footprint = None
    if (f := _FOOTPRINT_RE.match(m.group(2))) and abs(float(f.group(1))) <= 90 and abs(float(f.group(2))) <= 180:
        footprint = (float(f.group(1)), float(f.group(2)), int(f.group(3)))
    return Query(m.group(1).upper(), _text(info[1:].rstrip(_BLANK)), footprint)


def parse_capabilities(info: str) -> Capabilities:
    body = info[1:].rstrip(_BLANK)
    tokens = []
    for token in body.split(","):
        key, sep, value = token.strip(" ").partition("=")
        if key:
            tokens.append((_text(key), _text(value) if sep else None))
    return Capabilities(tuple(tokens), _text(body))


def parse_user_defined(info: str) -> UserDefined:
    if info.startswith("{{"):
        raise AprsError(ErrorCode.EXP_UNSUPPORTED, "experimental packet format '{{'")
    if len(info) < 3:
        raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, f"user-defined data needs a user id and a type: {info!r}")
    return UserDefined(_text(info[1]), _text(info[2]), _text(info[3:].rstrip(_BLANK)))


_DX_RE = re.compile(r"^DX\s+de\s+(.*?)\s*[:>]\s*(.*)$", re.IGNORECASE | re.DOTALL)


def parse_dx_spot(info: str) -> DxSpot | None:
    m = _DX_RE.match(info)
    if m is None:
        return None
    spotter, text = _text(m.group(1)), _text(m.group(2).rstrip(_BLANK))
    if f := re.match(r"^(\d+(?:\.\d+)?)\s+(\S+)", text):
        return DxSpot(spotter, text, float(f.group(1)), f.group(2))
    return DxSpot(spotter, text)


def parse_third_party(info: str) -> ThirdParty:
    try:
        return ThirdParty(parse_tnc2(info[1:].encode("latin-1")))
    except AprsError as exc:
        raise AprsError(ErrorCode.THIRD_PARTY_INV, f"third-party header: {exc}", "third_party") from None


# --- the info field as a whole ---------------------------------------------------------------
#
#   The first byte says what follows (APRS 1.01 ch 5, "APRS Data Type Identifiers"):
#   ! = / @ position   ` ' 0x1C 0x1D Mic-E   > status   : message   ; object   ) item
#   $ NMEA   T telemetry   {{ experimental   anything else: a "!" in the first 40 bytes, or not APRS


# Data types APRS names without fields read here (APRS 1.01 ch 5): status events with the text.
_OTHER_TYPES = {
    ",": "test",  # "invalid data or test data"
    "%": "df_report",  # Agrelo DFJr / MicroFinder
    "&": "map_feature",
    "+": "shelter",
    ".": "space_weather",
    "[": "maidenhead",  # Maidenhead grid locator beacon (obsolete)
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
            return parse_ultimeter(text)
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
            return parse_ultimeter(text)
        return parse_nmea(text, now)
    if text.startswith("T#"):
        return parse_telemetry(text)
    if kind == "_":
        return parse_positionless_weather(text, now)
    if kind in "#*":
        return WeatherReport(WeatherFormat.PEET_BROS_U2, Weather(), raw=_text(text[1:].rstrip(_BLANK)))
    if kind == "?":
        return parse_query(text)
    if kind == "<":
        return parse_capabilities(text)
    if kind == "{":
        return parse_user_defined(text)
    if kind == "}":
        return parse_third_party(text)
    if kind in _OTHER_TYPES:
        # Known identifiers, so no "!" search: their "!" is no position of the sender's.
        return OtherData(_OTHER_TYPES[kind], _text(text[1:].rstrip(_BLANK)))
    if dx := parse_dx_spot(text):
        return dx
    bang = text.find("!", 0, LAST_RESORT_SPAN)
    if bang > 0:
        return parse_position(text[bang:], now)
    raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, f"data type {kind!r} is not APRS")


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


_METADATA_TYPES = {"PARM": "parameters", "UNIT": "units", "EQNS": "equations", "BITS": "bits"}


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
            "type": f"telemetry_{_METADATA_TYPES[packet.kind]}",
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


_TYPE_OF_DTI = {
    **dict.fromkeys("!=/@", "position"),
    **dict.fromkeys("`'\x1c\x1d", "mic_e"),
    ">": "status",
    ":": "message",
    ";": "object",
    ")": "item",
    "$": "nmea",
    **dict.fromkeys("_#*", "weather"),
    "?": "query",
    "<": "capabilities",
    "{": "user_defined",
    "}": "third_party",
    **_OTHER_TYPES,
}


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
    return _TYPE_OF_DTI.get(text[0], "unknown")


def _object_header(text: str) -> tuple[str, bool] | None:
    """The name and the alive flag of an object or item whose position could not be read."""
    m = re.match(r"^;([\x20-\x7e]{9})([*_])", text) or re.match(r"^\)([\x20\x22-\x5e\x60-\x7e]{3,9})([!_])", text)
    if m is None:
        return None
    return _text(m.group(1)), m.group(2) in "*!"


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
    if kind in ("object", "item") and (header := _object_header(text)):
        name, alive = header
        detail.update(name=name, sender=source, killed=not alive)
        unit = object_unit(name) or unit
    return Decoded(kind=Kind.STATUS, time=now, unit=unit, detail=detail)
