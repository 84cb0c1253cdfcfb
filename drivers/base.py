"""The contract every protocol decoder keeps, and the registry that finds decoders by name.

A protocol is sans-I/O (after h11): bytes in, events out, no ports, sockets or clock reads inside.

    decoder = registry.create_protocol("nmea", {"unit": "gps:car-7"})
    for item in decoder.feed(chunk, now):   # any chunk size: one byte or a whole capture
        ...                                  # Decoded -> hand to the gateway; Rejected -> count, log

``feed`` must give the same result whether the bytes come in one piece, byte by byte or split at
random; tests check that for every protocol with hypothesis.

Errors: a decoder never raises on bad input. It returns :class:`Rejected` with the reason and the
offending bytes, and goes on with the good input after them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from gateway.events import Decoded


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input a decoder could not use: why, and the bytes (shown in hex in logs)."""

    protocol: str
    reason: str
    raw: bytes

    def __str__(self) -> str:
        return f"{self.protocol}: {self.reason} [{self.raw[:64].hex(' ')}{' ...' if len(self.raw) > 64 else ''}]"


Output = Decoded | Rejected


class ProtocolDecoder(ABC):
    """A sans-I/O decoder of a byte stream.

    Subclasses set ``name`` and implement :meth:`feed`; :meth:`tick` is for decoders with timeouts,
    :meth:`flush` for what the end of the input completes.
    ``options`` come from the channel configuration (``[[channels.drivers]] options = {...}``).
    """

    name: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"protocol {self.name!r} takes no option {', '.join(sorted(options))}")

    @abstractmethod
    def feed(self, data: bytes, now: datetime) -> list[Output]:
        """Consume ``data`` (any length) and return what it completed."""

    def tick(self, now: datetime) -> list[Output]:
        """Called periodically by the driver so that decoders with timeouts can flush."""
        return []

    def flush(self) -> list[Output]:
        """The input ended (the end of a capture file): report what is still pending.

        There is no ``now`` here on purpose: the end of a file is no moment of its own, so whatever this
        completes carries the time of the last input it came from."""
        return []


def make_protocol(cls: type[ProtocolDecoder], options: Mapping[str, Any]) -> ProtocolDecoder:
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
