"""Snapshots of every console screen at 80x24 and 160x48 (pytest-textual-snapshot; the SVGs are kept in
``__snapshots__/`` and compared pixel for pixel, so a layout that breaks at 80 columns shows in review).

The screens must look the same on every run: the data are fixed (a SQLite database filled with events
at fixed times, with fixed ids), the console's clock is set to :data:`NOW` in UTC, the marker
of new incidents does not flash, and the console has no broker (a link that never connects, shown as
online) so nothing arrives while the picture is taken. ``--snapshot-update`` writes them anew.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rig import SetClock, StillApp, until
from textual.pilot import Pilot

from bridge.store import CaseRules, Store
from config.schema import Config, parse_config
from console.app import DispatchApp
from console.screens.department import DepartmentScreen
from console.screens.health import GatewayHealthScreen
from console.screens.history import HistoryScreen
from console.screens.incident_detail import IncidentDetailScreen
from console.screens.login import LoginScreen
from console.screens.map import MapScreen
from console.screens.note import NoteScreen
from console.screens.open_case import OpenCaseScreen
from console.screens.plans import PlansScreen
from console.screens.report import ReportScreen
from console.screens.resolve import ResolveScreen
from gateway.events import Event, Kind, Position

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
SIZES = [(80, 24), (160, 48)]
CASES: dict[str, Any] = {
    "departments": [{"name": "police", "units": ["mdc:*"]}, {"name": "urban-management", "units": ["fleetsync:*"]},
                    {"name": "sanitation"}],
    "case_kinds": {"alert": {"departments": ["police"], "accept_s": 120, "arrive_s": 600,
                             "duty": "Police Law art. 21: help a citizen in danger"},
                   "street_stall": {"flow": "lead", "departments": ["urban-management", "police"], "accept_s": 300},
                   "noise": {"departments": ["police"], "accept_s": 600}},
}


def event_id(t: datetime, seq: int) -> str:
    """A UUIDv7 for ``t`` whose random bits are the sequence number: the same on every run."""
    ms = int(t.timestamp() * 1000)
    return str(uuid.UUID(int=(ms << 80) | 0x7 << 76 | seq << 64 | 0b10 << 62 | seq))


def event(kind: Kind, unit: str, ago_s: float, seq: int, lat: float, lon: float, *, channel: str = "patrol-1",
          **detail: object) -> Event:
    t = NOW - timedelta(seconds=ago_s)
    return Event(id=event_id(t, seq), seq=seq, gateway="gw1", channel=channel, kind=kind, time=t, unit=unit,
                 position=Position(lat=lat, lon=lon, speed_mps=4.0, course_deg=90.0, fix_time=t, source="gps"),
                 detail=detail)


GATEWAY_STATE = {
    "online": True, "gateway": "gw1", "time": "2026-05-01T11:59:58+00:00",
    "outbox": {"pending": 0, "next_seq": 7, "oldest_seq": 1, "clips_pending": 0}, "rejected": 1,
    "radios": {
        "emergency-1/kenwood": {"state": "open", "since": "2026-05-01T09:00:00+00:00", "last_error": None,
                                "reconnects": 0, "port": "/dev/ttyUSB0", "protocol": "kenwood-nmea",
                                "bytes_in": 18204, "decoded": 37, "rejected": 1},
        "audio": {"state": "open", "since": "2026-05-01T09:00:01+00:00", "last_error": None, "reconnects": 0,
                  "device": "pulse",
                  "radios": {"patrol-1": {"input": 1, "decoders": ["mdc1200"], "decoded": 41, "rejected": 0,
                                          "level": {"rms_dbfs": -31.2, "peak_dbfs": -12.0, "clipped": 0}},
                             "fire": {"input": 2, "decoders": ["fleetsync"], "decoded": 7, "rejected": 1,
                                      "level": {"rms_dbfs": -0.4, "peak_dbfs": 0.0, "clipped": 12}}}},
        "radio-2": {"state": "down", "since": "2026-05-01T11:58:00+00:00", "reconnects": 4,
                    "last_error": "cannot open /dev/ttyUSB1: [Errno 2] No such file or directory",
                    "port": "/dev/ttyUSB1", "protocol": "mdc1200", "bytes_in": 0, "decoded": 0, "rejected": 0},
    },
    "transmitters": {"emergency-1": {"output": "radio-1", "ptt": "serial-rts", "keyed": False, "sent": 3,
                                     "failed": 0}},
    "ports": [{"device": "/dev/ttyS0", "description": "n/a", "hwid": "n/a"},
              {"device": "/dev/ttyUSB0", "description": "FT232R USB UART", "hwid": "USB VID:PID=0403:6001"}],
    "audio_devices": [{"index": 0, "name": "pulse", "hostapi": "ALSA", "inputs": 32, "outputs": 32,
                       "default_rate": 44100.0, "default_input": True}],
}


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC (the console's clock and the store's, for the test's data, are set to :data:`NOW`)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def config(tmp_path: Path, frozen: None) -> Config:
    """Two open incidents (one new, one acknowledged by alice), a unit only heard, and an alias."""
    url = f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    site = parse_config({"departments": CASES["departments"], "case_kinds": CASES["case_kinds"]})
    store = Store.open(url, clock=lambda: NOW, rules=CaseRules.of(site))
    store.ingest([event(Kind.ALERT, "fleetsync:100-1001", 180, 1, 30.2095, 120.2107, channel="emergency-1",
                        rule="emergency")], received_at=NOW - timedelta(seconds=179))
    store.ingest([event(Kind.ALERT, "mdc:2002", 95, 2, 30.2151, 120.2204, rule="man down")],
                 received_at=NOW - timedelta(seconds=94))
    store.ingest([event(Kind.BEACON, "mdc:2003", 40, 3, 30.2033, 120.1987),
                  event(Kind.BEACON, "fleetsync:100-1001", 30, 4, 30.2101, 120.2112, channel="emergency-1")],
                 received_at=NOW - timedelta(seconds=29))
    store.set_alias("fleetsync:100-1001", "Car 12")
    [second] = [i for i in store.open_incidents() if i.unit == "mdc:2002"]
    store.acknowledge(second.id, "alice", "on the way")
    [first] = [i for i in store.open_incidents() if i.unit == "fleetsync:100-1001"]
    store.assign_unit(first.id, "alice", "mdc:2003")  # police's part: dispatched, its accept clock overrun
    store.note_gateway_state("gw1", GATEWAY_STATE, NOW - timedelta(seconds=2))
    store.close()
    return parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": "mqtt://127.0.0.1:1"},
                         "bridge": {"database_url": url}, **CASES,
                         "console": {"flash": False, "bell": False, "map_center": [30.209, 120.210],
                                     "map_zoom_m": 40}})


async def loaded(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, DispatchApp)
    await until(pilot, lambda: app.database == "ok" and app.dispatch.queue.row_count == 2, "the database read")
    await until(pilot, lambda: app.dispatch.units.row_count == 3, "the units")


def opens(keys: str, screen: type, ready: Callable[[Any], object] = lambda s: True
          ) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press(*keys)
        await until(pilot, lambda: isinstance(pilot.app.screen, screen), screen.__name__)
        await until(pilot, lambda: ready(pilot.app.screen), f"{screen.__name__} filled in")
        await pilot.pause(0.1)

    return run_before


def health_first(pilot: Pilot[None]) -> Awaitable[None]:
    app = pilot.app
    assert isinstance(app, DispatchApp)
    app.link.gateways.note("gw1", GATEWAY_STATE, NOW - timedelta(seconds=2))
    app.link.gateways.note("depot", {"online": False, "gateway": "depot", "reason": "lost the broker"},
                           NOW - timedelta(minutes=12))
    return opens("g", GatewayHealthScreen)(pilot)


SCREENS: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "dispatch": loaded,
    "incident_detail": opens(["enter"], IncidentDetailScreen, lambda s: s.detail is not None),  # type: ignore[arg-type]
    "map": opens("m", MapScreen, lambda s: "…" not in s.cameras_note),
    "history": opens("h", HistoryScreen, lambda s: s.results.row_count > 0),
    "health": health_first,
    "note": opens("n", NoteScreen),
    "open_case": opens("o", OpenCaseScreen),
    "department": opens(["enter", "d"], DepartmentScreen),  # type: ignore[arg-type]
    "resolve": opens("r", ResolveScreen),
    "plans": opens("t", PlansScreen, lambda s: s.gateways_table.row_count > 0),
    "report": opens("v", ReportScreen, lambda s: s.loaded is not None),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(screen: str, size: tuple[int, int], config: Config, snap_compare: Any) -> None:
    assert snap_compare(StillApp(config, "alice", SetClock(NOW)), terminal_size=size, run_before=SCREENS[screen])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_login(size: tuple[int, int], config: Config, snap_compare: Any) -> None:
    async def signing_in(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, LoginScreen), "the sign-in screen")
        await loaded(pilot)

    assert snap_compare(StillApp(config, None, SetClock(NOW)), terminal_size=size, run_before=signing_in)
