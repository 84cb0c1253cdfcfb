"""The event schema: codec round trips, the published JSON Schema agrees with the codec, bad payloads
are refused with the field named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.events import (
    Decoded,
    Event,
    EventError,
    Kind,
    Position,
    _number_problem,
    _numbers_fit,
    check_unit,
    decode_event,
    encode_event,
    event_to_dict,
    is_unit,
    load_json,
    make_unit,
    parse_time,
    printable,
    uuid7,
    uuid7_time,
)

T = TypeVar("T")

SCHEMA = json.loads((Path(__file__).parents[2] / "gateway" / "event.schema.json").read_text())

names = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
units = st.none() | st.from_regex(r"(mdc|fleetsync|aprs|nxdn|dtmf):[A-Za-z0-9\-]{1,20}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


def opt(values: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | values


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


def sample() -> dict[str, Any]:
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
        (lambda o: o.update(unit="mdc:\u001b[2J\u0007"), "unit"),
        (lambda o: o.update(unit="mdc:12\u000034"), "unit"),
        (lambda o: o.update(unit="mdc:x#y"), "unit"),
        (lambda o: o.update(unit="mdc:a b"), "unit"),
        (lambda o: o.update(unit="mdc:"), "unit"),
        (lambda o: o.update(unit="MDC:1"), "unit"),
        (lambda o: o.update(unit="1mdc:1"), "unit"),
        (lambda o: o.update(unit="abcdefghijklmnopq:1"), "unit"),
        (lambda o: o.update(unit="mdc:" + "9" * 65), "unit"),
        (lambda o: o.update(unit="mdc:\u202eevil"), "unit"),
        (lambda o: o["position"].update(source="x" * 33), "position.source"),
        (lambda o: o["position"].update(lat=91), "position.lat"),
        (lambda o: o["position"].update(lon="east"), "position.lon"),
        (lambda o: o["position"].pop("lat"), "position.lat"),
        (lambda o: o["position"].update(colour="red"), "position.colour"),
        (lambda o: o.update(detail=[1]), "detail"),
        (lambda o: o.update(extra=1), "extra"),
    ],
)
def test_bad_field_is_named(mutate: Callable[[dict[str, Any]], object], field: str) -> None:
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


def _json_loads(payload: bytes | str) -> object:
    def constant(name: str) -> object:
        raise ValueError(name)
    return json.loads(payload, parse_constant=constant)


json_bytes = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                     max_size=3), max_leaves=8)


@settings(max_examples=300)
@given(st.one_of(json_bytes.map(lambda v: json.dumps({"a": v}).encode()), st.binary(max_size=40),
                 st.sampled_from(["utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"]).flatmap(
                     lambda enc: json_bytes.map(lambda v: json.dumps({"a": v}).encode(enc))),
                 st.text(max_size=40), st.just("\ufeff{}")))
def test_json_is_read_as_json_loads_reads_it(payload: bytes | str) -> None:
    # load_json makes its decoder once and takes the usual UTF-8 object at once: what it reads, and what it
    # refuses, must be json.loads's (UTF-16 and -32 included, a BOM in text refused).
    try:
        expected: object = _json_loads(payload)
    except ValueError:
        with pytest.raises(ValueError, match="not JSON"):
            load_json(payload)
        return
    got = load_json(payload)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@given(json_bytes | st.integers(-2**70, 2**70))
@example(float("nan"))
@example(float("-inf"))
@example([{"x": 2**63}])
def test_numbers_that_fit_are_told_at_once_as_by_the_walk_that_names_them(value: object) -> None:
    assert _numbers_fit(value) == (_number_problem(value, "detail") is None)


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


# --- unit identities: the alphabet, and making one from radio text ----------------------------------


@pytest.mark.parametrize("unit", ["mdc:1234", "fleetsync:100-1001", "aprs:BG5ABC-9", "aprs:AO27_T", "zvei1:12345",
                                  "gps:car-7", "nxdn:U03001", "aprs:北京-1", "x:" + "9" * 64, "abcdefghijklmnop:1",
                                  "dtmf:*911#"[:-1], "aprs:a:b"])
def test_units_of_real_radios_are_units(unit: str) -> None:
    assert check_unit(unit) == unit and is_unit(unit)


@pytest.mark.parametrize("unit", ["mdc:\x1b[2J\x07", "mdc:\x00", "mdc:x#y", "mdc:x+y", "mdc:a/b", "mdc:a b", "mdc:",
                                  ":1", "mdc", "", "Mdc:1", "9mdc:1", "mdc:\u202e1", "mdc:\u200b1", "mdc:\x85",
                                  "mdc:\ud800", "mdc:\ufffe", "mdc:\u00a01", "mdc:1\n"])
def test_anything_else_is_refused_with_the_character_named(unit: str) -> None:
    assert not is_unit(unit)
    with pytest.raises(EventError) as err:
        check_unit(unit)
    assert err.value.field == "unit"
    assert str(err.value).isprintable()  # the reason itself never carries the raw character


def test_a_unit_is_made_from_radio_text_by_replacing_what_the_alphabet_refuses() -> None:
    assert make_unit("aprs", "AO27 T") == "aprs:AO27_T"
    assert make_unit("aprs", "  ISS      ") == "aprs:ISS"
    assert make_unit("kenwood", "a#b/c+d\x1be") == "kenwood:a_b_c_d_e"
    assert make_unit("aprs", "x" * 100) == "aprs:" + "x" * 64
    for bad_protocol in ("APRS", "", "9x", "a" * 17, "a-b"):
        with pytest.raises(ValueError, match="is not a unit protocol"):
            make_unit(bad_protocol, "1")
    with pytest.raises(ValueError, match="no unit id"):
        make_unit("aprs", "   ")


@given(st.text(max_size=80))
def test_made_units_are_always_units(text: str) -> None:
    try:
        unit = make_unit("aprs", text)
    except ValueError:
        assert not text.strip()
        return
    assert is_unit(unit)


@given(st.text(min_size=1, max_size=70))
def test_the_schema_and_the_codec_agree_on_units(ident: str) -> None:
    unit = f"mdc:{ident}"
    in_schema = jsonschema.Draft202012Validator(SCHEMA["properties"]["unit"]).is_valid(unit)
    # The published pattern spells out every control, white space, / # + and the common format characters;
    # the codec also refuses the rest of what is not printable (unassigned code points and the like).
    assert not (is_unit(unit) and not in_schema)
    if all(ch.isprintable() or ch.isspace() or ord(ch) < 0xA0 for ch in ident):
        assert is_unit(unit) == in_schema


# --- times and numbers that storage cannot hold -------------------------------------------------------


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+00:01", "0000-01-01T00:00:00Z"])
def test_a_time_past_what_a_datetime_holds_is_an_event_error(text: str) -> None:
    # The published pattern cannot say this; found in the field as an OverflowError out of one event that
    # took its whole batch with it.
    with pytest.raises(EventError) as err:
        parse_time(text, "time")
    assert err.value.field == "time"
    obj = sample()
    obj["position"]["fix_time"] = text
    with pytest.raises(EventError) as err:
        decode_event(json.dumps(obj))
    assert err.value.field == "position.fix_time"


@pytest.mark.parametrize(("detail", "field"), [('{"n": 9223372036854775808}', "detail.n"),
                                               ('{"a": [1, {"b": -9223372036854775809}]}', "detail.a[1].b"),
                                               ('{"x": 1e999}', "detail.x")])  # read as float("inf")
def test_numbers_in_detail_fit_in_64_bits_and_are_finite(detail: str, field: str) -> None:
    obj = sample()
    obj["detail"] = "DETAIL"
    with pytest.raises(EventError) as err:
        decode_event(json.dumps(obj).replace('"DETAIL"', detail))
    assert err.value.field == field
    obj["detail"] = {"n": 2**63 - 1, "m": -(2**63), "f": 1e308}
    assert decode_event(json.dumps(obj)).detail["n"] == 2**63 - 1


def test_printable_escapes_what_would_move_a_terminal_or_forge_a_log_line() -> None:
    assert printable("\x1b[2JZZTOP\x1b]0;PWNED\x1b\\") == "\\x1b[2JZZTOP\\x1b]0;PWNED\\x1b\\"
    assert printable("alice\n2026-01-01 INFO forged") == "alice\\n2026-01-01 INFO forged"
    assert printable("\u202eabc\x00") == "\\u202eabc\\x00"
    assert printable("王 Wang ✓") == "王 Wang ✓"
    assert printable("x" * 100, 10) == "x" * 9 + "…"


@given(st.text())
def test_printable_output_is_always_printable(text: str) -> None:
    assert printable(text).isprintable()


@pytest.mark.parametrize("field", ["id", "gateway", "channel", "time", "unit"])
def test_a_trailing_newline_is_no_part_of_a_name_an_id_or_a_time(field: str) -> None:
    # Python's "$" also matches before a final newline: "gw1\n" once passed as a gateway's name.
    obj = sample()
    obj[field] = obj[field] + "\n"
    with pytest.raises(EventError) as err:
        decode_event(json.dumps(obj))
    assert err.value.field == field


def _unit_by_the_rule(text: str) -> bool:
    """The unit alphabet as the schema words it, one character at a time."""
    protocol, colon, ident = text.partition(":")
    return (bool(colon) and 1 <= len(protocol) <= 16 and protocol[0] in "abcdefghijklmnopqrstuvwxyz"
            and all(c in "abcdefghijklmnopqrstuvwxyz0123456789" for c in protocol) and 1 <= len(ident) <= 64
            and all(c.isprintable() and not c.isspace() and c not in "/#+" for c in ident))


@given(st.from_regex(r"[a-z0-9:]{0,18}", fullmatch=True)
       | st.builds(lambda p, i: f"{p}:{i}", st.from_regex(r"[a-z][a-z0-9]{0,16}", fullmatch=True),
                   st.text(st.characters(max_codepoint=0x7F) | st.characters(), max_size=70)))
@example("mdc:12 34")
@example("aprs:BG5#")
@example("mdc:1/2")
@example("mdc:1+2")
@example("mdc:\x7f")
@example("aprs:Ñ1")
@example("a" * 17 + ":1")
@example("mdc:" + "1" * 65)
@example("mdc:" + "~" * 64)
@example("mdc:")
def test_a_unit_is_taken_exactly_as_the_rule_says_ascii_or_not(text: str) -> None:
    assert is_unit(text) is _unit_by_the_rule(text)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_a_gateways_time_reads_as_the_general_rfc3339_reading_does(t: datetime) -> None:
    text = t.isoformat(timespec="milliseconds") + "Z"
    general = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    got = parse_time(text, "time")
    assert got == general and got.tzinfo is UTC
