"""APRS parsing against Ham::APRS::FAP's test vectors, and the mapping of packets to gateway events.

Every vector of ``tests/data/aprs/aprs-fap.jsonl`` (see SOURCES.md there) runs: the families this
parser reads are compared field by field with what FAP's tests assert; the families it does not read
are skipped one by one with the family named, so the skip list is the to-do list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import aprs
from drivers.aprs import (
    AprsError,
    ErrorCode,
    Message,
    MicEMessage,
    ObjectReport,
    PositionReport,
    StatusReport,
    TelemetryReport,
    Tnc2Packet,
)
from drivers.ax25 import Address, Ax25Frame, Digipeater, encode_ui, parse_frame
from gateway.events import Event, Kind

DATA = Path(__file__).resolve().parents[1] / "data" / "aprs" / "aprs-fap.jsonl"
VECTORS: list[dict[str, Any]] = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
DEFAULT_NOW = 1_700_000_000  # the clock of the vector extraction, used where a vector names none

FAMILY_BY_FILE = {
    "t/10badpacket.t": "bad packets",
    "t/20decode-uncompressed.t": "uncompressed position",
    "t/21decode-uncomp-moving.t": "uncompressed position",
    "t/22decode-compressed.t": "compressed position",
    "t/23decode-mice.t": "Mic-E",
    "t/24decode-gprmc.t": "NMEA ($GPRMC)",
    "t/25decode-dao.t": "DAO",
    "t/30decode-wx-basic.t": "weather",
    "t/31decode-wx-ultw.t": "weather",
    "t/40decode-object-inv.t": "object",
    "t/41decode-object.t": "object",
    "t/51decode-msg.t": "message",
    "t/52decode-beacon.t": "not APRS",
    "t/53decode-tlm.t": "telemetry (T#)",
    "t/54decode-tlm-mice.t": "comment telemetry",
    "t/55decode-timestamp.t": "timestamp",
    "t/56decode-status.t": "status",
    "t/60binary-clean.t": "message (binary-clean)",
    "t/91aprsis_paths.t": "APRS-IS path",
}

# Families this parser does not read: every such vector is skipped with this reason.
NOT_IMPLEMENTED = {
    "positionless weather": "positionless '_' weather reports are not parsed (no event maps to them)",
    "Peet Bros weather": "Peet Bros '$ULTW' / '!!' weather logging is not parsed",
}

# Fields where this parser deliberately differs from FAP: (source file, line, key) -> why.
KNOWN_DIFFERENCES = {
    ("t/23decode-mice.t", 161, "telemetry.vals[1]"): (
        "two-channel Mic-E telemetry sends channels 1 and 3 (APRS 1.01 ch 10); channel 2 is None here, FAP fills in 0"
    ),
}


def family(vector: Mapping[str, Any]) -> str:
    body = vector["packet"].split(":", 1)[-1]
    if body.startswith("_"):
        return "positionless weather"
    if body.startswith(("$ULTW", "!!")):
        return "Peet Bros weather"
    return FAMILY_BY_FILE[vector["source_file"]]


def vector_id(vector: Mapping[str, Any]) -> str:
    return f"{vector['source_file'].removeprefix('t/').removesuffix('.t')}:{vector['line']}"


def reference_now(vector: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(vector.get("reference_now", DEFAULT_NOW), UTC)


# --- a FAP-shaped view of our results, so the vectors' flat keys can be looked up --------------


def _header_view(tnc2: Tnc2Packet) -> dict[str, Any]:
    view: dict[str, Any] = {
        "srccallsign": tnc2.source,
        "dstcallsign": tnc2.destination,
        "header": ",".join([f"{tnc2.source}>{tnc2.destination}", *tnc2.path]),
        "body": tnc2.info.decode("latin-1"),
        "digipeaters.length": len(tnc2.path),
    }
    for i, hop in enumerate(tnc2.path):
        view[f"digipeaters[{i}].call"] = hop.removesuffix("*")
        view[f"digipeaters[{i}].wasdigied"] = int(hop.endswith("*"))
    return view


def _telemetry_view(view: dict[str, Any], telemetry: aprs.Telemetry | None) -> None:
    if telemetry is None:
        return
    view["telemetry.seq"] = telemetry.sequence
    view["telemetry.bits"] = telemetry.bits
    for i, value in enumerate(telemetry.values):
        view[f"telemetry.vals[{i}]"] = value


def _timestamp_view(timestamp: aprs.Timestamp | None, raw: bool) -> Any:
    if timestamp is None:
        return None
    return timestamp.raw[:6] if raw else int(timestamp.time.timestamp())


def _position_view(view: dict[str, Any], report: PositionReport, raw_timestamp: bool) -> None:
    view.update(
        format=str(report.format),
        latitude=report.lat,
        longitude=report.lon,
        posresolution=report.resolution_m,
        # FAP reports ambiguity only for the formats that can carry it.
        posambiguity=report.ambiguity if report.format in (aprs.Format.UNCOMPRESSED, aprs.Format.MICE) else None,
        symboltable=report.symbol_table,
        symbolcode=report.symbol_code,
        speed=report.speed_knots * 1.852 if report.speed_knots is not None else None,  # FAP: km/h
        course=report.course,
        altitude=report.altitude_m,
        comment=report.comment,
        phg=report.phg,
        messaging=int(report.messaging) if report.messaging is not None else None,
        mbits=report.mic_e_bits,
        daodatumbyte=report.dao_datum,
        timestamp=_timestamp_view(report.timestamp, raw_timestamp),
        checksumok=int(report.checksum_ok) if report.checksum_ok is not None else None,
        mice_mangled=1 if report.mic_e_mangled else None,
    )
    _telemetry_view(view, report.telemetry)
    if report.weather is not None:
        w = report.weather
        weather = {
            "wind_direction": w.wind_direction,
            "wind_speed": w.wind_speed,
            "wind_gust": w.wind_gust,
            "temp": w.temperature,
            "rain_1h": w.rain_1h,
            "rain_24h": w.rain_24h,
            "rain_midnight": w.rain_midnight,
            "humidity": w.humidity,
            "pressure": w.pressure,
            "luminosity": w.luminosity,
            "soft": w.software,
        }
        view.update((f"wx.{k}", v) for k, v in weather.items())


def fap_view(tnc2: Tnc2Packet, packet: aprs.AprsPacket, options: Mapping[str, Any]) -> dict[str, Any]:
    view = _header_view(tnc2)
    raw_timestamp = bool(options.get("raw_timestamp"))
    if isinstance(packet, PositionReport):
        view["type"] = "location"
        _position_view(view, packet, raw_timestamp)
    elif isinstance(packet, ObjectReport):
        view["type"] = "item" if packet.item else "object"
        _position_view(view, packet.report, raw_timestamp)
        view.update(objectname=packet.name, alive=int(packet.alive))
    elif isinstance(packet, StatusReport):
        # FAP decodes status timestamps even when asked for raw ones.
        view.update(type="status", status=packet.text, timestamp=_timestamp_view(packet.timestamp, False))
    elif isinstance(packet, Message):
        view.update(
            type="message",
            destination=packet.addressee,
            message=packet.text,
            messageid=packet.message_id,
            messageack=packet.ack_id if packet.ack_id is not None else packet.reply_ack,
            messagerej=packet.rej_id,
        )
    elif isinstance(packet, TelemetryReport):
        view.update(type="telemetry", comment=packet.comment)
        _telemetry_view(view, packet.telemetry)
    return view


def _same(key: str, got: Any, expected: Any, precision: int | None) -> bool:
    if expected is None:
        return got is None
    if key == "course" and expected == 0 and got is None:
        return True  # FAP writes 0 for a course that was sent as "unknown"; here that is None
    if got is None:
        return False
    if isinstance(expected, str) and isinstance(got, str):
        # Vector text is Latin-1 for bytes; this parser hands out UTF-8 text where the bytes are UTF-8.
        return aprs.text_of(expected.encode("latin-1")) == got
    if precision is not None:
        return f"{float(got):.{precision}f}" == f"{float(expected):.{precision}f}"
    return bool(got == expected)


def parse_vector(vector: Mapping[str, Any]) -> tuple[Tnc2Packet, aprs.AprsPacket]:
    tnc2 = aprs.parse_tnc2(vector["packet"].encode("latin-1"))
    options = vector.get("options") or {}
    packet = aprs.parse(
        tnc2.info,
        source=tnc2.source,
        destination=tnc2.destination,
        now=reference_now(vector),
        accept_broken_mice=bool(options.get("accept_broken_mice")),
    )
    return tnc2, packet


@pytest.mark.parametrize("vector", VECTORS, ids=[vector_id(v) for v in VECTORS])
def test_fap_vector(vector: dict[str, Any]) -> None:
    name = family(vector)
    if name in NOT_IMPLEMENTED:
        pytest.skip(f"{name}: {NOT_IMPLEMENTED[name]}")
    expect: dict[str, Any] = vector["expect"]
    precision: dict[str, int] = vector.get("expect_precision", {})
    if not vector["expect_ok"]:
        with pytest.raises(AprsError) as caught:
            parse_vector(vector)
        if vector["expect_error"] is not None:
            assert caught.value.code == vector["expect_error"]
        # What FAP had recognised before it gave up (the type, the calls) must match too.
        try:
            view: dict[str, Any] = _header_view(aprs.parse_tnc2(vector["packet"].encode("latin-1")))
        except AprsError:
            view = {}
        view["type"] = caught.value.packet_type
    else:
        tnc2, packet = parse_vector(vector)
        view = fap_view(tnc2, packet, vector.get("options") or {})
    wrong = {
        key: (view.get(key), expected)
        for key, expected in expect.items()
        if (vector["source_file"], vector["line"], key) not in KNOWN_DIFFERENCES
        and not _same(key, view.get(key), expected, precision.get(key))
    }
    assert not wrong, f"{name}: (got, expected) {wrong}"


def test_every_family_is_classified() -> None:
    families = {family(v) for v in VECTORS}
    assert families <= set(FAMILY_BY_FILE.values()) | set(NOT_IMPLEMENTED)


# --- Mic-E message bits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "message"),
    [
        ("111", MicEMessage.OFF_DUTY),
        ("110", MicEMessage.EN_ROUTE),
        ("101", MicEMessage.IN_SERVICE),
        ("100", MicEMessage.RETURNING),
        ("011", MicEMessage.COMMITTED),
        ("010", MicEMessage.SPECIAL),
        ("001", MicEMessage.PRIORITY),
        ("000", MicEMessage.EMERGENCY),
        ("222", MicEMessage.CUSTOM_0),
        ("002", MicEMessage.CUSTOM_6),
        ("120", MicEMessage.UNKNOWN),
    ],
)
def test_mic_e_message_bits(bits: str, message: MicEMessage) -> None:
    assert aprs.mic_e_message(bits) == message


NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)


def _frame(source: str, destination: str, info: bytes, path: tuple[str, ...] = ("WIDE1-1*", "WIDE2-1")) -> Ax25Frame:
    return parse_frame(encode_ui(source, destination, info, path))


def _decoded(frame: Ax25Frame) -> Any:
    packet = aprs.parse(frame.info, source=str(frame.source), destination=str(frame.destination), now=NOW)
    return aprs.aprs_to_decoded(frame, packet, NOW)


def test_mic_e_emergency_from_destination_digits() -> None:
    # Destination "301RU7": latitude digits 3 0 1 2 5 7; the first three are plain digits, so the
    # message bits are 000 = Emergency; R (P-Y) = north, U (P-Y) = longitude + 100, 7 (digit) = east.
    # Info: longitude 120 12.64 = (20 + 100 offset) 12' .64; speed 0, course 90.
    info = bytes([0x60, 20 + 28, 12 + 28, 64 + 28, 28 + 0, 28 + 0, 28 + 90]) + b">/"
    frame = _frame("BG5ABC-9", "301RU7", info)
    decoded = _decoded(frame)
    assert decoded.kind is Kind.ALERT
    assert decoded.unit == "aprs:BG5ABC-9"
    assert decoded.detail["mic_e_message"] == "emergency"
    assert decoded.position.lat == pytest.approx(30 + 12.57 / 60)
    assert decoded.position.lon == pytest.approx(120 + 12.64 / 60)
    assert decoded.position.course_deg == 90.0
    assert decoded.position.speed_mps == 0.0


def test_mic_e_standard_message_is_a_beacon() -> None:
    # "P" in place 1: a standard one; "P0 1" -> 100 "returning".
    info = bytes([0x60, 20 + 28, 12 + 28, 64 + 28, 28, 28, 28]) + b">/"
    decoded = _decoded(_frame("BG5ABC", "S01R5W", info))
    assert decoded.kind is Kind.BEACON
    assert decoded.detail["mic_e_message"] == "returning"
    assert decoded.unit == "aprs:BG5ABC"


def test_position_beacon_event() -> None:
    frame = _frame("BG5ABC-9", "APDW16", b"@261929z3012.57N/12012.64E>090/010/A=000328 patrol 7")
    decoded = _decoded(frame)
    assert decoded.kind is Kind.BEACON
    assert decoded.unit == "aprs:BG5ABC-9"
    position = decoded.position
    assert (position.lat, position.lon) == pytest.approx((30.2095, 120.2106667))
    assert position.speed_mps == pytest.approx(10 * 1852 / 3600)
    assert position.course_deg == 90.0
    assert position.alt_m == pytest.approx(328 * 0.3048)
    assert position.fix_time == datetime(2026, 11, 26, 19, 29, tzinfo=UTC)
    assert position.source == "aprs"
    assert decoded.detail["protocol"] == "aprs"
    assert decoded.detail["path"] == ["WIDE1-1*", "WIDE2-1"]
    raw = "BG5ABC-9>APDW16,WIDE1-1*,WIDE2-1:@261929z3012.57N/12012.64E>090/010/A=000328 patrol 7"
    assert decoded.detail["raw"] == raw
    assert decoded.detail["comment"] == "patrol 7"
    assert decoded.detail["symbol"] == "/>"
    json.dumps(dict(decoded.detail))  # the detail crosses the wire as JSON


def test_north_course_is_zero_degrees_in_the_event() -> None:
    decoded = _decoded(_frame("N0CALL", "APRS", b"!3012.57N/12012.64E>360/005"))
    assert decoded.position.course_deg == 0.0
    assert _decoded(_frame("N0CALL", "APRS", b"!3012.57N/12012.64E>000/000")).position.course_deg is None


def test_status_and_message_events() -> None:
    status = _decoded(_frame("BG5ABC-9", "APDW16", b">On patrol, sector 4"))
    assert status.kind is Kind.STATUS
    assert status.detail["text"] == "On patrol, sector 4"
    message = _decoded(_frame("BG5ABC-9", "APDW16", b":DISPATCH :Need backup at gate 3{17"))
    assert message.kind is Kind.STATUS
    assert message.detail["addressee"] == "DISPATCH"
    assert message.detail["text"] == "Need backup at gate 3"
    assert message.detail["message_id"] == "17"
    assert message.position is None


def test_utf8_message_text() -> None:
    message = _decoded(_frame("BG5ABC-9", "APDW16", ":DISPATCH :到达现场".encode()))
    assert message.detail["text"] == "到达现场"


def test_objects_and_telemetry_are_not_events() -> None:
    obj = _frame("N0CALL", "APRS", b";LEADER   *092345z4903.50N/07201.75W>088/036")
    assert isinstance(aprs.parse(obj.info, source="N0CALL", destination="APRS", now=NOW), ObjectReport)
    assert _decoded(obj) is None
    assert _decoded(_frame("N0CALL", "APRS", b"T#005,1,2,3,4,5,00000000")) is None


def test_ambiguity_is_the_centre_of_the_box() -> None:
    report = aprs.parse(b"!3012.5 N/12012.6 E>", source="N0CALL", destination="APRS", now=NOW)
    assert isinstance(report, PositionReport)
    assert report.ambiguity == 1
    assert report.lat == pytest.approx(30 + 12.55 / 60)
    assert report.lon == pytest.approx(120 + 12.65 / 60)
    assert report.resolution_m == pytest.approx(185.2)


@pytest.mark.parametrize(
    ("info", "code"),
    [
        (b"", ErrorCode.PACKET_NO_BODY),
        (b"!3012.57N/1201", ErrorCode.LOC_SHORT),
        (b"!9012.57N/12012.64E>", ErrorCode.LOC_LARGE),
        (b"!30 2.57N/12012.64E>", ErrorCode.LOC_AMB_INV),
        (b"@991929z3012.57N/12012.64E>", ErrorCode.TIMESTAMP_INV_LOC),
        (b":SHORT:hello", ErrorCode.MSG_INV),
        (b";SHORT*", ErrorCode.OBJ_SHORT),
        (b"$GPGGA,1,2,3", ErrorCode.NMEA_UNSUPPORTED),
        (b"$GPRMC,145526,V,3349.0378,N,08406.2617,W,23.726,27.9,121207,4.9,W*6D", ErrorCode.GPRMC_NOFIX),
        (b"$GPRMC,145526,A,3349.0378,N,08406.2617,W,23.726,27.9,121207,4.9,W*00", ErrorCode.NMEA_INV_CKSUM),
        (b"?APRS?", ErrorCode.TYPE_NOT_SUPPORTED),
        # third-party traffic: the "!" inside is another station's position, not the sender's
        (b"}N0CALL>APRS,TCPIP,BG5GW*:!3012.57N/12012.64E>", ErrorCode.TYPE_NOT_SUPPORTED),
        (b"!/{{{{!!!!>  A", ErrorCode.LOC_LARGE),  # base-91 latitude beyond the south pole
        (b"!/5L!!<*e7", ErrorCode.COMP_SHORT),
        (b"!,5L!!<*e7>7P[", ErrorCode.SYM_INV_TABLE),
        (b"!3012.57N/12012.64E>PHG7220|!!|", None),  # no error: a control case for the list
    ],
)
def test_error_codes(info: bytes, code: ErrorCode | None) -> None:
    if code is None:
        aprs.parse(info, source="N0CALL", destination="APRS", now=NOW)
        return
    with pytest.raises(AprsError) as caught:
        aprs.parse(info, source="N0CALL", destination="APRS", now=NOW)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("142213z", datetime(2023, 11, 14, 22, 13, tzinfo=UTC)),
        ("151000z", datetime(2023, 11, 15, 10, 0, tzinfo=UTC)),  # 12 h ahead: clock skew, same month
        ("180000z", datetime(2023, 10, 18, 0, 0, tzinfo=UTC)),  # days ahead: last month's report
        ("310000z", datetime(2023, 10, 31, 0, 0, tzinfo=UTC)),  # November has no 31st
        ("221320h", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("235959h", datetime(2023, 11, 13, 23, 59, 59, tzinfo=UTC)),  # 1.8 h ahead: yesterday
    ],
)
def test_timestamps_resolve_to_the_past(raw: str, expected: datetime) -> None:
    report = aprs.parse(f"/{raw}3012.57N/12012.64E>".encode(), source="N0CALL", destination="APRS", now=FAP_NOW)
    assert isinstance(report, PositionReport) and report.timestamp is not None
    assert report.timestamp.time == expected
    assert report.timestamp.raw == raw


FAP_NOW = datetime.fromtimestamp(DEFAULT_NOW, UTC)


def test_local_timestamp_is_not_published_as_a_fix_time() -> None:
    decoded = _decoded(_frame("N0CALL", "APRS", b"/261929/3012.57N/12012.64E>"))
    assert decoded.position.fix_time is None
    assert decoded.detail["timestamp"] == "261929/"


def test_altitude_beyond_the_event_schema_is_left_out() -> None:
    # Compressed "GGA" altitude: cs = "{{" -> 1.002^(90*91+90) ft, about 4,800 km.
    report = aprs.parse(b"!/5L!!<*e7>{{2", source="N0CALL", destination="APRS", now=NOW)
    assert isinstance(report, PositionReport) and report.altitude_m is not None and report.altitude_m > 1e6
    assert _decoded(_frame("N0CALL", "APRS", b"!/5L!!<*e7>{{2")).position.alt_m is None


def test_mic_e_with_a_bad_destination() -> None:
    with pytest.raises(AprsError) as caught:
        aprs.parse(b"`c51!f?>/", source="N0CALL", destination="APRS", now=NOW)
    assert caught.value.code == ErrorCode.MICE_INV


def test_unit_leaves_out_ssid_zero() -> None:
    assert aprs.unit_of("N0CALL-0") == "aprs:N0CALL"
    assert aprs.unit_of(str(Address("N0CALL", 0))) == "aprs:N0CALL"
    assert aprs.unit_of(str(Digipeater(Address("BG5ABC", 9)).address)) == "aprs:BG5ABC-9"


# --- fuzzing: findings and garbage -----------------------------------------------------------------


def test_compressed_speed_byte_below_the_base91_range_gives_no_speed() -> None:
    # Found by bench/fuzz: cs = "e " (a space for the speed) gave -0.07 knots, which Event.stamp refused.
    info = b"@011444z/:JG!T/W-\x9ee bg   t054r"
    report = aprs.parse(info, source="N0CALL-9", destination="APRS", now=NOW)
    assert isinstance(report, PositionReport) and report.speed_knots is None and report.course is None
    decoded = _decoded(_frame("N0CALL-9", "APRS", info))
    Event.stamp(decoded, seq=1, gateway="gw", channel="ch")  # the wire takes it


DESTINATIONS = st.sampled_from(["APRS", "APDW16", "S32U6T", "301RU7", "T2TQ5U", "SPPQ4X", "4ZTPQS", "BEACON-15"])
# Garbage that looks like APRS: a data type identifier and characters of the formats, or any bytes.
APRS_LIKE = st.builds(
    lambda dti, body: dti + body,
    st.sampled_from([b"!", b"=", b"/", b"@", b"`", b"'", b">", b":", b";", b")", b"T", b"$", b"_", b"{"]),
    st.binary(max_size=80)
    | st.text(alphabet="0123456789.NSEW/\\>_!#*{}|~ abcxyzAZz:,-", max_size=80).map(str.encode),
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120) | APRS_LIKE, DESTINATIONS, st.booleans())
def test_any_information_field_is_a_packet_or_an_aprs_error(info: bytes, destination: str, broken: bool) -> None:
    try:
        aprs.parse(info, source="N0CALL-9", destination=destination, now=NOW, accept_broken_mice=broken)
    except AprsError as exc:
        assert exc.code in set(ErrorCode)
    # The whole path of a received frame: an event that the wire takes, a rejection, or nothing.
    frame = _frame("N0CALL-9", destination, info)
    try:
        packet = aprs.parse(frame.info, source="N0CALL-9", destination=destination, now=NOW)
    except AprsError:
        return
    decoded = aprs.aprs_to_decoded(frame, packet, NOW)
    if decoded is not None:
        Event.stamp(decoded, seq=1, gateway="gw", channel="ch")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120) | st.text(max_size=80).map(lambda t: t.encode("utf-8", "replace")))
def test_any_tnc2_line_is_a_packet_or_an_aprs_error(line: bytes) -> None:
    try:
        packet = aprs.parse_tnc2(line)
    except AprsError:
        return
    assert b":" in line and packet.info == line.partition(b":")[2]


def test_a_raw_nmea_speed_beyond_the_event_schema_is_left_out() -> None:
    # Found by bench/fuzz: $GPRMC with 232726 knots gave 119,725 m/s, which Event.stamp refused.
    info = b"$GPRMC,145526,A,3349.0378,N,08406.2617,W,232726,7..9,121207,4.9,W*7A"
    decoded = _decoded(_frame("N0CALL-9", "APRS", info))
    assert decoded.position.speed_mps is None and decoded.position.lat == pytest.approx(33.817297, abs=1e-5)
    Event.stamp(decoded, seq=1, gateway="gw", channel="ch")
