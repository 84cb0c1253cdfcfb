"""The declarative frame-spec decoder: framing, checksums, fields, rules, spec errors, stream behaviour.

Frames are built here by small encoders that know the wire formats on their own (the CRC reference below
is the textbook bit-by-bit algorithm, not the decoder's table), so a test fails if the decoder and the
spec disagree with the wire, not only with themselves.
"""

from __future__ import annotations

import binascii
import copy
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from itertools import pairwise
from operator import xor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import registry
from drivers.base import Output, Rejected
from drivers.framespec import CHECKSUMS, CRC16, FrameSpecDecoder, FrameSpecError, load_spec
from gateway.events import Decoded, Kind

NOW = datetime(2026, 11, 26, 19, 30, 1, 123000, tzinfo=UTC)
SPECS = Path(__file__).resolve().parents[2] / "config" / "framespecs"
DATA = Path(__file__).resolve().parents[1] / "data"
CHECK_INPUT = b"123456789"

# --- independent references --------------------------------------------------------------------

# The CRC catalogue (https://reveng.sourceforge.io/crc-catalogue/16.htm), written out again here:
# name: (poly, init, refin, refout, xorout, check)
CATALOGUE: dict[str, tuple[int, int, bool, bool, int, int]] = {
    "crc16-ccitt-false": (0x1021, 0xFFFF, False, False, 0x0000, 0x29B1),  # CRC-16/IBM-3740
    "crc16-xmodem": (0x1021, 0x0000, False, False, 0x0000, 0x31C3),
    "crc16-kermit": (0x1021, 0x0000, True, True, 0x0000, 0x2189),
    "crc16-modbus": (0x8005, 0xFFFF, True, True, 0x0000, 0x4B37),
    "crc16-ibm": (0x8005, 0x0000, True, True, 0x0000, 0xBB3D),  # CRC-16/ARC
    "crc16-x25": (0x1021, 0xFFFF, True, True, 0xFFFF, 0x906E),  # CRC-16/IBM-SDLC
}


def _reflect(value: int, bits: int) -> int:
    return int(f"{value:0{bits}b}"[::-1], 2)


def crc16_reference(data: bytes, poly: int, init: int, refin: bool, refout: bool, xorout: int) -> int:
    """Bit by bit, most significant bit first, reflecting bytes in and the register out as asked."""
    crc = init
    for byte in data:
        crc ^= (_reflect(byte, 8) if refin else byte) << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    if refout:
        crc = _reflect(crc, 16)
    return crc ^ xorout


def reference_checksum(kind: str, data: bytes) -> int:
    if kind == "xor":
        return reduce(xor, data, 0)
    if kind == "sum8":
        return sum(data) % 256
    if kind == "sum8-twos":
        return (256 - sum(data) % 256) % 256
    poly, init, refin, refout, xorout, _ = CATALOGUE[kind]
    return crc16_reference(data, poly, init, refin, refout, xorout)


def modbus_crc(data: bytes) -> int:
    return reference_checksum("crc16-modbus", data)


# --- helpers -------------------------------------------------------------------------------------


def feed_whole(decoder: FrameSpecDecoder, data: bytes) -> list[Output]:
    return decoder.feed(data, NOW)


def feed_bytewise(decoder: FrameSpecDecoder, data: bytes) -> list[Output]:
    out: list[Output] = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1], NOW)
    return out


def feed_split(decoder: FrameSpecDecoder, data: bytes, cuts: Sequence[int]) -> list[Output]:
    out: list[Output] = []
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for lo, hi in pairwise(edges):
        out += decoder.feed(data[lo:hi], NOW)
    return out


def decoded(out: Sequence[Output]) -> list[Decoded]:
    return [item for item in out if isinstance(item, Decoded)]


def rejected(out: Sequence[Output]) -> list[Rejected]:
    return [item for item in out if isinstance(item, Rejected)]


def raw_of(item: Output) -> bytes:
    return item.raw if isinstance(item, Rejected) else bytes.fromhex(item.detail["raw"])


def load_example(name: str) -> dict[str, Any]:
    with (SPECS / f"{name}.toml").open("rb") as f:
        return tomllib.load(f)


def make(spec: dict[str, Any], **changes: Any) -> FrameSpecDecoder:
    return FrameSpecDecoder(**{**spec, **changes})


# --- example boxes and their encoders ------------------------------------------------------------

PB8 = load_example("anvil-pb8")
AP16 = load_example("keystone-ap16")


def pb8_frame(box_id: int, zone: int, event: int, flags: int = 0, *, crc: int | None = None) -> bytes:
    body = bytes([5]) + box_id.to_bytes(2, "big") + bytes([zone, event, flags])
    return b"\xaa\x55" + body + (modbus_crc(body) if crc is None else crc).to_bytes(2, "little")


def ap16_frame(code: str, zone: int, partition: int, *, width: int = 4, bcc_flip: int = 0) -> bytes:
    body = f"{code},{zone:0{width}d},{partition}".encode() + b"\x03"
    return b"\x02" + body + bytes([reduce(xor, body, 0) ^ bcc_flip]) + b"\r\n"


# Two specs of no vendor's, shared with the fuzz harness: a plain line protocol ("P,12\r\n") and fixed
# 5-byte frames with no start byte at all (resync by sliding).
LINES: dict[str, Any] = tomllib.loads((DATA / "framespecs" / "lines.toml").read_text())
BARE: dict[str, Any] = tomllib.loads((DATA / "framespecs" / "bare.toml").read_text())


