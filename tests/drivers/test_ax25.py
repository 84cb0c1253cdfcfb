"""AX.25 frames: the bytes on the wire, round trips, every frame type, off-air addresses that break the
rules (read as Dire Wolf reads them, with what was irregular), what cannot be read, and the FCS."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ax25 import (
    Address,
    Ax25Error,
    Ax25ErrorCode,
    Digipeater,
    control_fields,
    encode_ui,
    fcs,
    frame_kind,
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
        (encode_ui("N0CALL", "APRS", b"")[:14], Ax25ErrorCode.SHORT),  # no control field
        (encode_ui("N0CALL", "APRS", b"")[:15], Ax25ErrorCode.SHORT),  # a UI frame without its PID
        (_with_control(encode_ui("N0CALL", "APRS", b"")[:15], 0x00), Ax25ErrorCode.SHORT),  # an I frame, no PID
        # eleven addresses, none with the extension bit: more than 8 digipeaters
        ((shifted("WIDE") + b"\x60") * 11 + b"\x03\xf0", Ax25ErrorCode.ADDRESS_UNTERMINATED),
        # the extension bit on the destination: only one address
        (shifted("APRS") + b"\x61" + b"\x03\xf0" * 5, Ax25ErrorCode.ADDRESS_UNTERMINATED),
        # an unshifted byte (low bit set) inside the callsign: the address field ends inside an address
        (b"APRS  \x60" + shifted("N0CALL") + b"\x61\x03\xf0", Ax25ErrorCode.ADDRESS_INVALID),
    ],
)
def test_invalid_frames(data: bytes, code: Ax25ErrorCode) -> None:
    with pytest.raises(Ax25Error) as caught:
        parse_frame(data)
    assert caught.value.code == code


# The first frame AO-27 sent in the satellite recording of daniestevez/satellite-recordings (ao27.wav,
# Unlicense), as pttbridge's AFSK decoder and Dire Wolf's atest both hear it: the source "AO27 T".
AO27 = bytes.fromhex("9c68aaa69240 00 829e646e40a8 01 03f0 4ed02218".replace(" ", ""))


def test_a_space_inside_a_callsign_is_read_as_dire_wolf_reads_it() -> None:
    frame = parse_frame(AO27)
    assert frame.source == Address("AO27 T")
    assert frame.destination == Address("N4USI")
    assert (frame.kind, frame.pid, frame.info) == ("UI", 0xF0, b"N\xd0\x22\x18")
    assert frame.tnc2() == 'AO27 T>N4USI:N\xd0"<0x18>'  # atest -P E+ prints "AO27 T>N4USI:N..."
    assert frame.irregular == (
        "source 'AO27 T': a space inside (AX.25 callsigns are upper-case letters and digits)",
    )


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        ("aprs", "lower-case letters"),
        ("N0-CAL", "characters -"),
        (" WIDE2", "a space inside"),
        ("", "empty"),
        ("AB\x00", "characters <0x00>"),
    ],
)
def test_irregular_destinations_are_described(call: str, problem: str) -> None:
    data = bytes(ord(c) << 1 for c in call.ljust(6)) + b"\x60" + shifted("N0CALL") + b"\x61\x03\xf0x"
    frame = parse_frame(data)
    assert frame.destination.callsign == call
    assert len(frame.irregular) == 1 and frame.irregular[0].startswith("destination ")
    assert problem in frame.irregular[0]
    assert parse_frame(encode_ui("N0CALL", "APRS", b"x")).irregular == ()


# Frames a TARPN node sent on 147.555 and 144.310 MHz, as mumrah/JNC's TARPN.md quotes them (Apache-2.0).
SABM = bytes.fromhex("968264888aaee49c6698a8ac40653f")  # N3LTV-2 -> KA2DEW-2, connect
RR_POLL = bytes.fromhex("968264888aaee49668a48e9c4065b1")  # K4RGN-2 -> KA2DEW-2: S, P, RR, N(R)=5
RR_FINAL = bytes.fromhex("9668a48e9c4064968264888aaee551")  # KA2DEW-2 -> K4RGN(-2): S, F, RR, N(R)=2


def test_connected_mode_frames_are_read_with_their_type() -> None:
    sabm, poll, final = parse_frame(SABM), parse_frame(RR_POLL), parse_frame(RR_FINAL)
    assert (str(sabm.source), str(sabm.destination), sabm.kind, sabm.pid, sabm.info) == (
        "N3LTV-2", "KA2DEW-2", "SABM", None, b"")
    assert (str(poll.source), poll.kind, control_fields(poll.control)) == ("K4RGN-2", "RR", {"N(R)": 5, "P/F": 1})
    assert (str(final.source), str(final.destination), final.kind, control_fields(final.control)) == (
        "KA2DEW-2", "K4RGN-2", "RR", {"N(R)": 2, "P/F": 1})


@pytest.mark.parametrize(
    ("control", "kind", "fields"),
    [
        (0x03, "UI", {"P/F": 0}),
        (0x13, "UI", {"P/F": 1}),
        (0x5A, "I", {"N(S)": 5, "N(R)": 2, "P/F": 1}),
        (0x41, "RR", {"N(R)": 2, "P/F": 0}),
        (0xA5, "RNR", {"N(R)": 5, "P/F": 0}),
        (0x29, "REJ", {"N(R)": 1, "P/F": 0}),
        (0x0D, "SREJ", {"N(R)": 0, "P/F": 0}),
        (0x2F, "SABM", {"P/F": 0}),
        (0x7F, "SABME", {"P/F": 1}),
        (0x53, "DISC", {"P/F": 1}),
        (0x1F, "DM", {"P/F": 1}),
        (0x73, "UA", {"P/F": 1}),
        (0x87, "FRMR", {"P/F": 0}),
        (0xAF, "XID", {"P/F": 0}),
        (0xE3, "TEST", {"P/F": 0}),
        (0x0B, "U?", {"P/F": 0}),
    ],
)
def test_control_field_names_every_frame_type(control: int, kind: str, fields: dict[str, int]) -> None:
    # AX.25 2.2 section 4.3, figure 4.2 / 4.3 / 4.4 (modulo 8)
    assert (frame_kind(control), control_fields(control)) == (kind, fields)


@given(control=st.integers(0, 255), info=st.binary(max_size=64))
def test_every_frame_type_round_trips(control: int, info: bytes) -> None:
    pid = 0xCF if frame_kind(control) in ("I", "UI") else None
    frame = parse_frame(encode_ui("N0CALL-1", "K4DBZ-9", info, control=control, pid=pid))
    assert (frame.control, frame.pid, frame.info) == (control, pid, info)


def test_address_parse_and_text() -> None:
    assert Address.parse("N0CALL-15") == Address("N0CALL", 15)
    assert str(Address("N0CALL", 0)) == "N0CALL"
    assert str(Address("N0CALL", 7)) == "N0CALL-7"
    for bad in ("N0CALL-16", "TOOLONG1", "n0call", "N0CALL-", "", "qAC"):
        with pytest.raises(ValueError, match=r"not an AX\.25 callsign"):
            Address.parse(bad)


def test_too_many_digipeaters_are_refused() -> None:
    with pytest.raises(ValueError, match=r"9 digipeaters, AX\.25 allows 8"):
        encode_ui("N0CALL", "APRS", b"x", [f"WIDE{i}" for i in range(9)])


def test_fcs_check_value_and_residue() -> None:
    assert fcs(b"123456789") == 0x906E  # CRC-16/X.25 check value
    frame = encode_ui("N0CALL-9", "APRS", b"!4903.50N/07201.75W-")
    value = fcs(frame)
    # Sent low byte first; the CRC over frame + FCS leaves the fixed "good" residue 0xF0B8 (^0xFFFF).
    assert fcs(frame + bytes([value & 0xFF, value >> 8])) == 0xF0B8 ^ 0xFFFF
    assert fcs(frame[:-1] + b"+" + bytes([value & 0xFF, value >> 8])) != 0xF0B8 ^ 0xFFFF
