"""Hostile input through a secure site: one bad event must not cost anyone else's message, and no name may
reach a terminal raw.

Every case runs a real site as the README sets one up: Mosquitto from the shipped secure configuration
and ACL, certificates from ``pttbridge certs``, a bridge (``bridge-center``) on SQLite, a gateway
(``gw-xixing-1``) reading a Kenwood radio through a pseudo-terminal, and a dispatcher console
(``console-desk-1``) driven headless, whose every byte written to its terminal is kept. The attacks come
from identities the ACL hands out (a second gateway ``gw-xixing-2``, a second console ``console-desk-2``),
one case per way the site was found to break, and each asserts what a user sees: the other messages of
the batch applied (notes, a real radio's alert), the bridge's connection never dropped, the console still
running, its terminal output free of control sequences, files readable by their owner only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from secure_broker import Probe, SecureBroker
from sqlalchemy import insert
from support import SocatLink, caller_id, wait_until
from textual.drivers.headless_driver import HeadlessDriver
from textual.pilot import Pilot

import pttbridge
from bridge.actions import PublishUnit
from bridge.audit import entries
from bridge.core import Batch
from bridge.models import IncidentHistoryRow
from bridge.service import Bridge
from bridge.views import UnitView
from config.schema import Config, parse_config
from console.app import DispatchApp
from console.screens.incident_detail import IncidentDetailScreen
from drivers.nmea import checksum
from gateway.events import Event, Kind, Position, encode_event, event_to_dict, uuid7
from gateway.runner import Gateway

ESC = "\x1b"
FORGED_NAME = "\x1b[2JZZTOP\x1b]0;PWNED\x1b\\"  # clear the screen, set the window's title


# --- the site ------------------------------------------------------------------------------------


class Clock:
    """The bridge's clock: the real one unless a test sets it (no test waits for time to pass)."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)