def bare_frame(box: int, event: int, value: int) -> bytes:
    body = bytes([box, event]) + value.to_bytes(2, "big", signed=True)
    return body + bytes([(-sum(body)) & 0xFF])


# --- checksums -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_crc16_has_the_catalogue_parameters_and_check_value(name: str) -> None:
    poly, init, refin, refout, xorout, check = CATALOGUE[name]
    crc = CRC16[name]
    assert (crc.poly, crc.init, crc.refin, crc.refout, crc.xorout) == (poly, init, refin, refout, xorout)
    assert crc.check == check
    assert crc(CHECK_INPUT) == check
    assert crc16_reference(CHECK_INPUT, poly, init, refin, refout, xorout) == check


@pytest.mark.parametrize(("name", "check"), [("xor", 0x31), ("sum8", 0xDD), ("sum8-twos", 0x23)])
def test_byte_checksums_of_the_check_input(name: str, check: int) -> None:
    assert CHECKSUMS[name].compute(CHECK_INPUT) == check
    assert CHECKSUMS[name].size == 1


@given(st.binary(max_size=64))
def test_crc16_tables_agree_with_the_bitwise_reference(data: bytes) -> None:
    for name in CATALOGUE:
        assert CRC16[name](data) == reference_checksum(name, data), name
    # and with the standard library's CRC-CCITT (MSB first, any init)
    assert CRC16["crc16-xmodem"](data) == binascii.crc_hqx(data, 0)
    assert CRC16["crc16-ccitt-false"](data) == binascii.crc_hqx(data, 0xFFFF)


@pytest.mark.parametrize("kind", ["none", *sorted(CHECKSUMS)])
@pytest.mark.parametrize("endian", ["big", "little"])
def test_each_checksum_type_accepts_good_and_rejects_bad_frames(kind: str, endian: str) -> None:
    size = CHECKSUMS[kind].size if kind != "none" else 0
    checksum = {"type": kind} if kind == "none" else {"type": kind, "from": 1, "endian": endian}
    dec = FrameSpecDecoder(
        spec="t",
        framing={"start": "7E", "length": 5 + size},
        checksum=checksum,
        fields=[{"name": "payload", "type": "hex", "offset": 1, "size": 4}],
    )
    payload = bytes.fromhex("01a2b3c4")
    tail = reference_checksum(kind, payload).to_bytes(size, endian) if size else b""  # type: ignore[arg-type]
    good = b"\x7e" + payload + tail
    out = dec.feed(good, NOW)
    assert [d.detail["fields"] for d in decoded(out)] == [{"payload": "01a2b3c4"}]
    assert not rejected(out)
    if size:
        bad = b"\x7e" + bytes([payload[0] ^ 0x10]) + payload[1:] + tail
        out = dec.feed(bad + good, NOW)
        assert [r.raw for r in rejected(out)] == [bad]
        assert "checksum mismatch" in rejected(out)[0].reason
        assert len(decoded(out)) == 1


def test_checksum_sent_as_ascii_hex_digits() -> None:
    # "$PANIC,12*hh\r\n": XOR of the bytes between "$" and "*", as two hex digits (NMEA-like).
    dec = FrameSpecDecoder(
        spec="ascii-hex",
        framing={"start": "24", "end": "0D 0A"},
        checksum={"type": "xor", "from": 1, "to": -5, "at": -4, "encoding": "ascii-hex"},
        tokens={"separator": ",", "from": 1, "to": -5},
        fields=[{"name": "what", "type": "ascii", "token": 0}, {"name": "zone", "type": "decimal", "token": 1}],
    )
    body = b"PANIC,12"
    good = b"$" + body + b"*" + f"{reduce(xor, body, 0):02X}".encode() + b"\r\n"
    out = dec.feed(good + b"$PANIC,12*ZZ\r\n" + b"$PANIC,12*00\r\n" + good.lower().replace(b"panic", b"PANIC"), NOW)
    assert [d.detail["fields"] for d in decoded(out)] == [{"what": "PANIC", "zone": 12}] * 2
    assert [r.reason.split(":")[0] for r in rejected(out)] == ["checksum b'ZZ' is not hex digits", "checksum mismatch"]


# --- framing modes -------------------------------------------------------------------------------


def test_start_and_end_with_fixed_offsets() -> None:
    dec = FrameSpecDecoder(
        spec="stx-etx",
        framing={"start": "02", "end": "03"},
        fields=[
            {"name": "code", "type": "ascii", "offset": 1, "size": 1},
            {"name": "zone", "type": "decimal", "offset": 3, "size": 4},
            {"name": "partition", "type": "decimal", "offset": -2, "size": 1},
        ],
        unit="panel:{partition}-{zone:04d}",
    )
    out = dec.feed(b"\x02A,0012,3\x03", NOW)
    assert out == [
        Decoded(
            Kind.STATUS,
            NOW,
            unit="panel:3-0012",
            detail={
                "protocol": "framespec",
                "spec": "stx-etx",
                "fields": {"code": "A", "zone": 12, "partition": 3},
                "label": None,
                "raw": "02412c303031322c3303",
            },
        )
    ]


