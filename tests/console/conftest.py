"""Fixtures of the console tests: the whole chain for real (pty -> gateway -> Mosquitto -> bridge ->
database -> consoles), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rig import Site, write_config
from support import Mosquitto, SocatLink, wait_until

from bridge.service import Bridge
from config.schema import load_config
from gateway.runner import Gateway


@pytest.fixture
def site(tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, database_url: str) -> Iterator[Site]:
    config = load_config(write_config(tmp_path, mosquitto, database_url, socat_link.radio))
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: bridge.connected, 10, "bridge to connect")
        wait_until(lambda: gateway.publisher.connected, 10, "gateway to connect")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port to open")
        yield Site(config, socat_link, bridge, gateway)
    finally:
        gateway.stop()
        bridge.stop()
