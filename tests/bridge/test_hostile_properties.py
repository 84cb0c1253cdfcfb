"""Property tests over the event schema and the command schema, through the bridge's own batch handling
(a real SQLite database, no broker): any JSON value in any field of an event or a command leads either
to a stored event or an applied command, or to a refusal with a reason. Never an exception out of the
batch, never a message failing in a way nobody foresaw, never a topic a broker would refuse. And what the
topic check lets through, a real Mosquitto takes."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from support import Mosquitto, create_database, wait_until

from bridge.actions import Inbound, Publish, topic_refusal
from bridge.audit import entries
from bridge.core import Batch, BridgeCore
from bridge.store import Store
from config.mqtt import topic_problem
from config.schema import parse_config
from gateway.events import Decoded, Event, Kind, Position, event_to_dict

PREFIX = "pttbridge/v1"
NOW = datetime.now(UTC).replace(microsecond=0)


class Recording(BridgeCore):
    """The bridge's core with what it would publish and why it refused kept, for the properties to look at."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.refused_topics: list[str] = []  # what the bridge's shell would refuse to publish
        self.reasons: list[str] = []

    def _reject(self, m: Inbound, reason: str) -> None:
        self.reasons.append(reason)
        super()._reject(m, reason)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bridge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    base: Path = tmp_path_factory.mktemp("hostile")
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'bridge.sqlite'}"
    else:  # PostgreSQL refuses what SQLite takes (NUL in text, integers past a column's range)
        admin = request.getfixturevalue("postgres_admin_url")
        url = create_database(admin, f"pttbridge_hostile_{uuid.uuid4().hex[:12]}")
    store = Store.open(url)
    # An open incident for the commands to act on, from a real alert.
    store.ingest([Event.stamp(Decoded(Kind.ALERT, NOW, "mdc:1001", None, {"protocol": "mdc1200"}), seq=1,
                              gateway="gw1", channel="patrol-1")])
    core = BridgeCore.open(parse_config({"data_dir": str(base)}), store, clock=lambda: datetime.now(UTC))
    yield Recording(core.cfg, store, core.plans, core.cameras, clock=core.clock)
    store.close()


def handle(b: Recording, *messages: Inbound) -> None:
    """A batch, as the ingest thread hands it over: nothing may come out of it but actions."""
    batch = Batch(list(messages))
    b.handle(batch, 0.0)
    for action in batch.take():
        if isinstance(action, Publish):
            name = "/".join((PREFIX, *action.levels))
            b.published.append((name, action.body))
            if topic_refusal(action.levels, name) is not None:
                b.refused_topics.append(name)