def test_start_end_and_trailer_example_panel() -> None:
    dec = FrameSpecDecoder(**AP16)
    frames = ap16_frame("P", 12, 3) + ap16_frame("A", 7, 1, width=1) + ap16_frame("R", 7, 1) + ap16_frame("X", 1, 2)
    out = dec.feed(frames, NOW)
    assert not rejected(out)  # the CR LF after each frame is idle fill
    assert [(d.kind, d.unit, d.detail["label"]) for d in out if isinstance(d, Decoded)] == [
        (Kind.ALERT, "alarm:p3-z12", "panic"),
        (Kind.ALERT, "alarm:p1-z7", "burglary alarm"),
        (Kind.STATUS, "alarm:p1-z7", "restore"),
        (Kind.STATUS, "alarm:p2-z1", None),  # no rule for code X: unmatched = "status"
    ]


def test_end_only_lines() -> None:
    dec = FrameSpecDecoder(**LINES)
    out = dec.feed(b"P,12\r\nS,3\r\n", NOW)
    assert [(d.kind, d.unit, d.detail["fields"]) for d in decoded(out)] == [
        (Kind.ALERT, "line:12", {"code": "P", "zone": 12}),
        (Kind.STATUS, "line:3", {"code": "S", "zone": 3}),
    ]


def test_end_only_overlong_line_is_rejected_and_the_next_line_decodes() -> None:
    dec = FrameSpecDecoder(**LINES)
    long_line = b"x" * 60 + b"\r\n"
    out = dec.feed(long_line + b"P,5\r\n", NOW)
    assert [d.unit for d in decoded(out)] == ["line:5"]
    assert len(rejected(out)) == 1
    assert rejected(out)[0].raw == long_line
    assert "no end marker 0d 0a within max_length 24" in rejected(out)[0].reason


def test_start_and_fixed_length() -> None:
    dec = FrameSpecDecoder(
        spec="fixed",
        framing={"start": "AA 55", "length": 6},
        checksum={"type": "sum8", "from": 2},
        fields=[{"name": "zone", "offset": 2, "size": 1}, {"name": "event", "offset": 3, "size": 1}],
        unit="box:{zone}",
        events=[{"when": {"event": 1}, "kind": "alert"}],
    )
    frame = b"\xaa\x55\x04\x01\x00\x05"
    out = dec.feed(b"\x00" + frame + frame[:4], NOW)
    assert [(d.kind, d.unit) for d in decoded(out)] == [(Kind.ALERT, "box:4")]
    assert [r.raw for r in rejected(out)] == [b"\x00"]
    assert dec.feed(frame[4:], NOW)[0] == decoded(out)[0]


def test_start_and_length_field_example_box() -> None:
    dec = FrameSpecDecoder(**PB8)
    stream = pb8_frame(0x0102, 3, 0x01) + pb8_frame(0x0102, 3, 0x20) + pb8_frame(0x0102, 3, 0x02, flags=0b11)
    out = dec.feed(stream, NOW)
    assert not rejected(out)
    assert [(d.kind, d.unit, d.detail["label"]) for d in decoded(out)] == [
        (Kind.ALERT, "panic:258-3", "panic button pressed"),
        (Kind.IO, "panic:258-3", "panic button released"),  # the heartbeat in between is ignored
    ]
    assert decoded(out)[1].detail["fields"] == {
        "box_id": 258,
        "zone": 3,
        "event": 2,
        "battery_low": 1,
        "mains_failed": 1,
    }


def test_length_field_out_of_bounds_is_rejected_then_resynchronised() -> None:
    dec = FrameSpecDecoder(**PB8)
    bad = b"\xaa\x55\xf0\x00\x01"  # says 0xF0 + 5 bytes, beyond max_length 32
    good = pb8_frame(7, 1, 0x01)
    out = dec.feed(bad + good, NOW)
    assert [r.raw for r in rejected(out)] == [bad]
    assert "length field says 240" in rejected(out)[0].reason
    assert [d.unit for d in decoded(out)] == ["panic:7-1"]


def test_truncated_frame_gives_way_to_the_frame_that_follows() -> None:
    dec = FrameSpecDecoder(**PB8)
    truncated = pb8_frame(7, 1, 0x01)[:6]
    out = dec.feed(truncated + pb8_frame(7, 2, 0x01), NOW)
    assert [r.raw for r in rejected(out)] == [truncated]
    assert [d.unit for d in decoded(out)] == ["panic:7-2"]


def test_length_field_without_start() -> None:
    dec = FrameSpecDecoder(
        spec="counted",
        framing={"length_field": {"offset": 0, "size": 2, "endian": "little", "adjust": 3}},
        checksum={"type": "xor"},
        fields=[{"name": "text", "type": "ascii", "offset": 2, "size": 3}],
    )

    def frame(text: bytes) -> bytes:
        body = len(text).to_bytes(2, "little") + text
        return body + bytes([reduce(xor, body, 0)])

    out = dec.feed(frame(b"abc") + frame(b"xyz"), NOW)
    assert [d.detail["fields"]["text"] for d in decoded(out)] == ["abc", "xyz"]


def test_fixed_length_without_start_slides_to_resynchronise() -> None:
    dec = FrameSpecDecoder(**BARE)
    garbage = b"\x10\x20\x30"
    stream = bare_frame(1, 2, -5) + garbage + bare_frame(2, 1, 300) + bare_frame(3, 1, 0)
    for out in (feed_whole(FrameSpecDecoder(**BARE), stream), feed_bytewise(dec, stream)):
        assert [(d.unit, d.detail["fields"]["value"]) for d in decoded(out)] == [
            ("bare:1", -5),
            ("bare:2", 300),
            ("bare:3", 0),
        ]
        assert [r.raw for r in rejected(out)] == [garbage]  # one report for the whole slide
        assert "checksum mismatch" in rejected(out)[0].reason


