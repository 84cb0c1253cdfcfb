"""The history screen driven headless against a real database (SQLite and PostgreSQL) and broker: ``h``
opens it on the newest incidents, PageDown reads the next page, filters narrow the table as they are
typed, a bad time says so under its box, enter opens an incident's detail and plays a call."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile
from rig import CountingApp, run, screenshot, until
from support import Mosquitto

from bridge.store import Store
from config.schema import Config, parse_config
from console.screens.history import HistoryScreen, parse_when
from console.screens.incident_detail import IncidentDetailScreen
from console.widgets.player import LOADING
from gateway.events import Event, Kind, uuid7

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def event(kind: Kind, unit: str | None, at: float, seq: int, *, gateway: str = "gw1", channel: str = "patrol-1",
          **detail: object) -> Event:
    t = T0 + timedelta(seconds=at)
    return Event(id=uuid7(t), seq=seq, gateway=gateway, channel=channel, kind=kind, time=t, unit=unit,
                 detail=detail)


@pytest.fixture
def filled(tmp_path: Path, mosquitto: Mosquitto, database_url: str) -> Iterator[tuple[Config, Store, str]]:
    """55 incidents (five units at each second: equal times across the page boundary), a call with its
    clip, and beacons."""
    store = Store.open(database_url)
    store.ingest([event(Kind.ALERT, f"mdc:{2000 + n}", at=n // 5, seq=n + 1, rule="emergency") for n in range(54)])
    call = event(Kind.CALL, "mdc:2001", at=40, seq=70, duration_s=0.2)
    store.ingest([event(Kind.ALERT, "fleetsync:100-1001", at=30, seq=60, gateway="gw2", channel="fire",
                        rule="man down", call=call.id)])  # the transmission it came in (as test_calls makes)
    buf = io.BytesIO()
    soundfile.write(buf, np.zeros(1600, np.float32), 8000, format="FLAC")
    store.ingest([call, event(Kind.BEACON, "mdc:2001", at=41, seq=71)])
    store.add_clip("gw1", call.id, buf.getvalue())
    config = parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": mosquitto.url},
                           "bridge": {"database_url": database_url}})
    yield config, store, call.id
    store.close()


def test_history_pages_filters_and_opens(filled: tuple[Config, Store, str], tmp_path: Path) -> None:
    config, _store, call_id = filled
    app = CountingApp(config, "alice")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.database == "ok", "the console to read the database")
            await pilot.press("h")
            assert isinstance(app.screen, HistoryScreen)
            screen = app.screen

            # The newest incidents, one page of 50; PageDown down the table reads the other 5.
            await until(pilot, lambda: screen.results.row_count == 50, "the first page")
            first = screen.results.texts()[0]
            assert first["unit"] == "fleetsync:100-1001" and first["where"] == "fire@gw2"
            assert "man down" in first["detail"] and first["what"] == "incident"
            assert "more: PageDown" in str(screen.results.border_title)
            for _ in range(10):
                await pilot.press("pagedown")
                if screen.results.row_count == 55:
                    break
                await pilot.pause(0.05)
            await until(pilot, lambda: screen.results.row_count == 55, "the second page")
            keys = screen.results.ordered_keys()
            assert len(set(keys)) == 55  # every incident once, though five share each second
            assert "more" not in str(screen.results.border_title)
            screenshot(app, tmp_path, "console-history-incidents")

            # A unit: the table narrows as it is typed (a glob too).
            await pilot.press("slash")
            assert app.focused is screen.inputs["unit"]
            await pilot.press(*"mdc:2001")
            await until(pilot, lambda: [r["unit"] for r in screen.results.texts()] == ["mdc:2001"], "one unit")
            screen.inputs["unit"].value = ""
            await pilot.press(*"fleet*")
            await until(pilot, lambda: [r["unit"] for r in screen.results.texts()] == ["fleetsync:100-1001"],
                        "a glob")

            # A bad time says so under its box, and the table stays as it was.
            screen.inputs["since"].focus()
            await pilot.press(*"yesterdy")
            await until(pilot, lambda: "not a time" in str(screen.inputs["since"].border_subtitle), "the complaint")
            assert screen.results.row_count == 1
            screen.inputs["since"].value = ""
            await until(pilot, lambda: not screen.inputs["since"].border_subtitle, "the complaint gone")
            # Until before since: the until box says so.
            screen.inputs["since"].value = "-1h"
            screen.inputs["until"].value = "-3h"
            await until(pilot, lambda: "not after since" in str(screen.inputs["until"].border_subtitle),
                        "until before since")
            screen.inputs["since"].value = screen.inputs["until"].value = ""

            # Gateway and text filters; then enter on the incident opens its detail.
            screen.inputs["unit"].value = ""
            screen.inputs["gateway"].value = "gw1"
            screen.inputs["text"].value = "emergency"
            await until(pilot, lambda: screen.results.row_count == 50, "gw1's incidents")  # 54: a page, more
            assert "more: PageDown" in str(screen.results.border_title)
            assert all(r["where"] == "patrol-1@gw1" for r in screen.results.texts())
            screen.inputs["text"].value = "man down"
            await until(pilot, lambda: screen.results.row_count == 0, "none")
            screen.inputs["gateway"].value = ""
            await until(pilot, lambda: screen.results.row_count == 1, "the man-down incident")
            screen.results.focus()
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, IncidentDetailScreen), "the detail")
            detail = app.screen
            assert isinstance(detail, IncidentDetailScreen)
            assert detail.incident.unit == "fleetsync:100-1001" and detail.incident.label == "man down"
            await until(pilot, lambda: detail.alerts.row_count == 1, "the detail's alert")
            await pilot.press("p")  # the transmission the alert came in
            await until(pilot, lambda: detail.player.event_id == call_id and detail.player.state != LOADING,
                        "the detail's player")
            await pilot.press("escape", "escape")  # the clip stops, then back
            assert app.screen is screen

            # Calls: enter plays the selected one (its clip is read from the database by the player).
            screen.inputs["text"].value = ""
            screen.what.value = 1
            await until(pilot, lambda: [r["what"] for r in screen.results.texts()] == ["call"], "the calls")
            [row] = screen.results.texts()
            assert row["unit"] == "mdc:2001" and "flac sha256" in row["detail"]
            screen.results.focus()
            await pilot.press("enter")
            await until(pilot, lambda: screen.player.event_id == call_id and screen.player.state != LOADING,
                        "the player")
            assert "mdc:2001 patrol-1@gw1" in screen.player.line.plain
            await pilot.press("escape")  # stops the clip; a second escape leaves the screen
            await pilot.press("escape")
            assert app.screen is app.dispatch  # type: ignore[comparison-overlap]  # the keys changed the screen

    run(scenario())


def test_times_are_read_as_a_dispatcher_types_them() -> None:
    now = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)
    assert parse_when("", now) is None
    assert parse_when("-2h", now) == now - timedelta(hours=2)
    assert parse_when("30m", now) == now - timedelta(minutes=30)
    assert parse_when("2026-11-26T18:00:00+00:00", now) == datetime(2026, 11, 26, 18, tzinfo=UTC)
    local = now.astimezone()
    assert parse_when("7:05", now) == local.replace(hour=7, minute=5, second=0).astimezone(UTC)
    assert parse_when("yesterday", now) == (local.replace(hour=0, minute=0, second=0)
                                            - timedelta(days=1)).astimezone(UTC)
    for bad in ("yesterdy", "25:00", "2026-13-01", "2h ago"):
        with pytest.raises(ValueError, match="not a time"):
            parse_when(bad, now)
