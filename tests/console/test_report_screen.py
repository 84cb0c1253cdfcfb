"""The supervisor's report screen driven headless (``v`` from the main screen) on the hand-built cases of
the report's tests, on SQLite and PostgreSQL, on the console's set clock: the headline, the sparklines per
day, the bars per kind and department, the valid-case rates, another window; a database it cannot read
said so on the screen."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report_cases import build_site, random_site
from rich.console import Console
from rig import SetClock, StillApp, run, screenshot, until
from textual.widgets import Sparkline, Static

from bridge.store import Store
from config.schema import parse_config
from console.screens.report import ReportScreen, bar

NOW = datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)


def text(widget: Static, width: int = 160) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 - closed with it
    console.print(widget.content)
    out = console.export_text()
    console.file.close()
    return out


def config_for(url: str, tmp_path: Path) -> Any:
    return parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": "mqtt://127.0.0.1:1"},
                         "bridge": {"database_url": url}, "console": {"flash": False, "bell": False}})


async def open_report(pilot: Any, app: StillApp) -> ReportScreen:
    """The report screen as a supervisor opens it (``v``), once it has read the database."""
    await until(pilot, lambda: app.database == "ok", "the console to read the database")
    await pilot.press("v")
    await until(pilot, lambda: isinstance(app.screen, ReportScreen), "the report screen")
    screen = app.screen
    assert isinstance(screen, ReportScreen)
    await until(pilot, lambda: screen.loaded is not None, "the report read")
    return screen


def test_bars_are_drawn_to_an_eighth() -> None:
    assert bar(1, 1, 4) == "████"
    assert bar(1, 2, 4) == "██"
    assert bar(1, 16, 4) == "▎"
    assert bar(0, 5) == "" and bar(3, 0) == ""


def test_the_report_screen_shows_what_the_report_says(database_url: str, tmp_path: Path) -> None:
    store = Store.open(database_url, clock=lambda: NOW)
    build_site(store, NOW)
    store.close()
    app = StillApp(config_for(database_url, tmp_path), "sam", SetClock(NOW))

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await open_report(pilot, app)
            head = text(screen.headline)
            assert "Last 7 days, 2026-11-24 16:00 to 2026-12-01 16:00 UTC" in head
            assert "9 parts opened · 6 accepted · 4 arrived · 4 handled · 3 overdue now" in head
            assert "to accept: median 2m20s, 90% within 5m00s; in accept_s: 50% of 8" in head
            opened = screen.query_one("#opened-line", Sparkline)
            assert list(opened.data or []) == [0.0] * 7 + [9.0]  # the 8 days of the window, today's 9
            late = screen.query_one("#late-line", Sparkline)
            assert list(late.data or []) == [0.0] * 7 + [4.0]  # judged 8, accepted in time 4
            assert "Parts opened per day, 11-24 to 12-01 (most 9)" in text(screen.opened_title)
            bars = text(screen.bars)
            stall = next(line for line in bars.splitlines() if line.startswith("street_stall"))
            assert "█" * 24 + " 5" in stall and "40%" in stall  # the most opened: the longest bar
            noise = next(line for line in bars.splitlines() if line.startswith("noise"))
            assert "█" * 19 + "▎ 4" in noise and "67%" in noise
            verified = text(screen.verified)
            assert "category street_stall" in verified and "67%" in verified and "2 / 1 / 1" in verified
            assert "camera dome-3" in verified and "50%" in verified
            assert "Cases by kind" in text(screen.table) and "Camera detections verified" in text(screen.table)

            await pilot.press("b")  # by department
            await until(pilot, lambda: screen.loaded is not None and screen.loaded.report.by == "department",
                        "the report by department")
            police = screen.group("police")
            assert police is not None and (police.opened, police.overdue) == (5, 2)
            assert next(line for line in text(screen.bars).splitlines() if line.startswith("police"))

            await pilot.press("w")  # 30 days
            await until(pilot, lambda: screen.loaded is not None and screen.loaded.days.since.day == 1
                        and screen.loaded.days.since.month == 11, "30 days")
            assert len(screen.query_one("#opened-line", Sparkline).data or []) == 31
            assert "Last 30 days" in text(screen.headline)
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, ReportScreen), "back to the main screen")

    run(scenario())


def test_a_database_it_cannot_read_is_said_on_the_screen(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"no database here " * 200)
    app = StillApp(config_for(f"sqlite:///{broken}", tmp_path), "sam", SetClock(NOW))

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, ReportScreen), "the report screen")
            screen = app.screen
            assert isinstance(screen, ReportScreen)
            await until(pilot, lambda: "cannot read the report" in text(screen.headline), "the error shown")
            assert screen.loaded is None

    run(scenario())


def test_a_busy_week_drawn(tmp_path: Path) -> None:
    """A week of random cases (the README's picture): every day has its sparkline column, every kind its bar."""
    url = f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    store = Store.open(url, clock=lambda: NOW)
    random_site(store, NOW, seed=3, n=300)
    store.close()
    app = StillApp(config_for(url, tmp_path), "sam", SetClock(NOW))

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await open_report(pilot, app)
            opened = list(screen.query_one("#opened-line", Sparkline).data or [])
            assert len(opened) == 8 and all(opened[1:])  # the first day of the window starts at 16:00
            bars = text(screen.bars)
            assert all(any(line.startswith(kind) for line in bars.splitlines()) for kind in ("noise", "street_stall"))
            screenshot(app, tmp_path, "console-report")

    run(scenario())
