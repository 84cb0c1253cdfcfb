"""The bridge service: the MQTT shell around the bridge's core (bridge/core.py).

    broker --paho network threads--> inbox --ingest thread--> BridgeCore.handle(batch) --> actions:
                                                   |--> PUBACK each message of the batch, only after its commit
                                                   |--> bridge/unit/{unit} (retained), bridge/incident/{id}
                                                   |--> gw/{gateway}/cmd/replay for holes in a gateway's seq
                                                   |--> gw/{gateway}/cmd/ack_emergency, gw/{gateway}/config
                                                   |--> gw/{gateway}/cmd/dispatch, .../cmd/radio_check
                                                   '--> gw/{gateway}/cmd/output: the command-center beacon

The shell connects, subscribes, hands what arrives to the core in batches and carries out what the core
returns; everything the bridge decides (validation, storage, incidents, commands, gap recovery, cameras,
the beacon, escalation) is the core's, which neither touches MQTT nor reads a clock.

- Acknowledgements are manual (paho ``manual_ack``): a message is acknowledged to the broker only after
  the transaction that stored it has committed. A bridge killed at any point loses nothing: the broker
  redelivers what was not acknowledged, and storage is idempotent by event id.
- The session is persistent (MQTT 5 session expiry, or clean_session=False on 3.1.1) under a stable
  client id, so the broker queues for the bridge while it is away.
- Alerts come on a session of their own (client id ``...-alerts``, subscribed to ``event/alert`` only),
  so the broker's queue of beacons for a bridge that is behind never stands in front of an emergency.
  Alerts and commands are stored in batches of their own, ahead of the rest; the other batches take
  each gateway in turn: a gateway that floods delays the others' beacons by its share only. (A hard
  cap per gateway would have to leave messages unacknowledged, which closes the broker's in-flight
  window on every gateway at once.)
- A database that cannot store (down, read-only, full) is waited for with backoff, acknowledging nothing:
  what is not stored must come again, not be given up as a hole.
- Every topic the bridge builds from received text is checked for what MQTT and Mosquitto refuse before it
  is published (a malformed topic would cost the bridge its connection).
- Channel plans go to gateways retained on ``gw/{gateway}/config``, every current plan again on each
  connection (the broker may have lost its retained messages). Camera evidence is fetched, and cases of
  the transfer flow handed to outside systems (webhook, MQTT topic), by worker threads whose news goes back
  to the core, never holding up ingest.

All database work happens on one ingest thread, never on paho's network thread.
"""

from __future__ import annotations

import gc
import json
import logging
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bridge.actions import (
    ALERTS,
    BULK,
    AckMessages,
    Action,
    FetchEvidence,
    Inbound,
    Publish,
    TransferCase,
    topic_refusal,
)
from bridge.cameras.correlation import CameraStore
from bridge.cameras.evidence import EvidenceFetcher
from bridge.cameras.index import CameraIndex
from bridge.core import Batch, BridgeCore, Once, Stopping
from bridge.metrics import BridgeMetrics, DatabaseStats, Stats
from bridge.plans import Plans
from bridge.store import CaseRules, IngestResult, Store, database_url, read_only, redact, unavailable
from bridge.transfer import CaseTransfer
from config.mqtt import BufferedClient, frigate_filters, make_client, topic, topic_problem
from config.schema import Config
from gateway.events import Event, Kind, printable

log = logging.getLogger(__name__)

CONNACK_WAIT_S = 3.0  # how long an MQTT 5 CONNECT may go unanswered before 3.1.1 is tried (auto mode)
GROUP_ALERTS_EXPIRY_S = 10  # session expiry of a shared group member's alerts session
BULK_BATCH_S = 0.25  # a batch of beacons is cut to about this long to store: an alert arriving waits no longer
GAP_CHECK_S = 0.05  # of each round of gap checks (0.5 s apart): each check is a database round trip
RETRY_MAX_S = 2.0  # the longest wait between two tries of a database that cannot store: alerts wait on it
_UNSUPPORTED_PROTOCOL = (1, 132)  # CONNACK codes: 3.1.1 "unacceptable protocol version", MQTT 5 0x84
SHOWN = 200  # characters of received text in a log line


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _budget(seconds: float) -> Callable[[], bool]:
    """Whether there is time left, ``seconds`` from when it is first asked."""
    deadline: float | None = None

    def more() -> bool:
        nonlocal deadline
        now = time.monotonic()
        if deadline is None:
            deadline = now + seconds
        return now < deadline

    return more