def test_start_and_end_overflow_resynchronises_at_the_next_start() -> None:
    dec = FrameSpecDecoder(**AP16)
    runaway = b"\x02" + b"A" * 80
    out = dec.feed(runaway + ap16_frame("P", 1, 1), NOW)
    assert [d.detail["label"] for d in decoded(out)] == ["panic"]
    assert b"".join(r.raw for r in rejected(out)) == runaway
    assert "no end marker 03 within max_length 40" in rejected(out)[0].reason


def test_long_noise_is_reported_in_bounded_pieces() -> None:
    dec = FrameSpecDecoder(**PB8)
    noise = bytes(range(0x20, 0x80)) * 10  # 960 bytes, no start sequence
    out = dec.feed(noise + pb8_frame(1, 1, 1), NOW)
    assert [len(r.raw) for r in rejected(out)] == [256, 256, 256, 192]
    assert b"".join(r.raw for r in rejected(out)) == noise
    assert rejected(out)[0].reason == "bytes outside any frame (no start sequence aa 55)"
    assert len(decoded(out)) == 1


def test_idle_bytes_between_frames_are_not_reported() -> None:
    dec = make(PB8, framing={**PB8["framing"], "idle": "FF 00"})
    out = dec.feed(b"\xff\x00\xff" + pb8_frame(1, 1, 1) + b"\xff\xff" + b"\x13\xff" + pb8_frame(1, 2, 1), NOW)
    assert [r.raw for r in rejected(out)] == [b"\x13\xff"]  # idle only counts before other noise
    assert len(decoded(out)) == 2


def test_incomplete_frame_is_rejected_after_the_timeout() -> None:
    dec = FrameSpecDecoder(**PB8)  # timeout_s = 0.5
    half = pb8_frame(9, 9, 1)[:5]
    assert dec.feed(b"\x42" + half, NOW) == []
    assert dec.tick(NOW + timedelta(seconds=0.4)) == []
    out = dec.tick(NOW + timedelta(seconds=0.5))
    assert [(r.reason, r.raw) for r in rejected(out)] == [
        ("bytes outside any frame (no start sequence aa 55)", b"\x42"),
        ("incomplete frame: nothing more for 0.5 s", half),
    ]
    assert dec.tick(NOW + timedelta(seconds=9)) == []
    assert [d.unit for d in decoded(dec.feed(pb8_frame(9, 9, 1), NOW))] == ["panic:9-9"]


def test_the_end_of_the_input_rejects_an_incomplete_frame_as_its_timeout_would() -> None:
    dec = FrameSpecDecoder(**PB8)
    half = pb8_frame(9, 9, 1)[:5]
    assert dec.feed(half, NOW) == []
    assert [(r.reason, r.raw) for r in rejected(dec.flush())] == [("incomplete frame: nothing more for 0.5 s", half)]
    assert dec.flush() == []


def test_without_timeout_tick_does_nothing() -> None:
    dec = FrameSpecDecoder(**FIELD_SPEC)
    dec.feed(b"\x00\xf0\x01", NOW)
    assert dec.tick(NOW + timedelta(hours=1)) == []


# --- fields --------------------------------------------------------------------------------------

FIELD_SPEC: dict[str, Any] = {
    "spec": "fields",
    "framing": {"start": "F0", "end": "F1", "max_length": 64},
    "fields": [
        {"name": "be", "offset": 1, "size": 2},
        {"name": "le", "offset": 1, "size": 2, "endian": "little"},
        {"name": "signed", "type": "int", "offset": 3, "size": 2},
        {"name": "high_nibble", "offset": 5, "size": 1, "shift": 4, "mask": 0x0F},
        {"name": "bit0", "offset": 5, "size": 1, "mask": 1},
        {"name": "serial", "type": "hex", "offset": 6, "size": 3},
        {"name": "bcd", "type": "bcd", "offset": 9, "size": 2},
        {"name": "bcd_le", "type": "bcd", "offset": 9, "size": 2, "endian": "little"},
        {"name": "name", "type": "ascii", "offset": 11, "size": 6},
        {"name": "count", "type": "decimal", "offset": 17, "size": 3},
        {"name": "last", "type": "hex", "offset": -2, "size": 1},
    ],
}


def field_frame(
    *, bcd: bytes = b"\x12\x34", name: bytes = b" Gate\x00", count: bytes = b"-42", last: bytes = b"\x7f"
) -> bytes:
    return b"\xf0\x01\x02\xff\xfe\xa5\xde\xad\x01" + bcd + name + count + last + b"\xf1"


