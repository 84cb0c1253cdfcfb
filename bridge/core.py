"""The bridge's core: messages in, actions out, with no MQTT, no threads and no clock of its own.

    shell: a batch of Inbound --BridgeCore.handle(batch, now)--> Batch.take(): actions, in order
           between batches    --BridgeCore.tick(now, ...)------> actions (re-announce, escalate, beacon, replay)

The shell (bridge/service.py) hands over what the broker delivered, sorted into batches, with the time
(monotonic seconds); the wall clock is injected. The core validates, stores through the store
(bridge/store/), carries out consoles' commands (bridge/commands.py), and says what is to be done
outside as data (bridge/actions.py): publish this unit or incident, acknowledge these messages, ask this
gateway for a replay, send this command to a gateway, fetch this evidence. Its collaborators keep their
state as data: gap recovery (bridge/recovery.py), pacing of units, beacon and periodic work
(bridge/pacing.py), cameras (bridge/cameras/watch.py).

- Every message of a batch is handled on its own: one that is invalid (oversized, not JSON, wrong schema, a
  topic that disagrees with the payload) or that fails in a way nobody foresaw is refused alone, logged
  with its reason (escaped: received text never forges a log line) and its bytes in hex, and counted; the
  others of its batch are stored or carried out, and only then is the batch acknowledged.
- A database that cannot store now (down, read-only, full) raises out of :meth:`BridgeCore.handle`; the
  shell waits and hands the same :class:`Batch` in again: what was handled is not handled twice (a
  command is not carried out twice), and what it changed is still published.
- What is received is bounded before it is used: event times against the bridge's clock (a time ahead of
  it never moves a unit's state; one more than ``bridge.future_s`` ahead is counted and logged).
- Commands from consoles (``bridge/cmd``) are validated whole before anything is done or audited; a
  refused one is audited as refused and answered on ``bridge/refused``.
"""

from __future__ import annotations

import logging
import queue
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from bridge.actions import (
    AckMessages,
    Action,
    AnswerRadio,
    AnswerRefused,
    Changes,
    CommandGateway,
    Inbound,
    PublishIncident,
    PublishUnit,
    SendPlan,
    SetOutput,
    TransferCase,
)
from bridge.audit import record_command, record_transmissions
from bridge.cameras.watch import CameraWatch, hex_of
from bridge.commands import (
    MAX_COMMAND_BYTES,
    Ack,
    AddDepartment,
    Alias,
    Assign,
    Command,
    CommandError,
    Note,
    OpenCase,
    Plan,
    Resolve,
    echo,
    parse_command,
)
from bridge.pacing import BEACON_CHECK_S, Beacon, Every, UnitThrottle
from bridge.plans import Plans
from bridge.recovery import GapRecovery
from bridge.store import ClipError, IncidentError, IngestResult, Store, unavailable
from bridge.transfer import TransferNews, TransferRequest
from bridge.views import Change, GatewayView, IncidentView, UnitView
from config.schema import BridgeConfig, CaseKindConfig, Config
from gateway.events import (
    MAX_EVENT_BYTES,
    Event,
    EventError,
    decode_event,
    is_event_id,
    is_name,
    json_object,
    printable,
    uuid7,
)

log = logging.getLogger(__name__)

WARN_AGAIN_S = 600.0  # a complaint about one gateway (its clock, its state) is logged again after this long
REMEMBERED = 10_000  # event ids already complained of (a flood of one anomaly is one log line each)
SHOWN = 200  # characters of received text in a log line
CLOCK_SKEW_S = 120.0  # a gateway state this far from the bridge's clock is logged as a wrong clock


class Stopping(Exception):
    """The bridge is stopping while the database is unavailable: leave the batch unacknowledged."""


class Once:
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


