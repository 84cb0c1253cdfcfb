"""The gateway: runs the configured drivers, applies each channel's rules, and feeds the outbox.

    SerialDriver(s) --outputs--> Gateway.submit --rules--> Outbox.append --> OutboxPublisher --> MQTT

``pttbridge gateway -c FILE`` builds one of these and runs it until SIGINT/SIGTERM.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable
from typing import Any

from config.schema import ChannelConfig, Config, ConfigError, Rule, SerialDriverConfig
from drivers.base import Output, Rejected
from drivers.registry import UnknownProtocol, create_protocol
from drivers.serial_port import SerialDriver
from gateway.events import Decoded, Event, Kind
from gateway.outbox import Outbox
from gateway.publisher import OutboxPublisher

log = logging.getLogger(__name__)


def rule_matches(rule: Rule, d: Decoded) -> bool:
    for key, want in rule.when.items():
        if key == "kind":
            got: Any = str(d.kind)
        elif key == "unit":
            if d.unit is None or not fnmatch.fnmatchcase(d.unit, str(want)):
                return False
            continue
        else:
            got = d.detail.get(key)
        wanted = want if isinstance(want, list) else [want]
        if got not in wanted and str(got) not in [str(w) for w in wanted]:
            return False
    return True


def apply_rules(rules: list[Rule], d: Decoded) -> Decoded:
    """The first matching rule decides what the decoded thing means on this channel."""
    for rule in rules:
        if rule_matches(rule, d):
            detail = {**d.detail, "rule": rule.label or rule.kind, "decoded_kind": str(d.kind)}
            return Decoded(kind=Kind(rule.kind), time=d.time, unit=d.unit, position=d.position, detail=detail)
    return d


class Gateway:
    def __init__(self, config: Config, *, on_event: Callable[[Event], None] | None = None) -> None:
        self.config = config
        self.gw = config.require_gateway()
        self.outbox = Outbox(config.outbox_path(), self.gw.name)
        self.on_event = on_event
        self.rejected = 0
        self._lock = threading.Lock()
        self.drivers: list[tuple[str, SerialDriver]] = []
        for ci, channel in enumerate(config.channels):
            for di, dcfg in enumerate(channel.drivers):
                self.drivers.append((channel.name, self._build_driver(ci, channel, di, dcfg)))
        self.publisher = OutboxPublisher(self.outbox, config.mqtt, self.gw, self.health)

    def _build_driver(self, ci: int, channel: ChannelConfig, di: int, d: SerialDriverConfig) -> SerialDriver:
        key = f"channels[{ci}].drivers[{di}]"
        try:
            decoder = create_protocol(d.protocol, d.options)
        except UnknownProtocol as exc:
            raise ConfigError(f"{key}.protocol: {exc}") from None
        except ValueError as exc:
            # Decoders name bad options as "options.x.y: ..." (several joined by "; "); others just say what.
            msg = str(exc)
            if msg.startswith("options."):
                raise ConfigError("\n".join(f"{key}.{part}" for part in msg.split("; "))) from None
            raise ConfigError(f"{key}.options: {msg}") from None
        name = f"{channel.name}/{d.name or d.protocol}"
        serial_options = {
            "baudrate": d.baudrate,
            "bytesize": d.bytesize,
            "parity": d.parity,
            "stopbits": d.stopbits,
            "rtscts": d.rtscts,
        }
        return SerialDriver(
            name,
            d.port,
            decoder,
            self._sink(channel),
            serial_options=serial_options,
            on_health=lambda _drv: self.publisher.publish_state(),
        )

    def _sink(self, channel: ChannelConfig) -> Callable[[list[Output]], None]:
        def submit(outputs: list[Output]) -> None:
            for item in outputs:
                if isinstance(item, Rejected):
                    with self._lock:
                        self.rejected += 1
                    continue
                event = self.outbox.append(apply_rules(channel.rules, item), channel.name)
                log.info("%s %s %s seq=%d", channel.name, event.kind, event.unit or "-", event.seq)
                if self.on_event is not None:
                    self.on_event(event)
            self.publisher.wake()

        return submit

    def health(self) -> dict[str, Any]:
        return {"radios": {drv.name: drv.snapshot() for _, drv in self.drivers}, "rejected": self.rejected}

    def start(self) -> None:
        self.publisher.start()
        for _, drv in self.drivers:
            drv.start()

    def stop(self) -> None:
        for _, drv in self.drivers:
            drv.stop()
        self.publisher.stop()
        self.outbox.close()
