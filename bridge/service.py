"""The bridge service: gateway events from MQTT into the database, incidents out to consoles.

    broker --paho network thread--> inbox --ingest thread--> Store (one transaction per batch)
                                                   |--> PUBACK each message of the batch, only now
                                                   |--> bridge/unit/{unit} (retained), bridge/incident/{id}
                                                   |--> gw/{gateway}/cmd/replay for holes in a gateway's seq
                                                   |--> gw/{gateway}/cmd/ack_emergency when an incident of
                                                   |    an MDC-1200/FleetSync unit is acknowledged
                                                   '--> gw/{gateway}/cmd/output: the command-center beacon,
                                                        lit while any incident is unacknowledged

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
- Brokers drop QoS 1 messages all the same (Mosquitto past max_queued_messages): each gateway's ``seq``
  is watched, a hole that has stopped filling is asked for again with ``cmd/replay`` (rate-limited, a
  few times, then logged as lost). The gateway's retained state tells how far its seq has gone, which
  reveals a lost tail.
- Every message of a batch is handled on its own: one that is invalid (oversized, not JSON, wrong schema,
  a topic that disagrees with the payload) or that fails in a way nobody foresaw is refused alone, logged
  with its reason (escaped: received text never forges a log line) and its bytes in hex, and counted;
  the others of its batch are stored or carried out, and only then is the batch acknowledged.
- What is received is bounded before it is used: numbers to what storage holds, event times to the
  bridge's clock (a time ahead of it never moves a unit's state; one more than ``bridge.future_s`` ahead
  is counted and logged), and every topic the bridge builds from received text is checked for what MQTT
  and Mosquitto refuse before it is published (a malformed topic would cost the bridge its connection).
- Commands from consoles arrive on ``bridge/cmd``:
  ``{"action": "ack"|"resolve"|"note"|"alias", "incident": id, "operator": name, ...}``, validated whole
  (bridge/commands.py) before anything is done or audited; a technician's
  ``{"action": "plan", "gateway": name, "channels": [...], "operator": name}`` stores a channel plan
  (bridge/plans.py), which goes to the gateway retained on ``gw/{gateway}/config`` (every current plan
  again on each connection: the broker may have lost its retained messages).
- The audio of a call event arrives on ``gw/{gateway}/audio/{event_id}`` and is stored with its SHA-256,
  checked against the hash its call event names.
- Cameras: detections on ``cam/{camera}/event`` (and Frigate's ``frigate/events``) are stored; a street
  event of a configured category opens an incident with the nearest units suggested. Every incident with
  a position gets the cameras that see it and the detections near it in place and time (again when a
  better position arrives); evidence (snapshots, clips) is fetched by worker threads and added when it
  comes, never holding up ingest. Frigate's snapshots over MQTT become evidence of the open incidents
  their camera sees, and its tracked-object updates (faces, plates, descriptions) enrich their
  detections (bridge/cameras/frigate.py). Incidents past their time limits are escalated.

All database work happens on one ingest thread, never on paho's network thread.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from bridge.audit import record_command
from bridge.cameras.correlation import CameraStore, Correlation, relevance
from bridge.cameras.evidence import Evidence, EvidenceFailure, EvidenceFetcher, EvidenceRequest
from bridge.cameras.feeds import Detection, FeedError, UnknownCamera, parse_frigate, parse_generic
from bridge.cameras.frigate import FrigateIntake
from bridge.cameras.geometry import haversine_m
from bridge.cameras.index import CameraIndex
from bridge.cameras.registry import CameraRegistry, to_camera
from bridge.commands import MAX_COMMAND_BYTES, Command, CommandError, echo, parse_command
from bridge.metrics import BridgeMetrics
from bridge.plans import Plans
from bridge.store import (
    ClipError,
    IncidentError,
    IncidentView,
    IngestResult,
    Store,
    UnitView,
    database_url,
    redact,
)
from config.mqtt import frigate_filters, make_client, topic, topic_problem
from config.schema import Config
from gateway.events import (
    INT64_MAX,
    MAX_EVENT_BYTES,
    Event,
    EventError,
    Kind,
    decode_event,
    is_event_id,
    is_name,
    json_object,
    printable,
    uuid7,
)

log = logging.getLogger(__name__)

HEX_SHOWN = 64  # bytes of an offending payload shown in the log
UNIT_PUBLISH_S = 1.0  # a unit's retained state is published at most this often (the newest is held)
BEACON_CHECK_S = 0.5  # how often the beacon's state is worked out (a count of unacknowledged incidents)
BEACON_REFRESH_S = 60.0  # the beacon's state is sent again this often, for a gateway that restarted
CONNACK_WAIT_S = 3.0  # how long an MQTT 5 CONNECT may go unanswered before 3.1.1 is tried (auto mode)
GROUP_ALERTS_EXPIRY_S = 10  # session expiry of a shared group member's alerts session
BULK_BATCH_S = 0.25  # a batch of beacons is cut to about this long to store: an alert arriving waits no longer
GAP_CHECK_S = 0.05  # of each round of gap checks (0.5 s apart): each check is a database round trip
STREAMING_PATIENCE = 10  # replay intervals a hole may stand still while its gateway's events still arrive
BULK, ALERTS = 0, 1  # the bridge's two MQTT clients (lanes)
_UNSUPPORTED_PROTOCOL = (1, 132)  # CONNACK codes: 3.1.1 "unacceptable protocol version", MQTT 5 0x84
WARN_AGAIN_S = 600.0  # a complaint about one gateway (its clock, its state) is logged again after this long
REMEMBERED = 10_000  # event ids and topics already complained of (a flood of one anomaly is one log line each)
SHOWN = 200  # characters of received text in a log line


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hex(payload: bytes) -> str:
    shown = payload[:HEX_SHOWN].hex(" ")
    return f"{len(payload)} bytes: {shown}{' ...' if len(payload) > HEX_SHOWN else ''}"


@dataclass(frozen=True, slots=True)
class _Inbound:
    """One message from the broker, as the network thread hands it over."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int  # which connection it came on: a PUBACK belongs to that connection only
    lane: int = 0  # which of the bridge's clients it came on: BULK or ALERTS
    levels: tuple[str, ...] = ()  # the topic's levels after the prefix (the whole topic if unprefixed)
    retain: bool = False  # a retained message handed over on subscribing (MQTT 3.1.1 3.3.1.3), not news

    @property
    def urgent(self) -> bool:
        """An alert or a console command: stored ahead of everything else, in batches of its own."""
        return self.lane == ALERTS or self.levels == ("bridge", "cmd")


