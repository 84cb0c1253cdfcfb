"""The console's header line: who is at the console, how many incidents are open and unacknowledged,
whether the broker and the database are reachable, and the time. A lost broker turns it red: a console
that no longer hears the bridge must not look like a quiet night."""

from __future__ import annotations

from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from console.format import shown


class StatusHeader(Widget):
    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
    }
    StatusHeader.-offline {
        background: $error;
        color: $text;
        text-style: bold;
    }
    """

    operator: reactive[str | None] = reactive(None)
    broker: reactive[bool | None] = reactive(None)  # None: not yet connected once
    database: reactive[str] = reactive("…")  # "ok", or why not
    open_count: reactive[int] = reactive(0)
    new_count: reactive[int] = reactive(0)
    clock: reactive[str] = reactive("")

    def __init__(self, title: str = "pttbridge dispatch", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title

    def watch_broker(self, connected: bool | None) -> None:
        self.set_class(connected is False, "-offline")

    def update_status(self, *, operator: str | None, broker: bool | None, database: str, open_count: int,
                      new_count: int, clock: datetime | None = None) -> None:
        self.operator = operator
        self.broker = broker
        self.database = database
        self.open_count = open_count
        self.new_count = new_count
        if clock is not None:
            self.clock = clock.astimezone().strftime("%H:%M:%S")

    def render(self) -> Text:
        left = [(f" {self.title} │", "bold"), (f" operator {shown(self.operator or '(not signed in)')} ", "bold")]
        right: list[tuple[str, str]] = []
        if self.new_count:
            right.append((f" {self.new_count} NEW ", "bold white on red"))
        right.append((f" {self.open_count} open │ ", ""))
        if self.broker is None:
            right.append(("broker … connecting", "bold yellow"))
        elif self.broker:
            right.append(("broker ● online", "green"))
        else:
            right.append(("broker ✗ OFFLINE, reconnecting", "bold"))
        right.append((" │ db ● " if self.database == "ok" else f" │ db ✗ {self.database} ",
                      "" if self.database == "ok" else "bold yellow"))
        if self.clock:
            right.append((f"│ {self.clock} ", ""))
        width = self.size.width
        used = sum(cell_len(t) for t, _ in left + right)
        if used > width and self.clock:  # narrow: the clock goes first, then the title
            used -= cell_len(right.pop()[0])
        if used > width:
            used -= cell_len(left.pop(0)[0])
        out = Text(no_wrap=True, overflow="ellipsis")
        for text, style in left:
            out.append(text, style=style or None)
        out.append(" " * max(width - used, 0))
        for text, style in right:
            out.append(text, style=style or None)
        return out
