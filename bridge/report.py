"""The supervisor's report of cases over a time window, as data: the figures per group, the arithmetic they
need (percentiles, shares within a limit) and the forms they are given in (JSON, CSV rows, a rich table).
No I/O: bridge/store/report.py reads the database into these.

    per group     (kind | department | unit | camera | day) the parts opened in the window, how many were
                  accepted, arrived at, handled; per clock the median and the 90th percentile of its time
                  from the part's opening, and the share of the parts judged that stopped within the limit
    overdue now   parts still running past a limit, whenever they opened
    verified      camera-found cases: valid or false detection, per category and per camera
    untimed       incidents of a kind no [case_kinds] entry configures: no parts, no clocks; named, not counted

A part is judged against a limit once its outcome is known: it stopped in time (``done <= due``), or the
limit passed before it stopped (late, still running past it, or closed unstopped after it). A part whose
limit has not yet come, or whose case was closed before it, is not judged.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

BY = ("kind", "department", "unit", "camera", "day")
#: Each clock: its name in the report, the limit that bounds it (case_kinds.<kind>.<limit>_s).
CLOCKS = (("accept", "accept_s"), ("arrive", "arrive_s"), ("handle", "resolve_s"))
#: The percentiles reported.
MEDIAN = 0.5
P90 = 0.9


def percentile_position(n: int, p: float) -> tuple[int, float]:
    """Where percentile ``p`` of ``n`` sorted values lies: the 0-based index below it and the fraction of the
    way to the next. The arithmetic is PostgreSQL's ``percentile_cont`` to the bit (double precision,
    ``p * (n - 1)`` floored), so that SQLite's figures, ranked here, are PostgreSQL's."""
    position = p * (n - 1)
    below = math.floor(position)
    return below, position - below


def interpolate(low: float, high: float | None, fraction: float) -> float:
    """As PostgreSQL interpolates (``lo + fraction * (hi - lo)``, in double precision)."""
    return float(low) if high is None or fraction == 0 else float(low) + fraction * (float(high) - float(low))


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Percentile ``p`` of already sorted values (None of none)."""
    if not ordered:
        return None
    i, fraction = percentile_position(len(ordered), p)
    return interpolate(ordered[i], ordered[i + 1] if i + 1 < len(ordered) else None, fraction)


@dataclass(frozen=True, slots=True)
class Clock:
    """One clock over a group's parts: how many stopped, how long they took, how many within the limit."""

    done: int = 0  # parts whose clock stopped (accepted, arrived, handled)
    median_s: float | None = None
    p90_s: float | None = None
    within: int = 0  # judged and stopped within the limit
    judged: int = 0  # parts with a limit whose outcome is known

    @property
    def share(self) -> float | None:
        """The share of the judged parts that stopped within the limit (None: none judged)."""
        return self.within / self.judged if self.judged else None


@dataclass(frozen=True, slots=True)
class Verified:
    """Camera-found cases of a group: how many were valid, how many false detections, how many not yet said."""

    key: str
    valid: int = 0
    false_detection: int = 0
    unverified: int = 0

    @property
    def rate(self) -> float | None:
        """The valid-case rate: valid / (valid + false detection) (None: none verified)."""
        verified = self.valid + self.false_detection
        return self.valid / verified if verified else None


@dataclass(frozen=True, slots=True)
class Group:
    """The figures of one group (a kind, a department, a unit, a camera, a day; "" for none)."""

    key: str
    opened: int = 0
    accept: Clock = field(default_factory=Clock)
    arrive: Clock = field(default_factory=Clock)
    handle: Clock = field(default_factory=Clock)
    overdue: int = 0  # running past a limit now, whenever opened

    @property
    def accepted(self) -> int:
        return self.accept.done

    @property
    def arrived(self) -> int:
        return self.arrive.done

    @property
    def handled(self) -> int:
        return self.handle.done

    def clock(self, name: str) -> Clock:
        clock: Clock = getattr(self, name)
        return clock


