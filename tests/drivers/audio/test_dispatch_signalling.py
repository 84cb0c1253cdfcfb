"""What the gateway sends to dispatch a radio and check on it, decoded by this project's own decoders and
held against the public descriptions: a FleetSync short text message (Kaufman's payload layout), an
MDC-1200 call alert and radio check (the KA6SQG/BatLabs words real Motorola radios send), and the
numbers radios answer with (MDC-1200 status and message numbers) as the events name them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from real_material import real_path

from drivers.audio import fleetsync as fs
from drivers.audio import mdc1200
from drivers.audio.fleetsync import FleetSyncDecoder
from drivers.audio.mdc1200 import Mdc1200Decoder
from gateway.events import Decoded, Kind

START = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)
TEXT = "CASE 1234 STALL WENYI RD/GUDUN RD ACCEPT IN 5MIN"  # 48 characters, the most a short message holds


def decode(decoder: FleetSyncDecoder | Mdc1200Decoder, x: np.ndarray, block: int | None = None) -> list[Decoded]:
    block = block or x.size
    out = []
    for pos in range(0, x.size, block):
        out += decoder.feed(x[pos : pos + block], START + timedelta(seconds=pos / decoder.rate))
    out += decoder.flush(START + timedelta(seconds=x.size / decoder.rate))
    assert all(isinstance(o, Decoded) for o in out), out
    return [o for o in out if isinstance(o, Decoded)]


# --- FleetSync text message ------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "baud"), [(1, 1200), (2, 2400), (2, 1200)])
@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_a_fleetsync_text_message_reads_back_whole_to_its_unit(version: int, baud: int, rate: int) -> None:
    message = fs.text_message(100, 1001, TEXT, fleet=120, unit=2000)
    [event] = decode(FleetSyncDecoder(rate), fs.encode(message, rate, version, baud=baud))
    assert event.kind == Kind.STATUS and event.unit == "fleetsync:120-2000"  # the sender
    d = event.detail
    assert (d["name"], d["text"], d["to_fleet"], d["to_unit"]) == ("message", TEXT, 100, 1001)
    assert (d["version"], d["baud"], d["blocks"]) == (version, baud, 2 + 8)


@pytest.mark.parametrize("block", [160, 1, 4096])
def test_a_text_message_reads_the_same_at_any_split_of_the_audio(block: int) -> None:
    x = fs.encode(fs.text_message(107, 1772, "ARRIVE 21:40"), 8000, 2)
    [event] = decode(FleetSyncDecoder(8000), x, block)
    assert (event.detail["text"], event.detail["to_unit"], event.unit) == ("ARRIVE 21:40", 1772, None)


def test_the_payload_is_where_kaufmans_decoder_reads_it() -> None:
    """fsync_decode.c ``_dispatch``: for message type 0x42 the length is message bytes 9-10 and payload
    byte i is message byte 11 + 6 * (i / 6 + 1) - i % 6 (integer division), over the blocks' data bytes."""
    message = fs.text_message(354, 5094, "UNIT 5094 GO TO GATE 3")
    msg = b"".join(fs.data_blocks(message))
    assert msg[1] & 0xFE == 0x42 and msg[1] & 0x01  # type 0x42, with the destination fleet in block 2
    assert msg[6] + 99 == 354  # to_fleet = msg[6] + 99 when the fleet flag is set
    length = msg[9] << 8 | msg[10]
    payload = bytes(msg[11 + 6 * (i // 6 + 1) - i % 6] for i in range(length))
    assert payload == b"UNIT 5094 GO TO GATE 3"
    # and the ids where Kaufman reads them: to_unit = ((msg[4] << 8) & 0xf00) + msg[5] + 999
    assert ((msg[4] << 8) & 0xF00) + msg[5] + 999 == 5094


def test_a_gps_report_is_still_a_position_and_a_short_payload_is_not_a_text() -> None:
    fix = fs.GpsFix(30.2095, 120.2107, speed_kph=12.5, course_deg=270.0, time=(19, 29, 58), date=(2026, 11, 26))
    [gps] = decode(FleetSyncDecoder(8000), fs.encode(fs.gps_report(100, 1001, fix), 8000, 2))
    assert gps.kind == Kind.BEACON and gps.detail["name"] == "gps"
    # a 0x42 message whose length asks for blocks that never came is no text
    assert fs.message_payload([bytes(6), bytes([0, 0, 0, 0, 13, 0]), bytes(6)]) is None


@pytest.mark.parametrize(("text", "why"), [
    ("x" * 49, "at most 48"), ("案件 1234", "ascii"), ("two\nlines", "control characters")])
def test_text_a_short_message_cannot_hold_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        fs.text_message(100, 1001, text)


@given(st.lists(st.binary(min_size=6, max_size=6), max_size=6))
def test_message_payload_of_any_blocks_is_bytes_or_none(blocks: list[bytes]) -> None:
    payload = fs.message_payload(blocks)
    if payload is not None:
        assert len(payload) == blocks[1][3] << 8 | blocks[1][4]


# --- MDC-1200 call alert and radio check ------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 48000])
def test_an_mdc1200_call_alert_reads_back_as_a_page_from_this_station_to_the_unit(rate: int) -> None:
    [event] = decode(Mdc1200Decoder(rate), mdc1200.encode(mdc1200.call_alert(0x1234, 0x0001), rate=rate))
    d = event.detail
    assert (d["name"], d["target_id"], event.unit) == ("call_alert", "1234", "mdc:0001")


@pytest.mark.parametrize("rate", [8000, 48000])
def test_an_mdc1200_radio_check_reads_back_addressed_to_the_unit(rate: int) -> None:
    [event] = decode(Mdc1200Decoder(rate), mdc1200.encode(mdc1200.radio_check(0x0A1B), rate=rate))
    assert (event.detail["name"], event.detail["op"], event.detail["arg"], event.unit) == (
        "radio_check", 0x63, 0x85, "mdc:0A1B")


def test_call_alert_and_radio_check_are_the_words_real_motorola_radios_send() -> None:
    """The packet list (losehu/uv-k5-firmware-custom app/mdc1200.h, after the KA6SQG/BatLabs thread):
    "3589 5678 830D 1234" is 1234 paging 5678 with an ack expected (Spectra, Astro Saber PAGE, Maxtrac
    CA); radio check is op 0x63 arg 0x85."""
    table = json.loads(real_path("mdc1200", "mdc1200_real_radio_opcode_table.json").read_text())
    entries = {e["msg"]: e for e in table["entries"]}
    words = entries["call alert (double) 1234->5678, ack expected"]["words"].split()
    packet = mdc1200.call_alert(0x5678, 0x1234)
    assert packet.second is not None
    ours = [packet.block[:2].hex().upper(), packet.block[2:].hex().upper(),
            packet.second.block[:2].hex().upper(), packet.second.block[2:].hex().upper()]
    assert ours == words
    check = mdc1200.radio_check(0x5678)
    assert (check.op, check.arg) == (int(entries["radio check"]["op"], 16), int(entries["radio check"]["arg"], 16))
    # and what a radio answers with reads as the acknowledgement it is
    ack = entries["radio check ack"]
    [event] = decode(Mdc1200Decoder(8000), mdc1200.encode(
        mdc1200.Mdc1200Packet(int(ack["op"], 16), int(ack["arg"], 16), 0x5678)))
    assert (event.detail["name"], event.unit) == ("radio_check_ack", "mdc:5678")


# --- what radios answer with --------------------------------------------------------------------------


@pytest.mark.parametrize(("packet", "name", "key", "number"), [
    (mdc1200.status(0x1234, 5), "status", "status", 5),
    (mdc1200.Mdc1200Packet(0x06, 3, 0x1234), "status_response", "status", 3),
    (mdc1200.message(0x1234, 7), "message", "message", 7),
    (mdc1200.message(0x1234, 9, ack=False), "message", "message", 9),
])
def test_mdc1200_status_and_message_numbers_are_named_in_the_detail(
    packet: mdc1200.Mdc1200Packet, name: str, key: str, number: int
) -> None:
    [event] = decode(Mdc1200Decoder(8000), mdc1200.encode(packet))
    assert (event.unit, event.detail["name"], event.detail[key]) == ("mdc:1234", name, number)
    assert {"status", "message"} - {key} & set(event.detail) == set()


def test_a_fleetsync_status_number_is_named_in_the_detail() -> None:
    [event] = decode(FleetSyncDecoder(8000), fs.encode(fs.status_message(100, 1001, 21), 8000, 2))
    assert (event.unit, event.detail["name"], event.detail["status"]) == ("fleetsync:100-1001", "status", 21)
