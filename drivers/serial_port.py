"""The serial I/O driver: opens a port by pyserial URL, feeds a protocol decoder, survives unplugging.

Thin on purpose: all protocol knowledge is in the decoder. The driver owns one thread that

    open port (serial_for_url) -> read chunks -> decoder.feed(chunk, now) -> sink(outputs)
         ^                                                                       |
         +------ backoff 0.5 s .. 30 s, reason logged <--- port error -----------+

Any pyserial URL works: ``/dev/ttyUSB0``, ``socket://127.0.0.1:8001`` (a Dire Wolf KISS TCP port),
``rfc2217://``, ``loop://``. Health (state, last error, counters) is readable at any time from any thread.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import serial

from drivers.base import Output, ProtocolDecoder, Rejected

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # also the tick period of the decoder
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0

Sink = Callable[[list[Output]], None]


@dataclass
class DriverHealth:
    state: str = "starting"  # starting | open | down | stopped
    port: str = ""
    protocol: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_error: str | None = None
    bytes_in: int = 0
    decoded: int = 0
    rejected: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "port": self.port,
            "protocol": self.protocol,
            "since": self.since.isoformat(timespec="seconds"),
            "last_error": self.last_error,
            "bytes_in": self.bytes_in,
            "decoded": self.decoded,
            "rejected": self.rejected,
            "reconnects": self.reconnects,
        }


class SerialDriver:
    """Reads one serial port into one decoder on a thread of its own."""

    def __init__(
        self,
        name: str,
        url: str,
        decoder: ProtocolDecoder,
        sink: Sink,
        *,
        serial_options: dict[str, Any] | None = None,
        on_health: Callable[[SerialDriver], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.decoder = decoder
        self.sink = sink
        self.serial_options = serial_options or {}
        self.on_health = on_health
        self.health = DriverHealth(port=url, protocol=decoder.name)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._port: serial.SerialBase | None = None
        self._thread = threading.Thread(target=self._run, name=f"serial:{name}", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._set_state("stopped")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self.health.as_dict()

    @property
    def port(self) -> serial.SerialBase | None:
        """The open port (for transmit paths that share it), or None while it is down."""
        return self._port

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                self._port = serial.serial_for_url(self.url, timeout=READ_TIMEOUT_S, **self.serial_options)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._went_down(f"cannot open {self.url}: {exc}", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            self._set_state("open")
            log.info("%s: opened %s (%s)", self.name, self.url, self.decoder.name)
            try:
                self._pump(self._port)
                backoff = BACKOFF_MIN_S  # the port worked: the next failure starts backoff anew
            except (serial.SerialException, OSError) as exc:
                self._went_down(f"{self.url} failed: {exc}", backoff)
                backoff = BACKOFF_MIN_S
                self._stop.wait(backoff)
            finally:
                port, self._port = self._port, None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass
        self._flush(self.decoder.tick(datetime.now(UTC)))

    def _pump(self, port: serial.SerialBase) -> None:
        while not self._stop.is_set():
            chunk = port.read(max(1, min(port.in_waiting, 4096)))
            now = datetime.now(UTC)
            out = self.decoder.feed(chunk, now) if chunk else []
            out += self.decoder.tick(now)
            if chunk:
                with self._lock:
                    self.health.bytes_in += len(chunk)
            if out:
                self._flush(out)
            elif not chunk and self._is_closed_socket(port):
                raise serial.SerialException("connection closed by peer")

    @staticmethod
    def _is_closed_socket(port: serial.SerialBase) -> bool:
        # A socket:// port returns b"" both on timeout and when the peer closed; pyserial hides which.
        sock = getattr(port, "_socket", None)
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _flush(self, out: list[Output]) -> None:
        rejected = [o for o in out if isinstance(o, Rejected)]
        with self._lock:
            self.health.decoded += len(out) - len(rejected)
            self.health.rejected += len(rejected)
        for r in rejected:
            log.warning("%s: rejected %s", self.name, r)
        self.sink(out)

    def _went_down(self, reason: str, retry_in: float) -> None:
        with self._lock:
            first = self.health.state != "down" or self.health.last_error != reason
            self.health.last_error = reason
            self.health.reconnects += 1
        if first:
            log.warning("%s: %s; retrying every %.1f..%.0f s", self.name, reason, retry_in, BACKOFF_MAX_S)
        self._set_state("down")

    def _set_state(self, state: str) -> None:
        with self._lock:
            changed = self.health.state != state
            if changed:
                self.health.state = state
                self.health.since = datetime.now(UTC)
        if changed and self.on_health is not None:
            self.on_health(self)