class Bridge:
    """One bridge instance (``pttbridge bridge``): two MQTT sessions, the ingest thread, and the core."""

    def __init__(self, config: Config, *, store: Store | None = None, batch_delay_s: float = 0.0,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.config = config
        #: The bridge's clock (UTC): what event times are held against, and each stored batch's received_at.
        self.clock = clock
        self.cfg = config.bridge
        self.mqtt_cfg = config.mqtt
        self.database_url = database_url(config)
        self.store = store
        self._owns_store = store is None
        self.client_id = config.mqtt.client_id or f"pttbridge-bridge-{self.cfg.name}"
        #: Test hook: seconds to sleep after each batch, to play a bridge that cannot keep up.
        self.batch_delay_s = batch_delay_s
        self.counts: Counter[str] = Counter()  # the core's, and the shell's own (disconnects, topics refused)
        self.metrics = BridgeMetrics(self, self.cfg.name, self.cfg.shared_group)  # served on [bridge] metrics
        self.core: BridgeCore | None = None  # made on start(), with the store
        self.plans: Plans | None = None
        self.fetcher: EvidenceFetcher | None = None
        self.transfer: CaseTransfer | None = None  # hands cases to outside systems (flow transfer)
        self._inbox: queue.SimpleQueue[Inbound | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._alerts_connected = threading.Event()
        self._sessions = [0, 0]  # per lane, bumped on every CONNACK; touched by the network threads only
        # Taken from the inbox, waiting for a batch: [priority][gateway] -> messages in arrival order.
        self._waiting: tuple[dict[str, deque[Inbound]], dict[str, deque[Inbound]]] = ({}, {})
        self._stop_seen = False
        self._message_s = 0.0  # what storing one message of a batch of beacons takes (moving average)
        self._v5 = self.cfg.mqtt_version in ("auto", "5")
        self._fallback = threading.Event()
        self._ever_connected = False
        self._closed_before_connack = 0
        self._handshake_since: float | None = None  # when a CONNECT went unanswered, in auto mode
        self._client: mqtt.Client | None = None  # everything but alerts; the bridge publishes on it
        self._alert_client: mqtt.Client | None = None
        self._bad_topics = Once()  # topics refused before publishing, logged once each
        self._unacked: dict[int, Inbound] = {}  # id() -> message, of the batch being handled
        self._plans_due = threading.Event()  # set on each connection: the ingest thread publishes them
        self._go, self._parked = threading.Event(), threading.Event()  # hold() and release(), for tests
        self._go.set()
        self._thread = threading.Thread(target=self._work, name="bridge-ingest", daemon=True)
        self._summariser = threading.Thread(target=self._summarise, name="bridge-reports", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.store is None:
            log.info("database %s", redact(self.database_url))
            limits = {name: (c.ack_s, c.resolve_s) for name, c in self.cfg.cameras.categories.items()}
            self.store = Store.open(self.database_url, incident_window_s=self.cfg.incident_window_s, limits=limits,
                                    future_s=self.cfg.future_s, rules=CaseRules.of(self.config))
        self.core = self.make_core(self.store)
        if self.core.cameras.fetching:
            self.fetcher = EvidenceFetcher(self.core.cameras.arrived.put)
        if any(k.transfer is not None for k in self.config.case_kinds.values()):
            self.transfer = CaseTransfer(self.core.transfer_news.put, self._publish_receipted, clock=self.clock)
            self._execute(self.core.transfers_pending())  # handed over before a stop, with no receipt yet
        if self.cfg.metrics:
            self.metrics.start(self.cfg.metrics)
        self._client, self._alert_client = self._make_client(BULK), self._make_client(ALERTS)
        self._thread.start()
        if self.cfg.report_summary_s > 0:
            self._summariser.start()

    def make_core(self, store: Store) -> BridgeCore:
        """The core on this store, with its collaborators (plans, cameras) and this shell's way to store."""
        core = BridgeCore.open(self.config, store, clock=self.clock, counts=self.counts, ingest=self._ingest)
        self.plans = core.plans
        return core

    def stop(self, drain_s: float = 5.0) -> None:
        """Store and acknowledge what has arrived (for up to ``drain_s``), then disconnect."""
        self._go.set()
        if self._thread.is_alive():
            self._inbox.put(None)
            self._thread.join(drain_s)
            self._stop.set()  # still busy (the database away?): what is unacknowledged comes again
            self._inbox.put(None)
            self._thread.join(5.0)
        self._stop.set()
        if self._summariser.is_alive():
            self._summariser.join(10.0)  # at most a week of days is being summarised
        if self.fetcher is not None:
            self.fetcher.stop(2.0)
        if self.transfer is not None:
            self.transfer.stop(2.0)
        if self._client is not None:
            if self.core is not None:
                self._execute(self.core.flush(time.monotonic()))  # the ingest thread has ended: held states go now
            for client in (self._client, self._alert_client):
                if client is not None:
                    client.disconnect()
                    client.loop_stop()
        self.metrics.stop()
        if self.store is not None and self._owns_store:
            self.store.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self._alerts_connected.is_set()

    def hold(self, timeout: float = 10.0) -> None:
        """Test seam: keep the ingest thread from taking another batch until :meth:`release`; returns once
        it waits. What arrives meanwhile stays in the inbox, and is taken together (up to a batch's size)."""
        self._parked.clear()  # as left by an earlier hold, perhaps: wait for this one
        self._go.clear()
        if not self._parked.wait(timeout):
            raise TimeoutError("the ingest thread did not come to a halt")

    def release(self) -> None:
        """Test seam: let the ingest thread go on (see :meth:`hold`)."""
        self._go.set()

    @property
    def camera_store(self) -> CameraStore | None:
        return self.core.cameras.camera_store if self.core is not None else None

    @property
    def cameras(self) -> CameraIndex | None:
        return self.core.cameras.cameras if self.core is not None else None

    def stats(self) -> Stats:
        """For the metrics: counters, connection, what waits in the inbox."""
        return Stats(dict(self.counts), self.connected, self._inbox.qsize())

    def database_stats(self) -> DatabaseStats:
        """For the metrics: incidents by state and each gateway's seq, as the database has them."""
        if self.store is None:
            raise RuntimeError("not started")
        return DatabaseStats(self.store.incidents_by_state(), self.store.gateways())

    # --- MQTT ----------------------------------------------------------------------------------

    def _make_client(self, lane: int) -> mqtt.Client:
        protocol = mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311
        client_id = self.client_id + ("-alerts" if lane == ALERTS else "")
        # The bridge's sessions must persist across restarts, so the broker queues while it is away.
        client = make_client(self.mqtt_cfg.model_copy(update={"client_id": client_id}), client_id,
                             protocol=protocol, clean_session=False, buffered=True)
        client.user_data_set(lane)
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            if lane == ALERTS and self.cfg.shared_group:
                # A broker keeps handing a group's messages to a member whose session lives on, even while
                # it is away: a dead bridge's share of the alerts must move to the others within seconds.
                # What its session held then comes back from the gateways through seq-gap replays.
                props.SessionExpiryInterval = min(self.cfg.session_expiry_s, GROUP_ALERTS_EXPIRY_S)
            # clean_start=False on every connect, the first included: the session outlives the process.
            client.connect_async(self.mqtt_cfg.host, self.mqtt_cfg.port, keepalive=self.mqtt_cfg.keepalive_s,
                                 clean_start=False, properties=props)
        else:
            client.connect_async(self.mqtt_cfg.host, self.mqtt_cfg.port, keepalive=self.mqtt_cfg.keepalive_s)
        log.info("connecting to %s as %s (MQTT %s)", self.mqtt_cfg.url, client_id, "5" if self._v5 else "3.1.1")
        client.loop_start()
        return client

    def _filters(self, lane: int) -> list[str]:
        if lane == ALERTS:
            shared = [topic(self.mqtt_cfg, "gw", "+", "event", str(Kind.ALERT))]
        else:
            shared = [topic(self.mqtt_cfg, "gw", "+", "event", str(k)) for k in Kind if k is not Kind.ALERT]
            shared += [topic(self.mqtt_cfg, "gw", "+", "audio", "+"), topic(self.mqtt_cfg, "bridge", "cmd"),
                       topic(self.mqtt_cfg, "cam", "+", "event"), self.cfg.cameras.frigate_topic,
                       *frigate_filters(self.cfg.cameras.frigate_topic)]
        group = self.cfg.shared_group
        if group and self._v5:
            shared = [f"$share/{group}/{f}" for f in shared]
        elif group and lane == BULK:
            log.warning("bridge.shared_group %r ignored: shared subscriptions need MQTT 5", group)
        return shared + ([topic(self.mqtt_cfg, "gw", "+", "state")] if lane == BULK else [])

    def _on_connect(self, client: mqtt.Client, lane: int, flags: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure and lane == ALERTS:
            log.warning("broker %s refused the alerts session: %s", self.mqtt_cfg.url, rc)
            return
        if rc.is_failure:
            if self._v5 and self.cfg.mqtt_version == "auto" and rc.value in _UNSUPPORTED_PROTOCOL:
                log.warning("broker %s does not speak MQTT 5; using 3.1.1", self.mqtt_cfg.url)
                self._fallback.set()  # the ingest thread rebuilds the client: not from inside its own loop
            else:
                log.warning("broker %s refused the connection: %s", self.mqtt_cfg.url, rc)
            return
        self._sessions[lane] += 1
        resumed = getattr(flags, "session_present", False)
        if lane == ALERTS:
            client.subscribe([(f, 1) for f in self._filters(ALERTS)])
            log.info("alerts session connected to %s (%s)", self.mqtt_cfg.url, "resumed" if resumed else "new")
            return
        self._ever_connected = True
        if resumed:  # a session kept from before alerts had their own: its catch-all filter would bring them too
            old = topic(self.mqtt_cfg, "gw", "+", "event", "+")
            group = self.cfg.shared_group
            client.unsubscribe(f"$share/{group}/{old}" if group and self._v5 else old)
        client.subscribe([(f, 1) for f in self._filters(BULK)])
        self._plans_due.set()
        log.info("connected to %s (%s session)", self.mqtt_cfg.url, "resumed" if resumed else "new")

    def _on_subscribe(self, _c: mqtt.Client, lane: int, _mid: int, _codes: Any, _p: Any) -> None:
        # Connected means subscribed: an event published before the broker took the SUBSCRIBE of a new
        # session would reach nobody (and come back only through a replay).
        (self._alerts_connected if lane == ALERTS else self._connected).set()

    def _on_disconnect(self, _c: mqtt.Client, lane: int, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if (self._alerts_connected if lane == ALERTS else self._connected).is_set() and not self._stop.is_set():
            self.counts["disconnects"] += 1  # a broker that throws the bridge off (a malformed packet) shows here
        if lane == ALERTS:
            self._alerts_connected.clear()
            return
        if not self._ever_connected and self._v5 and self.cfg.mqtt_version == "auto" and not self._stop.is_set():
            # Some 3.1.1-only brokers (amqtt) hang up on an MQTT 5 CONNECT without a CONNACK; twice in a
            # row, before any connection ever succeeded, is taken as that rather than a network hiccup.
            self._closed_before_connack += 1
            if self._closed_before_connack >= 2 and not self._fallback.is_set():
                log.warning("broker %s hangs up on MQTT 5; using 3.1.1", self.mqtt_cfg.url)
                self._fallback.set()
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("lost the broker %s (%s); what was not acknowledged comes again", self.mqtt_cfg.url, rc)
        self._connected.clear()

    def _on_message(self, _c: mqtt.Client, lane: int, msg: mqtt.MQTTMessage) -> None:
        # The topic is split here, once: batching and handling both route by its levels.
        prefix = self.mqtt_cfg.prefix + "/"
        levels = tuple(msg.topic[len(prefix):].split("/")) if msg.topic.startswith(prefix) else (msg.topic,)
        self._inbox.put(Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._sessions[lane], lane, levels,
                                bool(msg.retain)))

    def _execute(self, actions: Iterable[Action]) -> None:
        """Carry out what the core decided, in its order; the clients' network threads woken once, after."""
        with ExitStack() as corks:
            for client in (self._client, self._alert_client):
                if isinstance(client, BufferedClient):
                    corks.enter_context(client.corked())
            self._carry_out(actions)

    def _carry_out(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, AckMessages):
                for m in action.messages:
                    if self._unacked.pop(id(m), None) is not None:  # taken off first: never acknowledged twice
                        self._ack(m)
            elif isinstance(action, FetchEvidence):
                if self.fetcher is not None:
                    self.fetcher.submit(action.request)
            elif isinstance(action, TransferCase):
                if self.transfer is not None:
                    self.transfer.submit(action.request)
            else:
                self.publish(action)

    def _publish_receipted(self, topic_name: str, payload: bytes, timeout: float) -> str:
        """Publish on an outside system's topic (a case handed over) and wait for the broker's PUBACK, on a
        transfer worker's thread; raises when there is none within ``timeout``."""
        problem = topic_problem(topic_name)
        if problem is not None:
            raise ValueError(f"topic {topic_name!r} refused: {problem}")
        if self._client is None or not self._connected.is_set():
            raise ConnectionError("the bridge is not connected to the broker")
        info = self._client.publish(topic_name, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"no PUBACK within {timeout:g} s")
        return f"PUBACK from the broker (message {info.mid}, {len(payload)} bytes)"

    def publish(self, message: Publish) -> None:
        """Publish on the bridge's main connection. Levels come from received text (a unit, a gateway's
        name, a plan's gateway): a topic the broker would take for a malformed packet is refused here,
        logged and counted, never sent, since Mosquitto answers one by dropping the bridge's connection."""
        levels = message.levels
        name = "/".join(levels)
        full = topic(self.mqtt_cfg, *levels)
        problem = topic_refusal(levels, full)
        if problem is None and self._client is not None:
            try:
                self._client.publish(full, json.dumps(message.body, separators=(",", ":")), qos=message.qos,
                                     retain=message.retain)
                return
            except (ValueError, UnicodeError) as exc:  # paho's own refusals (wildcards, encoding)
                problem = f"{exc.__class__.__name__}: {exc}"
        if problem is None:
            return  # not started
        self.counts["topics_refused"] += 1
        if self._bad_topics.first(name):
            log.warning("not published: topic %s is refused (%s)", printable(name, SHOWN), printable(problem, SHOWN))

    # --- the ingest thread ---------------------------------------------------------------------

    def _work(self) -> None:
        draining = False
        while True:
            if not self._go.is_set():  # held (a test seam: see hold())
                self._parked.set()
                self._go.wait()
                self._parked.clear()
            batch = self._take(draining)
            if batch is None:  # stop asked: drain what has arrived, then leave
                if draining or self._stop.is_set():
                    return
                draining = True
                continue
            try:
                if self.cfg.mqtt_version == "auto" and self._v5 and not self._ever_connected:
                    self._watch_handshake()
                if self._fallback.is_set():
                    self._fall_back()
                if batch:
                    started = time.monotonic()
                    self._handle_until_stored(batch)
                    if not batch[0].urgent:  # a batch of beacons (urgent messages come in batches of their own)
                        took = min(BULK_BATCH_S, (time.monotonic() - started) / len(batch))  # retries aside
                        self._message_s = took if not self._message_s else 0.8 * self._message_s + 0.2 * took
                    if self.batch_delay_s:
                        time.sleep(self.batch_delay_s)
                if not draining:
                    self._housekeeping()
            except Stopping:
                return
            except Exception:  # the ingest thread must outlive anything one batch can do
                # Unacknowledged messages would hold the broker's in-flight window shut and stall every
                # gateway; acknowledged, whatever did not get stored shows up as a hole in its gateway's
                # seq and is asked for again.
                log.exception("bridge: unexpected error in a batch of %d messages; seq gaps will recover it",
                              len(batch))
                self.counts["batch_errors"] += 1
                self._execute([AckMessages(tuple(self._unacked.values()))])
                time.sleep(0.5)

    def _handle_until_stored(self, messages: list[Inbound]) -> None:
        """Handle a batch; while the database cannot take it (down, read-only, full) hand what is left of it
        to the core again with backoff, acknowledging nothing: what is not stored must come again, not be
        given up as a hole. What the core decided before the database went away is carried out."""
        assert self.core is not None
        self._unacked = {id(m): m for m in messages}
        batch = Batch(messages)
        delay = 0.5
        while True:
            try:
                self._handle(batch)
                return
            except DBAPIError as exc:
                if not unavailable(exc):
                    raise
                self._execute(batch.take())  # published while handled (refusals, plans): no acknowledgement yet
                self._database_trouble(exc, delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _handle(self, batch: Batch) -> None:
        assert self.core is not None
        self.core.handle(batch, time.monotonic())
        self._execute(batch.take())

    def _ingest(self, events: Sequence[Event]) -> IngestResult:
        """Store, retrying while the database is unreachable; nothing is acknowledged meanwhile."""
        assert self.store is not None
        delay = 0.5
        while True:
            try:
                started = time.monotonic()
                result = self.store.ingest(events, received_at=self.clock())
                self.metrics.stored(events, time.monotonic() - started)
                return result
            except DBAPIError as exc:
                if not unavailable(exc):
                    raise  # refused by the database for what it is: the core finds which event
                self._database_trouble(exc, delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _database_trouble(self, exc: DBAPIError, delay: float) -> None:
        log.error("database cannot store (%s); nothing acknowledged, retrying in %.1f s",
                  (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0], delay)
        if read_only(exc) and self.store is not None:
            # A session opened read-only (a database switched read-only, a standby) stays so: new ones
            # must be opened once the database is writable again.
            self.store.engine.dispose()
        if self._stop.wait(delay):
            raise Stopping() from None

    def _summarise(self) -> None:
        """Settled days summarised for the supervisor's reports, a first time a minute after the start (not
        to slow it), then every ``report_summary_s``; a week of days per transaction, beside the ingest."""
        wait = min(60.0, self.cfg.report_summary_s)
        while not self._stop.wait(wait):
            wait = self.cfg.report_summary_s
            assert self.store is not None
            try:
                started = time.monotonic()
                if days := self.store.summarise_settled():
                    log.info("reports: %d settled days summarised in %.1f s", days, time.monotonic() - started)
            except SQLAlchemyError as exc:  # the database away: the next round tries again
                log.warning("reports: settled days not summarised: %s", str(exc).splitlines()[0])

    def _housekeeping(self) -> None:
        assert self.core is not None
        now = time.monotonic()
        plans = self._plans_due.is_set()
        if plans:
            self._plans_due.clear()
        self._execute(self.core.tick(now, plans=plans, more=_budget(GAP_CHECK_S)))

    def _take(self, draining: bool) -> list[Inbound] | None:
        """Up to batch_max messages: waits for the first (briefly, for housekeeping), not for more.

        Everything that has arrived is sorted first (it is bounded by the broker's in-flight window):
        alerts and commands before the rest, in a batch of their own (their transaction does not wait
        for hundreds of beacons to be written), and each gateway in turn."""
        if not any(self._waiting):
            if self._stop_seen:
                self._stop_seen = False
                return None
            try:
                first = self._inbox.get_nowait() if draining else self._inbox.get(timeout=0.25)
            except queue.Empty:
                return None if draining else []
            if first is None:
                return None
            self._queue_up(first)
        while not self._stop_seen:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stop_seen = True  # stop once what came before it is handled
            else:
                self._queue_up(item)
        batch: list[Inbound] = []
        for waiting, most in zip(self._waiting, (self.cfg.batch_max, self._bulk_batch_max()), strict=True):
            while waiting and len(batch) < most:
                for source in list(waiting):  # one message of each source per round
                    messages = waiting[source]
                    batch.append(messages.popleft())
                    if not messages:
                        del waiting[source]
                    if len(batch) >= most:
                        break
            if batch:
                break
        return batch

    def _bulk_batch_max(self) -> int:
        """As many messages as take about BULK_BATCH_S to store (at most batch_max): an alert that arrives
        while a batch of beacons is being stored waits for that batch."""
        if not self._message_s:
            return min(self.cfg.batch_max, 50)  # until the first batch has been timed
        return max(10, min(self.cfg.batch_max, int(BULK_BATCH_S / self._message_s)))

    def _queue_up(self, m: Inbound) -> None:
        levels = m.levels
        # A gateway, or a feed: "cam", "bridge", or the first level of a topic outside the prefix (Frigate's
        # "frigate/..."), so that a feed's messages keep their order among themselves.
        source = levels[1] if levels[0] == "gw" and len(levels) > 1 else levels[0].partition("/")[0]
        self._waiting[0 if m.urgent else 1].setdefault(source, deque()).append(m)

    def _watch_handshake(self) -> None:
        # Other 3.1.1-only brokers (amqtt) neither answer an MQTT 5 CONNECT nor hang up: paho would wait
        # a whole keepalive for the CONNACK, then try the same again. A socket open that long without
        # an answer is taken as a broker that does not speak 5.
        now = time.monotonic()
        if self._client is None or self._client.socket() is None:
            self._handshake_since = None
        elif self._handshake_since is None:
            self._handshake_since = now
        elif now - self._handshake_since > CONNACK_WAIT_S and not self._fallback.is_set():
            log.warning("broker %s does not answer an MQTT 5 CONNECT; using 3.1.1", self.mqtt_cfg.url)
            self._fallback.set()

    def _fall_back(self) -> None:
        self._v5 = False
        for old in (self._client, self._alert_client):
            if old is not None:
                old.on_connect = old.on_disconnect = old.on_message = None  # its goodbye is no news
                old.disconnect()
                old.loop_stop()
        self._fallback.clear()
        self._client, self._alert_client = self._make_client(BULK), self._make_client(ALERTS)

    def _ack(self, m: Inbound) -> None:
        # A PUBACK on a later connection could name another message: the broker re-sends what a lost
        # connection left unacknowledged, and storage makes that second delivery harmless.
        client = self._alert_client if m.lane == ALERTS else self._client
        if m.qos > 0 and m.session == self._sessions[m.lane] and client is not None:
            client.ack(m.mid, m.qos)



def run(config: Config) -> None:
    """Run a bridge until SIGINT or SIGTERM (``pttbridge bridge -c FILE``)."""
    bridge = Bridge(config)
    bridge.start()
    # What start-up loaded (the camera index: a hundred thousand cameras) lives as long as the process: out
    # of the collector's sight, a full collection no longer walks it (about 40 ms of every batch that
    # moves thousands of units, measured by bench/camera_bench.py).
    gc.freeze()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    log.warning("bridge %s running: database %s, broker %s", config.bridge.name, redact(bridge.database_url),
                config.mqtt.url)
    done.wait()
    bridge.stop()