class WatchedBridge(Bridge):
    """The bridge, with the topics of every message it received and of every batch it handled kept: a case
    holds the bridge (Bridge.hold), sends, waits until the bridge has received it all, releases it, and
    shows that the bad message and the good ones were handled together."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[list[str]] = []
        self.received: list[str] = []
        self.held_at = 0  # where in received the last hold began

    def hold(self, timeout: float = 10.0) -> None:
        super().hold(timeout)
        self.held_at = len(self.received)

    def _on_message(self, client: mqtt.Client, lane: int, msg: mqtt.MQTTMessage) -> None:
        self.received.append(msg.topic.removeprefix("pttbridge/v1/"))
        super()._on_message(client, lane, msg)

    def _handle(self, batch: Batch) -> None:
        self.batches.append(["/".join(m.levels) for m in batch.pending()])
        super()._handle(batch)

    def reconnects(self) -> int:
        return self.counts["disconnects"]


@dataclass
class Site:
    tmp: Path
    broker: SecureBroker
    radio: SocatLink
    bridge: WatchedBridge
    gateway: Gateway
    clock: Clock
    console_config: Config
    probes: list[Probe] = field(default_factory=list)

    @property
    def store(self) -> Any:
        assert self.bridge.store is not None
        return self.bridge.store

    def probe(self, ident: str) -> Probe:
        p = self.broker.client(ident).connected()
        self.probes.append(p)
        return p


def config_of(tmp: Path, broker: SecureBroker, ident: str, radio: Path | None = None, **bridge: Any) -> Config:
    raw: dict[str, Any] = {"data_dir": str(tmp / "data"), "mqtt": broker.mqtt_config(ident),
                           "bridge": {"name": "center", "database_url": f"sqlite:///{tmp / 'data' / 'bridge.sqlite'}",
                                      "reannounce_s": 600, **bridge}}
    if radio is not None:
        raw["gateway"] = {"name": ident.removeprefix("gw-"), "state_interval_s": 1}
        raw["channels"] = [{"name": "emergency-1", "drivers": [{"port": str(radio), "protocol": "kenwood"}],
                            "rules": [{"when": {"kind": "ptt", "transmission": "begin"}, "kind": "alert",
                                       "label": "key-up on the emergency channel"}]}]
    return parse_config(raw)


@pytest.fixture
def site(tmp_path: Path, secure_broker: SecureBroker, socat_link: SocatLink) -> Iterator[Site]:
    clock = Clock()
    # As a technician starting it by hand would: the usual umask, which leaves new files readable by all.
    umask = os.umask(0o022)
    try:
        bridge = WatchedBridge(config_of(tmp_path, secure_broker, "bridge-center", metrics="127.0.0.1:0"), clock=clock)
        bridge.start()
        gateway = Gateway(config_of(tmp_path, secure_broker, "gw-xixing-1", socat_link.radio))
        gateway.start()
    finally:
        os.umask(umask)
    s = Site(tmp_path, secure_broker, socat_link, bridge, gateway, clock,
             config_of(tmp_path, secure_broker, "console-desk-1"))
    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 15, "the bridge and the gateway")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "the radio's port")
        yield s
    finally:
        for p in s.probes:
            p.close()
        gateway.stop()
        bridge.stop()


# --- the console and its terminal ------------------------------------------------------------------


class Terminal(HeadlessDriver):
    """A terminal that keeps every byte the console writes to it (Textual renders to a driver only when it
    is not headless: this one says it is not, and writes into ``app.written``)."""

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        self._app.written.append(data)  # type: ignore[attr-defined]


class Console(DispatchApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.driver_class = Terminal
        self.written: list[str] = []
        self.notes: list[str] = []
        self.bells = 0

    def bell(self) -> None:
        self.bells += 1
        super().bell()

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.notes.append(message)
        super().notify(message, *args, **kwargs)

    def output(self) -> str:
        return "".join(self.written)


# What Textual itself writes: colours (SGR), cursor positions, private modes, the mouse pointer's shape.
OWN_SEQUENCES = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\d+;\d+H|\x1b\[\?[0-9;]+[hl]|\x1b\]22;[a-z-]+\x07")


def foreign_controls(app: Console) -> list[str]:
    """Control characters in the console's terminal output that are not its own drawing: every escape
    sequence Textual writes is of a few kinds (colours, cursor positions, modes); a bell is its own only as
    often as it rang. Anything else came from somewhere it should not have."""
    rest = OWN_SEQUENCES.sub("", app.output())
    found = [m.group(0) for m in re.finditer(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", rest)]
    bells = found.count("\x07")
    return [c for c in found if c != "\x07"] + (["\x07"] * (bells - app.bells) if bells > app.bells else [])


async def until(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


def with_console(site: Site, scenario: Callable[[Console, Pilot[None]], Awaitable[None]]) -> Console:
    """Run ``scenario`` with a console signed in as alice; afterwards the console must still be running,
    its terminal output free of foreign control characters, and the bridge never thrown off the broker."""
    app = Console(site.console_config, "alice")

    async def run() -> None:
        async with app.run_test(headless=False, size=(140, 40), notifications=True) as pilot:
            await until(pilot, lambda: app.broker and app.database == "ok", "the console to be ready")
            await scenario(app, pilot)
            await pilot.pause(0.3)  # whatever the last news draws is drawn
            assert app.is_running, "the console stopped"
            assert app.output(), "the console wrote nothing to its terminal"
            assert foreign_controls(app) == []
            assert site.bridge.reconnects() == 0, "the bridge lost its connection to the broker"

    asyncio.run(run())
    return app


# --- what the attackers and the radio send ------------------------------------------------------------


def event(gateway: str, seq: int, *, kind: Kind = Kind.BEACON, unit: str | None = "nxdn:U20001",
          at: datetime | None = None, lat: float = 30.25, lon: float = 120.15) -> Event:
    when = at or datetime.now(UTC)
    return Event(id=uuid7(when), seq=seq, gateway=gateway, channel="patrol-1", kind=kind, time=when, unit=unit,
                 position=Position(lat, lon, fix_time=when, source="test"), detail={"protocol": "test"})


def wire(e: Event, **changes: Any) -> bytes:
    """An event's JSON with fields replaced as they come off a hostile wire (past what Event can hold)."""
    obj = event_to_dict(e)
    obj.update(changes)
    return json.dumps(obj).encode()


def pknsh(unit: str, lat: str, lon: str) -> bytes:
    """A Kenwood NXDN GPS report ($PKNSH) as a radio's data port sends it, e.g. unit ``U10001``."""
    body = f"PKNSH,{lat},N,{lon},E,{datetime.now(UTC):%H%M%S},A,{unit},"
    return f"${body}*{checksum(body):02X}\r\n".encode()


