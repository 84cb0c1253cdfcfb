"""Gap recovery: each gateway's ``seq`` watched for holes, a hole that has stopped filling asked for again
with ``cmd/replay`` (rate-limited, a few times, then given up as lost).

Brokers drop QoS 1 messages (Mosquitto past max_queued_messages): the store reports each jump in a
gateway's seq as a batch is stored, and the gateway's retained state tells how far its seq has gone,
which reveals a lost tail. The state is data, one :class:`GapWatch` and one :class:`Hint` per gateway;
:meth:`GapRecovery.check` is called on the ingest thread between batches, with the time passed in, and
returns the replay requests to send. The store is asked for what is missing and told what is lost.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.exc import OperationalError

from bridge.actions import RequestReplay
from bridge.store import GapReport
from gateway.events import INT64_MAX, printable

log = logging.getLogger(__name__)

STREAMING_PATIENCE = 10  # replay intervals a hole may stand still while its gateway's events still arrive
SHOWN = 200  # characters of received text in a log line


@dataclass(slots=True)
class GapWatch:
    """Replay bookkeeping for one gateway."""

    since: float  # when holes were first seen (monotonic)
    low: int = 0  # start of the lowest hole when last checked
    filling: float = 0.0  # when that start last moved up: the hole is being filled (a backlog in order)
    next_request: float = 0.0
    first_hole: int | None = None  # start of the lowest hole when it was last requested
    tries: int = 0


@dataclass(slots=True)
class Hint:
    """What a gateway's retained state says of its seq."""

    published: int  # every seq up to here has been published (next_seq - 1 - pending)
    oldest: int | None  # the oldest seq its outbox still holds; below it, replay cannot help


class SeqStore(Protocol):
    """What recovery needs of the store (bridge/store/ingest.py)."""

    def missing_ranges(self, gateway: str) -> GapReport: ...

    def mark_lost(self, gateway: str, first: int, last: int) -> int: ...


def figures_problem(outbox: Mapping[str, Any]) -> str | None:
    """Why a gateway state's outbox figures cannot be used (they are compared with seq, a BIGINT), or None."""
    for key in ("next_seq", "pending", "oldest_seq"):
        value = outbox.get(key)
        if value is None and key == "oldest_seq":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
            return f"outbox.{key} = {printable(repr(value), 40)}, expected an integer 0..2**63-1"
    return None


