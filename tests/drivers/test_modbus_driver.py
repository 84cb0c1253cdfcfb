"""The Modbus I/O driver against a real Modbus server process (tests/modbus_server.py, pymodbus's own
server), over TCP and over RTU through a pseudo-terminal pair: presses, glitches, coil writes, a server
that dies and comes back, and a gateway that publishes the alert to a real Mosquitto."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import Listener, ModbusServer, Mosquitto, SocatLink, free_port, wait_until

from config.schema import load_config
from drivers.base import Output
from drivers.modbus import ModbusDriver, ModbusPoint, ModbusWriteError, Table
from gateway.events import Decoded, Kind
from gateway.runner import Gateway

SLAVE = 3
PREFIX = "pttbridge/v1"


class Recorder:
    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self._lock = threading.Lock()

    def __call__(self, out: list[Output]) -> None:
        with self._lock:
            self.outputs += out

    def events(self, kind: Kind | None = None) -> list[Decoded]:
        with self._lock:
            return [o for o in self.outputs if isinstance(o, Decoded) and (kind is None or o.kind is kind)]


def socat_pair(workdir: Path) -> SocatLink:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    link = SocatLink(workdir, "rs485")
    link.plug()
    return link


@pytest.fixture(params=["tcp", "rtu"])
def module(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ModbusServer, str]]:
    """A server and the URL the driver opens: Modbus TCP on a loopback port, or RTU on a pty pair
    (the server on one end, the driver on the other, like a USB RS-485 adapter on a bus)."""
    link = None
    if request.param == "tcp":
        port = free_port()
        server, url = ModbusServer(tmp_path, ["--tcp", str(port)]), f"tcp://127.0.0.1:{port}"
    else:
        link = socat_pair(tmp_path)
        server, url = ModbusServer(tmp_path, ["--rtu", str(link.feed)]), str(link.radio)
    server.start()
    yield server, url
    server.stop()
    if link is not None:
        link.unplug()


PANIC = ModbusPoint("lobby-panic", Table.DISCRETE_INPUT, 0, Kind.ALERT, debounce_ms=400, unit="io:lobby-panic")
COR = ModbusPoint("cor", Table.INPUT_REGISTER, 2, threshold=500, debounce_ms=0)
LAMP = ModbusPoint("beacon-lamp", Table.COIL, 17, debounce_ms=0)


def driver(url: str, sink: Recorder, points: list[ModbusPoint] | None = None) -> ModbusDriver:
    return ModbusDriver("lobby/modbus", url, points or [PANIC, COR, LAMP], sink, slave=SLAVE,
                        poll_interval_s=0.05, timeout_s=0.5, serial_options={"baudrate": 19200, "parity": "N"})


def opened(drv: ModbusDriver) -> ModbusDriver:
    drv.start()
    wait_until(lambda: drv.snapshot()["state"] == "open" and drv.snapshot()["polls"] >= 3, 10, "polling")
    return drv


def test_a_press_is_an_alert_and_a_glitch_is_dropped(module: tuple[ModbusServer, str]) -> None:
    server, url = module
    sink = Recorder()
    drv = opened(driver(url, sink))
    try:
        # The button known to be released (a level is known once it has held for the debounce): a press is
        # a change from that.
        wait_until(lambda: drv.snapshot()["points"]["lobby-panic"] == 0, 5, "the button read as released")
        # A glitch (a loose wire touching for a moment): read by the driver, and gone again well within
        # the point's 400 ms debounce.
        for level, what in ((1, "the glitch"), (0, "its end")):
            polls = drv.snapshot()["polls"]
            server.set("di", 0, level)
            wait_until(lambda: drv.snapshot()["polls"] >= polls + 2, 5, f"{what} read")  # noqa: B023
        pressed_at = datetime.now(UTC)
        server.set("di", 0, 1)  # the officer presses and holds the button
        wait_until(lambda: sink.events(Kind.ALERT) != [], 5, "the alert")
        server.set("ir", 2, 731)  # the receiver's squelch opens (a COR level above the threshold)
        wait_until(lambda: sink.events(Kind.IO) != [], 5, "the COR event")
        [alert] = sink.events(Kind.ALERT)  # one: the press's, begun when it was pressed; the glitch gave none
        assert alert.unit == "io:lobby-panic" and alert.time >= pressed_at
        assert {k: alert.detail[k] for k in ("point", "address", "value", "previous", "slave")} == {
            "point": "lobby-panic", "address": 0, "value": 1, "previous": 0, "slave": SLAVE}
        [cor] = sink.events(Kind.IO)
        assert (cor.detail["point"], cor.detail["value"], cor.detail["raw"]) == ("cor", 1, 731)
        snap = drv.snapshot()
        assert snap["points"] == {"lobby-panic": 1, "cor": 1, "beacon-lamp": 0}
        assert (snap["state"], snap["last_error"], snap["decoded"]) == ("open", None, 2)
    finally:
        drv.stop()


def test_coil_writes_from_other_threads_reach_the_module(module: tuple[ModbusServer, str]) -> None:
    server, url = module
    sink = Recorder()
    drv = opened(driver(url, sink))
    try:
        drv.write_coil("beacon-lamp", True)
        server.expect("write co 17 1")
        # The lamp is a configured point too: the next poll sees it lit.
        wait_until(lambda: [e.detail["point"] for e in sink.events(Kind.IO)] == ["beacon-lamp"], 5, "the lamp")
        errors: list[BaseException] = []

        def key(address: int) -> None:
            try:
                for _ in range(5):
                    drv.write_coil(address, True)
                    drv.write_coil(str(address), False)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=key, args=(a,)) for a in (20, 21, 22)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        for a in (20, 21, 22):
            server.expect(f"write co {a} 0")
        assert drv.snapshot()["writes"] == 31 and drv.snapshot()["state"] == "open"
        with pytest.raises(ValueError, match="not a coil"):
            drv.write_coil("lobby-panic", True)
    finally:
        drv.stop()


@pytest.mark.parametrize("module", ["tcp"], indirect=True)
def test_a_refused_write_says_why(module: tuple[ModbusServer, str]) -> None:
    _, url = module
    drv = opened(driver(url, Recorder()))
    try:
        with pytest.raises(ModbusWriteError, match="refused coil 1000: exception 2 \\(illegal data address\\)"):
            drv.write_coil(1000, True)  # the module has 64 coils
        assert drv.snapshot()["write_errors"] == 1
    finally:
        drv.stop()


def test_a_module_that_dies_is_down_with_a_reason_and_polled_again_when_back(
    module: tuple[ModbusServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = module
    sink = Recorder()
    drv = opened(driver(url, sink))
    try:
        server.kill()
        wait_until(lambda: drv.snapshot()["state"] == "down", 10, "the driver to report down")
        snap = drv.snapshot()
        reason = snap["last_error"] or ""
        assert "slave 3" in reason or "cannot connect to" in reason, reason
        with pytest.raises(ModbusWriteError):
            drv.write_coil("beacon-lamp", True)
        # Backoff, watched over two and a half seconds of a dead module (the property is a rate): retries
        # at 0.5, 1, 2 s ... not one per 50 ms poll; the reason was logged once.
        time.sleep(2.5)
        assert drv.snapshot()["reconnects"] <= 5
        down_logs = [r for r in caplog.records if r.name == "drivers.link" and "lobby/modbus" in r.getMessage()]
        assert 1 <= len(down_logs) <= 2  # "no answer" then, maybe, "cannot connect" for TCP
        assert drv._thread.is_alive()  # no crash is the point
        server.start()  # back, with its inputs as a restarted module has them: all off
        wait_until(lambda: drv.snapshot()["state"] == "open", 40, "polling to resume")
        server.set("di", 0, 1)
        wait_until(lambda: sink.events(Kind.ALERT) != [], 5, "the alert after the restart")
        assert len(sink.events(Kind.ALERT)) == 1
    finally:
        drv.stop()
    assert drv.snapshot()["state"] == "stopped"


def gateway_config(tmp: Path, broker: Mosquitto, url: str) -> Path:
    cfg = tmp / "gateway.toml"
    cfg.write_text(f"""