@dataclass(frozen=True, slots=True)
class CaseReport:
    """How the site's cases went from ``since`` to ``until``, grouped ``by`` one thing."""

    since: datetime
    until: datetime
    by: str
    groups: tuple[Group, ...]
    total: Group
    categories: tuple[Verified, ...]  # camera-found cases by category (their kind)
    cameras: tuple[Verified, ...]
    verified: Verified  # all camera-found cases of the window
    group_verified: dict[str, Verified] = field(default_factory=dict)  # by kind, camera, day: the same key
    #: Incidents of the window of a kind with no ``[case_kinds]`` entry when they opened: no parts, no clocks.
    untimed: dict[str, int] = field(default_factory=dict)

    def untimed_note(self) -> str | None:
        """Why incidents of the window are not in the figures, if some are not."""
        if not self.untimed:
            return None
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.untimed.items()))
        return (f"not timed: {sum(self.untimed.values())} incidents of a kind with no [case_kinds] entry ({kinds}): "
                "no department parts, so no clocks to report; configure the kind to time its cases")


def days(since: datetime, until: datetime) -> list[str]:
    """The UTC days from ``since`` to ``until``, both included, as ``YYYY-MM-DD``."""
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


#: A window longer than this (days) is filled with empty days from its first day with a part, not its start.
FILL_DAYS = 366


def every_day(groups: Sequence[Group], since: datetime, until: datetime) -> list[Group]:
    """Groups by day with the days that had nothing as empty groups, oldest first (days before the window
    that still have an overdue part come first)."""
    have = {g.key: g for g in groups}
    first = since.astimezone(UTC).date().isoformat()
    if (until - since).days > FILL_DAYS:  # --since 2001-01-01: not twenty years of empty days
        opened = [g.key for g in groups if g.opened and g.key >= first]
        first = min(opened, default=until.astimezone(UTC).date().isoformat())
    window = days(datetime.fromisoformat(first).replace(tzinfo=UTC), until)
    before = sorted(k for k in have if k not in window)
    return [have[k] for k in before] + [have.get(d, Group(d)) for d in window]


