"""The supervisor's report (``v`` from the main screen): how the cases went over the last day, week, month
or year, the figures of ``pttbridge report`` (bridge/report.py) with the ones a supervisor looks at
rather than reads drawn: parts opened per day as a sparkline, those not accepted within the limit per
day as another, bars per kind or department (opened, and kept within each limit), and the valid-case rate of
camera detections per category and per camera.

    w  the window: 24 h, 7 days, 30 days, a year      b  the grouping: kind, department, unit, camera
    r  read again                                     escape  back

Read from the database in a worker (the same queries as the command line; the only write is the day
summaries a report makes, bridge/store/report.py); nothing here is computed but the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from rich import box
from rich.console import Group as Stack
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Sparkline, Static

from bridge.report import CLOCKS, CaseReport, Group, Verified, key_text, share_text, span, tables
from console.clock import clock_of
from console.data import StoreHandle, describe_error
from console.widgets.footer import ConsoleFooter
from console.widgets.status_header import StatusHeader

WINDOWS = (("24 hours", 1), ("7 days", 7), ("30 days", 30), ("a year", 365))
GROUPINGS = ("kind", "department", "unit", "camera")
BAR = 24  # cells of the longest bar
EIGHTHS = " ▏▎▍▌▋▊▉"
SHOWN = 12  # groups drawn as bars; the table below has them all


def bar(value: float, top: float, width: int = BAR) -> str:
    """``value`` of ``top`` as a bar of ``width`` cells, to an eighth of a cell."""
    if top <= 0 or value <= 0:
        return ""
    eighths = round(min(value / top, 1.0) * width * 8)
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def share_style(share: float | None) -> str:
    """Green when nine in ten or more kept the limit, yellow from three in four, red below."""
    if share is None:
        return "dim"
    return "green" if share >= 0.9 else "yellow" if share >= 0.75 else "bold red"


def headline(r: CaseReport) -> Text:
    """The window in one line: parts opened, each clock's median and share in limit, overdue now."""
    t = r.total
    out = Text.assemble((f"{t.opened} parts opened", "bold"), f" · {t.accepted} accepted · {t.arrived} arrived · "
                        f"{t.handled} handled · ")
    out.append(f"{t.overdue} overdue now", "bold red" if t.overdue else "green")
    for name, limit in CLOCKS:
        c = t.clock(name)
        out.append(f"\nto {name}: median {span(c.median_s)}, 90% within {span(c.p90_s)}; in {limit}: ")
        out.append(share_text(c.share), share_style(c.share))
        if c.judged:
            out.append(f" of {c.judged}", "dim")
    note = r.untimed_note()
    if note:
        out.append(f"\n{note}", "yellow")
    return out


def group_bars(r: CaseReport, width: int = 160) -> RenderableType:
    """Per group: parts opened as a bar (as long as ``width`` cells of screen leave room for), and the share
    of each clock kept within its limit."""
    groups = [g for g in r.groups if g.opened or g.overdue][:SHOWN]
    if not groups:
        return Text("no case parts opened in this window", "dim")
    top = max(g.opened for g in groups)
    longest = max(6, min(BAR, width - 72))
    t = Table(box=None, pad_edge=False, show_edge=False, expand=False)
    t.add_column(r.by, no_wrap=True, min_width=10, max_width=24)
    t.add_column("opened", no_wrap=True)
    for name, _ in CLOCKS:
        t.add_column(f"{name} kept", no_wrap=True)
    t.add_column("overdue", justify="right", no_wrap=True)
    for g in groups:
        cells: list[RenderableType] = [key_text(g.key, r.by), Text.assemble((bar(g.opened, top, longest), "cyan"),
                                                                          f" {g.opened}")]
        for name, _ in CLOCKS:
            c = g.clock(name)
            cells.append(Text.assemble((bar(c.share or 0, 1, 8).ljust(8, "·"), share_style(c.share)),
                                       f" {share_text(c.share):>4}"))
        cells.append(Text(str(g.overdue), "bold red" if g.overdue else "dim"))
        t.add_row(*cells)
    return t


def verified_bars(r: CaseReport) -> RenderableType:
    """The valid-case rate of camera detections per category and per camera, as bars."""
    rows: list[tuple[str, Verified]] = [(f"category {v.key}", v) for v in r.categories] + \
        [(f"camera {v.key or '(none)'}", v) for v in r.cameras[:SHOWN]]
    if not rows:
        return Text("no case found by a camera in this window", "dim")
    t = Table(box=None, pad_edge=False, show_edge=False, expand=False)
    t.add_column("found by", no_wrap=True, max_width=28)
    t.add_column("valid rate", no_wrap=True)
    t.add_column("valid / false / not said", justify="right", no_wrap=True)
    for name, v in rows:
        t.add_row(name, Text.assemble((bar(v.rate or 0, 1, 16).ljust(16, "·"), share_style(v.rate)),
                                      f" {share_text(v.rate):>4}"),
                  f"{v.valid} / {v.false_detection} / {v.unverified}")
    return t


def per_day(days: CaseReport) -> tuple[list[str], list[float], list[float]]:
    """The days of the window, the parts opened on each, and those of each not accepted within the limit
    (a count, not a share: a quiet day with nothing judged must not look like a day of failures)."""
    window = [g for g in days.groups if g.key >= days.since.date().isoformat()]
    return [g.key for g in window], [float(g.opened) for g in window], \
        [float(g.accept.judged - g.accept.within) for g in window]


