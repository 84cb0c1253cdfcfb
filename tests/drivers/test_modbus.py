"""Modbus, the sans-I/O part: what a change of a point means, debounce, the read plan, garbage readings,
and the configuration that builds points (errors name the key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.schema import ConfigError, ModbusDriverConfig, parse_config
from drivers.base import Output, Rejected
from drivers.modbus import MAX_READ, ModbusInputs, ModbusPoint, ReadBlock, Table, endpoint, read_plan
from gateway.events import Decoded, Event, Kind, decode_event, encode_event

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)
DI, CO, HR, IR = Table.DISCRETE_INPUT, Table.COIL, Table.HOLDING_REGISTER, Table.INPUT_REGISTER

PANIC = ModbusPoint("lobby-panic", DI, 0, Kind.ALERT, unit="io:lobby-panic", label="lobby panic button")
COR = ModbusPoint("cor", DI, 1, invert=True, debounce_ms=0)  # active-low squelch line
DOOR = ModbusPoint("door", HR, 10, bit=3)
POWER = ModbusPoint("mains", IR, 4, threshold=200, label="mains voltage present")


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def decoded(out: list[Output]) -> list[Decoded]:
    return [o for o in out if isinstance(o, Decoded)]


def run(inputs: ModbusInputs, polls: list[tuple[int, dict[tuple[Table, int], Any]]]) -> list[Output]:
    out: list[Output] = []
    for ms, readings in polls:
        out += inputs.feed(readings, at(ms))
    return out


def test_a_press_that_lasts_the_debounce_is_one_alert_for_the_unit() -> None:
    inputs = ModbusInputs([PANIC], slave=3)
    out = run(inputs, [(0, {(DI, 0): False}), (100, {(DI, 0): False}), (200, {(DI, 0): True}),
                       (250, {(DI, 0): True}), (300, {(DI, 0): True})])
    assert out == [Decoded(Kind.ALERT, at(250), "io:lobby-panic", None, {
        "protocol": "modbus", "point": "lobby-panic", "table": "discrete_input", "address": 0, "value": 1,
        "previous": 0, "raw": 1, "label": "lobby panic button", "slave": 3})]
    # The release is no emergency, but a dispatcher sees that the button was reset.
    out = run(inputs, [(400, {(DI, 0): False}), (500, {(DI, 0): False})])
    assert [(d.kind, d.detail["value"], d.detail["previous"]) for d in decoded(out)] == [(Kind.IO, 0, 1)]


def test_a_glitch_shorter_than_the_debounce_is_dropped() -> None:
    inputs = ModbusInputs([PANIC])
    polls = [(0, False), (100, True), (130, False), (200, True), (230, False), (300, False)]
    assert run(inputs, [(ms, {(DI, 0): v}) for ms, v in polls]) == []
    assert inputs.states() == {"lobby-panic": 0}


def test_the_first_reading_says_how_things_are_except_for_an_active_panic_button() -> None:
    inputs = ModbusInputs([PANIC, COR, DOOR, POWER])
    first = {(DI, 0): True, (DI, 1): False, (HR, 10): 0b1000, (IR, 4): 230}
    out = run(inputs, [(0, first), (60, first)])
    # A latched panic button found pressed at start is an alert; COR open, door open, power on are not news.
    assert [(d.kind, d.unit, d.detail["previous"]) for d in decoded(out)] == [(Kind.ALERT, "io:lobby-panic", None)]
    assert inputs.states() == {"lobby-panic": 1, "cor": 1, "door": 1, "mains": 1}


def test_alert_at_start_can_be_turned_off() -> None:
    quiet = ModbusPoint("panic", DI, 0, Kind.ALERT, alert_at_start=False, debounce_ms=0)
    inputs = ModbusInputs([quiet])
    assert run(inputs, [(0, {(DI, 0): True})]) == []
    assert [d.kind for d in decoded(run(inputs, [(100, {(DI, 0): False}), (200, {(DI, 0): True})]))] == [
        Kind.IO, Kind.ALERT]


def test_other_inputs_are_io_events_with_their_detail() -> None:
    inputs = ModbusInputs([COR, DOOR, POWER])
    quiet = {(DI, 1): True, (HR, 10): 0b0111, (IR, 4): 0}
    busy = {(DI, 1): False, (HR, 10): 0b1111, (IR, 4): 231}
    out = decoded(run(inputs, [(0, quiet), (100, quiet), (200, busy), (300, busy)]))
    assert {d.detail["point"]: (d.kind, d.detail["value"], d.detail["previous"], d.detail["raw"]) for d in out} == {
        "cor": (Kind.IO, 1, 0, 0), "door": (Kind.IO, 1, 0, 15), "mains": (Kind.IO, 1, 0, 231)}
    assert next(d for d in out if d.detail["point"] == "door").detail["bit"] == 3
    # COR has no debounce: it changed on the poll that saw it; the others on the next one.
    assert {d.detail["point"]: d.time for d in out} == {"cor": at(200), "door": at(300), "mains": at(300)}


def test_events_are_valid_on_the_wire() -> None:
    inputs = ModbusInputs([PANIC])
    [alert] = decoded(run(inputs, [(0, {(DI, 0): False}), (100, {(DI, 0): True}), (200, {(DI, 0): True})]))
    event = Event.stamp(alert, seq=1, gateway="gw1", channel="lobby")
    assert decode_event(encode_event(event)) == event


def test_an_outage_forgets_changes_waiting_out_their_debounce() -> None:
    inputs = ModbusInputs([PANIC])
    run(inputs, [(0, {(DI, 0): False}), (100, {(DI, 0): True})])
    inputs.reset()  # the link went down right after the first sight of the press
    assert run(inputs, [(5000, {(DI, 0): True})]) == []  # seen again, but not yet seen to last
    assert [d.kind for d in decoded(run(inputs, [(5100, {(DI, 0): True})]))] == [Kind.ALERT]


def test_points_missing_from_a_reading_wait() -> None:
    inputs = ModbusInputs([PANIC, COR])
    run(inputs, [(0, {(DI, 0): False, (DI, 1): True}), (100, {(DI, 0): False, (DI, 1): True})])
    assert run(inputs, [(200, {})]) == []
    assert inputs.states() == {"lobby-panic": 0, "cor": 0}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([(DI, 0), (DI, 1), (HR, 10), (IR, 4)]),
                          st.one_of(st.none(), st.booleans(), st.integers(-(2**20), 2**20), st.text(max_size=3),
                                    st.floats(allow_nan=True))), max_size=30))
def test_garbage_readings_are_rejected_and_good_ones_around_them_kept(garbage: list[tuple[Any, Any]]) -> None:
    inputs = ModbusInputs([PANIC, COR, DOOR, POWER])
    quiet = {(DI, 0): False, (DI, 1): True, (HR, 10): 0, (IR, 4): 0}
    run(inputs, [(0, quiet), (100, quiet)])
    for i, (key, value) in enumerate(garbage):
        for o in inputs.feed({**quiet, key: value}, at(200 + i)):  # never raises
            assert isinstance(o, Rejected) or o.kind is Kind.IO or o.detail["point"] == "lobby-panic"
    # After the garbage, a real press is still decoded.
    press = {**quiet, (DI, 0): True}
    after = decoded(run(inputs, [(10_000, quiet), (10_100, quiet), (10_200, press), (10_300, press)]))
    assert Kind.ALERT in [d.kind for d in after]


def test_a_reading_out_of_range_is_rejected_with_the_point_named() -> None:
    [rejected] = ModbusInputs([POWER]).feed({(IR, 4): 70000}, T0)
    assert isinstance(rejected, Rejected) and "point mains" in rejected.reason and rejected.raw == b"70000"


def test_the_read_plan_reads_runs_of_adjacent_addresses_and_no_gaps() -> None:
    points = [ModbusPoint(f"d{a}", DI, a) for a in (0, 1, 2, 5)] + [
        ModbusPoint("hr-bit0", HR, 7, bit=0), ModbusPoint("hr-bit1", HR, 7, bit=1), ModbusPoint("hr8", HR, 8)]
    assert read_plan(points) == [ReadBlock(DI, 0, 3), ReadBlock(DI, 5, 1), ReadBlock(HR, 7, 2)]
    many = [ModbusPoint(f"r{a}", IR, a) for a in range(MAX_READ["registers"] + 5)]
    assert read_plan(many) == [ReadBlock(IR, 0, 125), ReadBlock(IR, 125, 5)]


def test_coil_writes_name_a_coil_point_or_an_address() -> None:
    inputs = ModbusInputs([PANIC, ModbusPoint("ptt", CO, 16), ModbusPoint("lamp", CO, 17)])
    assert inputs.coil_address("ptt") == 16 and inputs.coil_address(3) == 3 and inputs.coil_address("40") == 40
    with pytest.raises(ValueError, match="discrete_input, not a coil"):
        inputs.coil_address("lobby-panic")
    with pytest.raises(ValueError, match="coils: ptt, lamp"):
        inputs.coil_address("siren")
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        inputs.coil_address(70000)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"table": DI, "address": 0, "bit": 2}, "a discrete_input is one bit"),
        ({"table": HR, "address": 0, "bit": 2, "threshold": 5}, "not both"),
        ({"table": DI, "address": 70000}, "address"),
        ({"table": DI, "address": 0, "unit": "lobby panic"}, "unit"),
        ({"table": DI, "address": 0, "kind": Kind.BEACON}, "kind"),
        ({"table": DI, "address": 0, "alert_at_start": True}, "only points of kind alert"),
    ],
)
def test_bad_points_say_which_field(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ModbusPoint("p", **kwargs)


def test_urls() -> None:
    assert endpoint("tcp://10.0.0.7") == ("tcp", "10.0.0.7", 502)
    assert endpoint("tcp://io-box:1502") == ("tcp", "io-box", 1502)
    assert endpoint("/dev/ttyUSB0") == ("rtu", "/dev/ttyUSB0", 0)
    assert endpoint("socket://10.0.0.8:4001") == ("rtu", "socket://10.0.0.8:4001", 0)


# --- configuration -----------------------------------------------------------------------------


def modbus(**driver: Any) -> dict[str, Any]:
    base = {"type": "modbus", "url": "tcp://127.0.0.1:1502",
            "points": [{"name": "panic", "table": "discrete_input", "address": 0, "kind": "alert",
                        "unit": "io:lobby-panic"}]}
    return {"channels": [{"name": "lobby", "drivers": [{**base, **driver}]}]}


def test_a_modbus_driver_is_configured() -> None:
    d = parse_config(modbus(slave=7, poll_interval_s=0.2)).channels[0].drivers[0]
    assert isinstance(d, ModbusDriverConfig)
    assert (d.type, d.url, d.slave, d.poll_interval_s, d.parity) == ("modbus", "tcp://127.0.0.1:1502", 7, 0.2, "E")
    assert d.points[0].unit == "io:lobby-panic" and d.points[0].debounce_ms == 50


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        ({"url": "tcp://:502"}, "channels[0].drivers[0].url: expected tcp://host[:port]"),
        ({"slave": 300}, "channels[0].drivers[0].slave"),
        ({"points": []}, "channels[0].drivers[0].points"),
        ({"points": [{"name": "p", "table": "register", "address": 0}]}, "channels[0].drivers[0].points[0].table"),
        ({"points": [{"name": "p", "table": "coil", "address": -1}]}, "channels[0].drivers[0].points[0].address"),
        ({"points": [{"name": "p", "table": "coil", "address": 1, "bit": 3}]},
         "channels[0].drivers[0].points[0]: bit/threshold: a coil is one bit already"),
        ({"points": [{"name": "p", "table": "coil", "address": 1, "unit": "Lobby"}]},
         "channels[0].drivers[0].points[0].unit"),
        ({"points": [{"name": "p", "table": "coil", "address": 1, "colour": "red"}]},
         "channels[0].drivers[0].points[0].colour"),
        ({"points": [{"name": "p", "table": "coil", "address": 1}, {"name": "p", "table": "coil", "address": 2}]},
         "channels[0].drivers[0].points: two points named 'p'"),
    ],
)
def test_modbus_config_errors_name_the_key(driver: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(modbus(**driver), "site.toml")
    assert f"site.toml: {expected}" in str(err.value)
