"""The serial I/O driver: opens a port by pyserial URL, feeds a protocol decoder, survives unplugging.

Thin on purpose: all protocol knowledge is in the decoder, and the thread, backoff and health are
:class:`drivers.io.IoDriver`'s. What is its own:

    open port (serial_for_url) -> read chunks -> decoder.feed(chunk, now) + decoder.tick(now) -> sink

Any pyserial URL works: ``/dev/ttyUSB0``, ``socket://127.0.0.1:8001`` (a Dire Wolf KISS TCP port),
``rfc2217://``, ``loop://``. Health (state, last error, counters) is readable at any time from any thread.
"""

from __future__ import annotations

import logging
import select
import socket
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
                if out:
                    self._deliver(out)
                elif not chunk and self._is_closed_socket(port):
                    raise serial.SerialException("connection closed by peer")
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(f"{self.url} failed: {exc}") from exc

    def _close(self, port: serial.SerialBase) -> None:
        port.close()

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
