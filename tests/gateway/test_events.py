"""The event schema: codec round trips, the published JSON Schema agrees with the codec, bad payloads
are refused with the field named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events import (
    Decoded,
    Event,
    EventError,
    Kind,
    Position,
    decode_event,
    encode_event,
    event_to_dict,
    uuid7,
    uuid7_time,
)

SCHEMA = json.loads((Path(__file__).parents[2] / "gateway" / "event.schema.json").read_text())

names = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
units = st.none() | st.from_regex(r"(mdc|fleetsync|aprs|nxdn|dtmf):[A-Za-z0-9\-]{1,20}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
opt = lambda s: st.none() | s  # noqa: E731
positions = st.none() | st.builds(
    Position,
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    alt_m=opt(st.floats(-400, 9000)),
    speed_mps=opt(st.floats(0, 300)),
    course_deg=opt(st.floats(0, 360)),
    fix_time=opt(times),
    source=st.sampled_from(["nmea", "kenwood", "aprs"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
decodeds = st.builds(
    Decoded,
    kind=st.sampled_from(list(Kind)),
    time=times,
    unit=units,
    position=positions,
    detail=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
)


@given(decodeds, st.integers(0, 2**63 - 1), names, names)
def test_round_trip_and_schema_agree(d: Decoded, seq: int, gw: str, ch: str) -> None:
    event = Event.stamp(d, seq=seq, gateway=gw, channel=ch)
    payload = encode_event(event)
    jsonschema.validate(json.loads(payload), SCHEMA)
    assert decode_event(payload) == event


def sample() -> dict:
    d = Decoded(Kind.ALERT, datetime(2026, 11, 26, 19, 30, 1, 123000, UTC), "mdc:1234",
                Position(30.2095, 120.2107, source="nmea"), {"protocol": "mdc1200", "op": 0})
    return event_to_dict(Event.stamp(d, seq=4711, gateway="xixing-1", channel="patrol-1"))


def test_wire_form_matches_design() -> None:
    obj = sample()
    assert obj["v"] == 1 and obj["kind"] == "alert" and obj["time"] == "2026-11-26T19:30:01.123Z"
    assert obj["position"]["lat"] == 30.2095 and obj["unit"] == "mdc:1234"
    assert uuid7_time(obj["id"]) == datetime(2026, 11, 26, 19, 30, 1, 123000, UTC)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("seq"), "seq"),
        (lambda o: o.update(seq=-1), "seq"),
        (lambda o: o.update(seq=True), "seq"),
        (lambda o: o.update(v=2), "v"),
        (lambda o: o.update(id="not-a-uuid"), "id"),
        (lambda o: o.update(kind="explosion"), "kind"),
        (lambda o: o.update(gateway="a/b"), "gateway"),
        (lambda o: o.update(channel=""), "channel"),
        (lambda o: o.update(time="yesterday"), "time"),
        (lambda o: o.update(unit="no-colon"), "unit"),
        (lambda o: o["position"].update(lat=91), "position.lat"),
        (lambda o: o["position"].update(lon="east"), "position.lon"),
        (lambda o: o["position"].pop("lat"), "position.lat"),
        (lambda o: o["position"].update(colour="red"), "position.colour"),
        (lambda o: o.update(detail=[1]), "detail"),
        (lambda o: o.update(extra=1), "extra"),
    ],
)
def test_bad_field_is_named(mutate, field: str) -> None:
    obj = sample()
    mutate(obj)
    with pytest.raises(EventError) as err:
        decode_event(json.dumps(obj))
    assert err.value.field == field
    assert field in str(err.value)
    with pytest.raises(jsonschema.ValidationError):  # the published schema refuses it too
        jsonschema.validate(obj, SCHEMA)


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b"NaN", b"x" * 70000])
def test_garbage_is_refused_with_a_reason(payload: bytes) -> None:
    with pytest.raises(EventError) as err:
        decode_event(payload)
    assert err.value.field == "$"


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_decode_never_raises_anything_but_event_error(payload: bytes | str) -> None:
    try:
        decode_event(payload)
    except EventError:
        pass


def test_uuid7_is_time_ordered_and_unique_within_a_millisecond() -> None:
    t = datetime(2026, 11, 26, tzinfo=UTC)
    ids = [uuid7(t) for _ in range(3000)] + [uuid7(t + timedelta(milliseconds=1))]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)


@pytest.mark.parametrize("payload", [b"[" * 5000, b'{"a":' * 3000, "[" * 1000])
def test_nesting_past_the_recursion_limit_is_refused_as_not_json(payload: bytes | str) -> None:
    # Found by bench/fuzz: json.loads raised RecursionError, which is no ValueError.
    with pytest.raises(EventError, match="not JSON") as err:
        decode_event(payload)
    assert err.value.field == "$"
