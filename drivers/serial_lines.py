"""Inputs on the modem-status lines of a serial port: the radio interface's COR (carrier-operated relay,
the squelch output) on CD or CTS, a foot switch on DSR, and the like.

    port (serial_for_url) --every poll_s--> CTS DSR CD RI --LineWatcher (debounce)--> io events

The sans-I/O part, :class:`LineWatcher`, turns line readings into ``io`` events (``detail.point``,
``line``, ``value``, ``previous``) once a new level has held for ``debounce_s``; the first reading only
sets the state. The driver is thin like the serial driver: opens the port by URL (``/dev/ttyUSB0``,
``rfc2217://`` of a serial device server), polls, reopens with backoff. A pseudo-terminal has no
modem lines at all; the driver says so instead of reporting a level it cannot read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import serial

from drivers.base import Output
from drivers.link import BACKOFF_MAX_S, BACKOFF_MIN_S, LinkState
from gateway.events import Decoded, Kind

log = logging.getLogger(__name__)

LINES = ("cts", "dsr", "cd", "ri")


class LineWatcher:
    """Debounced changes of named lines: ``points`` maps a point name to a line (cts, dsr, cd, ri)."""

    def __init__(self, points: Mapping[str, str], *, invert: bool = False, debounce_s: float = 0.05) -> None:
        for name, line in points.items():
            if line not in LINES:
                raise ValueError(f"points.{name}: expected one of {', '.join(LINES)}, got {line!r}")
        self.points, self.invert, self.debounce = dict(points), invert, timedelta(seconds=debounce_s)
        self.state: dict[str, int] = {}
        self._seen: dict[str, tuple[int, datetime]] = {}  # a new level and when it was first read

    def feed(self, levels: Mapping[str, bool], now: datetime) -> list[Output]:
        out: list[Output] = []
        for name, line in self.points.items():
            value = int(bool(levels[line]) != self.invert)
            previous = self.state.get(name)
            if previous is None:
                self.state[name] = value
            elif value == previous:
                self._seen.pop(name, None)
            else:
                first = self._seen.setdefault(name, (value, now))  # a line has two levels: this is the new one
                if now - first[1] >= self.debounce:
                    self.state[name] = value
                    del self._seen[name]
                    out.append(Decoded(kind=Kind.IO, time=first[1], detail={
                        "protocol": "serial_lines", "point": name, "line": line, "value": value,
                        "previous": previous}))
        return out

    def reset(self) -> None:
        """The port went away: the next reading sets the state again."""
        self._seen.clear()


class SerialLinesDriver:
    """Polls the lines of one serial port on a thread of its own."""

    def __init__(self, name: str, url: str, watcher: LineWatcher, sink: Callable[[list[Output]], None], *,
                 poll_s: float = 0.02, on_health: Callable[[], None] | None = None) -> None:
        self.name, self.url, self.watcher, self.sink, self.poll_s = name, url, watcher, sink, poll_s
        self.link = LinkState(name, on_health)
        self.changes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lines:{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.link.set("stopped")

    def snapshot(self) -> dict[str, Any]:
        return {**self.link.as_dict(), "port": self.url, "lines": dict(self.watcher.state), "changes": self.changes}

    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.url, timeout=0)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.link.down(f"cannot open {self.url}: {exc}", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            try:
                self._poll(port)
                backoff = BACKOFF_MIN_S
            except (serial.SerialException, OSError) as exc:
                reason = "the port has no modem lines (a pseudo-terminal?)" if getattr(exc, "errno", None) == 25 \
                    else str(exc)
                self.link.down(f"{self.url}: {reason}", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            finally:
                self.watcher.reset()
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass

    def _poll(self, port: serial.SerialBase) -> None:
        opened = False
        while not self._stop.is_set():
            levels = {line: bool(getattr(port, line)) for line in set(self.watcher.points.values())}
            if not opened:  # the lines could be read: the port is really up
                self.link.set("open")
                opened = True
            out = self.watcher.feed(levels, datetime.now(UTC))
            if out:
                self.changes += len(out)
                self.sink(out)
            self._stop.wait(self.poll_s)
