"""Property tests over the case commands and the radios' answers, through the bridge's own batch handling
on a real database (SQLite and PostgreSQL): any JSON value in any field of ``open_case``,
``add_department``, ``assign`` (with its department) or ``resolve`` (with its verdict) is carried out or
refused with its reason, audited once either way; any detail of a status or io event is stored, and an
answer in it applied or kept with why not. Never an exception out of the batch, never a failure nobody
foresaw."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from support import create_database
from test_hostile_properties import HOSTILE_TEXT, JSON, Recording, handle, inbound

from bridge.audit import entries
from bridge.core import BridgeCore
from bridge.models import CaseAnswerRow
from bridge.store import CaseRules, Store
from config.schema import parse_config
from gateway.events import Decoded, Event, EventError, Kind, Position, encode_event

NOW = datetime.now(UTC).replace(microsecond=0)
SITE: dict[str, Any] = {
    "departments": [{"name": "urban-management", "units": ["fleetsync:100-*"]}, {"name": "police",
                                                                                 "units": ["mdc:2*"]}],
    "case_kinds": {"street_stall": {"flow": "lead", "departments": ["urban-management", "police"], "accept_s": 300},
                   "noise": {"departments": ["police"]}},
    "answers": {"fleetsync_status": {"10": "accepted", "11": "arrived", "12": "handled", "13": "needs_help"},
                "mdc_status": {"1": "accepted"}, "dtmf": {"*21*": "accepted"}, "aprs": {"OK": "accepted"},
                "modbus": {"arrived-button": "arrived"}},
    "cameras": [{"id": "dome-3", "name": "Wenyi Rd", "lat": 30.28, "lon": 120.11, "fov_deg": 360}],
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bridge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    base: Path = tmp_path_factory.mktemp("cases")
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'bridge.sqlite'}"
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        url = create_database(admin, f"pttbridge_cases_{uuid.uuid4().hex[:12]}")
    config = parse_config({**SITE, "data_dir": str(base)})
    store = Store.open(url, rules=CaseRules.of(config))
    # A unit heard, and a case for the commands to act on.
    store.ingest([Event.stamp(Decoded(Kind.BEACON, NOW, "fleetsync:100-1001", Position(30.28, 120.11, fix_time=NOW,
                                                                                       source="gps")),
                              seq=1, gateway="gw1", channel="patrol-1")])
    core = BridgeCore.open(config, store, clock=lambda: datetime.now(UTC))  # the cameras registered
    store.open_case("street_stall", "alice", camera="dome-3")
    yield Recording(core.cfg, store, core.plans, core.cameras, clock=core.clock)
    store.close()


ACTIONS = st.sampled_from(["open_case", "add_department", "assign", "resolve"])
IDS = st.sampled_from([1, 2, 0, -1, 2**31, 2**63]) | JSON


@st.composite
def case_commands(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"action": draw(ACTIONS), "operator": draw(st.sampled_from(["alice", "王芳"]) | JSON
                                                                       | HOSTILE_TEXT)}
    optional = {
        "incident": IDS,
        "kind": st.sampled_from(["street_stall", "noise", "graffiti", "Street Stall", "a" * 40]) | JSON | HOSTILE_TEXT,
        "department": st.sampled_from(["police", "urban-management", "fire", "po/lice"]) | JSON | HOSTILE_TEXT,
        "unit": st.sampled_from(["fleetsync:100-1001", "mdc:2001", "car 7"]) | JSON | HOSTILE_TEXT,
        "camera": st.sampled_from(["dome-3", "dome-9", "a/b"]) | JSON | HOSTILE_TEXT,
        "lat": st.sampled_from([30.2, 91, -90, 1e308]) | st.floats() | JSON,
        "lon": st.sampled_from([120.1, 181, -180]) | st.floats() | JSON,
        "note": st.text(max_size=30) | HOSTILE_TEXT | JSON,
        "resolution": st.sampled_from(["handled", "false_alarm"]) | JSON,
        "verdict": st.sampled_from(["valid", "false_detection", "maybe"]) | JSON | HOSTILE_TEXT,
        "reason": st.text(max_size=30) | HOSTILE_TEXT | JSON,
        "request": st.text(max_size=20) | JSON,
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=6, unique=True)):
        body[key] = draw(optional[key])
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case_commands())
def test_any_value_in_any_field_of_a_case_command_is_carried_out_or_refused_with_its_reason(
    bridge: Recording, body: dict[str, Any]
) -> None:
    try:
        payload = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    except ValueError:
        return
    audited = len(entries(bridge.store.engine))
    counts = {k: bridge.counts[k] for k in ("commands", "commands_refused", "messages_failed", "batch_errors")}
    handle(bridge, inbound(("bridge", "cmd"), payload))
    assert bridge.counts["messages_failed"] == counts["messages_failed"]  # every refusal foreseen, with a reason
    assert bridge.counts["batch_errors"] == counts["batch_errors"]
    [record] = entries(bridge.store.engine)[audited:]
    refused = bridge.counts["commands_refused"] > counts["commands_refused"]
    assert record.outcome == ("refused" if refused else "done")
    assert (record.reason is not None) == refused
    assert len(record.reason or "") <= 2000
    assert len(record.detail or "") <= 2000
    assert bridge.refused_topics == []


DETAIL_KEYS = ("protocol", "name", "frame", "status", "digits", "type", "text", "point", "value", "previous", "call")


@st.composite
def answer_details(draw: st.DrawFn) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "protocol": draw(st.sampled_from(["fleetsync", "nxdn", "mdc1200", "dtmf", "aprs", "modbus"]) | JSON),
        "name": draw(st.sampled_from(["status", "status_response", "message"]) | JSON),
    }
    choices = {"frame": st.just("status") | JSON, "status": st.sampled_from([10, 11, 13, "0012", "１２", 2**70, True])
               | JSON, "digits": st.sampled_from(["*21*", "*2"]) | JSON | HOSTILE_TEXT,
               "type": st.just("message") | JSON, "text": st.sampled_from(["ok", "OK now", "  ", ""]) | JSON
               | HOSTILE_TEXT, "point": st.sampled_from(["arrived-button"]) | JSON, "value": JSON,
               "previous": JSON, "call": st.sampled_from([str(uuid.uuid4()), "x"]) | JSON}
    for key in draw(st.lists(st.sampled_from(sorted(choices)), max_size=5, unique=True)):
        detail[key] = draw(choices[key])
    return detail


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer_details(), st.sampled_from([Kind.STATUS, Kind.IO]),
       st.sampled_from(["fleetsync:100-1001", "mdc:2001", None]))
def test_any_detail_of_an_answer_is_stored_and_applied_or_kept_with_why_not(
    bridge: Recording, detail: dict[str, Any], kind: Kind, unit: str | None
) -> None:
    try:
        payload = encode_event(Event.stamp(Decoded(kind, datetime.now(UTC), unit, None, detail),
                                           seq=uuid.uuid4().int % 2**40, gateway="gw1", channel="patrol-1"))
    except (EventError, ValueError, TypeError):
        return  # not an event the schema can carry: the event schema's own tests cover its refusal
    before = {k: bridge.counts[k] for k in ("stored", "rejected", "messages_failed", "batch_errors")}
    with bridge.store._read() as s:
        answers = s.scalar(select(func.count()).select_from(CaseAnswerRow)) or 0
    handle(bridge, inbound(("gw", "gw1", "event", str(kind)), payload))
    assert bridge.counts["messages_failed"] == before["messages_failed"]
    assert bridge.counts["batch_errors"] == before["batch_errors"]
    assert bridge.counts["stored"] + bridge.counts["rejected"] == before["stored"] + before["rejected"] + 1
    with bridge.store._read() as s:
        rows = s.scalars(select(CaseAnswerRow).order_by(CaseAnswerRow.id).offset(answers)).all()
    assert len(rows) <= 1
    for row in rows:  # an answer is kept with what became of it
        assert row.outcome in ("applied", "no_open_case", "no_unit", "unchanged", "waiting")
        assert row.note
