"""The console's MQTT connection: follows the bridge and the gateways, and carries commands to the bridge.

    subscribes   {prefix}/bridge/incident/+    incident after each change (QoS 1)
                 {prefix}/bridge/unit/+        unit state (retained: a new console gets every unit at once)
                 {prefix}/gw/+/state           gateway online/offline (retained, Last Will on loss), and
                                               its health: drivers, levels, outbox, ports (kept in
                                               :attr:`BridgeLink.gateways` for the health screen)
                 {prefix}/gw/+/levels          the gateways' audio input levels, every second (QoS 0)
                 {prefix}/bridge/refused       a command the bridge refused, with why: shown to the
                                               operator whose console sent it (its ``request`` id)
    publishes    {prefix}/bridge/cmd           {"action": "ack"|"resolve"|"note", "incident": id,
                                                "operator": name, "request": id, "resolution"?: ..., ...}

paho runs its own network thread (``loop_start``) and reconnects with backoff by itself; every callback
only decodes and posts a Textual message, which is thread-safe. A malformed payload is logged and
dropped, never raised into paho's thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from textual.message import Message

from bridge.views import IncidentView, PayloadError, UnitView
from config.mqtt import make_client, topic
from config.schema import MqttConfig
from console.clock import SYSTEM_CLOCK, Clock
from console.messages import BrokerStatus, CommandRefused, GatewayChanged, IncidentChanged, UnitChanged
from gateway.events import load_json

log = logging.getLogger(__name__)


class NotConnected(RuntimeError):
    """A command cannot be sent: the broker is away."""


@dataclass(frozen=True, slots=True)
class GatewayReport:
    """A gateway's last state payload as this console received it."""

    name: str
    online: bool
    state: dict[str, Any]
    received_at: datetime
    since: datetime  # when this console first saw it in its present online/offline state


class GatewayReports:
    """The gateways' last state payloads, written by paho's thread and read by the health screen.

    The screen polls :attr:`version` rather than being sent a message per payload: a burst of states
    (every gateway at once after a reconnect) is then one repaint, and nothing passes through the app.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._reports: dict[str, GatewayReport] = {}
        self.version = 0

    def note(self, name: str, state: dict[str, Any], now: datetime | None = None) -> GatewayReport:
        now = now or self.clock.now()
        online = state.get("online") is True
        with self._lock:
            held = self._reports.get(name)
            since = held.since if held is not None and held.online == online else now
            report = GatewayReport(name, online, state, now, since)
            self._reports[name] = report
            self.version += 1
        return report

    def levels(self, name: str, radios: dict[str, Any]) -> None:
        """A gateway's live audio levels (``gw/{name}/levels``), written into its last state."""
        with self._lock:
            held = self._reports.get(name)
            if held is None or not isinstance(held.state.get("radios"), dict):
                return
            state = {**held.state, "radios": {k: dict(v) if isinstance(v, dict) else v
                                              for k, v in held.state["radios"].items()}}
            for driver, levels in radios.items():
                drv = state["radios"].get(driver)
                if not isinstance(drv, dict) or not isinstance(drv.get("radios"), dict) or not isinstance(levels, dict):
                    continue
                drv["radios"] = {r: ({**v, "level": levels[r]} if r in levels and isinstance(v, dict) else v)
                                 for r, v in drv["radios"].items()}
            self._reports[name] = GatewayReport(name, held.online, state, held.received_at, held.since)
            self.version += 1

    def all(self) -> dict[str, GatewayReport]:
        with self._lock:
            return dict(self._reports)