@dataclass
class GapRecovery:
    """Holes in every gateway's seq, and what has been done about them."""

    store: SeqStore
    interval_s: float  # bridge.replay_interval_s: how long a hole is left to fill by itself, between requests
    tries: int  # bridge.replay_tries
    most: int  # bridge.replay_max: a replay larger than the broker's queue would be dropped again
    counts: Counter[str]
    gaps: dict[str, GapWatch] = field(default_factory=dict)
    hints: dict[str, Hint] = field(default_factory=dict)
    heard: dict[str, float] = field(default_factory=dict)  # gateway -> when its last event arrived (monotonic)
    suspects: set[str] = field(default_factory=set)  # gateways that may have holes
    checked: dict[str, float] = field(default_factory=dict)  # suspect -> when its holes were last looked at

    def heard_from(self, gateway: str, now: float) -> None:
        self.heard[gateway] = now

    def jumped(self, gateway: str) -> None:
        """The store saw a jump in this gateway's seq."""
        self.suspects.add(gateway)

    def settled(self, gateway: str, last_seq: int) -> None:
        """The store holds every seq of this gateway up to ``last_seq``, its newest: no hole to look for,
        unless its state says it published more."""
        hint = self.hints.get(gateway)
        if hint is not None and hint.published > last_seq:
            return
        self.suspects.discard(gateway)
        self.gaps.pop(gateway, None)
        self.checked.pop(gateway, None)

    def note_state(self, gateway: str, outbox: object, last_seq: int) -> str | None:
        """A gateway's retained state: its outbox figures say how far its seq has been published. Returns
        why the figures are refused, if they are (their hint is then dropped)."""
        if not isinstance(outbox, dict):
            return None
        nxt, pending, oldest = outbox.get("next_seq"), outbox.get("pending"), outbox.get("oldest_seq")
        if not isinstance(nxt, int) or not isinstance(pending, int):
            return None
        problem = figures_problem(outbox)
        if problem is not None:
            # Figures past what storage holds would make every round of gap checks fail (2**70 overflows
            # SQL BIGINT): what the state says of the seq is not used at all.
            self.hints.pop(gateway, None)
            return problem
        self.hints[gateway] = hint = Hint(nxt - 1 - pending, oldest if isinstance(oldest, int) else None)
        if hint.published > last_seq:
            self.suspects.add(gateway)
        return None

    def check(self, now: float, more: Callable[[], bool]) -> list[RequestReplay]:
        """Look at the suspects' holes, the longest unlooked-at first, while ``more()`` says there is time:
        this runs between batches, and with hundreds of gateways in a hole at once (a backlog, a group's
        shared load) looking at all of them held alerts up for most of a second."""
        out: list[RequestReplay] = []
        for gw in sorted(self.suspects, key=lambda gw: self.checked.get(gw, 0.0)):
            if not more():
                break
            self.checked[gw] = now
            try:
                out += self._recover(gw, now)
            except OperationalError:
                raise  # the database away: housekeeping says so once
            except Exception as exc:  # noqa: BLE001 - one gateway's bookkeeping must not fail every round
                # One gateway's bookkeeping gone wrong must not fail every round (and hold ingest up each
                # time): its gaps are left alone until its next event or state says more.
                log.error("gateway %s: gap recovery failed (%s: %s); its holes are not asked for again until it "
                          "sends more", gw, exc.__class__.__name__, printable(str(exc), SHOWN))
                self.suspects.discard(gw)
                self.hints.pop(gw, None)
                self.gaps.pop(gw, None)
            if gw not in self.suspects:
                self.checked.pop(gw, None)
        return out

    def _recover(self, gw: str, now: float) -> list[RequestReplay]:
        """Ask ``gw`` again for what is missing; give up on a hole after ``tries`` requests."""
        report = self.store.missing_ranges(gw)
        holes = list(report.holes)
        hint = self.hints.get(gw)
        # A lost tail shows only in the gateway's state; ask for it once the stream has gone quiet.
        quiet = now - self.heard.get(gw, 0.0) >= self.interval_s
        if hint is not None and hint.published > report.last_seq and quiet:
            holes.append((report.last_seq + 1, hint.published))
        if not holes:
            self.suspects.discard(gw)
            self.gaps.pop(gw, None)
            return []
        watch = self.gaps.setdefault(gw, GapWatch(since=now, low=holes[0][0], filling=now))
        if holes[0][0] != watch.low:
            watch.low, watch.filling = holes[0][0], now
        if now - watch.since < self.interval_s or now < watch.next_request:
            return []  # what is in flight (redeliveries, another bridge of the group) gets its chance
        if not quiet and now - watch.filling < STREAMING_PATIENCE * self.interval_s:
            # The gateway's events still arrive, and the hole filled from below not long ago: an alert
            # sent ahead of a backlog, or a group's other bridges storing their share. A broker hands a
            # backlog over in runs per client, so a hole may stand still a while and still be on its way.
            return []
        oldest = hint.oldest if hint is not None else None
        while holes and oldest is not None and holes[0][0] < oldest:
            a, b = holes[0]
            self._lost(gw, a, min(b, oldest - 1), "older than what the gateway still holds")
            if b < oldest:
                holes.pop(0)
            else:
                holes[0] = (oldest, b)
        if not holes:
            return []
        if watch.first_hole == holes[0][0]:
            watch.tries += 1
        else:
            watch.first_hole, watch.tries = holes[0][0], 1
        if watch.tries > self.tries:
            a, b = holes.pop(0)
            self._lost(gw, a, b, f"no replay brought them after {self.tries} requests")
            watch.first_hole, watch.tries = None, 0
            return []
        out = []
        budget = self.most
        for a, b in holes:
            if budget <= 0:
                break
            b = min(b, a + budget - 1)
            budget -= b - a + 1
            self.counts["replay_requests"] += 1
            log.info("gateway %s: asking for seq %d..%d again (try %d)", gw, a, b, watch.tries)
            out.append(RequestReplay(gw, a, b))
        watch.next_request = now + self.interval_s
        return out

    def _lost(self, gw: str, first: int, last: int, why: str) -> None:
        missing = self.store.mark_lost(gw, first, last)
        if missing:
            self.counts["lost"] += missing
            log.error("gateway %s: %d events of seq %d..%d are lost: %s", gw, missing, first, last, why)