def test_each_field_type() -> None:
    out = FrameSpecDecoder(**FIELD_SPEC).feed(field_frame(), NOW)
    assert decoded(out)[0].detail["fields"] == {
        "be": 0x0102,
        "le": 0x0201,
        "signed": -2,
        "high_nibble": 0xA,
        "bit0": 1,
        "serial": "dead01",
        "bcd": 1234,
        "bcd_le": 3412,
        "name": "Gate",
        "count": -42,
        "last": "7f",
    }


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (field_frame(bcd=b"\x1a\x00"), "field 'bcd': 1a 00 is not packed BCD"),
        (field_frame(name=b"Ga\x07te "), "field 'name': b'Ga\\x07te ' is not printable ASCII"),
        (field_frame(count=b"4 2"), "field 'count': '4 2' is not a decimal number"),
        (b"\xf0\x01\x02\xf1", "frame of 4 bytes too short for field 'signed' (2 bytes at offset 3)"),
    ],
)
def test_unreadable_field_rejects_the_frame(frame: bytes, reason: str) -> None:
    out = FrameSpecDecoder(**FIELD_SPEC).feed(frame + field_frame(), NOW)
    assert [(r.reason, r.raw) for r in rejected(out)] == [(reason, frame)]
    assert len(decoded(out)) == 1


def test_missing_token_rejects_the_frame() -> None:
    short = b"\x02A,12\x03" + bytes([reduce(xor, b"A,12\x03", 0)])
    dec = FrameSpecDecoder(**AP16)
    assert dec.feed(short, NOW) == []  # reported once the next frame shows where the bad bytes end
    out = dec.feed(ap16_frame("A", 12, 1), NOW)
    assert [(r.reason, r.raw) for r in rejected(out)] == [("field 'partition': no token 2, the frame has 2", short)]
    assert len(decoded(out)) == 1


# --- rules and units -----------------------------------------------------------------------------


def rules_decoder(events: list[dict[str, Any]], unmatched: str = "status") -> FrameSpecDecoder:
    return FrameSpecDecoder(
        spec="rules",
        framing={"start": "02", "end": "03"},
        tokens={"separator": ",", "from": 1, "to": -1},
        fields=[
            {"name": "code", "type": "ascii", "token": 0},
            {"name": "zone", "type": "decimal", "token": 1},
            {"name": "tag", "type": "hex", "token": 2},
        ],
        unit="r:{zone}",
        events=events,
        unmatched=unmatched,
    )


def test_rules_first_match_wins_lists_and_all_conditions() -> None:
    dec = rules_decoder(
        [
            {"when": {"code": "A", "zone": [1, 2]}, "kind": "alert", "label": "front door"},
            {"when": {"code": ["A", "B"]}, "kind": "io", "label": "any A or B"},
            {"when": {"tag": "5A 5A"}, "kind": "ptt", "label": "tagged"},  # hex values compare lower-case
            {"when": {}, "kind": "status", "label": "catch-all"},
        ]
    )
    out = dec.feed(b"\x02A,2,00\x03\x02A,3,00\x02B,1,00\x03\x02C,1,ZZ\x03\x02D,1,00\x03", NOW)
    assert [(d.kind, d.detail["label"]) for d in decoded(out)] == [
        (Kind.ALERT, "front door"),
        (Kind.IO, "any A or B"),
        (Kind.PTT, "tagged"),
        (Kind.STATUS, "catch-all"),
    ]
    # A start before the end: the frame was cut short, and the one after it still decodes.
    assert [(r.reason, r.raw) for r in rejected(out)] == [
        ("start sequence again at offset 7, before the end marker", b"\x02A,3,00")
    ]


@pytest.mark.parametrize(("unmatched", "kinds"), [("status", [Kind.ALERT, Kind.STATUS]), ("ignore", [Kind.ALERT])])
def test_unmatched_frames(unmatched: str, kinds: list[Kind]) -> None:
    rules = [{"when": {"code": "A"}, "kind": "alert"}, {"when": {"code": "H"}, "kind": "ignore"}]
    dec = rules_decoder(rules, unmatched)
    out = dec.feed(b"\x02A,1,00\x03\x02H,1,00\x03\x02Q,1,00\x03", NOW)
    assert [d.kind for d in decoded(out)] == kinds
    assert not rejected(out)


def test_unit_that_is_no_identity_still_delivers_the_event() -> None:
    dec = FrameSpecDecoder(**{**AP16, "unit": "alarm:{code}"})
    out = dec.feed(b"\x02P/1,12,3\x03" + bytes([reduce(xor, b"P/1,12,3\x03", 0)]), NOW)
    (event,) = decoded(out)
    assert event.unit is None
    assert event.detail["unit_error"] == "unit 'alarm:P/1' is not a unit identity"
    assert event.detail["fields"]["code"] == "P/1"


def test_no_unit_template_gives_no_unit() -> None:
    spec = {k: v for k, v in LINES.items() if k != "unit"}
    assert decoded(FrameSpecDecoder(**spec).feed(b"P,1\r\n", NOW))[0].unit is None


