"""The outbox publisher: moves events from the outbox to the broker, in order, losing none.

    drivers --append--> Outbox (SQLite) --feeder thread--> paho (QoS 1) --PUBACK--> mark published

- Only the feeder thread hands events to paho, at most ``WINDOW`` unacknowledged at a time, in ``seq``
  order, except that alerts go first: an emergency never waits behind a backlog of beacons (after an
  outage, or from a radio that floods). The bridge orders by ``seq``; the jump is a hole for a moment.
  The rest goes at most ``publish_rate`` a second: a chattering radio or a backlog of hours waits in
  the outbox instead of flooding the bridge that every other gateway shares.
  PUBACKs arrive on paho's network thread and are queued back to the feeder, which marks them
  published in batches (so the two threads never wait on each other's locks).
- While the broker is away paho keeps what it was handed and re-sends it first on reconnect; the rest
  stays in the outbox. After a crash, everything unacknowledged is handed over again on start.
  A re-sent event may reach the bridge twice; the bridge de-duplicates by event id.
- The audio clip of a ``call`` event goes to ``audio/{event_id}`` (QoS 1) once its event is acknowledged,
  a few at a time so that clips never hold up alerts; it is kept in the outbox until acknowledged too.
- ``cmd/replay {"from_seq": a, "to_seq": b}`` re-publishes what the outbox still holds of that range:
  brokers do drop QoS 1 messages to slow subscribers, and the bridge notices the gap in ``seq``.
- ``config`` (retained, from the bridge) is the channel plan: handed to ``on_command`` as verb ``config``.
- ``state`` is retained, refreshed on every change and every ``state_interval_s``; the Last Will
  (retained ``online: false``) covers the whole gateway, so per-radio health travels inside it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from config.mqtt import last_connect_error, make_client, topic
from config.schema import GatewayConfig, MqttConfig
from gateway.events import json_object
from gateway.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

WINDOW = 200  # unacknowledged events handed to paho at once
LEVELS_S = 1.0  # audio input levels go out this often (QoS 0, not retained): a technician sets levels live
CLIP_WINDOW = 2  # unacknowledged audio clips (each up to a few hundred kB)
UNREACHABLE_LOG_S = 30.0  # how often "broker unreachable, N queued" is repeated


class OutboxPublisher:
    def __init__(
        self,
        outbox: Outbox,
        mqtt_cfg: MqttConfig,
        gateway_cfg: GatewayConfig,
        health: Callable[[], dict[str, Any]],
        on_command: Callable[[str, dict[str, Any]], None] | None = None,
        levels: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.levels = levels
        self.cfg = mqtt_cfg
        self.gw = gateway_cfg
        self.health = health
        self.on_command = on_command
        self._t = lambda *levels: topic(mqtt_cfg, "gw", gateway_cfg.name, *levels)
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._jobs: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._inflight: dict[int, int] = {}  # mid -> seq; touched by the feeder thread only
        self._clips_inflight: dict[int, str] = {}  # mid -> event id of a clip; likewise
        self._handed = 0  # highest seq handed to paho in this process, in order
        self._ahead: set[int] = set()  # alerts handed before the events in front of them
        self._tokens = gateway_cfg.publish_rate  # the rate limit's bucket: events that may go now
        self._refilled = time.monotonic()
        self._throttled = False  # events wait for the rate limit: come back soon rather than on a wake-up
        self._connected = threading.Event()
        self._down_since: float | None = time.monotonic()
        self.client = make_client(mqtt_cfg, f"pttbridge-gw-{gateway_cfg.name}")
        self.client.will_set(self._t("state"), self._offline_payload("connection lost"), qos=1, retain=True)
        self.client.max_inflight_messages_set(WINDOW)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self._thread = threading.Thread(target=self._feed, name="outbox-publisher", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        log.info("connecting to %s as gateway %s", self.cfg.url, self.gw.name)
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._thread.start()

    def stop(self, drain_s: float = 2.0) -> None:
        """Give in-flight events a moment to be acknowledged, say goodbye, disconnect."""
        deadline = time.monotonic() + drain_s
        while self._inflight and self._connected.is_set() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        self._thread.join(2.0)
        if self._connected.is_set():
            info = self.client.publish(self._t("state"), self._offline_payload("stopped"), qos=1, retain=True)
            try:
                info.wait_for_publish(1.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self) -> None:
        """An event was appended to the outbox (called from driver threads)."""
        self._wake.set()

    def publish_state(self) -> None:
        self._jobs.put(("state", None))
        self._wake.set()

    @property
    def connected(self) -> bool:
        """Connected to the broker, and its subscriptions (commands, the channel plan) taken."""
        return self._connected.is_set()

    # --- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: mqtt.ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            log.warning("broker %s refused the connection: %s", self.cfg.url, rc)
            return
        # The channel plan is retained: it arrives on every connection, and is applied if it is new.
        client.subscribe([(self._t("cmd", "+"), 1), (self._t("config"), 1)])
        log.info("connected to %s; %d events waiting in the outbox", self.cfg.url, self.outbox.stats()["pending"])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        # Connected means subscribed (as for the bridge): a command sent before the broker took the
        # SUBSCRIBE of a new session would reach nobody.
        self._connected.set()
        self._down_since = None
        self.publish_state()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: mqtt.ReasonCode, _p: Any) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("lost the broker %s (%s); events are kept in the outbox", self.cfg.url, rc)
        self._connected.clear()
        self._down_since = self._down_since or time.monotonic()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: mqtt.ReasonCode, _p: Any) -> None:
        self._acks.put(mid)
        self._wake.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        verb = msg.topic.rsplit("/", 1)[-1]  # cmd/{verb}, or "config" for the channel plan
        try:
            body = json_object(msg.payload or b"{}")
        except ValueError as exc:
            log.warning("command %s ignored: %s [%s]", verb, exc, msg.payload[:64].hex(" "))
            return
        self._jobs.put((verb, body))
        self._wake.set()

    # --- the feeder thread ---------------------------------------------------------------------

    def _feed(self) -> None:
        next_state = 0.0
        next_levels = 0.0
        next_purge = 0.0
        next_complaint = time.monotonic() + 5.0
        while True:
            self._wake.wait(0.02 if self._throttled else 0.5)
            self._wake.clear()
            self._take_acks()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if not self._connected.is_set():
                if now >= next_complaint:
                    why = last_connect_error(self.client)
                    log.warning(
                        "broker %s unreachable%s; still decoding, %d events queued in %s",
                        self.cfg.url,
                        f" ({why})" if why else "",
                        self.outbox.stats()["pending"],
                        self.outbox.path,
                    )
                    next_complaint = now + UNREACHABLE_LOG_S
                continue
            next_complaint = now + 5.0
            self._run_jobs()
            self._hand_over()
            if now >= next_state:
                self._send_state()
                next_state = now + self.gw.state_interval_s
            if self.levels is not None and now >= next_levels:
                next_levels = now + LEVELS_S
                radios = self.levels()
                if radios:
                    self.client.publish(self._t("levels"), json.dumps({"radios": radios}), qos=0)
            if now >= next_purge:
                purged = self.outbox.purge(self.gw.retention_h * 3600)
                if purged:
                    log.info("outbox: forgot %d events older than %.1f h", purged, self.gw.retention_h)
                next_purge = now + 60.0

    def _take_acks(self) -> None:
        done, clips = [], []
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            seq = self._inflight.pop(mid, None)
            if seq is not None:
                done.append(seq)
            clip = self._clips_inflight.pop(mid, None)
            if clip is not None:
                clips.append(clip)
        self.outbox.mark_published(done)
        self.outbox.mark_clips_published(clips)

    def _hand_over(self) -> None:
        room = WINDOW - len(self._inflight)
        if room <= 0:
            return
        for row in self.outbox.unpublished(after_seq=self._handed, limit=room + len(self._ahead), alerts_only=True):
            if row.seq not in self._ahead and len(self._inflight) < WINDOW:
                self._publish_event(row)
                self._ahead.add(row.seq)
        now = time.monotonic()
        rate = self.gw.publish_rate
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        room = min(WINDOW - len(self._inflight), int(self._tokens))
        limit = max(room, 0) + len(self._ahead)
        rows = self.outbox.unpublished(after_seq=self._handed, limit=limit)
        self._throttled = int(self._tokens) < WINDOW - len(self._inflight) and len(rows) >= limit
        for row in rows:
            if room <= 0:
                break
            self._handed = row.seq
            if row.seq in self._ahead:
                self._ahead.discard(row.seq)
                continue
            self._publish_event(row)
            room -= 1
            self._tokens -= 1
        self._ahead = {seq for seq in self._ahead if seq > self._handed}  # passed (or published) meanwhile
        if not self._clips_inflight:
            for event_id, clip in self.outbox.unpublished_clips(CLIP_WINDOW):
                info = self.client.publish(self._t("audio", event_id), clip, qos=1)
                self._clips_inflight[info.mid] = event_id

    def _publish_event(self, row: OutboxRow) -> None:
        info = self.client.publish(self._t("event", row.kind), row.payload, qos=1)
        self._inflight[info.mid] = row.seq

    def _run_jobs(self) -> None:
        while True:
            try:
                verb, body = self._jobs.get_nowait()
            except queue.Empty:
                return
            if verb == "state":
                self._send_state()
            elif verb == "replay":
                self._replay(body)
            elif self.on_command is not None:
                self.on_command(verb, body)
            else:
                log.warning("command %r not understood by this gateway", verb)

    def _replay(self, body: dict[str, Any]) -> None:
        first, last = body.get("from_seq"), body.get("to_seq")
        if not (isinstance(first, int) and isinstance(last, int) and 0 < first <= last):
            log.warning("replay ignored: expected positive from_seq <= to_seq, got %r", body)
            return
        rows = self.outbox.range(first, last)
        for row in rows:
            self.client.publish(self._t("event", row.kind), row.payload, qos=1)
        missing = (last - first + 1) - len(rows)
        log.info("replayed seq %d..%d: %d events%s", first, last, len(rows),
                 f", {missing} no longer held" if missing else "")

    def _send_state(self) -> None:
        state = {
            "online": True,
            "gateway": self.gw.name,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "outbox": self.outbox.stats(),
            **self.health(),
        }
        self.client.publish(self._t("state"), json.dumps(state), qos=1, retain=True)

    def _offline_payload(self, reason: str) -> str:
        return json.dumps({"online": False, "gateway": self.gw.name, "reason": reason})
