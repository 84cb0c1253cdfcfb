"""The console's footer forgets the keys it replaced (Textual's own keeps a watcher for each one it ever
showed, and with it the key: a console under load grew by 23 MiB a minute)."""

from __future__ import annotations

import asyncio
import gc
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey

from console.widgets.footer import ConsoleFooter


class Pane(Static, can_focus=True):
    pass


class Alerts(Pane):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("a", "ack", "Ack"), Binding("r", "resolve", "Resolve")]


class Units(Pane):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("s", "send", "Send unit")]


class Desk(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "focus('alerts')", "Alerts"), Binding("u", "focus('units')", "Units")]

    def __init__(self, footer: type[Footer]) -> None:
        super().__init__()
        self.footer_type = footer

    def compose(self) -> ComposeResult:
        yield Alerts("alerts", id="alerts")
        yield Units("units", id="units")
        yield self.footer_type()


async def keys_alive_after_focus_changes(footer: type[Footer], changes: int) -> tuple[int, int, int]:
    """(keys shown, keys still in memory, watchers the footer holds) after ``changes`` focus changes."""
    gc.collect()  # keys of other apps this process ran, still held (a console freezes what it holds), are not ours
    before = {id(o) for o in gc.get_objects() if isinstance(o, FooterKey)}
    app = Desk(footer)
    async with app.run_test() as pilot:
        for n in range(changes):
            await pilot.press("i" if n % 2 else "u")
            await pilot.pause()
        shown = len(app.query(FooterKey))
        gc.collect()
        alive = sum(1 for o in gc.get_objects() if isinstance(o, FooterKey) and id(o) not in before)
        watchers = sum(len(v) for v in getattr(app.query_one(footer), "__watchers", {}).values())
    return shown, alive, watchers


def test_the_footer_keeps_only_the_keys_it_shows() -> None:
    shown, alive, watchers = asyncio.run(keys_alive_after_focus_changes(ConsoleFooter, 30))
    assert shown >= 3  # the app's two keys and the focused pane's
    assert alive == shown and watchers <= shown  # (the command palette's key is not bound)


def test_textuals_own_footer_still_leaks_so_the_console_needs_its_own() -> None:
    # When a Textual release fixes it, this fails: then ConsoleFooter can go.
    shown, alive, watchers = asyncio.run(keys_alive_after_focus_changes(Footer, 30))
    assert watchers > 5 * shown and alive > 5 * shown