# --- spec validation -----------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation of the PB-8 spec: set (or with value ... delete) the key at a dotted path."""

    def apply(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return apply


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("fields.2.offset", "3"), "options.fields[2].offset: expected an integer, got '3'"),
        (_set("fields.2.offset", True), "options.fields[2].offset: expected an integer, got True"),
        (_set("fields.0.size", 0), "options.fields[0].size: expected an integer >= 1, got 0"),
        (
            _set("framing.length_field.offset", -1),
            "options.framing.length_field.offset: expected an integer >= 0, got -1",
        ),
        (_set("framing.timeout_s", 0), "options.framing.timeout_s: expected a number > 0, got 0"),
        (_set("checksum.type", "crc32"), "options.checksum.type: expected one of 'none', 'xor', "),
        (_set("framing.start", "AG 55"), 'options.framing.start: expected hex bytes as a string like "AA 55"'),
        (_set("framing.start", 0xAA), 'got 170 (write it as "AA")'),
        (_set("framing.strat", "AA"), "options.framing.strat: unknown key"),
        (_set("spec", ...), "options.spec: required key is missing"),
        (_set("spec", "anvil pb8"), "options.spec: expected 1-64 characters of A-Z a-z 0-9 _ . -"),
        (_set("fields", {"name": "x"}), "options.fields: expected an array"),
        (_set("fields.1.name", "Zone"), "options.fields[1].name: expected a lower-case identifier like box_id"),
        (_set("fields.1.name", "box_id"), "options.fields[1].name: duplicate field name 'box_id'"),
        (_set("fields.1.type", "float"), "options.fields[1].type: expected one of 'uint', 'int', "),
        (_set("fields.1.size", ...), "options.fields[1].size: required key is missing (with offset)"),
        (_set("fields.0.offset", -1), "options.fields[0].offset: 2 bytes at offset -1 would run past the end"),
        (_set("fields.1.offset", 40), "options.fields[1].offset: 1 byte at offset 40: beyond max_length 32"),
        (_set("fields.1.token", 1), "options.fields[1].offset: a field is found by offset or by token, not both"),
        (_set("fields.0.size", 9), "options.fields[0].size: expected 1..8 bytes for type uint, got 9"),
        (_set("fields.3.type", "int"), "options.fields[3].mask: only for type uint, this field is int"),
        (_set("events.0.when", {"evnt": 1}), "options.events[0].when.evnt: no field named 'evnt'; fields: box_id,"),
        (_set("events.0.when", {"event": "1"}), "options.events[0].when.event: field 'event' is uint: expected an in"),
        (_set("events.0.when", {"event": []}), "options.events[0].when.event: expected a value or a non-empty array"),
        (_set("events.0.kind", "beacon"), "options.events[0].kind: expected one of 'alert', 'ptt', 'status', 'io'"),
        (_set("events.0.kind", ...), "options.events[0].kind: required key is missing"),
        (_set("unmatched", "drop"), "options.unmatched: expected one of 'ignore' or 'status', got 'drop'"),
        (_set("unit", "{box_id}"), "options.unit: expected a template that starts with a lower-case prefix"),
        (_set("unit", "panic:{box}"), "options.unit: {box} names no field; fields: box_id, zone,"),
        (_set("unit", "panic:{box_id!r}"), "options.unit: {box_id}: only a field name and a format spec"),
        (_set("unit", "panic:{box_id:s}"), "options.unit: cannot render 'panic:{box_id:s}'"),
        (_set("unit", "Panic:{box_id}"), "options.unit: expected a template that starts with a lower-case prefix"),
        (_set("unit", "panic:{box_id} {zone}"), "options.unit: renders as 'panic:7 7', not a unit identity"),
        (_set("framing.length_field", ...), "options.framing: say where a frame ends"),
        (_set("framing.length", 10), "options.framing.length_field: give either length or length_field"),
        (_set("framing.end", "03"), "options.framing.end: a frame ends at its end marker or after its length"),
        (_set("framing.trailer", 1), "options.framing.trailer: trailer counts bytes after the end marker"),
        (_set("checksum.at", -1), "options.checksum.at: a 2-byte checksum at -1 would run past the end"),
        (_set("checksum.type", "none"), 'options.checksum.from: a spec without checksum (type = "none") has no from'),
        (_set("checksum.encoding", "base64"), "options.checksum.encoding: expected one of 'binary' or 'ascii-hex'"),
        (_set("tokens", {"separator": ""}), 'options.tokens.separator: expected one or more ASCII characters like ","'),
    ],
)
def test_spec_errors_name_the_key_path(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    spec = copy.deepcopy(PB8)
    mutate(spec)
    with pytest.raises(FrameSpecError) as caught:
        FrameSpecDecoder(**spec)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fields": [{"name": "z", "offset": 9, "size": 2}]}, "options.fields[0].offset: 2 bytes at offset 9: outside"),
        ({"checksum": {"type": "sum8", "at": 12}}, "options.checksum.at: a 1-byte checksum at 12 lies outside the 10"),
        ({"checksum": {"type": "sum8", "at": 3, "to": 5}}, "options.checksum.to: the checksum range covers the checks"),
        ({"fields": [{"name": "z", "token": 0}]}, "options.fields[0].token: token fields need a [tokens] table"),
        ({"fields": [{"name": "z"}]}, "options.fields[0]: give offset and size, or token"),
    ],
)
def test_spec_errors_against_a_fixed_length(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FrameSpecError) as caught:
        load_spec({"spec": "fixed", "framing": {"start": "AA", "length": 10}, **changes})
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    spec = copy.deepcopy(PB8)
    spec["fields"][0]["offset"] = "x"
    spec["checksum"]["type"] = "crc99"
    with pytest.raises(FrameSpecError) as caught:
        FrameSpecDecoder(**spec)
    assert [path for path, _ in caught.value.problems] == ["options.checksum.type", "options.fields[0].offset"]


def test_registry_creates_the_decoder_and_reports_bad_specs_as_value_errors() -> None:
    dec = registry.create_protocol("framespec", PB8)
    assert isinstance(dec, FrameSpecDecoder)
    assert [d.unit for d in decoded(dec.feed(pb8_frame(1, 2, 1), NOW))] == ["panic:1-2"]
    with pytest.raises(ValueError, match=r"options\.framing: required key is missing"):
        registry.create_protocol("framespec", {"spec": "empty"})


