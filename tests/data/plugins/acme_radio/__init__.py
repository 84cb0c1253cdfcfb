"""An I/O driver from outside the package (see the README beside it): the "Acme radio console" sends one
UDP datagram per event, ``EMERGENCY <id>`` or ``PTT <id>``; anything else is rejected with its bytes.

All it writes is its own: the table it takes, how to open, read and close its socket. The thread,
backoff, health and counters are :class:`drivers.io.IoDriver`'s.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from config.schema import DriverTable
from drivers.base import Output, Rejected
from drivers.io import DeviceError, DriverContext, IoDriver, Sink
from gateway.events import Decoded, Kind

log = logging.getLogger(__name__)

_DATAGRAM = re.compile(rb"(EMERGENCY|PTT) (\d{1,8})")


class AcmeUdpConfig(DriverTable):
    """``[[channels.drivers]] type = "acme-udp"``: where the console's datagrams arrive."""

    type: Literal["acme-udp"]
    listen: str = Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$", description="address:port to receive on")


def decode(datagram: bytes, now: datetime) -> Output:
    m = _DATAGRAM.fullmatch(datagram.strip())
    if m is None:
        return Rejected("acme", "expected EMERGENCY <id> or PTT <id>", datagram)
    kind = Kind.ALERT if m.group(1) == b"EMERGENCY" else Kind.PTT
    return Decoded(kind=kind, time=now, unit=f"acme:{m.group(2).decode()}", detail={"protocol": "acme"})


class AcmeUdpDriver(IoDriver[socket.socket, AcmeUdpConfig]):
    TYPE = "acme-udp"
    CONFIG = AcmeUdpConfig
    COUNTERS = ("datagrams", "decoded", "rejected")

    def __init__(self, name: str, listen: str, sink: Sink, *, on_health: Callable[[], None] | None = None) -> None:
        super().__init__(name, sink=sink, on_health=on_health)
        host, _, port = listen.rpartition(":")
        self.listen, self.address = listen, (host, int(port))

    @classmethod
    def from_config(cls, config: AcmeUdpConfig, ctx: DriverContext) -> AcmeUdpDriver:
        return cls(f"{ctx.channel}/{config.name or 'acme'}", config.listen, ctx.sink, on_health=ctx.on_health)

    def _status(self) -> dict[str, Any]:
        return {"listen": self.listen}

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(self.address)
        except OSError as exc:
            sock.close()
            raise DeviceError(f"cannot listen on {self.listen}: {exc.strerror or exc}") from exc
        sock.settimeout(0.1)  # how soon a stop is seen
        log.info("%s: listening on %s", self.name, self.listen)
        return sock

    def _pump(self, sock: socket.socket) -> None:
        while not self.stopping:
            try:
                datagram = sock.recv(512)
            except TimeoutError:
                continue
            except OSError as exc:
                raise DeviceError(f"{self.listen}: {exc}") from exc
            self.counters.add(datagrams=1)
            self._deliver([decode(datagram, datetime.now(UTC))])

    def _close(self, sock: socket.socket) -> None:
        sock.close()
