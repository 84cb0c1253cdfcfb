"""AX.25 UI frames: the bytes on the wire, round trips, the checks, and the FCS."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ax25 import (
    Address,
    Ax25Error,
    Ax25ErrorCode,
    Digipeater,
    encode_ui,
    fcs,
    parse_frame,
)


def shifted(call: str) -> bytes:
    return bytes(ord(c) << 1 for c in call.ljust(6))


def test_frame_bytes_as_the_spec_draws_them() -> None:
    frame = encode_ui("N0CALL-9", "APRS", b"!", ["WIDE1-1*", "WIDE2-1"])
    expected = (
        shifted("APRS") + bytes([0xE0])  # destination: C=1, reserved bits 11, SSID 0
        + shifted("N0CALL") + bytes([0x60 | 9 << 1])  # source: C=0, SSID 9
        + shifted("WIDE1") + bytes([0x80 | 0x60 | 1 << 1])  # H=1: has repeated
        + shifted("WIDE2") + bytes([0x60 | 1 << 1 | 1])  # H=0, extension bit: last address
        + bytes([0x03, 0xF0])  # UI, no layer 3
        + b"!"
    )  # fmt: skip
    assert frame == expected


def test_parse_reads_addresses_digipeaters_and_info() -> None:
    frame = parse_frame(encode_ui("BG5ABC-9", "APDW16-3", b"\x00\xc0\xdb\xff", ["RELAY*", "WIDE2-2"]))
    assert frame.source == Address("BG5ABC", 9)
    assert frame.destination == Address("APDW16", 3)
    assert frame.digipeaters == (Digipeater(Address("RELAY"), True), Digipeater(Address("WIDE2", 2), False))
    assert (frame.control, frame.pid) == (0x03, 0xF0)
    assert frame.info == b"\x00\xc0\xdb\xff"
    assert frame.path() == ["RELAY*", "WIDE2-2"]
    assert frame.tnc2() == "BG5ABC-9>APDW16-3,RELAY*,WIDE2-2:<0x00>\xc0\xdb\xff"


def test_tnc2_star_goes_on_the_last_repeated_digipeater_only() -> None:
    frame = parse_frame(encode_ui("N0CALL", "APRS", b"x", ["A1", "B2*", "C3"]))
    assert [d.repeated for d in frame.digipeaters] == [True, True, False]
    assert frame.path() == ["A1", "B2*", "C3"]


def test_poll_bit_is_still_a_ui_frame() -> None:
    assert parse_frame(encode_ui("N0CALL", "APRS", b"x", control=0x13)).control == 0x13


calls = st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True)
addresses = st.builds(Address, calls, st.integers(0, 15))


@given(
    source=addresses,
    destination=addresses,
    digis=st.lists(addresses, max_size=8),
    repeated=st.integers(0, 8),
    info=st.binary(max_size=256),
)
def test_round_trip(source: Address, destination: Address, digis: list[Address], repeated: int, info: bytes) -> None:
    # Digipeaters repeat in order, so the H bits are always a prefix of the path.
    path = [Digipeater(a, i < repeated) for i, a in enumerate(digis)]
    frame = parse_frame(encode_ui(source, destination, info, path))
    assert (frame.source, frame.destination, frame.digipeaters, frame.info) == (source, destination, tuple(path), info)


@given(st.binary(max_size=400))
def test_garbage_raises_only_ax25_error(data: bytes) -> None:
    try:
        parse_frame(data)
    except Ax25Error:
        pass


def _with_control(frame: bytes, control: int) -> bytes:
    return frame[:14] + bytes([control]) + frame[15:]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", Ax25ErrorCode.SHORT),
        (encode_ui("N0CALL", "APRS", b"")[:15], Ax25ErrorCode.SHORT),
        # eleven addresses, none with the extension bit: more than 8 digipeaters
        ((shifted("WIDE") + b"\x60") * 11 + b"\x03\xf0", Ax25ErrorCode.ADDRESS_UNTERMINATED),
        # the extension bit on the destination: only one address
        (shifted("APRS") + b"\x61" + b"\x03\xf0" * 5, Ax25ErrorCode.ADDRESS_UNTERMINATED),
        # lower-case letters are not AX.25 callsign characters
        (shifted("aprs") + b"\x60" + shifted("N0CALL") + b"\x61\x03\xf0", Ax25ErrorCode.ADDRESS_INVALID),
        # a space inside the callsign
        (shifted("N0 CAL") + b"\x60" + shifted("N0CALL") + b"\x61\x03\xf0", Ax25ErrorCode.ADDRESS_INVALID),
        # an unshifted byte (low bit set) inside the callsign
        (b"APRS  \x60" + shifted("N0CALL") + b"\x61\x03\xf0", Ax25ErrorCode.ADDRESS_INVALID),
        (_with_control(encode_ui("N0CALL", "APRS", b"x"), 0x00), Ax25ErrorCode.NOT_UI),  # an I frame
        (_with_control(encode_ui("N0CALL", "APRS", b"x"), 0x01), Ax25ErrorCode.NOT_UI),  # RR (S frame)
    ],
)
def test_invalid_frames(data: bytes, code: Ax25ErrorCode) -> None:
    with pytest.raises(Ax25Error) as caught:
        parse_frame(data)
    assert caught.value.code == code


def test_address_parse_and_text() -> None:
    assert Address.parse("N0CALL-15") == Address("N0CALL", 15)
    assert str(Address("N0CALL", 0)) == "N0CALL"
    assert str(Address("N0CALL", 7)) == "N0CALL-7"
    for bad in ("N0CALL-16", "TOOLONG1", "n0call", "N0CALL-", "", "qAC"):
        with pytest.raises(ValueError):
            Address.parse(bad)


def test_too_many_digipeaters_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_ui("N0CALL", "APRS", b"x", [f"WIDE{i}" for i in range(9)])


def test_fcs_check_value_and_residue() -> None:
    assert fcs(b"123456789") == 0x906E  # CRC-16/X.25 check value
    frame = encode_ui("N0CALL-9", "APRS", b"!4903.50N/07201.75W-")
    value = fcs(frame)
    # Sent low byte first; the CRC over frame + FCS leaves the fixed "good" residue 0xF0B8 (^0xFFFF).
    assert fcs(frame + bytes([value & 0xFF, value >> 8])) == 0xF0B8 ^ 0xFFFF
    assert fcs(frame[:-1] + b"+" + bytes([value & 0xFF, value >> 8])) != 0xF0B8 ^ 0xFFFF