@dataclass
class Batch:
    """Messages handled together, and how far handling them has come (it may take several tries)."""

    messages: list[Inbound]
    done: set[int] = field(default_factory=set)  # id() of the messages handled (stored, carried out or refused)
    changes: Changes = field(default_factory=Changes)
    actions: list[Action] = field(default_factory=list)  # decided and not yet taken by the shell
    tried: bool = False  # handled before: this is another try

    def pending(self) -> list[Inbound]:
        return [m for m in self.messages if id(m) not in self.done]

    def take(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out


class BridgeCore:
    """What the bridge does with what it receives, and by itself over time."""

    def __init__(self, cfg: BridgeConfig, store: Store, plans: Plans, cameras: CameraWatch, *,
                 clock: Callable[[], datetime], counts: Counter[str] | None = None,
                 ingest: Callable[[Sequence[Event]], IngestResult] | None = None) -> None:
        self.cfg = cfg
        #: News of cases being handed to outside systems, put here by the transfer workers (bridge/transfer.py).
        self.transfer_news: queue.SimpleQueue[TransferNews] = queue.SimpleQueue()
        self._cases = Every(1.0)  # escalation of parts, lone workers
        self.store = store
        self.plans = plans
        self.cameras = cameras
        #: The bridge's clock (UTC): what event times are held against, and each stored batch's received_at.
        self.clock = clock
        self.counts: Counter[str] = counts if counts is not None else Counter()
        #: How a batch of events is stored: the shell's way waits out a database that is away.
        self.ingest = ingest or (lambda events: self.store.ingest(events, received_at=self.clock()))
        self.recovery = GapRecovery(store, cfg.replay_interval_s, cfg.replay_tries, cfg.replay_max, self.counts)
        self.units = UnitThrottle()
        self.beacon = Beacon.of(cfg.beacon) if cfg.beacon else None
        self._beacon_check = Every(BEACON_CHECK_S)
        self._announce = Every(min(1.0, cfg.reannounce_s / 4))
        self._escalation = Every(1.0)
        self._gap_check = Every(min(0.5, cfg.replay_interval_s / 2))
        self._clock_warned: dict[str, float] = {}  # gateway -> when its clock may be complained of again
        self._future_warned: dict[str, float] = {}  # gateway -> when its events' future times may be again
        self._state_warned: dict[str, float] = {}  # gateway -> when its state's bad figures may be again
        self._reused = Once()  # event ids seen again with other content, logged once each
        # Holes left from a previous run are still worth asking for.
        self.recovery.suspects.update(g.name for g in store.gateways() if g.last_seq > g.contiguous_seq)

    @classmethod
    def open(cls, config: Config, store: Store, *, clock: Callable[[], datetime], counts: Counter[str] | None = None,
             ingest: Callable[[Sequence[Event]], IngestResult] | None = None) -> BridgeCore:
        """The core on ``store`` with its collaborators: the channel plans, and the cameras of the registry
        (brought in step with the configuration's)."""
        counts = counts if counts is not None else Counter()
        return cls(config.bridge, store, Plans(store.engine), CameraWatch.open(store, config, counts), clock=clock,
                   counts=counts, ingest=ingest)

    # --- a batch -------------------------------------------------------------------------------

    def handle(self, batch: Batch, now: float) -> None:
        """A batch: events stored together (one transaction), everything else one message at a time, each
        in :meth:`_alone`; whatever one message does wrong is that message's refusal, never its batch's.
        Then the whole batch is acknowledged, and what changed is published (``batch.take()``)."""
        done, changes = batch.done, batch.changes
        if not batch.tried:  # incidents opened from the first try on: see publish_incidents
            self.cameras.camera_store.forget_written()
            batch.tried = True
        events: list[tuple[Inbound, Event]] = []
        others: list[tuple[int, Inbound, str, Callable[[], object]]] = []  # (order, message, what, handling)
        states: list[tuple[str, Inbound]] = []  # gateways' states: after the events, before the others
        frigate_topic = self.cfg.cameras.frigate_topic
        for m in batch.messages:
            if id(m) in done:
                continue
            levels = m.levels
            if m.topic == frigate_topic:
                others.append((2, m, "camera event", partial(self.cameras.detection, None, m.topic, m.payload,
                                                             changes)))
            elif self.cameras.frigate.claims(m.topic):
                # After the detections they may enrich.
                others.append((3, m, "frigate", partial(self.cameras.frigate_message, m.topic, m.payload, m.retain,
                                                        self.clock(), changes)))
            elif len(levels) == 3 and levels[0] == "cam" and levels[2] == "event":
                others.append((2, m, "camera event", partial(self.cameras.detection, levels[1], m.topic, m.payload,
                                                             changes)))
            elif len(levels) == 4 and levels[0] == "gw" and levels[2] == "event":
                event = self._validate(m, levels[1], levels[3], now)
                if event is not None:
                    events.append((m, event))
                else:
                    done.add(id(m))
            elif len(levels) == 3 and levels[0] == "gw" and levels[2] == "state":
                states.append((levels[1], m))
            elif len(levels) == 4 and levels[0] == "gw" and levels[2] == "audio":
                # After the events: a clip checks its event's hash.
                others.append((1, m, "audio clip", partial(self._clip, levels[1], levels[3], m)))
            elif levels == ("bridge", "cmd"):
                others.append((4, m, "command", partial(self.command, m, batch)))
            else:
                log.warning("message on unexpected topic %s ignored", printable(m.topic, SHOWN))
                done.add(id(m))
        if events:
            self._store_events(events, changes, now)
            done.update(id(m) for m, _ in events)
        if states:
            self._gateway_states(states, now)
            done.update(id(m) for _, m in states)
        self._handle_others(others, batch)
        # Everything in the batch is committed (or refused for good): only now tell the broker.
        batch.actions.append(AckMessages(tuple(batch.messages)))
        batch.actions += self._units(changes.units.values(), now)
        batch.actions += self.publish_incidents(changes.incidents, fresh=True)
        batch.actions += [self._transfer(incident.id, incident.category) for incident, change in changes.incidents
                          if change == Change.OPENED and incident.flow == "transfer"]

    def _handle_others(self, others: list[tuple[int, Inbound, str, Callable[[], object]]], batch: Batch) -> None:
        """Messages other than events and states, each alone, kind by kind; camera correlation before commands."""
        others.sort(key=lambda o: o[0])  # stable: each kind in arrival order
        correlated = False
        for order, m, what, handling in others:
            if order == 4 and not correlated:  # cameras see the new incidents before a command changes them
                self._alone(None, "camera correlation", partial(self._correlate, batch))
                correlated = True
            self._alone(m, what, handling)
            batch.done.add(id(m))
        if not correlated:
            self._alone(None, "camera correlation", partial(self._correlate, batch))

    def _correlate(self, batch: Batch) -> None:
        batch.actions += self.cameras.correlate(batch.changes)

    def _alone(self, m: Inbound | None, what: str, handling: Callable[[], object]) -> None:
        """One message's handling. Whatever it raises is that message's refusal alone (logged with its reason,
        counted), except a database that is away (the batch is handled again, from this message on) and
        the bridge stopping."""
        try:
            handling()
        except Stopping:
            raise
        except DBAPIError as exc:
            if unavailable(exc):
                raise
            self._failed(m, what, exc)
        except Exception as exc:  # noqa: BLE001 - whatever one message raises is its refusal alone: the bridge outlives it
            self._failed(m, what, exc)

    def _failed(self, m: Inbound | None, what: str, exc: BaseException) -> None:
        self.counts["messages_failed"] += 1
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        where = f" on {printable(m.topic, SHOWN)}" if m is not None else ""
        log.error("%s%s refused: %s: %s%s", what, where, type(cause).__name__, printable(str(cause), SHOWN),
                  f" [{hex_of(m.payload)}]" if m is not None else "")
        log.debug("%s: the failure in full", what, exc_info=exc)

    def publish_incident(self, incident: IncidentView, change: str) -> PublishIncident:
        """``bridge/incident/{id}``: the incident, its cameras, detections and evidence."""
        return PublishIncident(incident, change, self.cameras.camera_store.correlation(incident.id).to_json())

    def publish_incidents(self, changed: Sequence[tuple[IncidentView, str]], *, fresh: bool = False) -> list[Action]:
        """:meth:`publish_incident` for each, in order, their cameras read together. ``fresh``: the incidents
        opened among them were opened in this batch (by :meth:`handle`, in any of its tries): the cameras'
        rows of each are read only if this process wrote some since its first try. (A bridge sharing the
        subscription might attach a detection to it between the commit and this read; it announces that
        incident itself.)"""
        opened = [incident.id for incident, change in changed if change == Change.OPENED] if fresh else []
        correlations = self.cameras.camera_store.correlations((incident.id for incident, _ in changed), fresh=opened)
        return [PublishIncident(incident, change, correlations[incident.id].to_json()) for incident, change in changed]

    def _units(self, units: Iterable[UnitView], now: float, *, flush: bool = False) -> list[Action]:
        return [PublishUnit(u) for u in self.units.due(units, now, flush=flush)]

    # --- events --------------------------------------------------------------------------------

    def _validate(self, m: Inbound, topic_gateway: str, topic_kind: str, now: float) -> Event | None:
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
        except Exception as exc:  # noqa: BLE001 - a validation nobody foresaw failing: this event is refused, not the batch
            self._reject(m, f"could not be read: {exc.__class__.__name__}: {exc}")
            return None
        self._check_future(event, now)
        return event

    def _check_future(self, event: Event, now: float) -> None:
        """An event stamped ahead of the bridge's clock by more than ``bridge.future_s`` is stored (the
        gateway's clock may be wrong, and its alerts must still open incidents) but counted and logged: no
        time past the bridge's clock moves a unit's state or an incident (bridge/store/ingest.py), so a forged
        far-future beacon cannot pin a unit, and a gateway whose clock runs ahead is named. Beyond the window
        the event says nothing about its unit at all."""
        ahead = (event.time - self.clock()).total_seconds()
        if ahead <= self.cfg.future_s:
            return
        self.counts["future"] += 1
        if now >= self._future_warned.get(event.gateway, 0.0):
            self._future_warned[event.gateway] = now + WARN_AGAIN_S
            log.warning("gateway %s: %s event %s is stamped %s, %.0f s ahead of the bridge's clock (more than "
                        "bridge.future_s = %g): stored, but it moves no unit (an alert still opens an incident, "
                        "dated now)", event.gateway, event.kind, event.id, event.time.isoformat(), ahead,
                        self.cfg.future_s)

    def _reject(self, m: Inbound, reason: str) -> None:
        self.counts["rejected"] += 1
        log.warning("rejected event on %s: %s [%s]", printable(m.topic, SHOWN), printable(reason, 2 * SHOWN),
                    hex_of(m.payload))

    def _store_events(self, events: list[tuple[Inbound, Event]], changes: Changes, now: float) -> None:
        for _, e in events:
            self.recovery.heard_from(e.gateway, now)
        try:
            result = self.ingest([e for _, e in events])
        except Stopping:
            raise
        except Exception as exc:  # noqa: BLE001 - SQLAlchemyError above all; whatever it is, retried one by one
            # Something in the batch is refused by the database itself (or fails in a way nobody foresaw):
            # find it, store the rest.
            log.warning("batch of %d events refused (%s); storing them one by one", len(events), exc.__class__.__name__)
            for m, e in events:
                try:
                    one_result = self.ingest([e])
                    self._note(one_result, changes)
                    self._audit([e], one_result)
                except Stopping:
                    raise
                except SQLAlchemyError as one:
                    self._reject(m, f"refused by the database: {one.orig if isinstance(one, DBAPIError) else one!s}")
                except Exception as one:  # noqa: BLE001 - refused alone, whatever it is: the loop stores the rest
                    self._reject(m, f"could not be stored: {one.__class__.__name__}: {one}")
            return
        self._note(result, changes)
        self._audit([e for _, e in events], result)

    def _audit(self, events: list[Event], result: IngestResult) -> None:
        """Dispatchers' transmissions into the audit log, once each (only events stored for the first time)."""
        stored = set(result.stored)
        record_transmissions(self.store.engine, [e for e in events if e.id in stored])

    def _note(self, result: IngestResult, changes: Changes) -> None:
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
        for answer in result.answers:
            self.counts[f"answers_{answer.outcome}"] += 1
            if answer.outcome in ("no_open_case", "no_unit"):
                log.warning("radio answer not applied: %s", printable(answer.note, 2 * SHOWN))
            else:
                log.info("radio answer %s: %s", answer.outcome, printable(answer.note, 2 * SHOWN))
        for gw, holes in result.gaps.items():
            # Debug only: an alert sent ahead of its gateway's backlog makes one every time; what is still
            # missing later is asked for (info) or given up on (error).
            log.debug("gateway %s: seq jumped, missing %s", gw, ", ".join(f"{a}..{b}" for a, b in holes))
            self.counts["gaps"] += len(holes)
            self.recovery.jumped(gw)
        for gw, last in result.settled.items():
            self.recovery.settled(gw, last)

    def _clip(self, gateway: str, event_id: str, m: Inbound) -> None:
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

    # --- gateways ------------------------------------------------------------------------------

    def _gateway_states(self, states: list[tuple[str, Inbound]], now: float) -> None:
        """Gateways' states stored in one transaction (a broker hands a bridge that connects every gateway's
        retained state at once); should that fail, one at a time, each its own refusal."""
        bodies = [(name, m, body) for name, m in states if (body := self._state_body(name, m)) is not None]
        if not bodies:
            return
        try:
            views = self.store.note_gateway_states([(name, body) for name, _, body in bodies])
        except Stopping:
            raise
        except DBAPIError as exc:
            if unavailable(exc):
                raise
            views = None
        except Exception:  # noqa: BLE001 - whatever it is, the states are tried one by one, each its own refusal
            views = None
        if views is None:
            for name, m, _ in bodies:
                self._alone(m, "gateway state", partial(self.gateway_state, name, m, now))
            return
        for (name, m, body), view in zip(bodies, views, strict=True):
            self._alone(m, "gateway state", partial(self._noted_state, name, body, view, now))

    def _state_body(self, name: str, m: Inbound) -> dict[str, Any] | None:
        """A gateway state's content, or None when there is none to store (a retained state cleared, or one
        refused: logged)."""
        if not m.payload:
            return None  # a retained state being cleared
        try:
            if not is_name(name):
                raise ValueError(f"{printable(repr(name), 80)} is not a gateway's name")
            return json_object(m.payload)
        except ValueError as exc:
            log.warning("gateway state on %s ignored: %s [%s]", printable(m.topic, SHOWN), printable(str(exc), SHOWN),
                        hex_of(m.payload))
            return None

    def gateway_state(self, name: str, m: Inbound, now: float) -> None:
        """A gateway's retained state: stored, its clock checked, its outbox figures told to gap recovery."""
        body = self._state_body(name, m)
        if body is None:
            return
        self._noted_state(name, body, self.store.note_gateway_state(name, body), now)

    def _noted_state(self, name: str, body: dict[str, Any], view: GatewayView, now: float) -> None:
        self._check_clock(name, body, now)
        problem = self.recovery.note_state(name, body.get("outbox"), view.last_seq)
        if problem is not None and now >= self._state_warned.get(name, 0.0):
            self._state_warned[name] = now + WARN_AGAIN_S
            log.warning("gateway %s: its state's outbox figures are refused (%s); its seq is watched from its "
                        "events alone", name, problem)
        log.debug("gateway %s %s", name, "online" if view.online else "offline")

    def _check_clock(self, name: str, body: dict[str, Any], now: float) -> None:
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
        if abs(skew) > CLOCK_SKEW_S and now >= self._clock_warned.get(name, 0.0):
            self._clock_warned[name] = now + WARN_AGAIN_S
            log.warning("gateway %s: its clock is %+.0f s off the bridge's; its events and incidents carry its "
                        "times (set its clock: NTP)", name, skew)

    # --- commands ------------------------------------------------------------------------------

    def command(self, m: Inbound, batch: Batch) -> None:
        """A console's command: read and validated whole (bridge/commands.py), then carried out, then audited;
        a command refused at any step is audited as refused and answered on ``bridge/refused``."""
        self.counts["commands"] += 1
        body: dict[str, Any] | None = None
        try:
            if len(m.payload) > MAX_COMMAND_BYTES:
                raise CommandError("$", f"{len(m.payload)} bytes, more than the {MAX_COMMAND_BYTES}-byte limit")
            body = json_object(m.payload)
            command = parse_command(body)
            done = self._carry_out(command, batch)
        except (ValueError, IncidentError) as exc:  # JSON errors and ConfigError are ValueErrors too
            self._refuse_command(m, body, printable(str(exc), 4 * SHOWN), batch)
            return
        except Stopping:
            raise
        except DBAPIError as exc:
            if unavailable(exc):
                raise  # handled again when the database is back
            self._refuse_command(m, body, "the database refused it (see the bridge's log)", batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - nobody foresaw this: refused alone, and said so
            self._refuse_command(m, body, "the bridge failed to carry it out (see the bridge's log)", batch, exc)
            return
        record_command(self.store.engine, body)
        if done is not None:
            log.info("incident %d %s by %s", done[0].id, done[1], command.operator)
            batch.changes.incidents.append(done)

    def _refuse_command(self, m: Inbound, body: dict[str, Any] | None, reason: str, batch: Batch,
                        exc: BaseException | None = None) -> None:
        self.counts["commands_refused"] += 1
        if exc is not None:
            self.counts["messages_failed"] += 1
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            log.error("command refused: %s: %s [%s]", type(cause).__name__, printable(str(cause), SHOWN),
                      hex_of(m.payload))
            log.debug("command: the failure in full", exc_info=exc)
        else:
            log.warning("command refused: %s [%s]", reason, hex_of(m.payload))
        unread = f"{reason}: {len(m.payload)} bytes"
        record_command(self.store.engine, unread if body is None else body, refused=reason)  # audited too
        # The dispatcher would otherwise see nothing happen; only the fields that identify the command go back.
        batch.actions.append(AnswerRefused(echo(body or {}), reason))

    def _carry_out(self, c: Command, batch: Batch) -> tuple[IncidentView, str] | None:
        """Do what a validated command says; returns the incident it changed and how (None for plans and
        aliases)."""
        match c:
            case Plan():
                self._save_plan(c, batch)
                return None
            case Alias():
                unit = self.store.set_alias(c.unit, c.alias)
                batch.changes.units[unit.unit] = unit
                log.info("%s named %s %r", c.operator, unit.unit, unit.alias)
                return None
            case Ack():
                view = self.store.acknowledge(c.incident, c.operator, note=c.note)
                answered = self._answer_radio(view, c.operator, batch)
                if answered is None:
                    return view, Change.ACKNOWLEDGED
                batch.changes.incidents.append((view, Change.ACKNOWLEDGED))  # the acknowledgement is news of its own
                return answered, Change.RADIO_ACK
            case Resolve():
                return self.store.resolve(c.incident, c.operator, c.resolution, note=c.note,
                                          verdict=c.verdict.value if c.verdict is not None else None,
                                          reason=c.reason), Change.RESOLVED
            case Note():
                return self.store.add_note(c.incident, c.operator, c.note), Change.NOTE
            case Assign():
                return self._assign(c, batch)
            case OpenCase():
                return self._open_case(c)
            case AddDepartment():
                return self.store.add_department(c.incident, c.operator, c.department), Change.DEPARTMENT

    def _assign(self, c: Assign, batch: Batch) -> tuple[IncidentView, str]:
        """Send a unit: the case's part is dispatched to it, and the gateway that heard it last tells its radio
        (or the history says why no radio was told)."""
        if c.department is not None and self.store.rules.department(c.department) is None:
            raise IncidentError(f"department: no department {c.department!r}")
        view = self.store.assign(c.incident, c.operator, c.unit)
        batch.changes.incidents.append((view, Change.ASSIGNED))
        view, command = self.store.assign_unit(c.incident, c.operator, c.unit, c.department)
        if command is not None:
            gateway = command.pop("gateway")
            batch.actions.append(CommandGateway(gateway, "dispatch", command))
            log.info("case %d: dispatched to %s through %s/%s", view.id, printable(c.unit, 80), gateway,
                     command["channel"])
        return view, Change.DISPATCH

    def _open_case(self, c: OpenCase) -> tuple[IncidentView, str]:
        """A case opened by hand, with the nearest units suggested."""
        view = self.store.open_case(c.kind, c.operator, note=c.note, unit=c.unit, camera=c.camera, lat=c.lat,
                                    lon=c.lon)
        settings = self.cfg.cameras
        if view.lat is not None and view.lon is not None and settings.suggest_units:
            units = self.store.nearest_units(view.lat, view.lon, limit=settings.suggest_units,
                                             max_age_s=settings.unit_age_s)
            view = self.store.suggest(view.id, units) or view
        return view, Change.OPENED  # a case of the transfer flow is handed over with every opened one

    def _transfer(self, case_id: int, kind: str) -> TransferCase:
        rule: CaseKindConfig | None = self.store.rules.kinds.get(kind)
        assert rule is not None and rule.transfer is not None
        t = rule.transfer
        payload = self.store.transfer_payload(case_id) or {"case": case_id, "kind": kind}
        return TransferCase(TransferRequest(case_id, t.name, payload, t.mqtt_topic, t.webhook, t.retries, t.backoff_s,
                                            t.backoff_max_s, t.timeout_s))

    def transfers_pending(self) -> list[Action]:
        """The open cases whose outside system has given no receipt yet: handed over again (a bridge that
        stopped before the receipt came, or before the outside system came back)."""
        return [self._transfer(case_id, kind) for case_id, kind in self.store.transfers_pending()
                if (rule := self.store.rules.kinds.get(kind)) is not None and rule.transfer is not None]

    def _save_plan(self, c: Plan, batch: Batch) -> None:
        gateway, operator = c.gateway, c.operator
        before = self.plans.current(gateway)
        version = self.plans.save(gateway, c.channels, operator)  # ConfigError: refused, logged
        if before is not None and before.version == version:
            log.info("plan for %s from %s is version %d already", gateway, operator, version)
            return
        plan = self.plans.current(gateway)
        assert plan is not None
        batch.actions.append(SendPlan(gateway, plan.to_json()))
        log.info("plan for %s: version %d (%d channels) saved by %s", gateway, version, len(plan.channels), operator)

    def _answer_radio(self, view: IncidentView, operator: str, batch: Batch) -> IncidentView | None:
        """An acknowledged emergency is acknowledged to the radio too, where its protocol can say so:
        the gateway that heard the last alert keys that channel and sends the unit the acknowledgement."""
        asked = self.store.request_radio_ack(view.id, operator)
        if asked is None:
            return None
        view, command = asked
        command["request"] = uuid7()
        batch.actions.append(AnswerRadio(command))
        log.info("incident %d: asked %s/%s to acknowledge to %s", view.id, command["gateway"], command["channel"],
                 command["unit"])
        return view

    # --- by itself, over time ------------------------------------------------------------------

    def plans_to_send(self) -> list[Action]:
        """Every current plan, retained (on each connection: the broker may have lost its retained messages)."""
        return [SendPlan(plan.gateway, plan.to_json()) for plan in self.plans.all_current()]

    def tick(self, now: float, *, plans: bool = False, more: Callable[[], bool] = lambda: True) -> list[Action]:
        """Periodic work between batches: held unit states, plans (``plans``: a connection was made), incidents
        still unacknowledged announced again, evidence taken in, escalation, the beacon, replay requests
        (while ``more()`` says there is time). A database that is away is logged, not raised: what was
        decided before it went is returned."""
        out: list[Action] = self._units((), now) if self.units.held else []
        try:
            if plans:
                out += self.plans_to_send()
            if self._announce.due(now):
                for incident in self.store.due_announcements(self.cfg.reannounce_s):
                    log.warning("incident %d (%s) still unacknowledged", incident.id,
                                printable(incident.unit or incident.channel, 80))
                    out.append(self.publish_incident(incident, Change.REANNOUNCE))
            self.cameras.take_evidence(lambda incident: out.append(self.publish_incident(incident, Change.EVIDENCE)))
            if self._escalation.due(now):
                for incident in self.store.escalate_due():
                    what = "acknowledged" if incident.escalated == "ack" else "resolved"
                    log.warning("incident %d (%s) escalated: not %s in time", incident.id,
                                printable(incident.unit or incident.category, 80), what)
                    out.append(self.publish_incident(incident, Change.ESCALATED))
            if self._cases.due(now):
                out += self._case_clocks()
            out += self._take_transfer_news()
            if self.beacon is not None and self._beacon_check.due(now):
                out += self._update_beacon(self.beacon, now)
            if self.recovery.suspects and self._gap_check.due(now):
                out += self.recovery.check(now, more)
        except OperationalError as exc:
            log.error("database unavailable for periodic work: %s", exc.orig)
        return out

    def _case_clocks(self) -> list[Action]:
        """Parts past their limits escalated; units on a case silent too long checked, then alerted."""
        out: list[Action] = []
        for case in self.store.escalate_parts():
            late = ", ".join(f"{p.department} ({p.escalated})" for p in case.parts if p.escalated and p.open)
            log.warning("case %d (%s) escalated: %s", case.id, printable(case.category, 80), late or "parts late")
            out.append(self.publish_incident(case, Change.ESCALATED))
        answers = self.store.rules.answers
        if answers.lone_worker_s is not None:
            checks, alerts = self.store.lone_workers(answers.lone_worker_s, answers.radio_check_grace_s)
            for case, command in checks:
                gateway = command.pop("gateway")
                log.warning("case %d: %s silent for %g s or more: radio check through %s", case.id,
                            printable(str(command["unit"]), 80), answers.lone_worker_s, gateway)
                out += [CommandGateway(gateway, "radio_check", command),
                        self.publish_incident(case, Change.RADIO_CHECK)]
            for case, alert in alerts:
                log.warning("case %d: %s still silent after its radio check: alert %d", case.id,
                            printable(alert.unit or "-", 80), alert.id)
                out += [self.publish_incident(case, Change.ESCALATED), self.publish_incident(alert, Change.OPENED)]
        return out

    def _take_transfer_news(self) -> list[Action]:
        out: list[Action] = []
        while True:
            try:
                news = self.transfer_news.get_nowait()
            except queue.Empty:
                return out
            case = self.store.transfer_news(news.case_id, news.note, receipt_at=news.receipt_at)
            if case is not None:
                out.append(self.publish_incident(case, Change.TRANSFER))

    def _update_beacon(self, beacon: Beacon, now: float) -> list[Action]:
        lit = self.store.unacknowledged() > 0
        send, changed = beacon.update(lit, now)
        if not send:
            return []
        if changed:
            log.info("beacon %s %s", self.cfg.beacon, "on: an incident is unacknowledged" if lit else "off")
        return [SetOutput(beacon.gateway, beacon.point, int(lit))]

    def flush(self, now: float) -> list[Action]:
        """The unit states still held, all of them now (the bridge is stopping)."""
        return self._units((), now, flush=True)
