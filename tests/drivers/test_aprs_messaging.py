"""APRS messaging (APRS 1.01 ch 14): what this station sends reads back through our own APRS decoder as
the message it is, acks settle messages, retries follow the schedule on an injected clock, a station's
message to us is acknowledged, and garbage settles nothing and raises nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import ax25
from drivers.aprs_messaging import (
    TOCALL,
    MessagingError,
    Messenger,
    Outcome,
    ack_info,
    message_info,
)
from drivers.kiss import frame_to_output
from gateway.events import Decoded

NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)


def heard(frame: bytes) -> Decoded:
    """What our decoder makes of a frame (as the gateway hears it from the TNC)."""
    out = frame_to_output(frame, NOW, "kiss")
    assert isinstance(out, Decoded), out
    return out


def from_unit(info: bytes, source: str = "BG5ABC-9") -> tuple[str, dict[str, Any]]:
    d = heard(ax25.encode_ui(source, "APDW16", info, ["WIDE1-1"]))
    assert d.unit is not None
    return d.unit.removeprefix("aprs:"), d.detail


def test_a_message_reads_back_as_a_message_to_the_unit_with_its_id() -> None:
    m = Messenger("bg5zzz-10", path=["WIDE1-1", "WIDE2-1"])
    message_id, frame = m.send("BG5ABC-9", "CASE 1234 STALL WENYI RD", now=0.0)
    d = heard(frame)
    assert d.unit == "aprs:BG5ZZZ-10"
    assert (d.detail["type"], d.detail["addressee"], d.detail["text"], d.detail["message_id"]) == (
        "message", "BG5ABC-9", "CASE 1234 STALL WENYI RD", message_id)
    assert d.detail["destination"] == TOCALL and d.detail["path"] == ["WIDE1-1", "WIDE2-1"]
    # the addressee is padded to nine characters, as chapter 14 draws it
    assert ax25.parse_frame(frame).info == f":BG5ABC-9 :CASE 1234 STALL WENYI RD{{{message_id}".encode()


def test_an_ack_settles_the_message_and_a_retry_schedule_runs_on_the_clock_given() -> None:
    m = Messenger("BG5ZZZ-10", retry_s=[10, 20, 40])
    message_id, first = m.send("BG5ABC-9", "CASE 7", now=100.0)
    assert m.next_due == 110.0
    assert m.due(109.9) == ([], [])
    frames, outcomes = m.due(110.0)
    assert frames == [first] and outcomes == []  # the second try is the same frame, the same id
    assert m.next_due == 130.0
    assert m.due(130.0) == ([first], [])
    # the unit's ack arrives while the third try waits
    source, detail = from_unit(ack_info("BG5ZZZ-10", message_id))
    result = m.heard(source, detail)
    assert result.outcomes == [Outcome(message_id, "BG5ABC-9", "acked", 3)] and result.frames == []
    assert not m.pending(message_id) and m.next_due is None


def test_a_message_never_acked_is_given_up_after_its_last_wait() -> None:
    m = Messenger("BG5ZZZ-10", retry_s=[10, 20])
    message_id, _ = m.send("BG5ABC-9", "CASE 7", now=0.0)
    assert len(m.due(10.0)[0]) == 1
    assert m.due(29.9) == ([], [])
    assert m.due(30.0) == ([], [Outcome(message_id, "BG5ABC-9", "no_ack", 2)])
    assert m.waiting == 0


@pytest.mark.parametrize(("info", "result"), [
    (b":BG5ZZZ-10:rej{id}", "rejected"),
    (b":BG5ZZZ-10:ACCEPTED{5}{id}", "acked"),  # APRS 1.1 reply-ack: the reply carries our id
    (b":bg5zzz-10:ack{id}", "acked"),  # addressee in lower case
])
def test_rejections_and_reply_acks_settle_the_message(info: bytes, result: str) -> None:
    m = Messenger("BG5ZZZ-10")
    message_id, _ = m.send("BG5ABC-9", "CASE 7", now=0.0)
    source, detail = from_unit(info.replace(b"{id}", message_id.encode()))
    assert [o.result for o in m.heard(source, detail).outcomes] == [result]


def test_an_ack_from_another_station_or_to_another_station_settles_nothing() -> None:
    m = Messenger("BG5ZZZ-10")
    message_id, _ = m.send("BG5ABC-9", "CASE 7", now=0.0)
    for info, source in ((ack_info("BG5ZZZ-10", message_id), "BG5XYZ-7"),  # someone else acks our number
                         (ack_info("BG5ZZZ-11", message_id), "BG5ABC-9"),  # an ack to another station
                         (ack_info("BG5ZZZ-10", "999"), "BG5ABC-9")):  # an ack of another number
        src, detail = from_unit(info, source)
        assert m.heard(src, detail).outcomes == []
    assert m.pending(message_id)


def test_a_message_to_this_station_is_acknowledged_every_time_it_comes() -> None:
    m = Messenger("BG5ZZZ-10")
    source, detail = from_unit(b":BG5ZZZ-10:ARRIVED{42")
    for _ in range(2):  # the unit retries: every copy gets its ack (ch 14)
        [ack] = m.heard(source, detail).frames
        d = heard(ack)
        assert (d.unit, d.detail["addressee"], d.detail["ack"]) == ("aprs:BG5ZZZ-10", "BG5ABC-9", "42")
    _, no_id = from_unit(b":BG5ZZZ-10:ARRIVED")
    assert m.heard(source, no_id).frames == []  # no id, no ack wanted
    _, other = from_unit(b":BG5ZZZ-11:ARRIVED{43")
    assert m.heard(source, other).frames == []  # not ours


def test_message_ids_are_not_reused_while_waiting() -> None:
    m = Messenger("BG5ZZZ-10", first_id=99_999)
    ids = [m.send("BG5ABC-9", f"CASE {i}", now=0.0)[0] for i in range(3)]
    assert ids == ["99999", "1", "2"]


@pytest.mark.parametrize(("text", "why"), [
    ("x" * 68, "at most 67"), ("CASE {7}", "cannot carry '{'"), ("a|b~c", "cannot carry '|~'"),
    ("line\nbreak", "cannot carry"),
])
def test_text_aprs_cannot_carry_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(MessagingError, match=why):
        Messenger("BG5ZZZ-10").send("BG5ABC-9", text, now=0.0)


@pytest.mark.parametrize(("call", "why"), [("BG5ZZZ-16", "callsign"), ("TOOLONGCALL", "callsign"), ("", "callsign")])
def test_a_bad_callsign_is_refused(call: str, why: str) -> None:
    with pytest.raises(MessagingError, match=why):
        Messenger(call)
    with pytest.raises(MessagingError, match="addressee"):
        Messenger("BG5ZZZ-10").send(call, "x", now=0.0)


def test_a_message_of_67_characters_is_sent_whole() -> None:
    text = "C" * 67
    assert message_info("BG5ABC-9", text, "1").endswith(text.encode() + b"{1")


def test_a_message_id_no_ack_could_carry_gets_no_ack() -> None:
    """Fuzzing: an id of characters outside ASCII (the decoder never makes one) raised while its ack was
    encoded; now it is not acknowledged."""
    m = Messenger("BG5ZZZ-10")
    detail = {"type": "message", "addressee": "BG5ZZZ-10", "text": "x", "message_id": "1\U0010e861"}
    assert m.heard("BG5ABC-9", detail).frames == []


@given(st.dictionaries(st.sampled_from(["type", "addressee", "text", "message_id", "ack", "rej", "reply_ack"]),
                       st.one_of(st.none(), st.text(max_size=12), st.integers(), st.binary(max_size=8))),
       st.text(max_size=12))
def test_garbage_details_settle_nothing_and_raise_nothing(detail: dict[str, Any], source: str) -> None:
    m = Messenger("BG5ZZZ-10")
    message_id, _ = m.send("BG5ABC-9", "CASE 7", now=0.0)
    result = m.heard(source, detail)
    assert all(o.message_id == message_id for o in result.outcomes)
    for frame in result.frames:  # whatever is acknowledged is a well-formed frame
        assert heard(frame).detail["type"] == "message"
