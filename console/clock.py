"""The console's clock: the one place it reads the time of day from.

Everything the console shows against the present (an incident's age, a unit's "heard 40s", a gateway's
"reported 2s ago", "today" or a date beside a time, the history's ``-2h`` and ``yesterday``, how old a
position on the map is) asks the clock its app was given, so a test sets the time instead of waiting
for it or patching ``datetime``. The app's own pacing (toasts at most once a second, a command's answer
awaited five seconds, repaints) keeps to ``time.monotonic`` and Textual's timers: no screen shows it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from textual.message_pump import MessagePump
from textual.types import NoActiveAppError


class Clock:
    """The wall clock, in UTC. Subclass it (override :meth:`now`) for another time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = Clock()


def clock_of(node: MessagePump) -> Clock:
    """The clock of the app ``node`` runs in (the wall clock in an app that has none of its own, or
    for a widget in no app)."""
    try:
        clock = getattr(node.app, "clock", None)
    except NoActiveAppError:
        return SYSTEM_CLOCK
    return clock if isinstance(clock, Clock) else SYSTEM_CLOCK
