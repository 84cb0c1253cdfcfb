"""Inputs on the modem-status lines of a serial port: the radio interface's COR (carrier-operated relay,
the squelch output) on CD or CTS, a foot switch on DSR, and the like.

    port (serial_for_url) --every poll_s--> CTS DSR CD RI --LineWatcher (debounce)--> io events

The sans-I/O part, :class:`LineWatcher`, turns line readings into ``io`` events (``detail.point``,
``line``, ``value``, ``previous``) once a new level has held for ``debounce_s``; the first reading only
sets the state. The driver is thin like the serial driver (an :class:`drivers.io.IoDriver`): opens the
port by URL (``/dev/ttyUSB0``, ``rfc2217://`` of a serial device server), polls, reopens with backoff. A
pseudo-terminal has no modem lines at all; the driver says so instead of reporting a level it cannot read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import serial

from config.schema import SerialLinesConfig
from drivers.base import Output
from drivers.io import DeviceError, DriverContext, IoDriver, Sink
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


class SerialLinesDriver(IoDriver[serial.SerialBase, SerialLinesConfig]):
    """Polls the lines of one serial port on a thread of its own."""

    TYPE = "lines"
    CONFIG = SerialLinesConfig
    COUNTERS = ("changes",)
    UP_ON_OPEN = False  # a port opens even where it has no modem lines: up once they could be read
    sink: Sink

    def __init__(self, name: str, url: str, watcher: LineWatcher, sink: Sink, *,
                 poll_s: float = 0.02, on_health: Callable[[], None] | None = None) -> None:
        super().__init__(name, sink=sink, on_health=on_health)
        self.url, self.watcher, self.poll_s = url, watcher, poll_s

    @classmethod
    def from_config(cls, config: SerialLinesConfig, ctx: DriverContext) -> SerialLinesDriver:
        watcher = LineWatcher(config.points, invert=config.invert, debounce_s=config.debounce_ms / 1000)
        return cls(f"{ctx.channel}/{config.name or 'lines'}", config.port, watcher, ctx.sink,
                   poll_s=config.poll_ms / 1000, on_health=ctx.on_health)

    def _status(self) -> dict[str, Any]:
        return {"port": self.url, "lines": dict(self.watcher.state)}

    def _open(self) -> serial.SerialBase:
        try:
            return serial.serial_for_url(self.url, timeout=0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open {self.url}: {exc}") from exc

    def _pump(self, port: serial.SerialBase) -> None:
        try:
            while not self.stopping:
                levels = {line: bool(getattr(port, line)) for line in set(self.watcher.points.values())}
                self._up()  # the lines could be read: the port is really up
                out = self.watcher.feed(levels, datetime.now(UTC))
                if out:
                    self.counters.add(changes=len(out))
                    self.sink(out)
                self._pause(self.poll_s)
        except (serial.SerialException, OSError) as exc:
            reason = "the port has no modem lines (a pseudo-terminal?)" if getattr(exc, "errno", None) == 25 \
                else str(exc)
            raise DeviceError(f"{self.url}: {reason}") from exc

    def _close(self, port: serial.SerialBase) -> None:
        self.watcher.reset()
        port.close()
