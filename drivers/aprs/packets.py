"""What the APRS parsers return: typed, frozen results, one per packet family, and the error they raise.

Units are those of the wire, named in the field (knots, degrees), except altitude, which is always
metres (Mic-E sends metres, the other formats feet), and weather, which is SI (:class:`Weather`).
Free text is handed out decoded as UTF-8 when the bytes are valid UTF-8 (APRS 1.2 allows it) and as
Latin-1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


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