# --- the stream: splitting, garbage, accounting --------------------------------------------------

byte_values = st.integers(0, 255)


@st.composite
def pb8_good(draw: st.DrawFn, *, avoid: int | None = None) -> bytes:
    def value(size: int) -> int:
        n = draw(st.integers(0, 256**size - 1))
        if avoid is not None:
            n = int.from_bytes(bytes(b if b != avoid else b ^ 1 for b in n.to_bytes(size, "big")), "big")
        return n

    event = draw(st.sampled_from([0x01, 0x02, 0x10, 0x11, 0x33]))  # no heartbeat: every frame gives an event
    return pb8_frame(value(2), value(1), event, value(1))


def _stream_parts(good: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    def corrupted(frame: bytes, at: int, flip: int) -> bytes:
        i = at % len(frame)
        return frame[:i] + bytes([frame[i] ^ flip]) + frame[i + 1 :]

    noise = st.binary(min_size=1, max_size=24)
    broken = st.builds(corrupted, good, st.integers(0, 64), st.integers(1, 255))
    truncated = st.builds(lambda f, n: f[: 1 + n % (len(f) - 1)], good, st.integers(0, 64))
    return st.lists(st.one_of(good, good, noise, broken, truncated), max_size=10)


def ap16_good() -> st.SearchStrategy[bytes]:
    return st.builds(
        ap16_frame, st.sampled_from("APFTROCX"), st.integers(0, 9999), st.integers(0, 9), width=st.integers(1, 4)
    )


def lines_good() -> st.SearchStrategy[bytes]:
    return st.builds(lambda c, z: f"{c},{z}\r\n".encode(), st.sampled_from("PSQ"), st.integers(0, 99999))


def bare_good() -> st.SearchStrategy[bytes]:
    return st.builds(bare_frame, byte_values, byte_values, st.integers(-32768, 32767))


STREAMS: dict[str, tuple[dict[str, Any], st.SearchStrategy[list[bytes]]]] = {
    "anvil-pb8": (PB8, _stream_parts(pb8_good())),
    "keystone-ap16": (AP16, _stream_parts(ap16_good())),
    "lines": (LINES, _stream_parts(lines_good())),
    "bare": (BARE, _stream_parts(bare_good())),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_whole_bytewise_and_random_splits_agree(name: str, data: st.DataObject) -> None:
    spec, parts = STREAMS[name]
    stream = b"".join(data.draw(parts, label="parts"))
    cuts = data.draw(st.lists(st.integers(0, 1000), max_size=12), label="cuts")
    whole = feed_whole(FrameSpecDecoder(**spec), stream)
    assert feed_bytewise(FrameSpecDecoder(**spec), stream) == whole
    assert feed_split(FrameSpecDecoder(**spec), stream, cuts) == whole


@pytest.mark.parametrize("name", ["anvil-pb8", "lines", "bare"])  # the three with no idle fill
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_byte_is_reported_exactly_once(name: str, data: st.DataObject) -> None:
    spec, parts = STREAMS[name]
    stream = b"".join(data.draw(parts, label="parts"))
    dec = FrameSpecDecoder(**spec)
    out = feed_bytewise(dec, stream) + dec.tick(NOW + timedelta(seconds=5))
    assert b"".join(raw_of(item) for item in out) == stream


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("good"), pb8_good(avoid=0xAA)),
            st.tuples(st.just("noise"), st.binary(min_size=1, max_size=20).map(lambda b: b.replace(b"\xaa", b"\x55"))),
            st.tuples(
                st.just("bad-crc"),
                st.builds(lambda f, c: f[:-2] + c, pb8_good(avoid=0xAA), st.binary(min_size=2, max_size=2)).filter(
                    lambda f: b"\xaa" not in f[1:] and modbus_crc(f[2:-2]) != int.from_bytes(f[-2:], "little")
                ),
            ),
        ),
        max_size=12,
    )
)
def test_garbage_between_good_frames_is_rejected_and_every_good_frame_decodes(
    parts: list[tuple[str, bytes]],
) -> None:
    # Expected: each good frame decodes; a run of noise is one report; a bad frame is its own report and
    # takes the noise after it (it is all dropped while resynchronising).
    expected: list[tuple[str, bytes]] = []
    run: bytes | None = None
    for what, raw in parts:
        if what != "noise" and run is not None:
            expected.append(("rejected", run))
            run = None
        if what == "good":
            expected.append(("decoded", raw))
        elif what == "bad-crc":
            run = raw
        else:
            run = (run or b"") + raw
    out = FrameSpecDecoder(**PB8).feed(b"".join(raw for _, raw in parts), NOW)
    assert [("decoded" if isinstance(item, Decoded) else "rejected", raw_of(item)) for item in out] == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just(True), ap16_good()),
            st.tuples(st.just(False), st.binary(min_size=1, max_size=20).map(lambda b: b.replace(b"\x02", b""))),
        ),
        max_size=10,
    ),
    ap16_good(),
)
def test_panel_frames_survive_garbage(parts: list[tuple[bool, bytes]], last: bytes) -> None:
    # Garbage without STX: it can cut no frame short, so every frame must come through.
    parts = [*parts, (True, last)]
    out = FrameSpecDecoder(**AP16).feed(b"".join(raw for _, raw in parts), NOW)
    assert [raw_of(d) for d in decoded(out)] == [raw[:-2] for good, raw in parts if good]  # CR LF: idle fill
    garbage = b"".join(raw for good, raw in parts if not good)
    assert bool(rejected(out)) == bool(garbage.strip(b"\r\n"))


