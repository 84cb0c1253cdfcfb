"""The up/down bookkeeping every I/O driver shares (serial ports, sound devices): its state, since when,
the last error, how often it reconnected; a new failure is logged once, and a change is announced."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5  # the first retry after a device went away
BACKOFF_MAX_S = 30.0  # retries slow down to this, doubling


class LinkState:
    """``starting | open | down | stopped`` (and ``ended`` for a recording), thread-safe."""

    def __init__(self, name: str, on_change: Callable[[], None] | None = None) -> None:
        self.name = name
        self.on_change = on_change
        self.state = "starting"
        self.since = datetime.now(UTC)
        self.last_error: str | None = None
        self.reconnects = 0
        self._lock = threading.Lock()

    def set(self, state: str) -> None:
        with self._lock:
            changed = self.state != state
            if changed:
                self.state = state
                self.since = datetime.now(UTC)
        if changed and self.on_change is not None:
            self.on_change()

    def down(self, reason: str, retry_in: float) -> None:
        """The device failed: say why (once per distinct reason), count it, and mark the link down."""
        with self._lock:
            first = self.state != "down" or self.last_error != reason
            self.last_error = reason
            self.reconnects += 1
        if first:
            log.warning("%s: %s; retrying every %.1f..%.0f s", self.name, reason, retry_in, BACKOFF_MAX_S)
        self.set("down")

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self.state,
                "since": self.since.isoformat(timespec="seconds"),
                "last_error": self.last_error,
                "reconnects": self.reconnects,
            }