def note(incident: int, operator: str = "bob", text: str = "on my way") -> str:
    return json.dumps({"action": "note", "incident": incident, "operator": operator, "note": text,
                       "request": uuid7()[:16]})


def history(site: Site, incident: int) -> list[tuple[str, str, str | None]]:
    detail = site.store.incident_detail(incident)
    return [(h.actor, h.action, h.note) for h in detail.history] if detail else []


async def an_open_incident(site: Site, app: Console, pilot: Pilot[None], n: int = 1) -> int:
    """A real radio's emergency (a key-up on the emergency channel), as the console shows it."""
    site.radio.write(caller_id(n))
    unit = f"fleetsync:100-{1000 + n}"
    await until(pilot, lambda: any(r["unit"] == unit for r in app.dispatch.queue.texts()), f"{unit}'s alert")
    return next(i.id for i in site.store.open_incidents() if i.unit == unit)


def received(site: Site, *topics: str) -> bool:
    """Whether the bridge has received, since it was held, at least these messages (topics after the prefix;
    one topic named twice: two messages)."""
    got = Counter(site.bridge.received[site.bridge.held_at:])
    return all(got[t] >= n for t, n in Counter(topics).items())


def one_batch(site: Site, *topics: str) -> bool:
    """Whether one batch the bridge handled held all of these topics (after the prefix)."""
    return any(all(t in batch for t in topics) for batch in site.bridge.batches)


# --- the cases --------------------------------------------------------------------------------------


def test_an_event_whose_time_overflows_is_refused_alone_and_its_batch_applied(site: Site) -> None:
    """Break 1: "9999-12-31T23:59:59-23:59" raised OverflowError and the whole batch was lost, console notes
    acknowledged and never applied, a real radio's alert back only through a replay."""
    thief, desk2 = site.probe("gw-xixing-2"), site.probe("console-desk-2")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        incident = await an_open_incident(site, app, pilot)
        site.bridge.hold()  # what arrives now is taken together
        bad = wire(event("xixing-2", 1, kind=Kind.ALERT, unit="mdc:1234"), time="9999-12-31T23:59:59-23:59")
        assert thief.publish("gw/xixing-2/event/alert", bad) == 0
        for text in ("note 1", "note 2", "note 3"):
            desk2.publish("bridge/cmd", note(incident, text=text))
        site.radio.write(caller_id(2))  # a real emergency, decoded by the gateway, in the same moment
        await until(pilot, lambda: received(site, "gw/xixing-2/event/alert", "bridge/cmd", "bridge/cmd", "bridge/cmd",
                                            "gw/xixing-1/event/alert"), "the five messages at the bridge")
        site.bridge.release()
        await until(pilot, lambda: any(r["unit"] == "fleetsync:100-1002" for r in app.dispatch.queue.texts()),
                    "the real radio's emergency on the console")
        assert one_batch(site, "gw/xixing-2/event/alert", "bridge/cmd", "gw/xixing-1/event/alert")
        notes = [n for a, what, n in history(site, incident) if what == "note"]
        assert notes == ["note 1", "note 2", "note 3"]
        assert site.bridge.counts["rejected"] == 1 and site.bridge.counts["batch_errors"] == 0
        assert site.bridge.counts["replay_requests"] == 0  # the radio's alert came at once, not through a replay
        app.open_detail(incident)
        await until(pilot, lambda: isinstance(app.screen, IncidentDetailScreen) and app.screen.history.row_count >= 4,
                    "the detail's history")
        assert [r["note"] for r in app.screen.history.texts() if r["action"] == "note"][-3:] == \
            ["note 1", "note 2", "note 3"]

    with_console(site, scenario)


