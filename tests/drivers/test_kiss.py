"""KISS framing and the KISS -> AX.25 -> events decoder: any split of the stream, garbage, escapes, ports,
every UI frame an event, connected-mode frames named, a real packet network's KISS link and routing
broadcasts, and a real Dire Wolf TNC decoding AFSK audio made by its own gen_packets."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st
from support import DireWolf, afsk_audio

from drivers import registry
from drivers.ax25 import encode_ui
from drivers.base import Output, Rejected
from drivers.kiss import (
    FEND,
    FESC,
    MAX_FRAME,
    TFEND,
    TFESC,
    KissAprsDecoder,
    KissError,
    KissFrame,
    KissFramer,
    frame_to_output,
    kiss_encode,
)
from gateway.events import Decoded, Event, Kind, decode_event, encode_event

NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)


def ui(source: str, info: bytes, destination: str = "APDW16", path: Sequence[str] = ("WIDE1-1",)) -> bytes:
    return encode_ui(source, destination, info, path)


# A morning on the patrol channel: beacons, a Mic-E emergency, a status, a message, one object.
GOOD_FRAMES = [
    ui("BG5ABC-9", b"!3012.57N/12012.64E>090/010/A=000100 patrol 1"),
    ui("BG5ABC-7", b"`0(\\lNv>/", destination="301RU7"),  # Mic-E, message bits 000: emergency
    ui("BG5XYZ", b"=3012.00N/12011.00E-PHG2360 base"),
    ui("BG5ABC-9", b">On patrol, sector 4"),
    ui("BG5ABC-9", b":DISPATCH :Need backup at gate 3{17"),
    ui("BG5ABC-9", b"!/5L!!<*e7>7P[ compressed"),
]
GOOD_UNITS = ["aprs:BG5ABC-9", "aprs:BG5ABC-7", "aprs:BG5XYZ", "aprs:BG5ABC-9", "aprs:BG5ABC-9", "aprs:BG5ABC-9"]
GOOD_KINDS = [Kind.BEACON, Kind.ALERT, Kind.BEACON, Kind.STATUS, Kind.STATUS, Kind.BEACON]
STREAM = b"".join(kiss_encode(f) for f in GOOD_FRAMES)


def feed_in_pieces(decoder: KissAprsDecoder, data: bytes, cuts: Sequence[int]) -> list[Output]:
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    out: list[Output] = []
    for lo, hi in itertools.pairwise(edges):
        out += decoder.feed(data[lo:hi], NOW)
    return out


def decoded(out: Sequence[Output]) -> list[Decoded]:
    return [o for o in out if isinstance(o, Decoded)]


def rejected(out: Sequence[Output]) -> list[Rejected]:
    return [o for o in out if isinstance(o, Rejected)]


# --- framing ---------------------------------------------------------------------------------


def test_escapes_on_the_wire() -> None:
    data = bytes([0x01, FEND, 0x02, FESC, 0x03])
    assert kiss_encode(data, port=2) == bytes([FEND, 0x20, 0x01, FESC, TFEND, 0x02, FESC, TFESC, 0x03, FEND])
    assert KissFramer().feed(kiss_encode(data, port=2)) == [KissFrame(port=2, command=0, data=data)]


@given(st.lists(st.tuples(st.integers(0, 15), st.binary(min_size=0, max_size=300)), max_size=6), st.data())
def test_framer_round_trip_at_any_split(frames: list[tuple[int, bytes]], data: st.DataObject) -> None:
    stream = b"".join(kiss_encode(payload, port) for port, payload in frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    framer = KissFramer()
    edges = [0, *sorted(cuts), len(stream)]
    out = list(itertools.chain.from_iterable(framer.feed(stream[lo:hi]) for lo, hi in itertools.pairwise(edges)))
    assert out == [KissFrame(port, 0, payload) for port, payload in frames]


def test_repeated_fends_are_empty_frames_and_ignored() -> None:
    framer = KissFramer()
    assert framer.feed(bytes([FEND] * 5) + kiss_encode(b"abc")[1:] + bytes([FEND] * 3)) == [KissFrame(0, 0, b"abc")]


def test_bytes_before_the_first_fend_are_reported() -> None:
    framer = KissFramer()
    assert framer.feed(b"tail of a frame" + kiss_encode(b"abc")) == [
        KissError("bytes before the first FEND", b"tail of a frame"),
        KissFrame(0, 0, b"abc"),
    ]


def test_broken_escapes_are_reported_and_the_next_frame_survives() -> None:
    framer = KissFramer()
    bad = bytes([FEND, 0x00, 0x41, FESC, 0x42, FEND])
    dangling = bytes([FEND, 0x00, 0x41, FESC, FEND])
    out = framer.feed(bad + dangling + kiss_encode(b"ok"))
    assert [type(o) for o in out] == [KissError, KissError, KissFrame]
    assert out[2] == KissFrame(0, 0, b"ok")


def test_overlong_frame_is_dropped_once_and_the_stream_resyncs() -> None:
    framer = KissFramer()
    stream = bytes([FEND]) + b"\x00" + b"x" * (3 * MAX_FRAME) + kiss_encode(b"ok")
    whole = framer.feed(stream)
    assert [type(o) for o in whole] == [KissError, KissFrame]
    assert isinstance(whole[0], KissError) and len(whole[0].raw) == MAX_FRAME + 1
    bytewise = KissFramer()
    assert [o for b in stream for o in bytewise.feed(bytes([b]))] == whole


# --- the decoder -----------------------------------------------------------------------------


def test_decoder_is_registered_under_kiss() -> None:
    decoder = registry.create_protocol("kiss", {"ports": [0, 1]})
    assert isinstance(decoder, KissAprsDecoder)
    with pytest.raises(ValueError, match="ports"):
        registry.create_protocol("kiss", {"ports": [16]})
    with pytest.raises(ValueError, match="ports"):
        registry.create_protocol("kiss", {"ports": "0"})
    with pytest.raises(ValueError, match="baud"):
        registry.create_protocol("kiss", {"baud": 1200})


def test_whole_stream() -> None:
    out = KissAprsDecoder().feed(STREAM, NOW)
    assert not rejected(out)
    events = decoded(out)
    assert [e.unit for e in events] == GOOD_UNITS
    assert [e.kind for e in events] == GOOD_KINDS
    assert all(e.detail["kiss_port"] == 0 and e.detail["protocol"] == "aprs" for e in events)
    assert all(e.time == NOW for e in events)
    alert = events[1]
    assert alert.position is not None
    assert (alert.position.lat, alert.position.lon) == pytest.approx((30.2095, 120.2106667))
    assert alert.position.speed_mps == pytest.approx(5 * 1852 / 3600)


def test_events_pass_the_wire_schema() -> None:
    # What the gateway will publish must be what a bridge accepts: unit format, ranges, JSON detail.
    for seq, event in enumerate(decoded(KissAprsDecoder().feed(STREAM, NOW))):
        stamped = Event.stamp(event, seq=seq, gateway="test-gw", channel="patrol-1")
        assert decode_event(encode_event(stamped)) == stamped


def test_byte_at_a_time_equals_whole() -> None:
    whole = KissAprsDecoder().feed(STREAM, NOW)
    decoder = KissAprsDecoder()
    assert [o for b in STREAM for o in decoder.feed(bytes([b]), NOW)] == whole


@given(st.lists(st.integers(min_value=0), max_size=40))
def test_random_splits_equal_whole(cuts: list[int]) -> None:
    assert feed_in_pieces(KissAprsDecoder(), STREAM, cuts) == KissAprsDecoder().feed(STREAM, NOW)


garbage_without_fend = st.binary(min_size=1, max_size=2 * MAX_FRAME).map(lambda b: b.replace(bytes([FEND]), b""))


@settings(max_examples=200)
@given(st.lists(garbage_without_fend, min_size=len(GOOD_FRAMES) + 1, max_size=len(GOOD_FRAMES) + 1), st.data())
def test_garbage_between_frames(garbage: list[bytes], data: st.DataObject) -> None:
    # Garbage before the first frame, between frames and after the last: every good frame decodes,
    # every non-empty run of garbage is one Rejected, nothing raises.
    parts = [garbage[0]]
    for frame, junk in zip(GOOD_FRAMES, garbage[1:], strict=True):
        parts += [kiss_encode(frame), junk]
    stream = b"".join(parts) + bytes([FEND])
    cuts = data.draw(st.lists(st.integers(min_value=0), max_size=20))
    out = feed_in_pieces(KissAprsDecoder(), stream, cuts)
    assert [e.unit for e in decoded(out)] == GOOD_UNITS
    assert len(rejected(out)) == sum(1 for junk in garbage if junk)
    assert out == KissAprsDecoder().feed(stream, NOW)


@given(st.binary(max_size=3000))
def test_any_bytes_never_raise(data: bytes) -> None:
    decoder = KissAprsDecoder()
    for output in decoder.feed(data, NOW):
        assert isinstance(output, Decoded | Rejected)
    assert [e.unit for e in decoded(decoder.feed(STREAM, NOW))] == GOOD_UNITS


def test_fend_and_fesc_inside_an_aprs_frame() -> None:
    # 0xC0 and 0xDB in the info field (a Latin-1 comment holds such bytes) must come through escaped.
    info = "!3012.57N/12012.64E>À Û".encode("latin-1")
    assert bytes([FEND]) in info and bytes([FESC]) in info
    out = KissAprsDecoder().feed(kiss_encode(ui("BG5ABC-9", info)), NOW)
    assert decoded(out)[0].detail["comment"] == "À Û"


def test_rejections_say_why() -> None:
    stream = b"".join(
        [
            kiss_encode(b"\x82\xa0\xa4"),  # too short for AX.25
            kiss_encode(encode_ui("N0CALL", "APRS", b"x")[:14] + b"\x00\xf0x"),  # an I frame
            kiss_encode(encode_ui("N0CALL", "APRS", b"", control=0x3F, pid=None)),  # SABM
            kiss_encode(b"\x10", command=1),  # TXDELAY: not a data frame
        ]
    )
    reasons = [r.reason for r in rejected(KissAprsDecoder().feed(stream, NOW))]
    assert len(reasons) == 4
    assert "frame_short" in reasons[0]
    assert reasons[1].startswith("port 0: AX.25 I frame N0CALL>APRS (control 0x00: N(S)=0 N(R)=0 P/F=0, PID 0xf0)")
    assert "connected-mode" in reasons[1]
    assert reasons[2].startswith("port 0: AX.25 SABM frame N0CALL>APRS (control 0x3f: P/F=1)")
    assert reasons[3] == "port 0: command 1 (TXDELAY) is not a data frame"


def test_every_ui_frame_is_an_event() -> None:
    stream = b"".join(
        [
            kiss_encode(ui("N0CALL", b"hello, not APRS")),
            kiss_encode(ui("N0CALL", b"!60ff.51N/0250akh3r99hfae")),  # a position that is none
            kiss_encode(ui("N0CALL", b";LEADER   *092345z4903.50N/07201.75W>088/036")),  # an object
            kiss_encode(encode_ui("N0CALL", "APRS", b"x", pid=0xCF)),  # NET/ROM, but no routing broadcast
            kiss_encode(encode_ui("N0CALL", "APRS", b"\x45\x00", pid=0xCC)),  # IP
        ]
    )
    out = KissAprsDecoder().feed(stream, NOW)
    assert rejected(out) == []
    unknown, bad, leader, netrom, ip = decoded(out)
    assert (unknown.kind, unknown.detail["type"], unknown.detail["text"]) == (Kind.STATUS, "unknown", "hello, not APRS")
    assert (bad.kind, bad.detail["type"]) == (Kind.STATUS, "position") and "loc_inv" in bad.detail["error"]
    assert (leader.kind, leader.unit, leader.detail["sender"]) == (Kind.BEACON, "aprs:LEADER", "N0CALL")
    assert (netrom.detail["protocol"], netrom.detail["pid"], netrom.detail["pid_name"]) == ("ax25", 0xCF, "NET/ROM")
    assert (ip.kind, ip.unit, ip.detail["pid_name"], ip.detail["text"]) == (
        Kind.STATUS, "aprs:N0CALL", "ARPA Internet Protocol", "E<0x00>")
    for event in decoded(out):
        decode_event(encode_event(Event.stamp(event, seq=1, gateway="gw", channel="ch")))


# --- real traffic of a TARPN packet network (mumrah/JNC, Apache-2.0; tests/data/ax25/SOURCES.md) ---------

AX25_DATA = Path(__file__).resolve().parents[1] / "data" / "ax25"
TARPN = json.loads((AX25_DATA / "tarpn-truth.json").read_text())


def _call(text: str) -> str:
    return text.removesuffix("-0")


@pytest.mark.parametrize("name", sorted(TARPN["binary_frames"]))
def test_tarpn_routing_broadcasts_name_their_routes(name: str) -> None:
    truth = TARPN["binary_frames"][name]
    out = frame_to_output((AX25_DATA / name).read_bytes(), NOW, "kiss")
    assert isinstance(out, Decoded) and out.kind is Kind.STATUS
    assert (out.unit, out.detail["destination"]) == (f"aprs:{truth['src']}", truth["dest"])
    assert (out.detail["protocol"], out.detail["type"], out.detail["mnemonic"]) == (
        "netrom", "nodes", truth["mnemonic"].rstrip())
    routes = [(r["callsign"], r["mnemonic"], r["neighbour"], r["quality"]) for r in out.detail["routes"]]
    # The author's decoded tables (TARPN.md) leave out the one entry with a blank callsign each
    # broadcast carries, and show a mnemonic byte 0xAE as "?".
    tables = TARPN["tarpn_md_decoded_routing_tables"]
    table = next((rows for key, rows in tables.items() if key.startswith(name)), None)
    if table is not None:
        expected = [(_call(c), m.replace("?", "<0xae>"), _call(n), q) for c, m, n, q in table]
        assert [r for r in routes if r[0]] == expected
    assert all(r[0] or r[1] == "" for r in routes)


@pytest.mark.parametrize("name", sorted(TARPN["kiss_streams"]))
def test_tarpn_kiss_link_every_frame_accounted_for(name: str) -> None:
    # A LinBPQ node and JNC over a KISS serial link: parameter commands, NODES broadcasts, ID beacons and
    # a connection. Every UI frame is an event, every other frame a rejection naming what it is.
    out = KissAprsDecoder().feed((AX25_DATA / name).read_bytes(), NOW)
    truth = TARPN["kiss_streams"][name]
    assert len(out) == len(truth) == 39
    kinds: Counter[str] = Counter()
    for item, frame in zip(out, truth, strict=True):
        if frame["kiss_cmd"] != 0:
            assert isinstance(item, Rejected) and f"command {frame['kiss_cmd']} (" in item.reason
            kinds["command"] += 1
        elif frame["control"] == "0x03":
            assert isinstance(item, Decoded) and item.kind is Kind.STATUS
            assert (item.unit, item.detail["destination"]) == (f"aprs:{frame['src']}", frame["dest"])
            kinds["nodes" if frame["pid"] == "0xcf" else "id"] += 1
        else:
            assert isinstance(item, Rejected)
            header = f"{frame['src']}>{frame['dest']} (control {frame['control']}"
            assert header in item.reason and "connected-mode" in item.reason, item.reason
            kinds["connected"] += 1
    assert kinds["nodes"] == 2 and kinds["id"] == 1 and kinds["command"] == 10
    beacon = next(i for i in out if isinstance(i, Decoded) and i.detail["destination"] == "ID")
    assert beacon.detail["text"].startswith("Terrestrial Amateur Radio Packet Network node DAVID1")


def test_ports_option_filters_and_detail_names_the_port() -> None:
    stream = kiss_encode(GOOD_FRAMES[0], port=0) + kiss_encode(GOOD_FRAMES[2], port=3)
    all_ports = decoded(KissAprsDecoder().feed(stream, NOW))
    assert [(e.unit, e.detail["kiss_port"]) for e in all_ports] == [("aprs:BG5ABC-9", 0), ("aprs:BG5XYZ", 3)]
    only_3 = KissAprsDecoder(ports=[3]).feed(stream, NOW)
    assert [(e.unit, e.detail["kiss_port"]) for e in decoded(only_3)] == [("aprs:BG5XYZ", 3)]
    assert not rejected(only_3)


# --- a real TNC: Dire Wolf -------------------------------------------------------------------

DIREWOLF_PACKETS = [
    b"BG5ABC-9>APDW16,WIDE1-1:!3012.57N/12012.64E>090/010/A=000100 patrol 1",
    b"BG5ABC-7>301RU7,WIDE1-1,WIDE2-1:`0(\\lNv>/",  # Mic-E emergency
    b"BG5XYZ-12>APDW16:@261929z3011.00N/12013.50E>180/005",
    b"BG5ABC-9>APDW16::DISPATCH :Need backup at gate 3{17",
    b"N0CALL>ID:N0CALL/R",  # a station identification: AX.25 but not APRS
]
SAMPLE_RATE = 44100


@pytest.mark.direwolf
@pytest.mark.timeout(30)
def test_direwolf_kiss_tcp(tmp_path: Path) -> None:
    tnc = DireWolf(tmp_path, SAMPLE_RATE)
    audio = afsk_audio(DIREWOLF_PACKETS, tmp_path, SAMPLE_RATE)
    tnc.start()
    out: list[Output] = []
    try:
        link = serial.serial_for_url(tnc.url, timeout=0.1)
        try:
            tnc.play(audio)
            decoder = KissAprsDecoder(ports=[0])
            deadline = time.monotonic() + 10
            while len(out) < len(DIREWOLF_PACKETS) and time.monotonic() < deadline:
                out += decoder.feed(link.read(4096), datetime.now(UTC))
        finally:
            link.close()
    finally:
        tnc.stop()
    transcript = (tmp_path / f"direwolf-{tnc.port}.log").read_text(errors="replace")
    events = decoded(out)
    assert [(e.kind, e.unit) for e in events] == [
        (Kind.BEACON, "aprs:BG5ABC-9"),
        (Kind.ALERT, "aprs:BG5ABC-7"),
        (Kind.BEACON, "aprs:BG5XYZ-12"),
        (Kind.STATUS, "aprs:BG5ABC-9"),
        (Kind.STATUS, "aprs:N0CALL"),
    ], transcript
    beacon, alert, moving, message, _ = events
    assert beacon.position is not None and alert.position is not None and moving.position is not None
    assert (beacon.position.lat, beacon.position.lon) == pytest.approx((30.2095, 120.2106667))
    assert beacon.position.alt_m == pytest.approx(30.48)
    assert beacon.position.course_deg == 90.0
    assert beacon.position.speed_mps == pytest.approx(10 * 1852 / 3600)
    assert beacon.detail["path"] == ["WIDE1-1"]
    assert beacon.detail["raw"] == DIREWOLF_PACKETS[0].decode()
    assert alert.detail["mic_e_message"] == "emergency"
    assert (alert.position.lat, alert.position.lon) == pytest.approx((30.2095, 120.2106667))
    assert (moving.position.lat, moving.position.lon) == pytest.approx((30 + 11 / 60, 120 + 13.5 / 60))
    assert moving.position.course_deg == 180.0
    assert message.detail["text"] == "Need backup at gate 3"
    assert all(e.detail["kiss_port"] == 0 for e in events)
    identification = decoded(out)[-1]
    assert (identification.kind, identification.unit, identification.detail["type"]) == (
        Kind.STATUS, "aprs:N0CALL", "unknown")
    assert rejected(out) == []
