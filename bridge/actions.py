"""What passes between the bridge's core and its MQTT shell (bridge/core.py, bridge/service.py).

    shell --Inbound--> core --actions--> shell

An :class:`Inbound` is one message as the broker delivered it. An action is what the core decided
should happen outside it, as data: a message to publish (:class:`PublishUnit`, :class:`PublishIncident`,
:class:`SendPlan`, :class:`RequestReplay`, :class:`AnswerRadio`, :class:`CommandGateway`,
:class:`SetOutput`, :class:`AnswerRefused`), messages to acknowledge to the broker (:class:`AckMessages`),
evidence to fetch (:class:`FetchEvidence`), a case to hand to an outside system (:class:`TransferCase`).
The shell carries them out in order: whatever a batch published while it was handled goes before its
acknowledgement, the units and incidents it changed after it.

Every publish names its topic as levels after the prefix; levels come from received text (a unit, a
gateway's name), so :func:`topic_refusal` says what the shell must not send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from bridge.cameras.evidence import EvidenceRequest
from bridge.transfer import TransferRequest
from bridge.views import Change, IncidentView, UnitView
from config.mqtt import topic_problem

BULK, ALERTS = 0, 1  # the bridge's two MQTT clients (lanes)


@dataclass(frozen=True, slots=True)
class Inbound:
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


# --- what to publish -------------------------------------------------------------------------------


class Publish:
    """A message for the broker: topic levels after the prefix, a JSON body, QoS and retain."""

    __slots__ = ()
    qos: ClassVar[int] = 1
    retain: ClassVar[bool] = False

    @property
    def levels(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def body(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class PublishUnit(Publish):
    """``bridge/unit/{unit}``: a unit's last state, retained (QoS 0: the next one replaces it)."""

    unit: UnitView
    qos: ClassVar[int] = 0
    retain: ClassVar[bool] = True

    @property
    def levels(self) -> tuple[str, ...]:
        return ("bridge", "unit", self.unit.unit)

    @property
    def body(self) -> dict[str, Any]:
        return self.unit.to_json()


@dataclass(frozen=True, slots=True)
class PublishIncident(Publish):
    """``bridge/incident/{id}``: the incident after a change, with its cameras, detections and evidence."""

    incident: IncidentView
    change: Change | str
    correlation: dict[str, Any] | None = None

    @property
    def levels(self) -> tuple[str, ...]:
        return ("bridge", "incident", str(self.incident.id))

    @property
    def body(self) -> dict[str, Any]:
        body = self.incident.to_json(self.change)
        if self.correlation is not None:
            body.update(self.correlation)
        return body


@dataclass(frozen=True, slots=True)
class SendPlan(Publish):
    """``gw/{gateway}/config``: a gateway's channel plan, retained."""

    gateway: str
    plan: dict[str, Any]
    retain: ClassVar[bool] = True

    @property
    def levels(self) -> tuple[str, ...]:
        return ("gw", self.gateway, "config")

    @property
    def body(self) -> dict[str, Any]:
        return self.plan


@dataclass(frozen=True, slots=True)
class RequestReplay(Publish):
    """``gw/{gateway}/cmd/replay``: the gateway is asked for ``first..last`` of its seq again."""

    gateway: str
    first: int
    last: int

    @property
    def levels(self) -> tuple[str, ...]:
        return ("gw", self.gateway, "cmd", "replay")

    @property
    def body(self) -> dict[str, Any]:
        return {"from_seq": self.first, "to_seq": self.last}


@dataclass(frozen=True, slots=True)
class AnswerRadio(Publish):
    """``gw/{gateway}/cmd/ack_emergency``: the gateway that heard an emergency acknowledges it to the radio."""

    command: dict[str, Any]  # incident, unit, gateway, channel, operator, signalling, request

    @property
    def levels(self) -> tuple[str, ...]:
        return ("gw", str(self.command["gateway"]), "cmd", "ack_emergency")

    @property
    def body(self) -> dict[str, Any]:
        return self.command


@dataclass(frozen=True, slots=True)
class CommandGateway(Publish):
    """``gw/{gateway}/cmd/{verb}``: a dispatch to a unit's radio (``dispatch``) or a check on it
    (``radio_check``), by the gateway that heard the unit last (gateway/dispatch.py has the contract)."""

    gateway: str
    verb: str  # dispatch | radio_check
    command: dict[str, Any]  # request, case, unit, channel, operator; text, speech for a dispatch

    @property
    def levels(self) -> tuple[str, ...]:
        return ("gw", self.gateway, "cmd", self.verb)

    @property
    def body(self) -> dict[str, Any]:
        return self.command


@dataclass(frozen=True, slots=True)
class SetOutput(Publish):
    """``gw/{gateway}/cmd/output``: one of a gateway's outputs on or off (the command-center beacon)."""

    gateway: str
    point: str
    value: int

    @property
    def levels(self) -> tuple[str, ...]:
        return ("gw", self.gateway, "cmd", "output")

    @property
    def body(self) -> dict[str, Any]:
        return {"point": self.point, "value": self.value}


@dataclass(frozen=True, slots=True)
class AnswerRefused(Publish):
    """``bridge/refused``: why a console's command was refused (it knows its ``request`` id)."""

    answer: dict[str, Any]  # the well-formed fields that identify the command (bridge.commands.echo)
    reason: str

    @property
    def levels(self) -> tuple[str, ...]:
        return ("bridge", "refused")

    @property
    def body(self) -> dict[str, Any]:
        return {**self.answer, "reason": self.reason}


@dataclass(slots=True)
class Changes:
    """What handling a batch changed, to be published once the batch is acknowledged."""

    units: dict[str, UnitView] = field(default_factory=dict)
    incidents: list[tuple[IncidentView, str]] = field(default_factory=list)  # in order: each change is news


# --- everything else -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckMessages:
    """Acknowledge these messages to the broker: everything they carried is committed (or refused for good)."""

    messages: tuple[Inbound, ...]


@dataclass(frozen=True, slots=True)
class TransferCase:
    """Hand a case to an outside system (worker threads, bridge/transfer.py; news comes back to the core)."""

    request: TransferRequest


@dataclass(frozen=True, slots=True)
class FetchEvidence:
    """Fetch a camera's snapshot or clip for an incident (worker threads; the result comes back to the core)."""

    request: EvidenceRequest


Action = PublishUnit | PublishIncident | SendPlan | RequestReplay | AnswerRadio | CommandGateway | SetOutput \
    | AnswerRefused | AckMessages | FetchEvidence | TransferCase


@lru_cache(maxsize=16384)  # the same units' and incidents' topics, published again and again
def topic_refusal(levels: tuple[str, ...], full: str) -> str | None:
    """Why a topic must not be published (``full``: the topic with its prefix), or None. Mosquitto answers a
    malformed topic by dropping the connection; a level with a '/' inside would be other levels."""
    problem = next((f"level {i}: a '/' inside it" for i, level in enumerate(levels) if "/" in level), None)
    return problem or topic_problem(full)