def test_a_far_future_beacon_does_not_pin_a_unit_the_real_radio_moves(site: Site) -> None:
    """Break 2: a beacon dated 9999 from another authorised gateway became the unit's position for good."""
    thief = site.probe("gw-xixing-2")
    unit = "nxdn:U10001"

    def position() -> str | None:
        rows = [r for r in app_ref[0].dispatch.units.texts() if r["unit"] == unit]
        return rows[0]["position"] if rows else None

    app_ref: list[Console] = []

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        app_ref.append(app)
        site.radio.write(pknsh("U10001", "3012.5700", "12012.6420"))  # 30.2095, 120.2107
        await until(pilot, lambda: position() == "30.2095,120.2107", "the radio's first position")
        forged = event("xixing-2", 1, unit=unit, at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), lat=31.0, lon=121.0)
        assert thief.publish("gw/xixing-2/event/beacon", encode_event(forged)) == 0
        wait_until(lambda: site.bridge.counts["future"] == 1, 10, "the forged beacon, stored and counted")
        site.radio.write(pknsh("U10001", "3013.0000", "12013.0000"))  # 30.2167, 120.2167: the radio moved on
        await until(pilot, lambda: position() == "30.2167,120.2167", "the unit to follow the real radio")
        view = site.store.unit(unit)
        assert view is not None and view.position is not None and round(view.position.lat, 4) == 30.2167
        assert view.last_heard is not None and view.last_heard.year < 9999

    with_console(site, scenario)


def test_the_clock_window_counts_what_is_too_far_ahead_and_no_future_time_holds_a_unit(site: Site) -> None:
    """bridge.future_s (300 s by default): a gateway's clock may run ahead by that much unremarked, and its
    events' times count as the bridge's now; beyond it the event is stored, counted and logged, and says
    nothing about its unit. The bridge's clock is set by the test, so nothing waits for time to pass."""
    thief = site.probe("gw-xixing-2")
    t0 = datetime.now(UTC).replace(microsecond=0)
    site.clock.fixed = t0

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        unit = "nxdn:U20001"
        for seq, (ahead, lat) in enumerate([(299, 30.1), (301, 30.2)], start=1):
            e = event("xixing-2", seq, unit=unit, at=t0 + timedelta(seconds=ahead), lat=lat)
            assert thief.publish("gw/xixing-2/event/beacon", encode_event(e)) == 0
        wait_until(lambda: site.store.count_events("xixing-2") == 2, 10, "both stored")
        assert site.bridge.counts["future"] == 1  # 301 s ahead: past the window; 299 s: within it
        held = site.store.unit(unit)
        # Within the window the unit moved, its times no later than the bridge's clock; past it, not at all.
        assert held is not None and held.position is not None and held.position.lat == 30.1
        assert held.last_heard == t0 and held.position.fix_time == t0
        site.clock.fixed = t0 + timedelta(seconds=10)  # ten seconds on, the unit's own next beacon
        later = event("xixing-2", 3, unit=unit, at=t0 + timedelta(seconds=10), lat=30.3)
        assert thief.publish("gw/xixing-2/event/beacon", encode_event(later)) == 0
        await until(pilot, lambda: any(r["unit"] == unit and r["position"].startswith("30.3000")
                                       for r in app.dispatch.units.texts()), "the unit's later position")

    with_console(site, scenario)


def test_control_characters_in_a_unit_never_reach_a_topic_and_the_bridge_stays_connected(site: Site) -> None:
    """Break 3: a beacon with unit "mdc:\\x1b[2J\\x07" (or a NUL) was stored; publishing bridge/unit/<unit>
    got the bridge thrown off by Mosquitto, 17 times in 20 s."""
    thief = site.probe("gw-xixing-2")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        seq = 0
        for _ in range(10):
            for unit in ("mdc:\u001b[2J\u0007", "mdc:12\u000034"):
                seq += 1
                payload = wire(event("xixing-2", seq), unit=unit)
                assert thief.publish("gw/xixing-2/event/beacon", payload) == 0
        await an_open_incident(site, app, pilot, 3)  # an emergency after them: at once
        assert site.bridge.counts["rejected"] == 20
        assert site.store.count_events("xixing-2") == 0
        assert site.bridge.counts["topics_refused"] == 0  # refused at the schema: no topic was ever built

    with_console(site, scenario)
    assert "malformed" not in site.broker.log().lower()