def inbound(levels: tuple[str, ...], payload: bytes) -> Inbound:
    return Inbound("/".join((PREFIX, *levels)), payload, 0, 1, 0, 0, levels)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.integers(min_value=2**62, max_value=2**80) | st.sampled_from([1e308, -1e308, 2**63 - 1, -(2**63)]),
    lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=10), x, max_size=4),
    max_leaves=10,
)
HOSTILE_TEXT = st.sampled_from(["", " ", "x#y", "a/b", "+", "mdc:\x1b[2J\x07", "mdc:12\x0034", "mdc:\u202eevil",
                                "[/]", "[b=']x", "\x1b]0;PWNED\x1b\\", "bob\nforged", "mdc:\ud800", "mdc:\ufffe",
                                "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "A" * 70]) | st.text()

# --- events ------------------------------------------------------------------------------------------------

FIELDS = ("v", "id", "seq", "gateway", "channel", "kind", "time", "unit", "position", "detail")
POSITION_FIELDS = ("lat", "lon", "alt_m", "speed_mps", "course_deg", "fix_time", "source")


def sample_event(seq: int) -> dict[str, Any]:
    e = Event.stamp(Decoded(Kind.BEACON, datetime.now(UTC), "nxdn:U10001", Position(30.2, 120.1, fix_time=NOW,
                                                                                      source="kenwood"),
                            {"protocol": "kenwood", "raw": "$PKNSH"}), seq=seq, gateway="gw1", channel="patrol-1")
    return event_to_dict(e)


@st.composite
def hostile_events(draw: st.DrawFn) -> dict[str, Any]:
    obj = sample_event(draw(st.integers(1, 2**40)))
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        obj[key] = draw(JSON | HOSTILE_TEXT)
    if isinstance(obj.get("position"), dict):
        for key in draw(st.lists(st.sampled_from(POSITION_FIELDS), max_size=2, unique=True)):
            obj["position"][key] = draw(JSON | HOSTILE_TEXT)
    if draw(st.booleans()):
        obj.pop(draw(st.sampled_from(FIELDS)), None)
    return obj


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_events())
def test_any_value_in_any_field_of_an_event_is_stored_or_refused_with_its_reason(
    bridge: Recording, obj: dict[str, Any]
) -> None:
    gateway = obj["gateway"] if isinstance(obj.get("gateway"), str) and obj["gateway"] else "gw1"
    kind = obj["kind"] if isinstance(obj.get("kind"), str) and obj["kind"] else "beacon"
    payload = json.dumps(obj).encode("utf-8", "surrogatepass")
    before = {k: bridge.counts[k] for k in ("stored", "duplicates", "rejected", "messages_failed", "batch_errors")}
    published, reasons = len(bridge.published), len(bridge.reasons)
    handle(bridge, inbound(("gw", gateway.replace("/", "_"), "event", kind.replace("/", "_")), payload))
    after = {k: bridge.counts[k] for k in before}
    assert after["messages_failed"] == before["messages_failed"] and after["batch_errors"] == before["batch_errors"]
    outcomes = sum(after[k] - before[k] for k in ("stored", "duplicates", "rejected"))
    assert outcomes == 1  # stored (or known already), or refused: one of them
    for reason in bridge.reasons[reasons:]:
        assert reason and not reason.startswith("could not"), reason  # a reason the schema gave, not a crash
    assert bridge.refused_topics == []
    for name, _ in bridge.published[published:]:
        assert topic_problem(name) is None, name


# --- commands ----------------------------------------------------------------------------------------------

ACTIONS = st.sampled_from(["ack", "resolve", "note", "assign", "alias", "plan"])
NAMES = st.sampled_from(["alice", "bob", "王芳", "Officer O'Brien"]) | HOSTILE_TEXT


@st.composite
def hostile_commands(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"action": draw(ACTIONS | JSON | HOSTILE_TEXT), "operator": draw(NAMES | JSON)}
    optional = {"incident": st.sampled_from([1, 2, 0, -1, 2**31, 2**63, 2**70]) | JSON,
                "note": st.text(max_size=30) | HOSTILE_TEXT | JSON,
                "resolution": st.sampled_from(["handled", "false_alarm"]) | JSON | HOSTILE_TEXT,
                "unit": st.sampled_from(["mdc:1001", "nxdn:U10001", "aprs:AO27_T"]) | HOSTILE_TEXT | JSON,
                "alias": st.sampled_from(["Wang", None]) | HOSTILE_TEXT | JSON,
                "gateway": st.sampled_from(["gw1", "xixing-2"]) | HOSTILE_TEXT | JSON,
                "channels": st.just([]) | JSON,
                "request": st.text(max_size=20) | HOSTILE_TEXT | JSON}
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=5, unique=True)):
        body[key] = draw(optional[key])
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_commands() | JSON | st.binary(max_size=40))
def test_any_value_in_any_field_of_a_command_is_applied_or_refused_with_its_reason(
    bridge: Recording, body: Any
) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")
    assert bridge.store is not None
    audited = len(entries(bridge.store.engine))
    counts = {k: bridge.counts[k] for k in ("commands", "commands_refused", "messages_failed", "batch_errors")}
    published = len(bridge.published)
    handle(bridge, inbound(("bridge", "cmd"), payload))
    assert bridge.counts["commands"] == counts["commands"] + 1
    assert bridge.counts["messages_failed"] == counts["messages_failed"]  # every refusal foreseen, with a reason
    assert bridge.counts["batch_errors"] == counts["batch_errors"]
    [record] = entries(bridge.store.engine)[audited:]  # audited once: done, or refused and why
    refused = bridge.counts["commands_refused"] > counts["commands_refused"]
    assert record.outcome == ("refused" if refused else "done")
    assert (record.reason is not None) == refused
    # Bounded whatever came (a field past its limit by its digest; what is not printable escaped).
    assert len(record.operator) <= 700 and len(record.reason or "") <= 2000 and len(record.detail or "") <= 2000
    assert bridge.refused_topics == []
    for name, answer in bridge.published[published:]:
        assert topic_problem(name) is None, name
        if name.endswith("/bridge/refused"):
            assert refused and answer["reason"] and "\x1b" not in json.dumps(answer, ensure_ascii=False)
            assert set(answer) <= {"request", "action", "incident", "gateway", "operator", "reason"}


# --- what the topic check passes, Mosquitto takes ---------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def publisher(broker: Mosquitto) -> Iterator[tuple[mqtt.Client, threading.Event]]:
    dropped = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="topic-prober")
    c.on_disconnect = lambda *_: dropped.set()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    yield c, dropped
    c.loop_stop()
    c.disconnect()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=40))
def test_a_topic_the_check_passes_is_taken_by_mosquitto(publisher: tuple[mqtt.Client, threading.Event],
                                                         level: str) -> None:
    client, dropped = publisher
    name = f"{PREFIX}/bridge/unit/{level}"
    if topic_problem(name) is not None:
        return
    info = client.publish(name, b"{}", qos=1)
    wait_until(lambda: info.is_published() or dropped.is_set(), 5, "the broker's PUBACK")
    assert not dropped.is_set(), f"Mosquitto dropped the connection for {name!r}"
