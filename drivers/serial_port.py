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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import serial

from drivers.base import Output, ProtocolDecoder, Rejected
from drivers.link import BACKOFF_MAX_S, BACKOFF_MIN_S, LinkState

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # also the tick period of the decoder

Sink = Callable[[list[Output]], None]


@dataclass
class Counters:
    bytes_in: int = 0
    decoded: int = 0
    rejected: int = 0


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
        on_health: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.decoder = decoder
        self.sink = sink
        self.serial_options = serial_options or {}
        self.link = LinkState(name, on_health)  # on_health: called when the driver's state changes
        self.counters = Counters()
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
        self.link.set("stopped")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counters = {"bytes_in": self.counters.bytes_in, "decoded": self.counters.decoded,
                        "rejected": self.counters.rejected}
        return {**self.link.as_dict(), "port": self.url, "protocol": self.decoder.name, **counters}

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
                self.link.down(f"cannot open {self.url}: {exc}", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            self.link.set("open")
            log.info("%s: opened %s (%s)", self.name, self.url, self.decoder.name)
            try:
                self._pump(self._port)
                backoff = BACKOFF_MIN_S  # the port worked: the next failure starts backoff anew
            except (serial.SerialException, OSError) as exc:
                self.link.down(f"{self.url} failed: {exc}", backoff)
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
                    self.counters.bytes_in += len(chunk)
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
            self.counters.decoded += len(out) - len(rejected)
            self.counters.rejected += len(rejected)
        for r in rejected:
            log.warning("%s: rejected %s", self.name, r)
        self.sink(out)
