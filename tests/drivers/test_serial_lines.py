"""Inputs on serial modem-status lines (the radio's COR on CD): the sans-I/O watcher, the driver against a
real serial device server process, and COR marking transmissions in a running gateway."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st
from support import DeviceServer, Listener, Mosquitto, wait_until

from config.schema import ConfigError, parse_config
from drivers.base import Output
from drivers.serial_lines import LineWatcher, SerialLinesDriver
from gateway.events import Decoded
from gateway.runner import Gateway

T0 = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_the_first_reading_sets_the_state_and_a_held_change_is_an_io_event() -> None:
    w = LineWatcher({"cor": "cd"}, debounce_s=0.05)
    assert w.feed({"cd": True}, at(0)) == []  # already active at start: that is the state, no news
    assert w.feed({"cd": False}, at(20)) == []
    assert w.feed({"cd": False}, at(40)) == []
    [event] = w.feed({"cd": False}, at(80))  # held 60 ms
    assert isinstance(event, Decoded) and event.time == at(20)  # when it changed, not when it was believed
    assert dict(event.detail) == {"protocol": "serial_lines", "point": "cor", "line": "cd", "value": 0, "previous": 1}


def test_a_glitch_shorter_than_the_debounce_is_dropped_and_invert_reads_active_low() -> None:
    w = LineWatcher({"cor": "cts"}, invert=True, debounce_s=0.05)
    w.feed({"cts": True}, at(0))  # high = inactive when inverted
    assert w.state == {"cor": 0}
    assert w.feed({"cts": False}, at(20)) == [] and w.feed({"cts": True}, at(40)) == []  # 20 ms glitch
    assert w.feed({"cts": True}, at(200)) == []
    assert [e.detail["value"] for e in w.feed({"cts": False}, at(300)) + w.feed({"cts": False}, at(400))
            if isinstance(e, Decoded)] == [1]


def test_an_unknown_line_is_refused() -> None:
    with pytest.raises(ValueError, match=r"points\.cor: expected one of cts, dsr, cd, ri"):
        LineWatcher({"cor": "dcd"})


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 100)), max_size=60))
def test_events_alternate_and_each_level_held_long_enough(readings: list[tuple[bool, int]]) -> None:
    w = LineWatcher({"cor": "cd"}, debounce_s=0.05)
    t, out = 0, []
    for level, step in [(False, 0), *readings]:
        t += step
        out += w.feed({"cd": level}, at(t))
    values = [e.detail["value"] for e in out if isinstance(e, Decoded)]
    assert all(a != b for a, b in zip([0, *values], values, strict=False))


def test_the_driver_reports_cor_from_a_serial_device_server(device_server: DeviceServer) -> None:
    got: list[Output] = []
    driver = SerialLinesDriver("patrol-1/lines", device_server.url, LineWatcher({"cor": "cd"}), got.extend,
                               poll_s=0.01)
    driver.start()
    try:
        # The line read as it is: a change is a change from that.
        wait_until(lambda: driver.snapshot()["lines"] == {"cor": 0}, 10, "the port open and its line read")
        device_server.set_line("cd", True)
        wait_until(lambda: len(got) == 1, 5, "COR on")
        device_server.set_line("cd", False)
        wait_until(lambda: len(got) == 2, 5, "COR off")
        assert [e.detail["value"] for e in got if isinstance(e, Decoded)] == [1, 0]
        assert driver.snapshot()["lines"] == {"cor": 0} and driver.snapshot()["changes"] == 2
    finally:
        driver.stop()


def test_a_pseudo_terminal_has_no_lines_and_the_driver_says_so() -> None:
    controller, device = os.openpty()
    driver = SerialLinesDriver("x/lines", os.ttyname(device), LineWatcher({"cor": "cd"}), lambda out: None)
    driver.start()
    try:
        wait_until(lambda: driver.snapshot()["state"] == "down", 5, "the driver to give up on the pty")
        assert "no modem lines" in (driver.snapshot()["last_error"] or "")
    finally:
        driver.stop()
        os.close(controller)
        os.close(device)


def test_a_configuration_error_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"channels\[0\]\.drivers\[0\]\.points\.cor"):
        parse_config({"channels": [{"name": "p", "drivers": [
            {"type": "lines", "port": "x", "points": {"cor": "dcd"}}]}]})


def test_cor_marks_the_transmission_the_gateway_records(
    tmp_path: Path, mosquitto: Mosquitto, device_server: DeviceServer
) -> None:
    """Steady receiver hiss (voice activity could not tell a call from it); the COR line says when the
    carrier was there, and the call event and its clip follow it."""
    rate = 16000
    hiss = (np.random.default_rng(1).standard_normal(7 * rate) * 0.05).astype(np.float32)
    soundfile.write(tmp_path / "rx.wav", hiss, rate, subtype="PCM_16")
    config = parse_config({
        "gateway": {"name": "gw-cor", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "channels": [{
            "name": "patrol-6",
            "drivers": [{"type": "audio", "device": f"wav:{tmp_path / 'rx.wav'}", "rate": rate, "decoders": []},
                        {"type": "lines", "port": device_server.url, "points": {"cor": "cd"}, "poll_ms": 10}],
            "record": {"detect": "cor", "hang_ms": 100, "pre_roll_ms": 0},
        }],
    })
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/gw-cor/event/#")
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 10, "both open")
        wait_until(lambda: [d.snapshot().get("lines") for _, d in gateway.drivers if "lines" in d.snapshot()]
                   == [{"cor": 0}], 10, "the COR line read")
        device_server.set_line("cd", True)
        time.sleep(2.0)  # the carrier held two seconds: the length of the call to be recorded
        device_server.set_line("cd", False)
        wait_until(lambda: any(e["kind"] == "call" for e in listener.events()), 10, "the call")
        kinds = [(e["kind"], e["detail"].get("point"), e["detail"].get("value")) for e in listener.events()]
        assert kinds == [("io", "cor", 1), ("io", "cor", 0), ("call", None, None)]
        call = listener.events()[2]
        assert call["detail"]["protocol"] == "cor"
        assert abs(call["detail"]["duration_s"] - 2.0) < 0.3
    finally:
        gateway.stop()
        listener.close()