def window_start(text: str, now: datetime) -> datetime:
    """``--since``: a time ago (``12h``, ``7d``) or an ISO time (UTC unless it says), not after ``now``;
    anything else is a ValueError that says what is expected."""
    from bridge.audit import parse_since

    try:
        since = parse_since(text, now)
    except OverflowError:
        raise ValueError(f"{text!r} is further back than the calendar goes") from None
    if since > now:
        raise ValueError(f"{text!r} is in the future ({since.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    return since


def span(seconds: float | None) -> str:
    """A duration as a supervisor reads it: 45s, 4m10s, 2h05m, 3d04h; "-" for none."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def share_text(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def key_text(key: str, by: str) -> str:
    return key or {"unit": "(no unit sent)", "camera": "(no camera)"}.get(by, "(none)")


def _clock_json(c: Clock) -> dict[str, Any]:
    return {"done": c.done, "median_s": c.median_s, "p90_s": c.p90_s, "within": c.within, "judged": c.judged,
            "within_share": None if c.share is None else round(c.share, 4)}


def _verified_json(v: Verified) -> dict[str, Any]:
    return {"key": v.key, "valid": v.valid, "false_detection": v.false_detection, "unverified": v.unverified,
            "valid_rate": None if v.rate is None else round(v.rate, 4)}


def group_json(g: Group) -> dict[str, Any]:
    return {"key": g.key, "opened": g.opened, "accepted": g.accepted, "arrived": g.arrived, "handled": g.handled,
            **{name: _clock_json(g.clock(name)) for name, _ in CLOCKS}, "overdue_now": g.overdue}


def as_json(r: CaseReport) -> dict[str, Any]:
    return {
        "since": r.since.isoformat(), "until": r.until.isoformat(), "by": r.by,
        "groups": [group_json(g) | ({"verified": _verified_json(r.group_verified[g.key])}
                                    if g.key in r.group_verified else {}) for g in r.groups],
        "total": group_json(r.total),
        "verified": {"categories": [_verified_json(v) for v in r.categories],
                     "cameras": [_verified_json(v) for v in r.cameras], "total": _verified_json(r.verified)},
        "untimed": dict(sorted(r.untimed.items())),
    }


CSV_COLUMNS = ("by", "key", "opened", "accepted", "arrived", "handled",
               *(f"{name}_{what}" for name, _ in CLOCKS for what in ("median_s", "p90_s", "within", "judged",
                                                                        "within_share")),
               "overdue_now", "valid", "false_detection", "valid_rate")


def as_csv(r: CaseReport) -> str:
    """One row per group and a last row for all of them (``by`` all, no key); the verdict columns are filled
    where the grouping is one a camera case has (kind, camera, day), and in the last row."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def row(g: Group, by: str, v: Verified | None) -> list[Any]:
        clocks = [x for name, _ in CLOCKS for c in (g.clock(name),)
                  for x in (c.median_s, c.p90_s, c.within, c.judged, None if c.share is None else round(c.share, 4))]
        verdicts = [v.valid, v.false_detection, None if v.rate is None else round(v.rate, 4)] if v else [None] * 3
        return [by, g.key, g.opened, g.accepted, g.arrived, g.handled, *clocks, g.overdue, *verdicts]

    for g in r.groups:
        w.writerow(["" if x is None else x for x in row(g, r.by, r.group_verified.get(g.key))])
    w.writerow(["" if x is None else x for x in row(r.total, "all", r.verified)])
    return out.getvalue()


def tables(r: CaseReport, box: Any = None, *, compact: bool = False) -> list[Any]:
    """The report as rich renderables: the groups with their clocks, then the valid-case rates (``box``:
    rich's box style, default its heavy-headed one; ``compact``: each clock's times and share in one
    column and only the parts opened counted, for a screen narrower than a terminal's wide table)."""
    from rich import box as boxes
    from rich.table import Table
    from rich.text import Text

    box = box or boxes.HEAVY_HEAD
    when = f"{r.since:%Y-%m-%d %H:%M} to {r.until:%Y-%m-%d %H:%M} UTC"
    t = Table(title=f"Cases by {r.by}, {when}", title_justify="left", show_footer=True,
              caption="one row per department's part of a case; times from the part's opening, median / 90th "
                      "percentile; 'in limit': the share judged that stopped within it; overdue: running past a "
                      "limit now", caption_justify="left", box=box)
    total = r.total
    t.add_column(r.by, footer="all", min_width=10)
    counted = ("opened",) if compact else ("opened", "accepted", "arrived", "handled")
    for name in counted:
        t.add_column(name, justify="right", footer=str(getattr(total, name)))

    def times(c: Clock) -> list[str]:
        if compact:
            return [f"{span(c.median_s)}/{span(c.p90_s)} {share_text(c.share):>4}"]
        return [f"{span(c.median_s)}/{span(c.p90_s)}", share_text(c.share)]

    for name, limit in CLOCKS:
        footers = times(total.clock(name))
        if compact:
            t.add_column(f"to {name}\np50/p90 in limit", justify="right", footer=footers[0], no_wrap=True)
        else:
            t.add_column(f"to {name}\np50/p90", justify="right", footer=footers[0], no_wrap=True)
            t.add_column(f"in {limit}", justify="right", footer=footers[1])
    t.add_column("overdue\nnow", justify="right", footer=str(total.overdue),
                 footer_style="bold red" if total.overdue else "")
    for g in r.groups:
        cells = [key_text(g.key, r.by), *(str(getattr(g, name)) for name in counted)]
        for name, _ in CLOCKS:
            cells += times(g.clock(name))
        cells.append(f"[bold red]{g.overdue}[/]" if g.overdue else "0")
        t.add_row(*cells)
    v = Table(title="Camera detections verified: valid-case rate", title_justify="left", show_footer=True, box=box)
    v.add_column("category / camera", footer="all camera cases")
    v.add_column("valid", justify="right", footer=str(r.verified.valid))
    v.add_column("false detection", justify="right", footer=str(r.verified.false_detection))
    v.add_column("valid rate", justify="right", footer=share_text(r.verified.rate))
    v.add_column("not verified", justify="right", footer=str(r.verified.unverified))
    for title, rows in (("category", r.categories), ("camera", r.cameras)):
        for i, x in enumerate(rows):
            v.add_row(f"{title} {x.key or '(none)'}", str(x.valid), str(x.false_detection), share_text(x.rate),
                      str(x.unverified), end_section=i == len(rows) - 1)
    note = r.untimed_note()
    return [t, v] + ([Text(note, "yellow")] if note else [])