@dataclass(frozen=True, slots=True)
class Loaded:
    report: CaseReport
    days: CaseReport


class ReportScreen(Screen[None]):
    DEFAULT_CSS = """
    ReportScreen #body { height: 1fr; }
    ReportScreen .title { text-style: bold; margin-top: 1; }
    ReportScreen #headline { height: auto; }
    ReportScreen #sparklines { height: auto; }
    ReportScreen #sparklines Vertical { width: 1fr; height: auto; margin-right: 2; }
    ReportScreen Sparkline { height: 3; }
    ReportScreen #opened-line > .sparkline--max-color { color: $accent; }
    ReportScreen #late-line > .sparkline--max-color { color: $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("w", "window", "Window"),
        Binding("b", "grouping", "Group by"),
        Binding("r", "read", "Refresh"),
    ]

    class Read(Message):
        """The worker's answer: the report, or why there is none."""

        def __init__(self, generation: int, loaded: Loaded | None, error: str | None = None) -> None:
            super().__init__()
            self.generation, self.loaded, self.error = generation, loaded, error

    def __init__(self, store: StoreHandle, *, window_days: int = 7, by: str = "kind") -> None:
        super().__init__()
        self.store = store
        self.window = next((i for i, (_, d) in enumerate(WINDOWS) if d == window_days), 1)
        self.by = by
        self.header = StatusHeader()
        self.headline = Static("reading the database …", id="headline")
        self.opened_line = Sparkline([], id="opened-line")
        self.late_line = Sparkline([], id="late-line")
        self.opened_title = Static("", classes="title")
        self.late_title = Static("", classes="title")
        self.bars_title = Static("", classes="title")
        self.bars = Static("", id="bars")
        self.verified = Static("", id="verified")
        self.table = Static("", id="table")
        self.loaded: Loaded | None = None
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield self.header
        with VerticalScroll(id="body"):
            yield self.headline
            with Horizontal(id="sparklines"):
                with Vertical():
                    yield self.opened_title
                    yield self.opened_line
                with Vertical():
                    yield self.late_title
                    yield self.late_line
            yield self.bars_title
            yield self.bars
            yield Static("Camera detections: valid-case rate", classes="title")
            yield self.verified
            yield Static("The figures", classes="title")
            yield self.table
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.read()

    # --- reading ---------------------------------------------------------------------------------

    def action_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.read()

    def action_grouping(self) -> None:
        self.by = GROUPINGS[(GROUPINGS.index(self.by) + 1) % len(GROUPINGS)] if self.by in GROUPINGS else "kind"
        self.read()

    def action_read(self) -> None:
        self.read()

    def read(self) -> None:
        self._generation += 1
        name, days = WINDOWS[self.window]
        self.sub_title = f"last {name} by {self.by}"
        self.headline.update(Text(f"reading the last {name} by {self.by} …", "dim"))
        now = clock_of(self).now()
        self._read(self._generation, now - timedelta(days=days), self.by, now)

    @work(thread=True, exclusive=True, group="report")
    def _read(self, generation: int, since: datetime, by: str, now: datetime) -> None:
        try:
            store = self.store.get()
            loaded = Loaded(store.case_report(since, by, now), store.case_report(since, "day", now, percentiles=False))
        except Exception as exc:  # noqa: BLE001 - whatever the database says goes on the screen, not up the thread
            self.post_message(self.Read(generation, None, describe_error(exc)))
            return
        self.post_message(self.Read(generation, loaded))

    def on_report_screen_read(self, message: Read) -> None:
        if message.generation != self._generation:
            return  # an answer to an earlier window or grouping
        if message.loaded is None:
            self.headline.update(Text(f"cannot read the report: the database is {message.error}", "bold red"))
            return
        self.loaded = message.loaded
        self.show(message.loaded)

    # --- drawing ---------------------------------------------------------------------------------

    def show(self, loaded: Loaded) -> None:
        r, days = loaded.report, loaded.days
        name, _ = WINDOWS[self.window]
        self.headline.update(Stack(Text(f"Last {name}, {r.since:%Y-%m-%d %H:%M} to {r.until:%Y-%m-%d %H:%M} UTC",
                                        "bold"), headline(r)))
        dates, opened, late = per_day(days)
        self.opened_line.data = opened
        self.late_line.data = late
        when = f"{dates[0][5:]} to {dates[-1][5:]}" if dates else ""
        self.opened_title.update(f"Parts opened per day, {when} (most {max(opened, default=0):.0f})")
        self.late_title.update(f"Not accepted within the limit, per day (most {max(late, default=0):.0f})")
        self.bars_title.update(f"By {r.by}: parts opened, the share kept within each limit, overdue now")
        self.bars.update(group_bars(r, self.size.width))
        self.verified.update(verified_bars(r))
        self.table.update(Stack(*tables(r, box.SIMPLE_HEAD, compact=True)))

    def on_resize(self) -> None:
        if self.loaded is not None:
            self.show(self.loaded)

    def group(self, key: str) -> Group | None:
        """A group of the report shown (for tests and for what is drawn)."""
        if self.loaded is None:
            return None
        return next((g for g in self.loaded.report.groups if g.key == key), None)