[gateway]
name = "gw1"
outbox = "outbox.sqlite"
state_interval_s = 1

[mqtt]
url = "{broker.url}"

[[channels]]
name = "lobby"

[[channels.drivers]]
type = "modbus"
url = "{url}"
slave = {SLAVE}
poll_interval_s = 0.05
timeout_s = 0.5

[[channels.drivers.points]]
name = "lobby-panic"
table = "discrete_input"
address = 0
kind = "alert"
unit = "io:lobby-panic"
label = "lobby panic button"
debounce_ms = 100

[[channels.drivers.points]]
name = "vault-door"
table = "holding_register"
address = 5
bit = 0
invert = true

[[channels.rules]]
when = {{ protocol = "modbus", point = "vault-door", value = 1 }}
kind = "alert"
label = "vault door opened"
""")
    return cfg


@pytest.mark.parametrize("module", ["tcp"], indirect=True)
def test_a_gateway_publishes_the_alert_of_a_wired_button(
    tmp_path: Path, mosquitto: Mosquitto, module: tuple[ModbusServer, str]
) -> None:
    server, url = module
    server.set("hr", 5, 1)  # the vault door is closed: its contact closes the loop
    listener = Listener(mosquitto.url, f"{PREFIX}/gw/#")
    gateway = Gateway(load_config(gateway_config(tmp_path, mosquitto, url)))
    try:
        wait_until(lambda: listener.client.is_connected(), 5, "listener to connect")
        gateway.start()
        wait_until(lambda: gateway.drivers[0][1].snapshot()["polls"] >= 3, 10, "polling")
        server.set("di", 0, 1)
        wait_until(lambda: len(listener.events()) >= 1, 10, "the alert on the broker")
        server.set("hr", 5, 0)  # the door opens: a channel rule makes that an alert too
        wait_until(lambda: len(listener.events()) >= 2, 10, "the door alert on the broker")
        panic, door = listener.events()[:2]
        assert (panic["kind"], panic["unit"], panic["channel"], panic["detail"]["label"]) == (
            "alert", "io:lobby-panic", "lobby", "lobby panic button")
        assert (door["kind"], door["detail"]["rule"], door["detail"]["decoded_kind"]) == (
            "alert", "vault door opened", "io")
        wait_until(lambda: any("lobby/modbus" in s.get("radios", {}) for s in listener.payloads("/state")), 5,
                   "health")
        state: dict[str, Any] = [s for s in listener.payloads("/state") if "radios" in s][-1]
        assert state["radios"]["lobby/modbus"]["state"] == "open"
    finally:
        gateway.stop()
        listener.close()
