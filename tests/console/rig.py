"""Helpers of the console tests: radio frames, the configuration of a whole site, driving consoles
headless (a console with its bell counted, waiting without blocking its event loop, screenshots)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support import Mosquitto, SocatLink, site_config
from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot

from bridge.service import Bridge
from bridge.store import Store
from config.schema import Config
from console.app import DispatchApp
from console.clock import Clock
from console.link import BridgeLink
from drivers.nmea import checksum
from gateway.runner import Gateway


def pklds_emergency(unit: int, lat: str = "3012.5700,N", lon: str = "12012.6420,E") -> bytes:
    """A Kenwood ``$PKLDS`` position whose sender status is 99 (emergency), from fleet 100, ``unit``:
    the radio's GPS report sent as its emergency button is pressed. Default: 30.2095 N, 120.2107 E."""
    now = datetime.now(UTC)
    body = f"PKLDS,{now:%H%M%S},A,{lat},{lon},001.1,194.9,{now:%d%m%y},,,100,{unit:04d},99,00,"
    return f"${body}*{checksum(body):02X}\r\n".encode()


def write_config(tmp: Path, broker: Mosquitto, database_url: str, port: Path | None, console: str = "") -> Path:
    return site_config(tmp, broker.url, database_url, port, bridge={"reannounce_s": 600}, console=console)


@dataclass
class Site:
    """A running gateway and bridge, the radio's pty, and the bridge's database."""

    config: Config
    radio: SocatLink
    bridge: Bridge
    gateway: Gateway

    @property
    def store(self) -> Store:
        assert self.bridge.store is not None
        return self.bridge.store


class CountingApp(DispatchApp):
    """The console with its bell counted (a headless terminal has no bell to hear) and its notifications
    kept (they vanish from the screen after a few seconds)."""

    bells = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []

    def bell(self) -> None:
        self.bells += 1
        super().bell()

    flashes = 0  # turns of the flashing timer (flashing or not, as configured)

    def _flash(self) -> None:
        self.flashes += 1
        super()._flash()

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.notes.append(message)
        super().notify(message, *args, **kwargs)


class SetClock(Clock):
    """The console's clock at the time a test sets (``at``), not moving unless it is set again."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class SilentLink(BridgeLink):
    """A link that never connects: nothing arrives but what the database holds."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class StillApp(DispatchApp):
    """The console without a broker, shown as connected, on a clock the test sets (a snapshot is of
    screens, not of a network or of the time it was taken)."""

    def __init__(self, config: Config, operator: str | None, clock: SetClock) -> None:
        super().__init__(config, operator, clock=clock)
        self.link = SilentLink(config.mqtt, self.post_message, clock=clock)

    def on_mount(self) -> None:  # runs before DispatchApp.on_mount (Textual calls each class's handler)
        self.broker = True


async def until(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Let the app run until ``predicate`` holds (never sleeping the event loop the app runs on)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Type ``text`` into the focused field as a quick typist does: its keys in order (named as
    ``Pilot.press`` names them), then one wait for the screen. ``Pilot.press`` waits after every key for
    the whole process to go idle, up to two seconds a key, and a process that also runs a gateway
    decoding live audio never does: a unit's name took half a minute to type."""
    for character in text:
        key = character if character.isalnum() else _character_to_key(character)
        pilot.app.post_message(events.Key(key, character))
    await pilot.pause()


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """Run an async scenario (the project runs its tests without an asyncio plugin)."""
    asyncio.run(scenario)


def screenshot(app: DispatchApp, tmp_path: Path, name: str) -> Path:
    """Save what the console shows as SVG (in PTTBRIDGE_SCREENSHOTS if set, to keep them)."""
    folder = Path(os.environ.get("PTTBRIDGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(app.save_screenshot(f"{name}.svg", str(folder)))