# --- the example specs ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.toml")), ids=lambda p: p.name)
def test_example_specs_are_valid(path: Path) -> None:
    with path.open("rb") as f:
        spec = load_spec(tomllib.load(f))
    assert spec.spec == path.stem
    assert spec.description


def test_pb8_example_box_events() -> None:
    dec = FrameSpecDecoder(**PB8)
    out = dec.feed(
        pb8_frame(4711, 8, 0x10) + pb8_frame(4711, 8, 0x11) + pb8_frame(12, 1, 0x77, flags=1) + pb8_frame(1, 1, 0x20),
        NOW,
    )
    assert [(d.kind, d.unit, d.detail["label"], d.detail["fields"]["battery_low"]) for d in decoded(out)] == [
        (Kind.ALERT, "panic:4711-8", "tamper", 0),
        (Kind.ALERT, "panic:4711-8", "tamper", 0),
        (Kind.STATUS, "panic:12-1", None, 1),
    ]
    assert all(d.detail["spec"] == "anvil-pb8" and d.time == NOW for d in decoded(out))
    assert decoded(out)[0].detail["raw"] == pb8_frame(4711, 8, 0x10).hex()


def test_ap16_example_panel_rejects_a_bad_block_check() -> None:
    dec = FrameSpecDecoder(**AP16)
    bad = ap16_frame("F", 3, 1, bcc_flip=0x40)
    out = dec.feed(bad + ap16_frame("F", 3, 1), NOW)
    assert [r.raw for r in rejected(out)] == [bad]  # with the CR LF after it: dropped while resynchronising
    assert rejected(out)[0].reason.startswith("checksum mismatch: frame carries 0x")
    assert [(d.kind, d.unit, d.detail["label"]) for d in decoded(out)] == [(Kind.ALERT, "alarm:p1-z3", "fire alarm")]


# --- spec files: any table is a spec or a FrameSpecError ----------------------------------------------

SPEC_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["AA 55", "0D 0A", "", "crc16-modbus", "xor", "ascii", "decimal", "bcd", "{zone}", "-2"]),
    lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=8), x, max_size=4),
    max_leaves=10,
)


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """An example spec with a few values replaced at random paths, or keys dropped."""
    spec: dict[str, Any] = copy.deepcopy(draw(st.sampled_from([PB8, AP16, LINES, BARE])))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = spec
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if isinstance(node[key], dict | list) and node[key] and draw(st.booleans()):
                node = node[key]
                continue
            if isinstance(node, dict) and draw(st.integers(0, 3)) == 0:
                del node[key]
            else:
                node[key] = draw(SPEC_VALUES)
            break
    return spec


@settings(max_examples=300, deadline=None)
@given(mutated_specs() | st.dictionaries(st.text(max_size=10), SPEC_VALUES, max_size=6), st.binary(max_size=40))
def test_any_spec_table_is_a_decoder_or_a_frame_spec_error(spec: dict[str, Any], stream: bytes) -> None:
    try:
        load_spec(spec)
    except FrameSpecError as exc:
        assert str(exc)
        return
    dec = FrameSpecDecoder(**spec)  # a spec that loads gives a decoder that takes any bytes
    out = dec.feed(pb8_frame(1, 2, 1) + stream + ap16_frame("P", 1, 1), NOW) + dec.tick(NOW + timedelta(hours=1))
    assert all(isinstance(o, Decoded | Rejected) for o in out)


def test_a_good_frame_inside_a_stale_false_start_comes_out_at_the_timeout() -> None:
    # Found by bench/fuzz: noise "aa 55 1a ..." announces a 31-byte frame; the panic frame after it was
    # swallowed into the incomplete one and dropped with it when the box went quiet.
    dec = FrameSpecDecoder(**PB8)
    noise = b"\xaa\x55\x1a\x00\x00"
    assert dec.feed(noise + pb8_frame(9, 9, 1), NOW) == []
    out = dec.tick(NOW + timedelta(seconds=0.5))
    assert [d.unit for d in decoded(out)] == ["panic:9-9"]
    assert [(r.reason, r.raw) for r in rejected(out)] == [("incomplete frame: nothing more for 0.5 s", noise)]
    assert b"".join(raw_of(item) for item in out) == noise + pb8_frame(9, 9, 1)  # every byte once


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40), st.sampled_from(["anvil-pb8", "keystone-ap16", "lines"]))
def test_after_any_garbage_and_a_pause_the_good_frame_decodes(garbage: bytes, name: str) -> None:
    spec, frame, sep = {"anvil-pb8": (PB8, pb8_frame(9, 9, 1), b""),
                        "keystone-ap16": (AP16, ap16_frame("P", 1, 1), b""),
                        "lines": (LINES, b"P,12\r\n", b"\r\n")}[name]
    clean = decoded(FrameSpecDecoder(**spec).feed(frame, NOW))
    dec = FrameSpecDecoder(**spec)
    out = dec.feed(garbage + sep + frame, NOW) + dec.tick(NOW + timedelta(seconds=5))
    assert decoded(out)[-1:] == clean