@dataclass(slots=True)
class _GapWatch:
    """Replay bookkeeping for one gateway."""

    since: float  # when holes were first seen (monotonic)
    low: int = 0  # start of the lowest hole when last checked
    filling: float = 0.0  # when that start last moved up: the hole is being filled (a backlog in order)
    next_request: float = 0.0
    first_hole: int | None = None  # start of the lowest hole when it was last requested
    tries: int = 0


@dataclass(slots=True)
class _Hint:
    """What a gateway's retained state says of its seq."""

    published: int  # every seq up to here has been published (next_seq - 1 - pending)
    oldest: int | None  # the oldest seq its outbox still holds; below it, replay cannot help


@dataclass(slots=True)
class _Changes:
    units: dict[str, UnitView] = field(default_factory=dict)
    incidents: list[tuple[IncidentView, str]] = field(default_factory=list)  # in order: each change is news


class _Stopping(Exception):
    """The bridge is stopping while the database is unavailable: leave the batch unacknowledged."""


class _Once:
    """Keys already complained of, the oldest forgotten past ``size``: one log line per anomaly, not per copy."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


class Bridge:
    """Ingest, storage, incidents and gap recovery for one bridge instance (``pttbridge bridge``)."""

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
        self.counts: Counter[str] = Counter()
        self.metrics = BridgeMetrics(self)  # served on [bridge] metrics, if set
        self._inbox: queue.SimpleQueue[_Inbound | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._alerts_connected = threading.Event()
        self._sessions = [0, 0]  # per lane, bumped on every CONNACK; touched by the network threads only
        # Taken from the inbox, waiting for a batch: [priority][gateway] -> messages in arrival order.
        self._waiting: tuple[dict[str, deque[_Inbound]], dict[str, deque[_Inbound]]] = ({}, {})
        self._stop_seen = False
        self._message_s = 0.0  # what storing one message of a batch of beacons takes (moving average)
        self._v5 = self.cfg.mqtt_version in ("auto", "5")
        self._fallback = threading.Event()
        self._ever_connected = False
        self._closed_before_connack = 0
        self._handshake_since: float | None = None  # when a CONNECT went unanswered, in auto mode
        self._client: mqtt.Client | None = None  # everything but alerts; the bridge publishes on it
        self._alert_client: mqtt.Client | None = None
        self._gaps: dict[str, _GapWatch] = {}
        self._hints: dict[str, _Hint] = {}
        self._clock_warned: dict[str, float] = {}  # gateway -> when its clock may be complained of again
        self._future_warned: dict[str, float] = {}  # gateway -> when its events' future times may be again
        self._state_warned: dict[str, float] = {}  # gateway -> when its state's bad figures may be again
        self._reused = _Once()  # event ids seen again with other content, logged once each
        self._bad_topics = _Once()  # topics refused before publishing, logged once each
        self._heard: dict[str, float] = {}  # gateway -> when its last event arrived (monotonic)
        self._unit_sent: dict[str, float] = {}  # unit -> when its state was last published (monotonic)
        self._unit_held: dict[str, UnitView] = {}  # newer unit states waiting for UNIT_PUBLISH_S to pass
        self._suspects: set[str] = set()  # gateways that may have holes
        self._checked: dict[str, float] = {}  # suspect -> when its holes were last looked at (monotonic)
        self._unacked: deque[_Inbound] = deque()  # of the batch being handled
        self._next_gap_check = 0.0
        self._next_announce = 0.0
        self.cameras = CameraIndex()
        self.camera_store: CameraStore | None = None
        self.fetcher: EvidenceFetcher | None = None
        self.frigate: FrigateIntake | None = None  # Frigate's snapshots and tracked-object updates
        self._evidence: queue.SimpleQueue[Evidence | EvidenceFailure] = queue.SimpleQueue()
        self._next_escalation = 0.0
        self._beacon: bool | None = None  # as last sent
        self._next_beacon = 0.0
        self._beacon_sent_at = 0.0
        self.plans: Plans | None = None
        self._plans_due = threading.Event()  # set on each connection: the ingest thread publishes them
        self._go, self._parked = threading.Event(), threading.Event()  # hold() and release(), for tests
        self._go.set()
        self._thread = threading.Thread(target=self._work, name="bridge-ingest", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        if self.store is None:
            log.info("database %s", redact(self.database_url))
            limits = {name: (c.ack_s, c.resolve_s) for name, c in self.cfg.cameras.categories.items()}
            self.store = Store.open(self.database_url, incident_window_s=self.cfg.incident_window_s, limits=limits,
                                    future_s=self.cfg.future_s)
        self._start_cameras(self.store)
        self.plans = Plans(self.store.engine)
        # Holes left from a previous run are still worth asking for.
        self._suspects.update(g.name for g in self.store.gateways() if g.last_seq > g.contiguous_seq)
        if self.cfg.metrics:
            self.metrics.start(self.cfg.metrics)
        self._client, self._alert_client = self._make_client(BULK), self._make_client(ALERTS)
        self._thread.start()

    def _start_cameras(self, store: Store) -> None:
        registry = CameraRegistry(store.engine)
        if self.config.cameras:
            put, removed = registry.sync_config(self.config.cameras)
            log.info("cameras: %d from the configuration%s", put, f", {removed} withdrawn" if removed else "")
        self.cameras = CameraIndex(to_camera(c) for c, _ in registry.all())
        self.camera_store = CameraStore(store.engine)
        self.frigate = FrigateIntake(store, self.camera_store, self.cameras, self.cfg.cameras, self.counts)
        if self.cfg.cameras.evidence and len(self.cameras):
            self.fetcher = EvidenceFetcher(self._evidence.put)

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
        if self.fetcher is not None:
            self.fetcher.stop(2.0)
        if self._client is not None:
            self._publish_units((), flush=True)  # the ingest thread has ended: held states go now
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

    def stats(self) -> dict[str, int]:
        return dict(self.counts)

    # --- MQTT ----------------------------------------------------------------------------------

    def _make_client(self, lane: int) -> mqtt.Client:
        protocol = mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311
        client_id = self.client_id + ("-alerts" if lane == ALERTS else "")
        # The bridge's sessions must persist across restarts, so the broker queues while it is away.
        client = make_client(self.mqtt_cfg.model_copy(update={"client_id": client_id}), client_id,
                             protocol=protocol, clean_session=False)
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

    def _on_connect(self, client: mqtt.Client, lane: int, flags: Any, rc: mqtt.ReasonCode, _p: Any) -> None:
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

    def _on_disconnect(self, _c: mqtt.Client, lane: int, _f: Any, rc: mqtt.ReasonCode, _p: Any) -> None:
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
        self._inbox.put(_Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._sessions[lane], lane, levels,
                                 bool(msg.retain)))

    def _publish(self, levels: tuple[str, ...], body: dict[str, Any], *, qos: int, retain: bool = False) -> None:
        """Publish on the bridge's main connection. Levels come from received text (a unit, a gateway's
        name, a plan's gateway): a topic the broker would take for a malformed packet is refused here,
        logged and counted, never sent, since Mosquitto answers one by dropping the bridge's connection."""
        name = "/".join(levels)
        problem = next((f"level {i}: a '/' inside it" for i, level in enumerate(levels) if "/" in level), None)
        problem = problem or topic_problem(topic(self.mqtt_cfg, *levels))
        if problem is None and self._client is not None:
            try:
                self._client.publish(topic(self.mqtt_cfg, *levels), json.dumps(body, separators=(",", ":")), qos=qos,
                                     retain=retain)
                return
            except (ValueError, UnicodeError) as exc:  # paho's own refusals (wildcards, encoding)
                problem = f"{exc.__class__.__name__}: {exc}"
        if problem is None:
            return  # not started (tests handle batches without a broker)
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
            except _Stopping:
                return
            except Exception:  # the ingest thread must outlive anything one batch can do
                # Unacknowledged messages would hold the broker's in-flight window shut and stall every
                # gateway; acknowledged, whatever did not get stored shows up as a hole in its gateway's
                # seq and is asked for again.
                log.exception("bridge: unexpected error in a batch of %d messages; seq gaps will recover it",
                              len(batch))
                self.counts["batch_errors"] += 1
                self._ack_all()
                time.sleep(0.5)

    def _handle_until_stored(self, batch: list[_Inbound]) -> None:
        """Handle a batch; while the database cannot take it (down, read-only, full) handle what is left of
        it again with backoff, acknowledging nothing: what is not stored must come again, not be given up as
        a hole. A message handled before the database went away is not handled twice (a command is not
        carried out twice), and what it changed is still published."""
        delay = 0.5
        done: set[int] = set()  # id() of the batch's messages handled (stored, carried out or refused)
        changes = _Changes()
        while True:
            try:
                self._handle(batch, done, changes)
                return
            except DBAPIError as exc:
                if not _unavailable(exc):
                    raise
                self._unacked.clear()  # the same batch is handled again, and acknowledged once
                self._database_trouble(exc, delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _database_trouble(self, exc: DBAPIError, delay: float) -> None:
        log.error("database cannot store (%s); nothing acknowledged, retrying in %.1f s",
                  (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0], delay)
        if _read_only(exc) and self.store is not None:
            # A session opened read-only (a database switched read-only, a standby) stays so: new ones
            # must be opened once the database is writable again.
            self.store.engine.dispose()
        if self._stop.wait(delay):
            raise _Stopping() from None

    def _take(self, draining: bool) -> list[_Inbound] | None:
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
        batch: list[_Inbound] = []
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

    def _queue_up(self, m: _Inbound) -> None:
        levels = m.levels
        source = levels[1] if levels[0] == "gw" and len(levels) > 1 else levels[0]  # a gateway, "cam", ...
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

    def _handle(self, batch: list[_Inbound], done: set[int], changes: _Changes) -> None:
        """A batch: events stored together (one transaction), everything else one message at a time, each
        in :meth:`_alone`; whatever one message does wrong is that message's refusal, never its batch's.
        Then the whole batch is acknowledged, and what changed is published."""
        assert self.store is not None
        self._unacked.extend(batch)
        events: list[tuple[_Inbound, Event]] = []
        others: list[tuple[int, _Inbound, str, Callable[[], object]]] = []  # (order, message, what, handling)
        for m in batch:
            if id(m) in done:
                continue
            levels = m.levels
            if m.topic == self.cfg.cameras.frigate_topic:
                others.append((2, m, "camera event", partial(self._detection, None, m, changes)))
            elif self.frigate is not None and self.frigate.claims(m.topic):
                # After the detections they may enrich.
                others.append((3, m, "frigate", partial(self._frigate, m, changes)))
            elif len(levels) == 3 and levels[0] == "cam" and levels[2] == "event":
                others.append((2, m, "camera event", partial(self._detection, levels[1], m, changes)))
            elif len(levels) == 4 and levels[0] == "gw" and levels[2] == "event":
                event = self._validate(m, levels[1], levels[3])
                if event is not None:
                    events.append((m, event))
                else:
                    done.add(id(m))
            elif len(levels) == 3 and levels[0] == "gw" and levels[2] == "state":
                others.append((0, m, "gateway state", partial(self._gateway_state, levels[1], m)))
            elif len(levels) == 4 and levels[0] == "gw" and levels[2] == "audio":
                # After the events: a clip checks its event's hash.
                others.append((1, m, "audio clip", partial(self._clip, levels[1], levels[3], m)))
            elif levels == ("bridge", "cmd"):
                others.append((4, m, "command", partial(self._command, m, changes)))
            else:
                log.warning("message on unexpected topic %s ignored", printable(m.topic, SHOWN))
                done.add(id(m))
        if events:
            self._store_events(events, changes)
            done.update(id(m) for m, _ in events)
        others.sort(key=lambda o: o[0])  # stable: each kind in arrival order
        correlated = False
        for order, m, what, handling in others:
            if order == 4 and not correlated:  # cameras see the new incidents before a command changes them
                self._alone(None, "camera correlation", lambda: self._correlate(changes))
                correlated = True
            self._alone(m, what, handling)
            done.add(id(m))
        if not correlated:
            self._alone(None, "camera correlation", lambda: self._correlate(changes))
        # Everything in the batch is committed (or refused for good): only now tell the broker.
        self._ack_all()
        self._publish_units(changes.units.values())
        for incident, change in changes.incidents:
            self._publish_incident(incident, change)

    def _alone(self, m: _Inbound | None, what: str, handling: Callable[[], object]) -> None:
        """One message's handling. Whatever it raises is that message's refusal alone (logged with its reason,
        counted), except a database that is away (the batch is handled again, from this message on) and
        the bridge stopping."""
        try:
            handling()
        except _Stopping:
            raise
        except DBAPIError as exc:
            if _unavailable(exc):
                raise
            self._failed(m, what, exc)
        except Exception as exc:
            self._failed(m, what, exc)

    def _failed(self, m: _Inbound | None, what: str, exc: BaseException) -> None:
        self.counts["messages_failed"] += 1
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        where = f" on {printable(m.topic, SHOWN)}" if m is not None else ""
        log.error("%s%s refused: %s: %s%s", what, where, type(cause).__name__, printable(str(cause), SHOWN),
                  f" [{_hex(m.payload)}]" if m is not None else "")
        log.debug("%s: the failure in full", what, exc_info=exc)

    def _frigate(self, m: _Inbound, changes: _Changes) -> None:
        """Frigate's snapshot or tracked-object update: evidence of the incidents its camera sees, or what
        its recognition adds to a detection."""
        assert self.frigate is not None
        changes.incidents.extend(self.frigate.take(m.topic, m.payload, retained=m.retain))

    def _publish_units(self, units: Iterable[UnitView], *, flush: bool = False) -> None:
        """A unit's state at most every UNIT_PUBLISH_S: a map needs no more, and a unit that beacons
        fast would otherwise double the broker's traffic. The newest state is held and sent when due."""
        now = time.monotonic()
        for unit in units:
            self._unit_held[unit.unit] = unit
        for name in list(self._unit_held):
            if flush or now - self._unit_sent.get(name, -UNIT_PUBLISH_S) >= UNIT_PUBLISH_S:
                unit = self._unit_held.pop(name)
                self._unit_sent[name] = now
                self._publish(("bridge", "unit", name), unit.to_json(), qos=0, retain=True)

    def _ack_all(self) -> None:
        while self._unacked:
            self._ack(self._unacked.popleft())  # taken off first: never acknowledged twice

    def _ack(self, m: _Inbound) -> None:
        # A PUBACK on a later connection could name another message: the broker re-sends what a lost
        # connection left unacknowledged, and storage makes that second delivery harmless.
        client = self._alert_client if m.lane == ALERTS else self._client
        if m.qos > 0 and m.session == self._sessions[m.lane] and client is not None:
            client.ack(m.mid, m.qos)

    def _validate(self, m: _Inbound, topic_gateway: str, topic_kind: str) -> Event | None:
        """The event a message carries, or None when it is refused (logged, counted)."""
        self.counts["received"] += 1
        try:
            if len(m.payload) > MAX_EVENT_BYTES:
                raise EventError("$", f"payload of {len(m.payload)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")
            event = decode_event(m.payload)
            if event.gateway != topic_gateway:
                raise EventError("gateway", f"{event.gateway!r} does not match the topic's gateway "
                                            f"{printable(repr(topic_gateway), 80)}")
            if str(event.kind) != topic_kind:
                raise EventError("kind", f"{event.kind!s} does not match the topic's kind "
                                         f"{printable(repr(topic_kind), 80)}")
        except EventError as exc:
            self._reject(m, str(exc))
            return None
        except Exception as exc:  # a validation nobody foresaw failing: this event is refused, not the batch
            self._reject(m, f"could not be read: {exc.__class__.__name__}: {exc}")
            return None
        self._check_future(event)
        return event

    def _check_future(self, event: Event) -> None:
        """An event stamped ahead of the bridge's clock by more than ``bridge.future_s`` is stored (the
        gateway's clock may be wrong, and its alerts must still open incidents) but counted and logged: no
        time past the bridge's clock moves a unit's state or an incident (bridge/store.py), so a forged
        far-future beacon cannot pin a unit, and a gateway whose clock runs ahead is named. Beyond the window
        the event says nothing about its unit at all."""
        ahead = (event.time - self.clock()).total_seconds()
        if ahead <= self.cfg.future_s:
            return
        self.counts["future"] += 1
        now = time.monotonic()
        if now >= self._future_warned.get(event.gateway, 0.0):
            self._future_warned[event.gateway] = now + WARN_AGAIN_S
            log.warning("gateway %s: %s event %s is stamped %s, %.0f s ahead of the bridge's clock (more than "
                        "bridge.future_s = %g): stored, but it moves no unit (an alert still opens an incident, "
                        "dated now)", event.gateway, event.kind, event.id, event.time.isoformat(), ahead,
                        self.cfg.future_s)

    def _reject(self, m: _Inbound, reason: str) -> None:
        self.counts["rejected"] += 1
        log.warning("rejected event on %s: %s [%s]", printable(m.topic, SHOWN), printable(reason, 2 * SHOWN),
                    _hex(m.payload))

    def _store_events(self, events: list[tuple[_Inbound, Event]], changes: _Changes) -> None:
        now = time.monotonic()
        for _, e in events:
            self._heard[e.gateway] = now
        try:
            result = self._ingest([e for _, e in events])
        except _Stopping:
            raise
        except Exception as exc:  # SQLAlchemyError above all
            # Something in the batch is refused by the database itself (or fails in a way nobody foresaw):
            # find it, store the rest.
            log.warning("batch of %d events refused (%s); storing them one by one", len(events), exc.__class__.__name__)
            for m, e in events:
                try:
                    self._note(self._ingest([e]), changes)
                except _Stopping:
                    raise
                except SQLAlchemyError as one:
                    self._reject(m, f"refused by the database: {one.orig if isinstance(one, DBAPIError) else one!s}")
                except Exception as one:
                    self._reject(m, f"could not be stored: {one.__class__.__name__}: {one}")
            return
        self._note(result, changes)

    def _ingest(self, events: list[Event]) -> IngestResult:
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
                if not _unavailable(exc):
                    raise  # refused by the database for what it is: the caller finds which event
                self._database_trouble(exc, delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _note(self, result: IngestResult, changes: _Changes) -> None:
        self.counts["stored"] += len(result.stored)
        self.counts["duplicates"] += result.duplicates
        for e in result.conflicts:
            # The same content again is a redelivery and says nothing; other content under a stored id is
            # a gateway numbering wrong or a forgery: the stored event stays, the newcomer is not stored.
            self.counts["id_reused"] += 1
            if self._reused.first(e.id):
                log.warning("event id %s arrived again with other content (now a %s of gateway %s, seq %d, unit "
                            "%s): the event stored first is kept, this one is not stored", e.id, e.kind, e.gateway,
                            e.seq, printable(str(e.unit), 80))
        for unit in result.units:
            changes.units[unit.unit] = unit
        changes.incidents.extend(result.incidents)
        for gw, holes in result.gaps.items():
            # Debug only: an alert sent ahead of its gateway's backlog makes one every time; what is still
            # missing later is asked for (info) or given up on (error).
            log.debug("gateway %s: seq jumped, missing %s", gw, ", ".join(f"{a}..{b}" for a, b in holes))
            self.counts["gaps"] += len(holes)
            self._suspects.add(gw)

    def _gateway_state(self, name: str, m: _Inbound) -> None:
        assert self.store is not None
        if not m.payload:
            return  # a retained state being cleared
        try:
            if not is_name(name):
                raise ValueError(f"{printable(repr(name), 80)} is not a gateway's name")
            body = json_object(m.payload)
        except ValueError as exc:
            log.warning("gateway state on %s ignored: %s [%s]", printable(m.topic, SHOWN), printable(str(exc), SHOWN),
                        _hex(m.payload))
            return
        view = self.store.note_gateway_state(name, body)
        self._check_clock(name, body)
        outbox = body.get("outbox")
        if isinstance(outbox, dict):
            nxt, pending, oldest = outbox.get("next_seq"), outbox.get("pending"), outbox.get("oldest_seq")
            if isinstance(nxt, int) and isinstance(pending, int):
                problem = _figures_problem(outbox)
                if problem is not None:
                    # Figures past what storage holds would make every round of gap checks fail (2**70
                    # overflows SQL BIGINT): what the state says of the seq is not used at all.
                    self._hints.pop(name, None)
                    now = time.monotonic()
                    if now >= self._state_warned.get(name, 0.0):
                        self._state_warned[name] = now + WARN_AGAIN_S
                        log.warning("gateway %s: its state's outbox figures are refused (%s); its seq is watched "
                                    "from its events alone", name, problem)
                else:
                    self._hints[name] = _Hint(nxt - 1 - pending, oldest if isinstance(oldest, int) else None)
                    if self._hints[name].published > view.last_seq:
                        self._suspects.add(name)
        log.debug("gateway %s %s", name, "online" if view.online else "offline")

    def _check_clock(self, name: str, body: dict[str, Any]) -> None:
        """A gateway whose clock is off stamps its events wrong (history, timelines, incident deadlines);
        the bridge stores them all the same, but says so. A live state is sent every few seconds, so its
        ``time`` is the gateway's clock."""
        try:
            sent = datetime.fromisoformat(str(body["time"]))
        except (KeyError, ValueError):
            return
        if body.get("online") is not True or sent.tzinfo is None:
            return
        try:
            skew = (sent - self.clock()).total_seconds()
        except OverflowError:  # 9999-12-31T23:59:59-23:59: past what a datetime holds in UTC
            skew = float("inf")
        now = time.monotonic()
        if abs(skew) > CLOCK_SKEW_S and now >= self._clock_warned.get(name, 0.0):
            self._clock_warned[name] = now + 600.0
            log.warning("gateway %s: its clock is %+.0f s off the bridge's; its events and incidents carry its "
                        "times (set its clock: NTP)", name, skew)

    def _command(self, m: _Inbound, changes: _Changes) -> None:
        """A console's command: read and validated whole (bridge/commands.py), then carried out, then audited;
        a command refused at any step is audited as refused and answered on ``bridge/refused``."""
        assert self.store is not None
        self.counts["commands"] += 1
        body: dict[str, Any] | None = None
        try:
            if len(m.payload) > MAX_COMMAND_BYTES:
                raise CommandError("$", f"{len(m.payload)} bytes, more than the {MAX_COMMAND_BYTES}-byte limit")
            body = json_object(m.payload)
            command = parse_command(body)
            done = self._carry_out(command, changes)
        except (ValueError, IncidentError) as exc:  # JSON errors and ConfigError are ValueErrors too
            self._refuse_command(m, body, printable(str(exc), 4 * SHOWN))
            return
        except _Stopping:
            raise
        except DBAPIError as exc:
            if _unavailable(exc):
                raise  # handled again when the database is back
            self._refuse_command(m, body, "the database refused it (see the bridge's log)", exc)
            return
        except Exception as exc:  # nobody foresaw this: refused alone, and said so
            self._refuse_command(m, body, "the bridge failed to carry it out (see the bridge's log)", exc)
            return
        record_command(self.store.engine, body)
        if done is not None:
            log.info("incident %d %s by %s", done[0].id, done[1], command.operator)
            changes.incidents.append(done)

    def _refuse_command(self, m: _Inbound, body: dict[str, Any] | None, reason: str,
                        exc: BaseException | None = None) -> None:
        assert self.store is not None
        self.counts["commands_refused"] += 1
        if exc is not None:
            self.counts["messages_failed"] += 1
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            log.error("command refused: %s: %s [%s]", type(cause).__name__, printable(str(cause), SHOWN),
                      _hex(m.payload))
            log.debug("command: the failure in full", exc_info=exc)
        else:
            log.warning("command refused: %s [%s]", reason, _hex(m.payload))
        unread = f"{reason}: {len(m.payload)} bytes"
        record_command(self.store.engine, unread if body is None else body, refused=reason)  # audited too
        self._refused(echo(body or {}), reason)

    def _carry_out(self, c: Command, changes: _Changes) -> tuple[IncidentView, str] | None:
        """Do what a validated command says; returns the incident it changed and how (None for plans and
        aliases)."""
        assert self.store is not None
        if c.action == "plan":
            self._save_plan(c)
            return None
        if c.action == "alias":
            assert c.unit is not None
            unit = self.store.set_alias(c.unit, c.alias)
            changes.units[unit.unit] = unit
            log.info("%s named %s %r", c.operator, unit.unit, unit.alias)
            return None
        assert c.incident is not None
        if c.action == "ack":
            view = self.store.acknowledge(c.incident, c.operator, note=c.note)
            answered = self._answer_radio(view, c.operator)
            if answered is None:
                return view, "acknowledged"
            changes.incidents.append((view, "acknowledged"))  # the acknowledgement is news of its own
            return answered, "radio_ack"
        if c.action == "resolve":
            return self.store.resolve(c.incident, c.operator, c.resolution or "", note=c.note), "resolved"
        if c.action == "note":
            return self.store.add_note(c.incident, c.operator, c.note or ""), "note"
        assert c.action == "assign" and c.unit is not None
        return self.store.assign(c.incident, c.operator, c.unit), "assigned"

    def _refused(self, answer: dict[str, Any], reason: str) -> None:
        """Tell the console that sent a command why it was refused (it knows its ``request`` id); the
        dispatcher would otherwise see nothing happen. ``answer``: the well-formed fields that identify the
        command (:func:`bridge.commands.echo`), never the whole body."""
        self._publish(("bridge", "refused"), {**answer, "reason": reason}, qos=1)

    def _save_plan(self, c: Command) -> None:
        assert self.plans is not None and c.gateway is not None
        gateway, operator = c.gateway, c.operator
        before = self.plans.current(gateway)
        version = self.plans.save(gateway, c.channels, operator)  # ConfigError: refused, logged
        if before is not None and before.version == version:
            log.info("plan for %s from %s is version %d already", gateway, operator, version)
            return
        plan = self.plans.current(gateway)
        assert plan is not None
        self._publish(("gw", gateway, "config"), plan.to_json(), qos=1, retain=True)
        log.info("plan for %s: version %d (%d channels) saved by %s", gateway, version, len(plan.channels), operator)

    def _answer_radio(self, view: IncidentView, operator: str) -> IncidentView | None:
        """An acknowledged emergency is acknowledged to the radio too, where its protocol can say so:
        the gateway that heard the last alert keys that channel and sends the unit the acknowledgement."""
        assert self.store is not None
        asked = self.store.request_radio_ack(view.id, operator)
        if asked is None:
            return None
        view, command = asked
        command["request"] = uuid7()
        self._publish(("gw", command["gateway"], "cmd", "ack_emergency"), command, qos=1)
        log.info("incident %d: asked %s/%s to acknowledge to %s", view.id, command["gateway"], command["channel"],
                 command["unit"])
        return view

    # --- cameras -------------------------------------------------------------------------------

    def _detection(self, camera: str | None, m: _Inbound, changes: _Changes) -> None:
        """A camera's detection: stored; a street event of a configured category opens an incident."""
        assert self.store is not None and self.camera_store is not None
        settings = self.cfg.cameras
        try:
            if camera is None:
                d: Detection | None = parse_frigate(m.payload, cameras=settings.frigate_cameras,
                                                    frigate_url=settings.frigate_url,
                                                    unit_system=settings.frigate_unit_system)
                if d is None:
                    return  # Frigate's own false positive
            else:
                d = parse_generic(camera, m.payload)
            if d.camera not in self.cameras:
                raise UnknownCamera("camera", d.camera)
        except UnknownCamera as exc:
            self.counts["camera_unknown"] += 1
            log.warning("detection from a camera not in the registry ignored: %s [%s]", printable(str(exc), SHOWN),
                        _hex(m.payload))
            return
        except FeedError as exc:
            self.counts["camera_rejected"] += 1
            log.warning("camera event on %s rejected: %s [%s]", printable(m.topic, SHOWN), printable(str(exc), SHOWN),
                        _hex(m.payload))
            return
        stored = self.camera_store.store_detection(d, self.cameras.get(d.camera))
        view, new = stored.view, stored.new
        self.counts["detections"] += 1
        if stored.revised and self.frigate is not None:  # a name or plate recognised since: news for its incidents
            changes.incidents.extend(self.frigate.showing(view.id))
        if new and view.lat is not None and view.lon is not None:  # incidents nearby, opened before it came
            for incident in self.store.open_incidents_near(view.lat, view.lon, view.time, near_m=settings.near_m,
                                                           window_s=settings.window_s):
                assert incident.lat is not None and incident.lon is not None
                score = relevance((view.time - incident.last_alert_at).total_seconds(),
                                  haversine_m(incident.lat, incident.lon, view.lat, view.lon),
                                  settings.window_s, settings.near_m)
                if self.camera_store.attach_detection(incident.id, view, score):
                    changes.incidents.append((incident, "detection"))
        rule = settings.categories.get(d.category or "")
        if not new or rule is None or not rule.opens_incidents or (d.score or 0.0) < rule.min_score:
            return
        assert d.category is not None
        incident, change = self.store.open_street_incident(d.category, d.camera, d.label, d.time, view.lat, view.lon,
                                                           view.id)
        if change == "opened" and incident.lat is not None and incident.lon is not None:
            units = self.store.nearest_units(incident.lat, incident.lon, limit=settings.suggest_units,
                                             max_age_s=settings.unit_age_s)
            incident = self.store.suggest(incident.id, units) or incident
        log.info("incident %d %s: %s at %s", incident.id, change, printable(d.category, 80), printable(d.camera, 80))
        changes.incidents.append((incident, change))

    def _correlate(self, changes: _Changes) -> None:
        """Cameras that see each new or moved incident, and the detections near it; evidence asked for."""
        assert self.store is not None
        for unit in changes.units.values():  # vehicle cameras go where their unit goes
            p = unit.position
            if p is not None and self.cameras.cameras_of_unit(unit.unit):
                self.cameras.move_unit(unit.unit, p.lat, p.lon, p.course_deg)
        if not len(self.cameras):
            return
        done: set[int] = set()
        for incident, change in list(changes.incidents):
            if change in ("opened", "alert", "position") and incident.id not in done:
                done.add(incident.id)
                self._attach_cameras(incident, fetch=change in ("opened", "position"))

    def _attach_cameras(self, incident: IncidentView, *, fetch: bool) -> None:
        assert self.camera_store is not None
        settings = self.cfg.cameras
        if incident.lat is None or incident.lon is None or incident.position_time is None:
            return
        if (incident.last_alert_at - incident.position_time).total_seconds() > settings.position_age_s:
            return  # the unit's last position is too old to say where the alert came from
        seeing = self.cameras.seeing(incident.lat, incident.lon)
        detections = self.camera_store.detections_around(
            incident.lat, incident.lon, incident.last_alert_at, cameras=[x.camera.id for x in seeing],
            near_m=settings.near_m, window_s=settings.window_s)
        best = seeing[:settings.best]
        self.camera_store.attach(incident.id, best, detections)
        if fetch and self.fetcher is not None:
            for x in best:
                c = x.camera
                if c.snapshot_url or c.stream_url:
                    self.fetcher.submit(EvidenceRequest(incident.id, c.id, c.snapshot_url, c.stream_url,
                                                        c.credentials_env, incident.last_alert_at, settings.clip_s))

    def _publish_incident(self, incident: IncidentView, change: str) -> None:
        """``bridge/incident/{id}``: the incident, its cameras, detections and evidence."""
        body = incident.to_json(change)
        if self.camera_store is not None:
            body.update(self._correlation(incident.id).to_json())
        self._publish(("bridge", "incident", str(incident.id)), body, qos=1)

    def _correlation(self, incident_id: int) -> Correlation:
        assert self.camera_store is not None
        return self.camera_store.correlation(incident_id)

    def _clip(self, gateway: str, event_id: str, m: _Inbound) -> None:
        assert self.store is not None
        try:
            if not is_name(gateway) or not is_event_id(event_id):
                raise ClipError(f"topic {printable(m.topic, SHOWN)}: expected gw/{{gateway}}/audio/{{event id}}")
            call = self.store.add_clip(gateway, event_id, m.payload)
        except ClipError as exc:
            self.counts["clips_rejected"] += 1
            log.warning("audio clip %s from %s rejected: %s", printable(event_id, 80), printable(gateway, 80), exc)
            return
        self.counts["clips"] += 1
        log.info("stored %s clip of call %s from %s (%d bytes, sha256 %s)", call.codec, event_id, gateway,
                 len(m.payload), (call.sha256 or "")[:16])

    # --- periodic work -------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        assert self.store is not None
        now = time.monotonic()
        if self._unit_held:
            self._publish_units(())
        try:
            if self._plans_due.is_set() and self.plans is not None:
                self._plans_due.clear()
                for plan in self.plans.all_current():
                    self._publish(("gw", plan.gateway, "config"), plan.to_json(), qos=1, retain=True)
            if now >= self._next_announce:
                self._next_announce = now + min(1.0, self.cfg.reannounce_s / 4)
                for incident in self.store.due_announcements(self.cfg.reannounce_s):
                    log.warning("incident %d (%s) still unacknowledged", incident.id,
                                printable(incident.unit or incident.channel, 80))
                    self._publish_incident(incident, "reannounce")
            self._take_evidence()
            if now >= self._next_escalation:
                self._next_escalation = now + 1.0
                self._escalate()
            if self.cfg.beacon and now >= self._next_beacon:
                self._next_beacon = now + BEACON_CHECK_S
                self._update_beacon(now)
            if now >= self._next_gap_check and self._suspects:
                self._next_gap_check = now + min(0.5, self.cfg.replay_interval_s / 2)
                self._check_suspects(now)
        except OperationalError as exc:
            log.error("database unavailable for periodic work: %s", exc.orig)

    def _escalate(self) -> None:
        assert self.store is not None
        for incident in self.store.escalate_due():
            what = "acknowledged" if incident.escalated == "ack" else "resolved"
            log.warning("incident %d (%s) escalated: not %s in time", incident.id,
                        printable(incident.unit or incident.category, 80), what)
            self._publish_incident(incident, "escalated")

    def _take_evidence(self) -> None:
        """Evidence the fetcher's workers have brought (or failed to): stored, noted, announced."""
        assert self.store is not None and self.camera_store is not None
        while True:
            try:
                got = self._evidence.get_nowait()
            except queue.Empty:
                return
            if isinstance(got, Evidence):
                ev = self.camera_store.add_evidence(got)
                note = f"{ev.kind} from {ev.camera_id}: {ev.size} bytes, sha256 {ev.sha256}"
                self.counts["evidence"] += 1
            else:
                note = f"{got.kind} from {got.camera_id} failed: {got.reason}"
                self.counts["evidence_failed"] += 1
            view = self.store.add_history(got.incident_id, "evidence", note)
            log.info("incident %d: %s", got.incident_id, printable(note, 2 * SHOWN))
            if view is not None:
                self._publish_incident(view, "evidence")

    def _update_beacon(self, now: float) -> None:
        assert self.store is not None and self.cfg.beacon is not None
        lit = self.store.unacknowledged() > 0
        if lit != self._beacon or now - self._beacon_sent_at >= BEACON_REFRESH_S:
            gateway, point = self.cfg.beacon.split("/", 1)
            self._publish(("gw", gateway, "cmd", "output"), {"point": point, "value": int(lit)}, qos=1)
            if lit != self._beacon:
                log.info("beacon %s %s", self.cfg.beacon, "on: an incident is unacknowledged" if lit else "off")
            self._beacon, self._beacon_sent_at = lit, now

    def _check_suspects(self, now: float) -> None:
        """Look at the suspects' holes, the longest unlooked-at first, for GAP_CHECK_S at most: the ingest
        thread does this between batches, and with hundreds of gateways in a hole at once (a backlog, a
        group's shared load) looking at all of them held alerts up for most of a second."""
        deadline = time.monotonic() + GAP_CHECK_S
        for gw in sorted(self._suspects, key=lambda gw: self._checked.get(gw, 0.0)):
            if time.monotonic() >= deadline:
                return
            self._checked[gw] = now
            try:
                self._recover(gw, now)
            except OperationalError:
                raise  # the database away: housekeeping says so once
            except Exception as exc:
                # One gateway's bookkeeping gone wrong must not fail every round (and hold ingest up each
                # time): its gaps are left alone until its next event or state says more.
                log.error("gateway %s: gap recovery failed (%s: %s); its holes are not asked for again until it "
                          "sends more", gw, exc.__class__.__name__, printable(str(exc), SHOWN))
                self._suspects.discard(gw)
                self._hints.pop(gw, None)
                self._gaps.pop(gw, None)
            if gw not in self._suspects:
                self._checked.pop(gw, None)

    def _recover(self, gw: str, now: float) -> None:
        """Ask ``gw`` again for what is missing; give up on a hole after replay_tries requests."""
        assert self.store is not None
        report = self.store.missing_ranges(gw)
        holes = list(report.holes)
        hint = self._hints.get(gw)
        # A lost tail shows only in the gateway's state; ask for it once the stream has gone quiet.
        quiet = now - self._heard.get(gw, 0.0) >= self.cfg.replay_interval_s
        if hint is not None and hint.published > report.last_seq and quiet:
            holes.append((report.last_seq + 1, hint.published))
        if not holes:
            self._suspects.discard(gw)
            self._gaps.pop(gw, None)
            return
        watch = self._gaps.setdefault(gw, _GapWatch(since=now, low=holes[0][0], filling=now))
        if holes[0][0] != watch.low:
            watch.low, watch.filling = holes[0][0], now
        if now - watch.since < self.cfg.replay_interval_s or now < watch.next_request:
            return  # what is in flight (redeliveries, another bridge of the group) gets its chance
        if not quiet and now - watch.filling < STREAMING_PATIENCE * self.cfg.replay_interval_s:
            # The gateway's events still arrive, and the hole filled from below not long ago: an alert
            # sent ahead of a backlog, or a group's other bridges storing their share. A broker hands a
            # backlog over in runs per client, so a hole may stand still a while and still be on its way.
            return
        oldest = hint.oldest if hint is not None else None
        while holes and oldest is not None and holes[0][0] < oldest:
            a, b = holes[0]
            self._lost(gw, a, min(b, oldest - 1), "older than what the gateway still holds")
            if b < oldest:
                holes.pop(0)
            else:
                holes[0] = (oldest, b)
        if not holes:
            return
        if watch.first_hole == holes[0][0]:
            watch.tries += 1
        else:
            watch.first_hole, watch.tries = holes[0][0], 1
        if watch.tries > self.cfg.replay_tries:
            a, b = holes.pop(0)
            self._lost(gw, a, b, f"no replay brought them after {self.cfg.replay_tries} requests")
            watch.first_hole, watch.tries = None, 0
            return
        budget = self.cfg.replay_max  # a replay larger than the broker's queue would be dropped again
        for a, b in holes:
            if budget <= 0:
                break
            b = min(b, a + budget - 1)
            budget -= b - a + 1
            self.counts["replay_requests"] += 1
            log.info("gateway %s: asking for seq %d..%d again (try %d)", gw, a, b, watch.tries)
            self._publish(("gw", gw, "cmd", "replay"), {"from_seq": a, "to_seq": b}, qos=1)
        watch.next_request = now + self.cfg.replay_interval_s

    def _lost(self, gw: str, first: int, last: int, why: str) -> None:
        assert self.store is not None
        missing = self.store.mark_lost(gw, first, last)
        if missing:
            self.counts["lost"] += missing
            log.error("gateway %s: %d events of seq %d..%d are lost: %s", gw, missing, first, last, why)


CLOCK_SKEW_S = 120.0  # a gateway state this far from the bridge's clock is logged as a wrong clock
RETRY_MAX_S = 2.0  # the longest wait between two tries of a database that cannot store: alerts wait on it
# SQLSTATE classes of a database that cannot store anything now, whatever the event: read-only
# transaction (a database switched read-only, or a standby), insufficient resources (disk full),
# operator intervention (shutting down), connection exceptions, serialization failures.
_UNAVAILABLE_SQLSTATES = ("25006", "53", "57P", "08", "40001", "40P01")


def _read_only(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "25006" or "readonly database" in str(exc.orig)


def _unavailable(exc: DBAPIError) -> bool:
    """The database cannot store now (and may later), as opposed to refusing one event for what it holds."""
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return True  # SQLite: locked, read-only file, disk full; PostgreSQL: connection lost, disk full
    state = getattr(exc.orig, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES)


def _figures_problem(outbox: dict[str, Any]) -> str | None:
    """Why a gateway state's outbox figures cannot be used (they are compared with seq, a BIGINT), or None."""
    for key in ("next_seq", "pending", "oldest_seq"):
        value = outbox.get(key)
        if value is None and key == "oldest_seq":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
            return f"outbox.{key} = {printable(repr(value), 40)}, expected an integer 0..2**63-1"
    return None


def run(config: Config) -> None:
    """Run a bridge until SIGINT or SIGTERM (``pttbridge bridge -c FILE``)."""
    bridge = Bridge(config)
    bridge.start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    log.warning("bridge %s running: database %s, broker %s", config.bridge.name, redact(bridge.database_url),
                config.mqtt.url)
    done.wait()
    bridge.stop()