class BridgeLink:
    def __init__(self, cfg: MqttConfig, post: Callable[[Message], object], *, name: str = "console",
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.cfg = cfg
        self._post = post
        self._prefix = cfg.prefix + "/"
        # Unique per process: two consoles of one operator must not throw each other off the broker.
        client_id = f"pttbridge-console-{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"[:64]
        # A clean session: what happened while away is read from the database on reconnect instead.
        self.client = make_client(cfg, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.gateways = GatewayReports(clock)
        self._asked: dict[str, str] = {}  # request id -> what it asked, for the refusals of this console
        self._lock = threading.Lock()  # _asked: written by the app's thread, read by paho's


    def start(self) -> None:
        # connect_async + loop_start: the first connection is retried like any later one, so a console
        # started before its broker comes up on its own.
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.on_disconnect = None  # leaving is no news
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected())

    def send(self, action: str, incident: int, operator: str, **fields: str) -> None:
        """A command about an incident to the bridge (QoS 1); see :meth:`command`."""
        self.command({"action": action, "incident": incident, "operator": operator, **fields},
                     f"{action} #{incident}")

    def command(self, body: dict[str, Any], what: str) -> None:
        """A command to the bridge (QoS 1), with a request id: if the bridge refuses it, a
        :class:`CommandRefused` names ``what`` and why. Refused here while the broker is away: a dispatcher
        must not believe an acknowledgement went out that may reach the bridge minutes later."""
        if not self.connected:
            raise NotConnected("the broker is offline: nothing was sent")
        request = uuid.uuid4().hex[:16]
        body = {**body, "request": request}
        info = self.client.publish(topic(self.cfg, "bridge", "cmd"), json.dumps(body, separators=(",", ":")), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotConnected(f"the broker did not take the command: {mqtt.error_string(info.rc)}")
        with self._lock:
            self._asked[request] = what
            while len(self._asked) > 256:  # the oldest can no longer be waiting for an answer
                del self._asked[next(iter(self._asked))]
        log.info("sent %s", {k: v for k, v in body.items() if k != "channels"})

    # --- paho's network thread ---------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: mqtt.ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            log.warning("broker %s refused the console: %s", self.cfg.url, rc)
            self._post(BrokerStatus(False, f"refused: {rc}"))
            return
        client.subscribe([
            (topic(self.cfg, "bridge", "incident", "+"), 1),
            (topic(self.cfg, "bridge", "unit", "+"), 1),
            (topic(self.cfg, "gw", "+", "state"), 1),
            (topic(self.cfg, "gw", "+", "levels"), 0),
            (topic(self.cfg, "bridge", "refused"), 1),
        ])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        # Online once subscribed: the database is read again then, and news published before the broker
        # took the SUBSCRIBE would be in neither.
        self._post(BrokerStatus(True))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: mqtt.ReasonCode, _p: Any) -> None:
        log.warning("lost the broker %s: %s", self.cfg.url, rc)
        self._post(BrokerStatus(False, str(rc)))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        levels = msg.topic[len(self._prefix):].split("/") if msg.topic.startswith(self._prefix) else []
        payload = bytes(msg.payload)
        if not payload:
            return  # a retained message being cleared
        try:
            body = load_json(payload)
            if levels[:2] == ["bridge", "incident"]:
                self._post(IncidentChanged(IncidentView.from_json(body), IncidentView.change_of(body)))
            elif levels[:2] == ["bridge", "unit"]:
                self._post(UnitChanged(UnitView.from_json(body)))
            elif levels == ["bridge", "refused"]:
                request = body.get("request") if isinstance(body, dict) else None
                with self._lock:
                    what = self._asked.pop(request, None) if isinstance(request, str) else None
                if what is not None:  # another console's refusal is not news here
                    self._post(CommandRefused(what, str(body.get("reason", "no reason given"))))
            elif len(levels) == 3 and levels[0] == "gw" and levels[2] == "state":
                online = body.get("online") if isinstance(body, dict) else None
                if not isinstance(online, bool):
                    raise PayloadError(f"online: expected true or false, got {online!r}")
                self.gateways.note(levels[1], body)
                self._post(GatewayChanged(levels[1], online))
            elif len(levels) == 3 and levels[0] == "gw" and levels[2] == "levels":
                radios = body.get("radios") if isinstance(body, dict) else None
                if not isinstance(radios, dict):
                    raise PayloadError("radios: expected an object")
                self.gateways.levels(levels[1], radios)
        except (ValueError, PayloadError) as exc:  # JSON errors are ValueErrors too
            log.warning("ignored a message on %s: %s [%s]", msg.topic, exc, payload[:64].hex(" "))
