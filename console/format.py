"""How the console writes times, ages, positions and fitted table cells (pure functions, no Textual).

Every cell of a table is a :class:`Cell` (text, style, justification) until it is fitted to the width its
column has now: :func:`fit` pads or cuts it (with an ellipsis) to exactly that width, so that a cell's
background colour fills the column and nothing is wrapped at 80 columns.

Text that came from the network (units, aliases, operators' names, labels, notes, gateways' reports) is
never markup and never raw: :func:`shown` writes what is not printable as its escape (an ESC as ``\\x1b``,
so a name cannot clear a dispatcher's screen or retitle the window), and it reaches the screen only as
plain text (:func:`plain`, :func:`fit`: a Rich ``Text``), never parsed for ``[bold]``-style markup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from gateway.events import printable

Justify = Literal["left", "right", "center"]


@dataclass(frozen=True, slots=True)
class Cell:
    """What a table cell says, before it is fitted to its column."""

    text: str
    style: str = ""
    justify: Justify = "left"


def shown(text: object) -> str:
    """Text from the network as the console shows it: every character that is not printable escaped."""
    return printable(text if isinstance(text, str) else str(text))


def plain(text: object, style: str = "") -> Text:
    """Text from the network as a renderable: escaped (:func:`shown`) and never read as markup."""
    return Text(shown(text), style=style, end="")


def plain_lines(lines: Iterable[str], style: str = "") -> Text:
    """Several lines of such text, each escaped, one under the other."""
    return Text("\n".join(shown(line) for line in lines), style=style, end="")


class RowText(Text):
    """A fitted cell that knows its row's key: DataTable.sort hands the key function cells, not keys."""

    row_key: str = ""


def fit(cell: Cell, width: int, *, row_key: str | None = None) -> Text:
    """``cell`` as exactly ``width`` terminal cells: its text padded or cut with an ellipsis, then one
    separating space (tables run with ``cell_padding=0`` so that 80 columns are not spent on padding)."""
    inner = max(width - 1, 0)
    text = shown(cell.text)
    if cell_len(text) > inner:
        text = set_cell_size(text, max(inner - 1, 0)) + "…" if inner > 0 else ""
    pad = inner - cell_len(text)
    if cell.justify == "right":
        body = " " * pad + text
    elif cell.justify == "center":
        body = " " * (pad // 2) + text + " " * (pad - pad // 2)
    else:
        body = text + " " * pad
    out = RowText(end="", no_wrap=True)
    out.append(body, style=cell.style or None)
    out.append(" " if width > 0 else "")
    if row_key is not None:
        out.row_key = row_key
    return out


def age(since: datetime | None, now: datetime) -> str:
    """How long ago, in the fewest characters that still read: ``7s``, ``12m``, ``3h``, ``2d``."""
    if since is None:
        return "-"
    seconds = int((now - since).total_seconds())
    if seconds < 0:
        return "0s"  # the bridge's clock runs a little ahead of this one
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def position(lat: float | None, lon: float | None, width: int = 16) -> str:
    """``30.2095,120.2107``: four decimals (about 10 m) where they fit in ``width``, fewer where not."""
    if lat is None or lon is None:
        return "-"
    for decimals in (4, 3, 2):
        text = f"{lat:.{decimals}f},{lon:.{decimals}f}"
        if len(text) <= width:
            return text
    return text


def metres(value: object) -> str:
    """``120 m``, or ``? m`` for what is not a finite number (a suggestion's distance, as the bridge sent it)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.0f} m"
    return "? m"


def local_time(t: datetime | None, now: datetime, *, compact: bool = False) -> str:
    """A UTC time as the dispatcher's wall clock shows it; the date only when it is not today
    (``compact``: month and day to the minute, for a 12-character column)."""
    if t is None:
        return "-"
    local = t.astimezone()
    today = now.astimezone().date()
    if local.date() == today:
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M" if compact else "%Y-%m-%d %H:%M:%S")


def where(channel: str | None, gateway: str | None) -> str:
    """``channel@gateway``, the way radio people say which site heard it."""
    if channel and gateway:
        return f"{channel}@{gateway}"
    return channel or gateway or "-"


def span(seconds: float) -> str:
    """A duration as a clock reads it: ``45s``, ``4m05s``, ``1h02m``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def part_clock(opened: datetime, done: datetime | None, due: datetime | None, now: datetime) -> str:
    """One clock of a case part: stopped (``3m10s`` within its limit, ``LATE 6m02s`` past it), or running
    against its limit (``1m20s of 5m00s``, ``OVERDUE by 40s``); ``-`` with neither a limit nor a stop."""
    if done is not None:
        took = span((done - opened).total_seconds())
        return f"LATE {took}" if due is not None and done > due else took
    if due is None:
        return "-"
    if now > due:
        return f"OVERDUE by {span((now - due).total_seconds())}"
    return f"{span((now - opened).total_seconds())} of {span((due - opened).total_seconds())}"
