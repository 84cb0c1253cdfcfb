"""A third-party I/O driver in a real gateway: the ``acme_radio`` distribution (tests/data/plugins) is
found through its entry point by a ``pttbridge gateway`` process, its table is checked on load like a
built-in one, and what it reads reaches a real Mosquitto as events, with its health in the state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import Listener, Mosquitto, free_port, wait_until

from config.schema import ConfigError, load_config

ROOT = Path(__file__).parents[2]
PLUGINS = ROOT / "tests" / "data" / "plugins"
PREFIX = "pttbridge/v1"


def write_config(tmp: Path, broker_url: str, driver: str) -> Path:
    cfg = tmp / "gateway.toml"
    cfg.write_text(f"""
[gateway]
name = "gw1"
outbox = "outbox.sqlite"
state_interval_s = 1

[mqtt]
url = "{broker_url}"

[[channels]]
name = "lobby"

[[channels.drivers]]
{driver}

[[channels.rules]]
when = {{ kind = "ptt", unit = "acme:99" }}
kind = "alert"
label = "console panic key"
""")
    return cfg


def test_a_plugin_table_is_checked_on_load_and_its_errors_name_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883", 'type = "acme-udp"\nlisten = "127.0.0.1:5"')
    with pytest.raises(ConfigError) as where:  # the plugin is not installed: its type is unknown
        load_config(cfg)
    assert str(where.value) == (f"{cfg}: channels[0].drivers[0].type: unknown driver type 'acme-udp'; known: audio, "
                                "lines, modbus, serial (a plugin's type is known where its package is installed)")
    monkeypatch.syspath_prepend(str(PLUGINS))
    [channel] = load_config(cfg).channels
    [table] = channel.drivers
    assert (type(table).__name__, table.type, table.listen) == ("AcmeUdpConfig", "acme-udp", "127.0.0.1:5")  # type: ignore[attr-defined]
    bad = write_config(tmp_path, "mqtt://127.0.0.1:1883", 'type = "acme-udp"\nlisten = "nowhere"\nbaud = 9600')
    with pytest.raises(ConfigError) as where:
        load_config(bad)
    assert str(where.value).splitlines() == [
        f"{bad}: channels[0].drivers[0].listen: String should match pattern "
        r"'^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$' (got 'nowhere')",
        f"{bad}: channels[0].drivers[0].baud: Extra inputs are not permitted (got 9600)",
    ]
    broken = write_config(tmp_path, "mqtt://127.0.0.1:1883", 'type = "acme-broken"')
    with pytest.raises(ConfigError, match=r"channels\[0\]\.drivers\[0\]\.type: driver type 'acme-broken' cannot be "
                                          "loaded from acme_radio_missing"):
        load_config(broken)


def test_a_gateway_runs_a_driver_it_finds_through_an_entry_point(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f'type = "acme-udp"\nlisten = "127.0.0.1:{port}"')
    listener = Listener(mosquitto.url, f"{PREFIX}/gw/#")
    log = tmp_path / "gateway.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(PLUGINS)))}
    proc = subprocess.Popen([sys.executable, "-m", "pttbridge", "-v", "gateway", "-c", str(cfg)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))

    def radio() -> dict[str, Any]:
        states = [s for s in listener.payloads("/gw/gw1/state") if "radios" in s]
        return states[-1]["radios"].get("lobby/acme", {}) if states else {}

    try:
        wait_until(lambda: radio().get("state") == "open", 15, "the gateway to report the plugin's radio open")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as console:
            for datagram in (b"EMERGENCY 4711", b"PTT 99", b"hello"):
                console.sendto(datagram, ("127.0.0.1", port))
        wait_until(lambda: len(listener.events()) >= 2, 10, "two events on the broker")
        first, second = listener.events()[:2]
        assert (first["kind"], first["unit"], first["channel"], first["detail"]["protocol"]) == (
            "alert", "acme:4711", "lobby", "acme")
        # The channel's rules apply to a plugin's output as to any other driver's.
        assert (second["kind"], second["unit"], second["detail"]["rule"]) == ("alert", "acme:99", "console panic key")
        wait_until(lambda: radio().get("datagrams") == 3, 10, "the counters in the gateway's state")
        assert {k: radio()[k] for k in ("listen", "decoded", "rejected", "reconnects", "last_error")} == {
            "listen": f"127.0.0.1:{port}", "decoded": 2, "rejected": 1, "reconnects": 0, "last_error": None}
        assert "lobby/acme: rejected acme: expected EMERGENCY <id> or PTT <id> [68 65 6c 6c 6f]" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        listener.close()
    assert proc.returncode == 0, log.read_text()[-2000:]
