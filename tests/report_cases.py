"""Cases written straight into the bridge's tables, each part's times given in seconds from its opening:
the hand-built site the report's tests know the figures of, and random ones."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bridge.models import CasePartRow, IncidentRow
from bridge.store import Store

LIMITS = {"noise": (120, 600, None), "street_stall": (300, 900, 3600)}


class Cases:
    """Cases written as rows, each part with its times in seconds from its opening."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.next_id = 1

    def case(self, kind: str, opened: datetime, *, camera: str | None = None, verdict: str | None = None,
             resolved: bool = False, flow: str | None = "lead") -> int:
        case_id, self.next_id = self.next_id, self.next_id + 1
        with self.store.engine.begin() as c:
            c.execute(insert(IncidentRow), [{
                "id": case_id, "unit": None, "gateway": "camera" if camera else "dispatcher",
                "channel": camera or "map", "state": "resolved" if resolved else "acknowledged", "opened_at": opened,
                "first_event_id": f"e{case_id}", "last_event_id": f"e{case_id}", "last_alert_at": opened,
                "alert_count": 1, "updated_at": opened, "category": kind,
                "source": "camera" if camera else "dispatcher", "flow": flow, "camera": camera, "verdict": verdict}])
        return case_id

    def part(self, case_id: int, kind: str, department: str, opened: datetime, state: str, *,
             unit: str | None = None, accept: float | None = None, arrive: float | None = None,
             handle: float | None = None, closed: float | None = None) -> None:
        accept_s, arrive_s, resolve_s = LIMITS[kind]

        def at(s: float | None) -> datetime | None:
            return None if s is None else opened + timedelta(seconds=s)

        with self.store.engine.begin() as c:
            c.execute(insert(CasePartRow), [{
                "case_id": case_id, "kind": kind, "department": department, "role": "lead", "state": state,
                "unit": unit, "opened_at": opened, "accepted_at": at(accept), "arrived_at": at(arrive),
                "handled_at": at(handle), "accept_due": at(accept_s), "arrive_due": at(arrive_s),
                "resolve_due": at(resolve_s), "updated_at": at(closed) or opened}])


def build_site(store: Store, now: datetime) -> None:
    """Police noise cases (accept 2 min, arrive 10 min) and camera-found street stalls that urban
    management leads (accept 5 min, arrive 15 min, handled within 1 h), the first opened 8 h before ``now``."""
    t0 = now - timedelta(hours=8)
    w = Cases(store)
    h = timedelta(hours=1)
    for i, (accept, arrive, handle, state) in enumerate([(60, 300, 900, "handled"), (180, 500, 1000, "handled"),
                                                          (100, None, None, "accepted")]):
        w.part(w.case("noise", t0 + i * h), "noise", "police", t0 + i * h, state, unit=f"mdc:20{i}",
               accept=accept, arrive=arrive, handle=handle)
    w.part(w.case("noise", now - timedelta(seconds=30)), "noise", "police", now - timedelta(seconds=30),
           "dispatched", unit="mdc:209")  # its limits still ahead: not judged, not overdue
    old = now - timedelta(days=10)  # before the window, still running past its limits: overdue now only
    w.part(w.case("noise", old), "noise", "police", old, "dispatched", unit="mdc:200")
    w.case("street_stall", old, camera="dome-3", verdict="false_detection", resolved=True)  # not in the window

    c5 = w.case("street_stall", t0 + 3 * h, camera="dome-3", verdict="valid", resolved=True)
    w.part(c5, "street_stall", "urban-management", t0 + 3 * h, "handled", unit="fleetsync:100-1001",
           accept=200, arrive=800, handle=3000)
    w.part(c5, "street_stall", "police", t0 + 3 * h, "handled", unit="mdc:200", accept=400, arrive=1000, handle=2000)
    c6 = w.case("street_stall", t0 + 4 * h, camera="dome-3", verdict="false_detection", resolved=True)
    w.part(c6, "street_stall", "urban-management", t0 + 4 * h, "closed", unit="fleetsync:100-1001", accept=100,
           closed=200)  # closed before its arrive limit: judged on accepting only
    c7 = w.case("street_stall", t0 + 5 * h, camera="cam-9", verdict="valid", resolved=True)
    w.part(c7, "street_stall", "urban-management", t0 + 5 * h, "closed", closed=400)  # closed after accept_due
    c8 = w.case("street_stall", now - timedelta(minutes=10), camera="cam-9")
    w.part(c8, "street_stall", "urban-management", now - timedelta(minutes=10), "new")  # not accepted in 5 min
    for at in (t0, t0 + h, old):  # alerts of no configured kind: no parts (two in the window)
        w.case("alert", at, flow=None)


def random_site(store: Store, now: datetime, seed: int, n: int = 400) -> None:
    """``n`` random cases over the 9 days before ``now``: most parts accepted within a few minutes, there
    within a quarter of an hour, handled within the hour; one in six stopping short (closed with its case,
    or still running if it opened in the last two hours); a third of them found by one of two cameras."""
    rng = random.Random(seed)
    w = Cases(store)
    for _ in range(n):
        kind = rng.choice(list(LIMITS))
        opened = now - timedelta(seconds=rng.randrange(0, 9 * 86400))
        camera = rng.choice(["dome-3", "cam-9", None])
        verdict = rng.choices(["valid", "false_detection", None], [6, 3, 1])[0] if camera else None
        case_id = w.case(kind, opened, camera=camera, verdict=verdict, resolved=verdict is not None)
        for department in rng.sample(["police", "urban-management", "sanitation"], rng.choice([1, 1, 2])):
            accept = rng.uniform(15, 150) if rng.random() < 0.8 else rng.uniform(150, 900)
            arrive = accept + rng.uniform(60, 700)
            steps = [accept, arrive, arrive + rng.uniform(300, 3000)]
            reached = 3 if rng.random() < 5 / 6 else rng.randint(0, 2)
            times: list[Any] = [round(t, 3) if i < reached else None for i, t in enumerate(steps)]
            running = now - opened < timedelta(hours=2)
            state = "handled" if reached == 3 else ["new", "accepted", "arrived"][reached] if running else "closed"
            w.part(case_id, kind, department, opened, state, unit=rng.choice([None, "mdc:201", "aprs:BG5ABC-9"]),
                   accept=times[0], arrive=times[1], handle=times[2],
                   closed=rng.uniform(steps[reached - 1] if reached else 1, 5000) if state == "closed" else None)
