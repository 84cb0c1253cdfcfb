"""How often the bridge says things by itself, each with its state as data and the time passed in:
a unit's retained state at most once a second, the command-center beacon, and the rounds of periodic
work (re-announcement, escalation, gap checks)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.views import UnitView

UNIT_PUBLISH_S = 1.0  # a unit's retained state is published at most this often (the newest is held)
BEACON_CHECK_S = 0.5  # how often the beacon's state is worked out (a count of unacknowledged incidents)
BEACON_REFRESH_S = 60.0  # the beacon's state is sent again this often, for a gateway that restarted


@dataclass
class UnitThrottle:
    """A unit's state at most every UNIT_PUBLISH_S: a map needs no more, and a unit that beacons fast would
    otherwise double the broker's traffic. The newest state is held and sent when due."""

    every_s: float = UNIT_PUBLISH_S
    sent: dict[str, float] = field(default_factory=dict)  # unit -> when its state was last published
    held: dict[str, UnitView] = field(default_factory=dict)  # newer states waiting for every_s to pass

    def due(self, units: Iterable[UnitView], now: float, *, flush: bool = False) -> list[UnitView]:
        """Of these new states and those held, the ones to publish now (the rest are held)."""
        for unit in units:
            self.held[unit.unit] = unit
        out = []
        for name in list(self.held):
            if flush or now - self.sent.get(name, -self.every_s) >= self.every_s:
                out.append(self.held.pop(name))
                self.sent[name] = now
        return out


@dataclass
class Every:
    """Something done every ``period_s`` at most: :meth:`due` says whether now is the time (and starts the
    next period)."""

    period_s: float
    next: float = 0.0

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = now + self.period_s
        return True


@dataclass
class Beacon:
    """The command-center beacon: a gateway's output lit while any incident is unacknowledged, sent when
    that changes and again every BEACON_REFRESH_S for a gateway that restarted."""

    gateway: str
    point: str
    lit: bool | None = None  # as last sent
    sent_at: float = 0.0

    @classmethod
    def of(cls, setting: str) -> Beacon:
        """``[bridge] beacon = "gateway/point"``."""
        gateway, point = setting.split("/", 1)
        return cls(gateway, point)

    def update(self, lit: bool, now: float) -> tuple[bool, bool]:
        """(send it now, and it changed)."""
        changed = lit != self.lit
        if not changed and now - self.sent_at < BEACON_REFRESH_S:
            return False, False
        self.lit, self.sent_at = lit, now
        return True, changed
