"""The console shows everything against the clock it is given: set forward, an incident's age, a unit's
"heard", the header's time and the detail's "ago" all follow, with nothing waited for but the console's
own once-a-second redraw of ages."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from rig import SetClock, StillApp, run, until

from bridge.store import Store
from config.schema import parse_config
from console.screens.incident_detail import IncidentDetailScreen
from gateway.events import Event, Kind, Position, uuid7

OPENED = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The dispatcher's local time is UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fields_text(screen: IncidentDetailScreen) -> str:
    console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
    console.print(screen.fields.content)
    return console.export_text()


def test_ages_and_times_follow_the_console_s_clock(tmp_path: Path, utc: None) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    store = Store.open(url)
    alert = Event(id=uuid7(OPENED), seq=1, gateway="gw1", channel="patrol-1", kind=Kind.ALERT, time=OPENED,
                  unit="mdc:1234", position=Position(30.2095, 120.2107, fix_time=OPENED, source="gps"),
                  detail={"protocol": "mdc1200"})
    store.ingest([alert], received_at=OPENED)
    store.close()
    config = parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": "mqtt://127.0.0.1:1"},
                           "bridge": {"database_url": url}, "console": {"flash": False, "bell": False}})
    clock = SetClock(OPENED + timedelta(seconds=40))
    app = StillApp(config, "alice", clock)

    def age() -> str:
        return app.dispatch.queue.texts()[0]["age"]

    def heard() -> str:
        return app.dispatch.units.texts()[0]["heard"]

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.dispatch.queue.texts() and app.dispatch.units.texts(), "the incident")
            assert (age(), heard()) == ("40s", "40s")
            clock.at = OPENED + timedelta(hours=2, minutes=5)
            await until(pilot, lambda: (age(), heard()) == ("2h", "2h"), "the ages at the clock's new time")
            assert app.dispatch.header.clock == "11:05:00"
            app.open_detail(next(iter(app.state.incidents)))
            await until(pilot, lambda: isinstance(app.screen, IncidentDetailScreen), "the detail")
            screen = app.screen
            assert isinstance(screen, IncidentDetailScreen)
            await until(pilot, lambda: "ago" in fields_text(screen), "the detail's fields")
            assert "09:00:00 (2h ago)" in fields_text(screen)
            clock.at = OPENED + timedelta(days=1)  # the next day: the opening time is given with its date
            screen.show_incident(screen.incident)
            assert "2026-05-01 09:00:00 (1d ago)" in fields_text(screen)

    run(scenario())
