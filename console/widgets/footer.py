"""Textual's Footer, without its leak.

Each key of Textual's footer binds its ``compact`` to the footer's (``data_bind``), which leaves a watcher
in the footer's list of watchers; the footer is composed again whenever the focus or the bindings change,
and the list drops the keys it replaced only when ``compact`` itself changes, which it never does here.
Under load (a key a second, hundreds of incident updates) that kept about 16 dead keys a second, 23 MiB
a minute, and the full garbage collections that walk them grew from 0.2 s to over a second
(``bench/console_bench.py``, 10 minutes). This footer forgets the watchers of the keys it removed.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class ConsoleFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        # Textual keeps them in the attribute "__watchers": {name: [(watching node, callback), ...]}
        watchers: dict[str, list[tuple[Any, Any]]] = getattr(self, "__watchers", {})
        for held in watchers.values():
            held[:] = [(node, callback) for node, callback in held if not node._closing and not node._closed]
