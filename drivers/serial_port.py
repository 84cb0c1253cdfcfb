"""The serial I/O driver: opens a port by pyserial URL, feeds a protocol decoder, survives unplugging.

Thin on purpose: all protocol knowledge is in the decoder, and the thread, backoff and health are
:class:`drivers.io.IoDriver`'s. What is its own:

    open port (serial_for_url) -> read chunks -> decoder.feed(chunk, now) + decoder.tick(now) -> sink

Any pyserial URL works: ``/dev/ttyUSB0``, ``socket://127.0.0.1:8001`` (a Dire Wolf KISS TCP port),
``rfc2217://``, ``loop://``. Health (state, last error, counters) is readable at any time from any thread.

The gateway may also talk to the device through the open port (a text to a Kenwood radio's data port,
a frame to a KISS TNC): :meth:`SerialDriver.write` from any thread, and :meth:`SerialDriver.wait_for`
to wait for what the decoder makes of the answer (a radio's reply frame).
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import serial

from config.schema import ConfigError, SerialDriverConfig
from drivers.base import ProtocolDecoder
from drivers.io import DeviceError, DriverContext, IoDriver, Sink
from drivers.registry import UnknownProtocol, create_protocol

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1  # also the tick period of the decoder


class SerialDriver(IoDriver[serial.SerialBase, SerialDriverConfig]):
    """Reads one serial port into one decoder on a thread of its own."""

    TYPE = "serial"
    CONFIG = SerialDriverConfig
    COUNTERS = ("bytes_in", "decoded", "rejected")

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
        super().__init__(name, sink=sink, on_health=on_health)
        self.url = url
        self.decoder = decoder
        self.serial_options = serial_options or {}
        self._write_lock = threading.Lock()
        self._fed = threading.Condition()  # notified after every read has been decoded

    @classmethod
    def from_config(cls, config: SerialDriverConfig, ctx: DriverContext) -> SerialDriver:
        try:
            decoder = create_protocol(config.protocol, config.options)
        except UnknownProtocol as exc:
            raise ConfigError(f"{ctx.key}.protocol: {exc}") from None
        except ValueError as exc:
            # Decoders name bad options as "options.x.y: ..." (several joined by "; "); others just say what.
            msg = str(exc)
            if msg.startswith("options."):
                raise ConfigError("\n".join(f"{ctx.key}.{part}" for part in msg.split("; "))) from None
            raise ConfigError(f"{ctx.key}.options: {msg}") from None
        serial_options = {"baudrate": config.baudrate, "bytesize": config.bytesize, "parity": config.parity,
                          "stopbits": config.stopbits, "rtscts": config.rtscts}
        return cls(f"{ctx.channel}/{config.name or config.protocol}", config.port, decoder, ctx.sink,
                   serial_options=serial_options, on_health=ctx.on_health)

    def _status(self) -> dict[str, Any]:
        return {"port": self.url, "protocol": self.decoder.name}

    def _open(self) -> serial.SerialBase:
        try:
            port = serial.serial_for_url(self.url, timeout=READ_TIMEOUT_S, **self.serial_options)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open {self.url}: {exc}") from exc
        log.info("%s: opened %s (%s)", self.name, self.url, self.decoder.name)
        return port

    def _pump(self, port: serial.SerialBase) -> None:
        try:
            while not self.stopping:
                chunk = port.read(max(1, min(port.in_waiting, 4096)))
                now = datetime.now(UTC)
                out = self.decoder.feed(chunk, now) if chunk else []
                out += self.decoder.tick(now)
                if chunk:
                    self.counters.add(bytes_in=len(chunk))
                    with self._fed:
                        self._fed.notify_all()
                if out:
                    self._deliver(out)
                elif not chunk and self._is_closed_socket(port):
                    raise serial.SerialException("connection closed by peer")
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"{self.url} failed: {exc}") from exc

    def _close(self, port: serial.SerialBase) -> None:
        port.close()

    def write(self, data: bytes) -> None:
        """Send ``data`` out of the open port, from any thread; DeviceError when it is not open or fails
        (the reader notices a failed port by itself and reopens it)."""
        port = self._handle
        if port is None:
            error = self.link.as_dict()["last_error"]
            raise DeviceError(f"{self.url} is not open" + (f" ({error})" if error else ""))
        with self._write_lock:
            try:
                port.write(data)
                port.flush()
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(f"writing to {self.url}: {exc}") from exc

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Until ``predicate`` holds, checked after each read is decoded; False after ``timeout`` seconds."""
        with self._fed:
            return self._fed.wait_for(predicate, timeout)

    def _drain(self) -> None:
        out = self.decoder.tick(datetime.now(UTC))
        if out:
            self._deliver(out)

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
