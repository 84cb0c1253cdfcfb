"""APRS parsing against Ham::APRS::FAP's test vectors, and the mapping of packets to gateway events.

Every vector of ``tests/data/aprs/aprs-fap.jsonl`` (see SOURCES.md there) runs and is compared field by
field with what FAP's tests assert (where this parser differs on purpose, the difference and its reason
are listed). Then every kind of frame as a gateway event: every frame is one, the wire takes it.
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
from gateway.events import Decoded, Event, Kind, is_unit

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

# Families this parser does not read: every such vector is skipped with this reason (none left).
NOT_IMPLEMENTED: dict[str, str] = {}

# Fields where this parser deliberately differs from FAP: (source file, line, key) -> why.
KNOWN_DIFFERENCES = {
    ("t/23decode-mice.t", 161, "telemetry.vals[1]"): (
        "two-channel Mic-E telemetry sends channels 1 and 3 (APRS 1.01 ch 10); channel 2 is None here, FAP fills in 0"
    ),
    ("t/30decode-wx-basic.t", 116, "wx.snow_24h"): (
        "APRS 1.01 ch 12 gives snowfall in inches (s010 = 10 in = 254 mm); FAP reads hundredths of an inch (2.5 mm)"
    ),
    ("t/31decode-wx-ultw.t", 36, "wx.rain_midnight"): (
        "this $ULTW has no 12th word (today's rain); FAP then reports the 4th, the long-term rain total, as rain since "
        "midnight; here that is rain_total and rain since midnight is left unknown"
    ),
}


def family(vector: Mapping[str, Any]) -> str:
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
        _weather_view(view, report.weather)


def _weather_view(view: dict[str, Any], w: aprs.Weather) -> None:
    weather = {
        "wind_direction": w.wind_direction,
        "wind_speed": w.wind_speed,
        "wind_gust": w.wind_gust,
        "temp": w.temperature,
        "temp_in": w.temperature_inside,
        "rain_1h": w.rain_1h,
        "rain_24h": w.rain_24h,
        "rain_midnight": w.rain_midnight,
        "humidity": w.humidity,
        "pressure": w.pressure,
        "luminosity": w.luminosity,
        "snow_24h": w.snow_24h,
        "soft": w.software,
    }
    view.update((f"wx.{k}", v) for k, v in weather.items())


def fap_view(tnc2: Tnc2Packet, packet: aprs.AprsPacket, options: Mapping[str, Any]) -> dict[str, Any]:
    view = _header_view(tnc2)
    raw_timestamp = bool(options.get("raw_timestamp"))
    if isinstance(packet, PositionReport):
        view["type"] = "location"
        _position_view(view, packet, raw_timestamp)
    elif isinstance(packet, aprs.WeatherReport):
        view["type"] = "wx"
        _weather_view(view, packet.weather)
        view.update(latitude=None, longitude=None, posresolution=None, comment=packet.comment)
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


# --- every frame is an event: objects, weather, telemetry, queries, third party, the rest -------------


def vector(source_file: str, line: int) -> dict[str, Any]:
    return next(v for v in VECTORS if v["source_file"] == source_file and v["line"] == line)


def _event_of(tnc2_line: str, now: datetime = NOW) -> Decoded:
    """A TNC2 line as a frame off the air, through frame_event, and through the wire form."""
    packet = aprs.parse_tnc2(tnc2_line.encode("latin-1"))
    try:
        data = encode_ui(packet.source, packet.destination, packet.info, packet.path)
    except ValueError:  # an APRS-IS path (qAC, TCPIP*): not AX.25, and not what these tests are about
        data = encode_ui(packet.source, packet.destination, packet.info)
    frame = parse_frame(data)
    decoded = aprs.frame_event(frame, now)
    Event.stamp(decoded, seq=1, gateway="gw", channel="ch")  # the wire takes it
    return decoded


def test_an_object_is_a_beacon_of_the_object() -> None:
    # FAP t/41: an object placed by OH2KKU-1.
    decoded = _event_of(vector("t/41decode-object.t", 44)["packet"], FAP_NOW)
    assert decoded.kind is Kind.BEACON
    assert decoded.unit == "aprs:LEADER"
    assert decoded.detail["type"] == "object"
    assert decoded.detail["name"] == "LEADER   "  # exactly as sent, padding included
    assert decoded.detail["sender"] == "OH2KKU-1"
    assert decoded.detail["killed"] is False
    assert decoded.position is not None
    assert (decoded.position.lat, decoded.position.lon) == pytest.approx((49.0583333, -72.0291667))
    assert decoded.position.course_deg == 88.0
    assert decoded.position.fix_time == datetime(2023, 11, 9, 23, 45, tzinfo=UTC)  # 092345z, before FAP_NOW


def test_an_object_name_with_a_space_keeps_it_in_the_detail() -> None:
    # FAP t/41: ";SRAL HQ  *..." (compressed position): the unit alphabet has no space.
    decoded = _event_of(vector("t/41decode-object.t", 16)["packet"], FAP_NOW)
    assert (decoded.kind, decoded.unit, decoded.detail["name"]) == (Kind.BEACON, "aprs:SRAL_HQ", "SRAL HQ  ")


def test_a_killed_object_says_so() -> None:
    decoded = _event_of(vector("t/41decode-object.t", 62)["packet"], FAP_NOW)
    assert (decoded.kind, decoded.unit, decoded.detail["killed"]) == (Kind.BEACON, "aprs:LEADER", True)
    assert decoded.position is not None


def test_an_item_is_a_beacon_and_its_name_is_made_a_unit() -> None:
    decoded = _event_of("BG5ABC-9>APRS:)Gate #3/A!3012.57N/12012.64E/incident")
    assert decoded.kind is Kind.BEACON
    assert decoded.unit == "aprs:Gate__3_A"  # a space, "#" and "/" are not in the unit alphabet
    detail = decoded.detail
    assert (detail["type"], detail["name"], detail["sender"]) == ("item", "Gate #3/A", "BG5ABC-9")
    assert decoded.detail["comment"] == "incident"
    killed = _event_of("BG5ABC-9>APRS:)Gate #3/A_3012.57N/12012.64E/")
    assert killed.detail["killed"] is True


def test_an_object_whose_position_is_unreadable_is_a_status_of_the_object() -> None:
    # It has a name but no place to show: the object's status, with the reason and who sent it.
    decoded = _event_of("BG5ABC-9>APRS:;INCIDENT7*261929z30x2.57N/12012.64E!road blocked")
    assert (decoded.kind, decoded.unit, decoded.position) == (Kind.STATUS, "aprs:INCIDENT7", None)
    detail = decoded.detail
    assert (detail["type"], detail["name"], detail["sender"]) == ("object", "INCIDENT7", "BG5ABC-9")
    assert decoded.detail["killed"] is False
    assert decoded.detail["error"].startswith("loc_inv")
    assert decoded.detail["text"] == ";INCIDENT7*261929z30x2.57N/12012.64E!road blocked"


def test_an_object_whose_name_field_is_broken_is_a_status_of_the_sender() -> None:
    # FAP t/40: ";SRAL HQ *110507z..." (a byte lost from the 9-byte name): obj_inv, and no name to trust.
    decoded = _event_of(vector("t/40decode-object-inv.t", 16)["packet"], FAP_NOW)
    assert (decoded.kind, decoded.unit, decoded.position) == (Kind.STATUS, "aprs:OH2KKU-1", None)
    assert decoded.detail["type"] == "object" and "name" not in decoded.detail
    assert decoded.detail["error"].startswith("obj_inv")
    assert "Kaupinmaenpolku9" in decoded.detail["text"]


def test_positionless_weather_is_a_status_with_the_weather() -> None:
    # FAP t/30: "_12032359c180s001g002t033r010p040P080b09860h98Os010L500"
    decoded = _event_of(vector("t/30decode-wx-basic.t", 116)["packet"], FAP_NOW)
    assert (decoded.kind, decoded.unit, decoded.position) == (Kind.STATUS, "aprs:JH9YVX", None)
    assert (decoded.detail["type"], decoded.detail["format"]) == ("weather", "positionless")
    weather = decoded.detail["weather"]
    assert weather["wind_direction"] == 180
    assert weather["temperature"] == pytest.approx((33 - 32) / 1.8)
    assert weather["pressure"] == pytest.approx(986.0)
    assert weather["humidity"] == 98
    assert weather["snow_24h"] == pytest.approx(254.0)  # 10 inches (APRS 1.01 ch 12)
    assert weather["luminosity"] == 500
    assert decoded.detail["timestamp"] == "12032359"  # December 3rd, 23:59: last year's, as FAP_NOW is November


@pytest.mark.parametrize(("line", "form"), [(14, "ultimeter_packet"), (58, "ultimeter_logging")])
def test_peet_bros_ultimeter_weather_is_a_status_with_the_weather(line: int, form: str) -> None:
    decoded = _event_of(vector("t/31decode-wx-ultw.t", line)["packet"], FAP_NOW)
    assert (decoded.kind, decoded.detail["type"], decoded.detail["format"]) == (Kind.STATUS, "weather", form)
    assert decoded.detail["weather"]["pressure"] > 1000


def test_peet_bros_u2_weather_is_kept_as_sent() -> None:
    # APRS 1.01 ch 12's examples; the spec draws no layout for them, so no fields are guessed.
    for info in ("#50B7500820082", "*7007600000000"):
        decoded = _event_of(f"N0CALL>APRS:{info}")
        assert decoded.kind is Kind.STATUS
        assert (decoded.detail["type"], decoded.detail["format"]) == ("weather", "peet_bros_u2")
        assert decoded.detail["text"] == info[1:] and decoded.detail["weather"] == {}


def test_weather_with_a_position_is_a_beacon() -> None:
    decoded = _event_of(vector("t/30decode-wx-basic.t", 14)["packet"], FAP_NOW)
    assert decoded.kind is Kind.BEACON and decoded.position is not None
    assert decoded.detail["weather"]["wind_direction"] == 150


def test_telemetry_and_its_metadata_are_statuses() -> None:
    report = _event_of("N0CALL-11>APRS:T#005,199,000,255,073,123,01101001 balloon")
    assert (report.kind, report.detail["type"], report.detail["sequence"]) == (Kind.STATUS, "telemetry", 5)
    assert report.detail["values"] == [199, 0, 255, 73, 123]
    assert (report.detail["bits"], report.detail["comment"]) == ("01101001", "balloon")
    parm = _event_of("N0CALL-11>APRS::N0CALL-11:PARM.Battery,Btemp,ATemp,Pres,Alt,Camra,Chut,Sun,10m,ATV")
    assert (parm.detail["type"], parm.detail["station"]) == ("telemetry_parameters", "N0CALL-11")
    assert parm.detail["names"][:2] == ["Battery", "Btemp"] and len(parm.detail["names"]) == 10
    unit = _event_of("N0CALL-11>APRS::N0CALL-11:UNIT.v/100,deg.F,deg.F,Mbar,Kft,Click,OPEN,on,on,hi")
    assert (unit.detail["type"], unit.detail["names"][0]) == ("telemetry_units", "v/100")
    eqns = _event_of("N0CALL-11>APRS::N0CALL-11:EQNS.0,5.2,0,0,.53,-32,3,4.39,49,-32,3,18,1,2,3")
    assert eqns.detail["type"] == "telemetry_equations"
    assert eqns.detail["coefficients"][:6] == [0, 5.2, 0, 0, 0.53, -32] and len(eqns.detail["coefficients"]) == 15
    bits = _event_of("N0CALL-11>APRS::N0CALL-11:BITS.10110000,N0CALL's Big Balloon")
    assert (bits.detail["type"], bits.detail["bits"], bits.detail["project"]) == (
        "telemetry_bits", "10110000", "N0CALL's Big Balloon")
    assert all(e.unit == "aprs:N0CALL-11" for e in (report, parm, unit, eqns, bits))


def test_queries_capabilities_and_test_frames_are_statuses() -> None:
    query = _event_of("BG5ABC-9>APRS:?APRS? 34.02,-117.15,0200")
    assert (query.kind, query.detail["type"], query.detail["query"]) == (Kind.STATUS, "query", "APRS")
    assert query.detail["footprint"] == {"lat": 34.02, "lon": -117.15, "radius_miles": 200}
    assert _event_of("BG5ABC-9>APRS:?IGATE?").detail["query"] == "IGATE"
    directed = _event_of("BG5ABC-9>APRS::BG5XYZ   :?APRSP")
    assert (directed.detail["type"], directed.detail["query"]) == ("message", "APRSP")
    capabilities = _event_of("BG5GW>APRS:<IGATE,MSG_CNT=13,LOC_CNT=54")
    assert capabilities.detail["capabilities"] == {"IGATE": None, "MSG_CNT": "13", "LOC_CNT": "54"}
    # gen_packets' own test frames are "," frames: "invalid data or test data" (APRS 1.01 ch 5)
    test = _event_of("WB2OSZ-15>TEST:,The quick brown fox jumps over the lazy dog!  0001 of 0100")
    assert (test.kind, test.detail["type"]) == (Kind.STATUS, "test")
    assert test.detail["text"] == "The quick brown fox jumps over the lazy dog!  0001 of 0100"


def test_user_defined_and_experimental_data() -> None:
    decoded = _event_of("BG5ABC-9>APRS:{Q1qwerty")
    detail = decoded.detail
    assert (detail["type"], detail["user_id"], detail["packet_type"]) == ("user_defined", "Q", "1")
    assert decoded.detail["text"] == "qwerty"
    experimental = _event_of("BG5ABC-9>APRS:{{:experimental")  # FAP t/10: exp_unsupp
    assert (experimental.kind, experimental.detail["type"]) == (Kind.STATUS, "experimental")
    assert experimental.detail["error"].startswith("exp_unsupp")


def test_a_dx_spot() -> None:
    decoded = _event_of("BG5ABC-9>APRS:DX de BG5XYZ: 14025.0 JA1ABC CW 599 1502z")
    assert (decoded.kind, decoded.detail["type"], decoded.detail["spotter"]) == (Kind.STATUS, "dx_spot", "BG5XYZ")
    assert (decoded.detail["frequency_khz"], decoded.detail["dx_call"]) == (14025.0, "JA1ABC")


def test_third_party_traffic_is_the_event_of_the_packet_inside() -> None:
    # An IGate relays a Mic-E emergency heard on the Internet: the alert is the original station's.
    decoded = _event_of("BG5GW>APRS,WIDE2-1:}BG5ABC-7>301RU7,TCPIP,BG5GW*:`0(\\lNv>/")
    assert (decoded.kind, decoded.unit) == (Kind.ALERT, "aprs:BG5ABC-7")
    assert decoded.detail["destination"] == "301RU7" and decoded.detail["path"] == ["TCPIP", "BG5GW*"]
    assert decoded.detail["third_party"] == {"sender": "BG5GW", "destination": "APRS", "path": ["WIDE2-1"]}
    assert decoded.detail["raw"].startswith("BG5GW>APRS,WIDE2-1:}BG5ABC-7>")
    broken = _event_of("BG5GW>APRS:}no header here")
    assert (broken.kind, broken.unit, broken.detail["type"]) == (Kind.STATUS, "aprs:BG5GW", "third_party")
    assert broken.detail["error"].startswith("third_party_inv")


def test_what_is_not_aprs_is_a_status_with_the_reason() -> None:
    # FAP t/52: a UIDIGI beacon, which FAP refuses without a code; here a status says what it is.
    decoded = _event_of(vector("t/52decode-beacon.t", 16)["packet"], FAP_NOW)
    assert (decoded.kind, decoded.unit, decoded.detail["type"]) == (Kind.STATUS, "aprs:OH2RDU", "unknown")
    assert decoded.detail["text"] == " UIDIGI 1.9"
    assert decoded.detail["error"].startswith("type_not_supported")
    bad = _event_of("N0CALL>APRS:!60ff.51N/0250akh3r99hfae")  # a position that is none
    assert (bad.kind, bad.detail["type"], bad.detail["data_type"]) == (Kind.STATUS, "position", "!")
    assert bad.detail["error"].startswith("loc_inv")
    empty = _event_of("N0CALL>APRS:")
    assert (empty.detail["type"], empty.detail["text"]) == ("empty", "")


def test_raw_gps_gga_and_gll_are_positions() -> None:
    gga = _event_of("N0CALL-9>GPS:$GPGGA,192929,3012.5700,N,12012.6400,E,1,08,0.9,45.2,M,7.1,M,,*4E")
    assert gga.kind is Kind.BEACON and gga.position is not None
    assert (gga.position.lat, gga.position.lon, gga.position.alt_m) == pytest.approx((30.2095, 120.2106667, 45.2))
    assert gga.position.fix_time == datetime(2026, 11, 26, 19, 29, 29, tzinfo=UTC)
    gll = _event_of("N0CALL-9>GPS:$GPGLL,3012.5700,N,12012.6400,E,192929,A*22")
    assert gll.kind is Kind.BEACON and gll.position is not None
    nofix = _event_of("N0CALL-9>GPS:$GPGGA,192929,3012.5700,N,12012.6400,E,0,00,,,M,,M,,*55")
    assert (nofix.kind, nofix.detail["type"]) == (Kind.STATUS, "nmea")
    assert nofix.detail["error"].startswith("gpgga_nofix")


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("LEADER", "aprs:LEADER"),
        ("SRAL HQ  ", "aprs:SRAL_HQ"),
        ("A/B#C+D", "aprs:A_B_C_D"),
        ("到达现场", "aprs:到达现场"),  # printable: kept
        ("tab\there", "aprs:tab_here"),
        ("         ", None),
    ],
)
def test_object_units_use_the_unit_alphabet(name: str, unit: str | None) -> None:
    assert aprs.object_unit(name) == unit
    if unit is not None:
        assert is_unit(unit)


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
        (b"$GPGGA,1,2,3", ErrorCode.GPGGA_FEWFIELDS),
        (b"$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48", ErrorCode.NMEA_UNSUPPORTED),
        (b"$GPRMC,145526,V,3349.0378,N,08406.2617,W,23.726,27.9,121207,4.9,W*6D", ErrorCode.GPRMC_NOFIX),
        (b"$GPRMC,145526,A,3349.0378,N,08406.2617,W,23.726,27.9,121207,4.9,W*00", ErrorCode.NMEA_INV_CKSUM),
        (b"}", ErrorCode.THIRD_PARTY_INV),
        (b"_1203", ErrorCode.WX_UNSUPP),
        (b"_13032359c180s001g002t033", ErrorCode.WX_UNSUPP),  # month 13
        (b"$ULTWnothex", ErrorCode.WX_UNSUPP),
        (b"{{experimental", ErrorCode.EXP_UNSUPPORTED),
        (b"N0CALL/R", ErrorCode.TYPE_NOT_SUPPORTED),
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
    st.sampled_from([b"!", b"=", b"/", b"@", b"`", b"'", b">", b":", b";", b")", b"T", b"$", b"_", b"{", b"}", b"?",
                     b"<", b",", b"#", b"*", b"!!", b"$ULTW", b"T#", b"DX de ", b":N0CALL-9 :PARM.", b"$GPGGA,"]),
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
    # The whole path of a received frame: always an event, and one that the wire takes.
    frame = _frame("N0CALL-9", destination, info)
    Event.stamp(aprs.frame_event(frame, NOW), seq=1, gateway="gw", channel="ch")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFabcdef.- cspgtrPhbLl#_/!O-", max_size=70))
def test_any_weather_data_is_read_or_refused_and_its_event_taken(body: str) -> None:
    # Garbage in the four weather forms: each is a WeatherReport (or a position), or an AprsError.
    for info in (f"_11261929c{body}", f"!3012.57N/12012.64E_{body}", f"$ULTW{body}", f"!!{body}", f"#{body}"):
        try:
            aprs.parse(info.encode(), source="N0CALL", destination="APRS", now=NOW)
        except AprsError as exc:
            assert exc.code in set(ErrorCode)
        Event.stamp(aprs.frame_event(_frame("N0CALL", "APRS", info.encode()), NOW), seq=1, gateway="gw", channel="ch")


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
