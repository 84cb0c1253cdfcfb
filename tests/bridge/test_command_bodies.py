"""``bridge/cmd`` and gateway state bodies straight into the bridge's core (no broker): whatever a console
or a gateway sends, a bad body is refused and counted, never an exception out of the batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.actions import Inbound
from bridge.audit import entries
from bridge.core import Batch, BridgeCore
from bridge.store import Store
from config.schema import parse_config
from gateway.events import Decoded, Event, Kind

NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeCore]:
    base: Path = tmp_path_factory.mktemp("bridge")
    store = Store.open(f"sqlite:///{base / 'bridge.sqlite'}")
    store.ingest([Event.stamp(Decoded(Kind.ALERT, NOW, "mdc:1001", None, {"protocol": "mdc1200"}), seq=1,
                              gateway="gw1", channel="patrol-1")])
    yield BridgeCore.open(parse_config({"data_dir": str(base)}), store, clock=lambda: datetime.now(UTC))
    store.close()


def command(b: BridgeCore, body: Any) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    b.command(Inbound("pttbridge/bridge/cmd", payload, 0, 1, 0), Batch([]))


@pytest.mark.parametrize("incident", [0, -1, 2**31, 2**63, 10**30])
def test_an_incident_id_the_database_cannot_hold_is_refused(bridge: BridgeCore, incident: int) -> None:
    # Found by bench/fuzz: 2**63 raised OverflowError in SQLite (a DataError in PostgreSQL) out of the batch.
    refused = bridge.counts["commands_refused"]
    command(bridge, {"action": "ack", "incident": incident, "operator": "alice"})
    assert bridge.counts["commands_refused"] == refused + 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=10), x, max_size=4),
    max_leaves=12,
)
BODIES = st.fixed_dictionaries(
    {"action": st.sampled_from(["ack", "resolve", "note", "assign", "alias", "plan", "bogus"]) | JSON},
    optional={"incident": st.integers(-2, 3) | st.integers() | JSON, "operator": st.text(max_size=8) | JSON,
              "note": JSON, "unit": st.sampled_from(["mdc:1001", ""]) | JSON, "alias": JSON,
              "resolution": JSON, "gateway": JSON, "channels": JSON},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(BODIES | JSON | st.binary(max_size=60))
def test_any_command_body_is_carried_out_or_refused(bridge: BridgeCore, body: Any) -> None:
    audited = len(entries(bridge.store.engine))
    refused, failed = bridge.counts["commands_refused"], bridge.counts["messages_failed"]
    command(bridge, body)
    [record] = entries(bridge.store.engine)[audited:]  # audited once: carried out, or refused and why
    assert record.outcome == ("refused" if bridge.counts["commands_refused"] == refused + 1 else "done")
    assert (record.outcome == "refused") == bool(record.reason)
    assert bridge.counts["messages_failed"] == failed  # every refusal foreseen, none a failure of the bridge


def no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional={"online": JSON, "gateway": JSON, "outbox": JSON | st.fixed_dictionaries(
    {}, optional={"next_seq": st.integers() | JSON, "pending": st.integers() | JSON, "oldest_seq": JSON})})
       | JSON | st.binary(max_size=60))
def test_any_gateway_state_body_is_noted_or_ignored(bridge: BridgeCore, body: Any) -> None:
    store = bridge.store

    def noted() -> dict[str, Any] | None:
        return next((g.state for g in store.gateways() if g.name == "gw1"), None)

    before = noted()
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    bridge.gateway_state("gw1", Inbound("pttbridge/gw/gw1/state", payload, 0, 1, 0), 0.0)
    # A JSON object (JSON's own: no Infinity, no NaN) is noted as it came; anything else leaves what was
    # noted before.
    try:
        sent = json.loads(payload, parse_constant=no_constant)
    except ValueError:  # not JSON (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        sent = None
    assert noted() == (sent if isinstance(sent, dict) else before)


def test_a_body_nested_past_the_recursion_limit_is_refused(
    bridge: BridgeCore, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by bench/fuzz: json raises RecursionError (not ValueError) for [[[[..., which failed the batch.
    deep = b"[" * 100_000 + b"]" * 100_000
    refused = bridge.counts["commands_refused"]
    command(bridge, deep)
    assert bridge.counts["commands_refused"] == refused + 1
    bridge.gateway_state("gw1", Inbound("pttbridge/gw/gw1/state", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 0, 1, 0),
                         0.0)
    assert "gateway state on pttbridge/gw/gw1/state ignored: not JSON: nested too deeply" in caplog.text