def test_a_topic_mosquitto_would_drop_the_bridge_for_is_never_published(site: Site) -> None:
    """What the topic check keeps from happening, shown on the broker: a client that publishes a topic with
    a control character is thrown off. The bridge refuses such a topic (from an old database row, say)
    before it is sent, counts it, and stays connected."""
    careless = site.probe("bridge-center")
    careless.client.publish("pttbridge/v1/bridge/unit/mdc:\u001b[2J", b"{}", qos=1)
    wait_until(careless.disconnected.is_set, 10, "Mosquitto to drop a client for a control character in a topic")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        for unit in ("mdc:\u001b[2J\u0007", "mdc:12\u000034", "x#y", "mdc:\ud800", ""):
            site.bridge.publish(PublishUnit(UnitView(unit, None, None, None, None, None, None, None, None)))
        assert site.bridge.counts["topics_refused"] == 5
        await an_open_incident(site, app, pilot)

    with_console(site, scenario)


def test_a_gateway_state_with_a_seq_past_what_storage_holds_is_refused_with_its_reason(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """Break 4: a retained state with next_seq 2**70 made every round of gap checks raise (SQLite integer
    overflow), 301 tracebacks, ingest asleep half a second each time."""
    caplog.set_level(logging.WARNING, logger="bridge")
    thief = site.probe("gw-xixing-2")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        assert thief.publish("gw/xixing-2/event/beacon", encode_event(event("xixing-2", 1))) == 0
        state = {"online": True, "time": datetime.now(UTC).isoformat(), "outbox": {"next_seq": 2**70, "pending": 0,
                                                                                   "oldest_seq": 1}}
        assert thief.publish("gw/xixing-2/state", json.dumps(state), retain=True) == 0
        await until(pilot, lambda: any("outbox figures are refused" in r.getMessage() for r in caplog.records),
                    "the refusal in the log")
        await pilot.pause(1.5)  # three rounds of gap checks (twice a second) come and go meanwhile
        await an_open_incident(site, app, pilot)
        assert site.bridge.counts["batch_errors"] == 0 and site.bridge.counts["messages_failed"] == 0
        assert site.bridge.counts["lost"] == 0 and site.bridge.counts["replay_requests"] == 0
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        [line] = [r.getMessage() for r in caplog.records if "outbox figures are refused" in r.getMessage()]
        assert "outbox.next_seq = 1180591620717411303424" in line

    with_console(site, scenario)


def test_markup_in_an_alias_or_a_unit_is_shown_as_written(site: Site) -> None:
    """Break 5: an alias "[/]" (any console may set one) or an alert from unit "mdc:[b=']x": the next toast
    was rendered with markup on, and every console exited with MarkupError."""
    thief, desk2 = site.probe("gw-xixing-2"), site.probe("console-desk-2")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        incident = await an_open_incident(site, app, pilot)
        desk2.publish("bridge/cmd", json.dumps({"action": "alias", "unit": "fleetsync:100-1001", "alias": "[/]",
                                                "operator": "bob"}))
        await until(pilot, lambda: any(r["alias"] == "[/]" for r in app.dispatch.units.texts()), "the alias shown")
        alert = event("xixing-2", 1, kind=Kind.ALERT, unit="mdc:[b=']x")
        assert thief.publish("gw/xixing-2/event/alert", encode_event(alert)) == 0
        await until(pilot, lambda: any("mdc:[b=']x" in n for n in app.notes), "the toast")
        await until(pilot, lambda: any(r["unit"] == "mdc:[b=']x" for r in app.dispatch.queue.texts()), "its row")
        app.open_detail(incident)
        await until(pilot, lambda: isinstance(app.screen, IncidentDetailScreen), "the detail")
        await until(pilot, lambda: "mdc:[b=']x" in app.output() and "[/]" in app.output(), "both written as they are")

    with_console(site, scenario)


def test_escape_sequences_and_line_breaks_in_names_reach_no_terminal_and_no_log_raw(
    site: Site, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Break 6: a note by operator "\\x1b[2JZZTOP\\x1b]0;PWNED\\x1b\\\\" was done; opening the incident's detail
    wrote clear-screen and set-title sequences to the dispatcher's terminal; ``pttbridge audit`` printed them;
    a newline in an operator's name forged a line in the bridge's log and in the audit's output."""
    caplog.set_level(logging.INFO)
    desk2 = site.probe("console-desk-2")
    desk2.subscribe("bridge/refused")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        incident = await an_open_incident(site, app, pilot)
        forged_line = "bob\n2026-11-27 08:00:00 INFO incident 1 resolved"  # a line of its own in a log
        for name in (FORGED_NAME, forged_line):
            desk2.publish("bridge/cmd", note(incident, operator=name, text="x"))
        wait_until(lambda: len(entries(site.store.engine)) == 2, 10, "both audited")
        assert [e.outcome for e in entries(site.store.engine)] == ["refused", "refused"]
        assert [a for a, what, _ in history(site, incident) if what == "note"] == []
        wait_until(lambda: len(desk2.payloads("bridge/refused")) == 2, 10, "both answered")
        for answer in desk2.payloads("bridge/refused"):
            body = json.loads(answer)
            assert "operator" not in body and ESC not in body["reason"] and "\n" not in body["reason"]
        # A name written by an older bridge, before names had an alphabet, is in the database already.
        with site.store.engine.begin() as conn:
            conn.execute(insert(IncidentHistoryRow), [{"incident_id": incident, "at": datetime.now(UTC),
                                                       "actor": FORGED_NAME, "action": "note", "note": forged_line}])
        app.open_detail(incident)
        await until(pilot, lambda: isinstance(app.screen, IncidentDetailScreen)
                    and any("ZZTOP" in r["actor"] for r in app.screen.history.texts()), "the old note in the detail")
        await until(pilot, lambda: "\\x1b[2JZZTOP" in app.output(), "the old note drawn")  # shown, as text
        assert "\x1b]0;" not in app.output() and "\x1b[2J" not in app.output()  # not obeyed

    with_console(site, scenario)
    # No log line of the bridge was forged; the audit's text output has one line per record, escaped.
    assert all("\n" not in r.getMessage() and ESC not in r.getMessage() for r in caplog.records
               if r.name.startswith("bridge"))
    capsys.readouterr()
    pttbridge.main(["audit", "-c", str(write_site_file(site)), "--since", "1h"])
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and ESC not in out
    assert "\\x1b[2JZZTOP" in out and "\\n2026-11-27 08:00:00 INFO" in out


def write_site_file(site: Site) -> Path:
    path = site.tmp / "center.toml"
    path.write_text(f'data_dir = "{site.tmp / "data"}"\n[bridge]\n'
                    f'database_url = "sqlite:///{site.tmp / "data" / "bridge.sqlite"}"\n')
    return path


def test_a_field_past_its_limit_is_refused_and_audited_by_its_digest_only(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    """Break 7: a 3 MB operator name was stored in the audit, echoed in full on bridge/refused to every
    console, and printed by ``pttbridge audit``."""
    desk2 = site.probe("console-desk-2")
    desk2.subscribe("bridge/refused")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        incident = await an_open_incident(site, app, pilot)
        huge, long = "A" * 3_000_000, "B" * 100_000
        desk2.publish("bridge/cmd", note(incident, operator=huge))  # past the command limit: refused unread
        desk2.publish("bridge/cmd", note(incident, operator=long))  # read, and its operator refused
        desk2.publish("bridge/cmd", note(incident, text="N" * 5000))  # a note past 4000 characters
        wait_until(lambda: len(desk2.payloads("bridge/refused")) == 3, 10, "three refusals")
        answers = desk2.payloads("bridge/refused")
        assert all(len(a) < 1000 for a in answers)
        assert all("AAAA" not in a.decode() and "BBBB" not in a.decode() and "NNNN" not in a.decode() for a in answers)
        assert "100000 characters, sha256" in answers[1].decode()
        audit = entries(site.store.engine)
        assert [a.outcome for a in audit] == ["refused"] * 3
        assert all(len(a.operator) <= 64 and len(a.reason or "") < 1000 and len(a.detail or "") < 1000 for a in audit)
        assert audit[1].operator.startswith("<100000 characters, sha256 ")
        assert [n for a, what, n in history(site, incident) if what == "note"] == []

    with_console(site, scenario)
    capsys.readouterr()
    pttbridge.main(["audit", "-c", str(write_site_file(site))])
    out = capsys.readouterr().out
    assert len(out) < 3000 and "AAAA" not in out and "BBBB" not in out


def test_an_alias_for_a_unit_that_is_no_unit_is_refused_before_anything_and_the_batch_goes_on(site: Site) -> None:
    """Break 8: an alias for unit "x#y" raised "Publish topic cannot contain wildcards" after it was audited
    as done, and the rest of the batch's unit and incident messages were not published; an alias for the
    empty unit was accepted."""
    desk2 = site.probe("console-desk-2")
    desk2.subscribe("bridge/refused")

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        incident = await an_open_incident(site, app, pilot)
        site.bridge.hold()  # what arrives now is taken together
        for unit in ("x#y", ""):
            desk2.publish("bridge/cmd", json.dumps({"action": "alias", "unit": unit, "alias": "Wang",
                                                    "operator": "bob"}))
        desk2.publish("bridge/cmd", note(incident, text="after the aliases"))
        site.radio.write(caller_id(4))
        await until(pilot, lambda: received(site, "bridge/cmd", "bridge/cmd", "bridge/cmd", "gw/xixing-1/event/alert"),
                    "the four messages at the bridge")
        site.bridge.release()
        await until(pilot, lambda: any(r["unit"] == "fleetsync:100-1004" for r in app.dispatch.queue.texts()),
                    "the real radio's emergency on the console")
        assert one_batch(site, "bridge/cmd", "gw/xixing-1/event/alert")
        await until(pilot, lambda: ("bob", "note", "after the aliases") in history(site, incident), "the note")
        audit = [(a.action, a.target, a.outcome) for a in entries(site.store.engine)]
        assert audit[:2] == [("alias", "unit:x#y", "refused"), ("alias", "unit:", "refused")]
        reasons = [json.loads(p)["reason"] for p in desk2.payloads("bridge/refused")]
        assert len(reasons) == 2 and all(r.startswith("unit: ") for r in reasons)
        assert site.bridge.counts["topics_refused"] == 0 and site.store.unit("x#y") is None

    with_console(site, scenario)


def test_the_database_the_outbox_and_their_folders_are_the_owners_alone_whatever_the_umask(site: Site) -> None:
    """Break 9: run by hand (umask 022), the bridge's database, its WAL and SHM, the gateway's outbox and the
    data folders were 0644 and 0755: positions, names and voice readable by every user of the machine."""

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        await an_open_incident(site, app, pilot)  # both databases have written: their journals exist
        data = site.tmp / "data"
        files = [data / f"{name}{suffix}" for name in ("bridge.sqlite", "outbox-xixing-1.sqlite")
                 for suffix in ("", "-wal", "-shm")]
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert stat.S_IMODE(data.stat().st_mode) == 0o700

    with_console(site, scenario)


def test_an_event_id_used_again_with_other_content_is_logged_once_and_counted(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """Also found: the same event id arriving again with other content (a beacon, then an alert) was dropped
    without a word. A redelivery of the same content stays silent."""
    caplog.set_level(logging.WARNING, logger="bridge")
    thief = site.probe("gw-xixing-2")

    def metric(name: str) -> float:
        assert site.bridge.metrics.server is not None
        url = f"http://127.0.0.1:{site.bridge.metrics.server.port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]

    async def scenario(app: Console, pilot: Pilot[None]) -> None:
        beacon = event("xixing-2", 1)
        assert thief.publish("gw/xixing-2/event/beacon", encode_event(beacon)) == 0
        assert thief.publish("gw/xixing-2/event/beacon", encode_event(beacon)) == 0  # a plain redelivery
        wait_until(lambda: site.bridge.counts["duplicates"] == 1, 10, "the redelivery")
        assert metric("pttbridge_bridge_events_id_reused_total") == 0
        alert = Event(id=beacon.id, seq=2, gateway="xixing-2", channel="patrol-1", kind=Kind.ALERT, time=beacon.time,
                      unit="nxdn:U20001", position=None, detail={"protocol": "test"})  # the same id, other content
        for _ in range(2):
            assert thief.publish("gw/xixing-2/event/alert", encode_event(alert)) == 0
        wait_until(lambda: site.bridge.counts["id_reused"] == 2, 10, "both counted")
        assert metric("pttbridge_bridge_events_id_reused_total") == 2
        lines = [r.getMessage() for r in caplog.records if "arrived again with other content" in r.getMessage()]
        assert len(lines) == 1 and beacon.id in lines[0] and "xixing-2" in lines[0]
        assert site.store.open_incidents() == []  # the stored beacon stays what it was
        await an_open_incident(site, app, pilot)

    with_console(site, scenario)
