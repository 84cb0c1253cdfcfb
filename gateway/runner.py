"""The gateway: runs the configured drivers, applies each channel's rules, and feeds the outbox.

    SerialDriver(s) --outputs--> Gateway.submit --rules--> Outbox.append --> OutboxPublisher --> MQTT

``pttbridge gateway -c FILE`` builds one of these and runs it until SIGINT/SIGTERM.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from config.schema import AudioDriverConfig, ChannelConfig, Config, ConfigError, Rule, SerialDriverConfig
from drivers.audio.driver import AudioDriver
from drivers.base import Output, Rejected
from drivers.registry import UnknownProtocol, create_audio_decoder, create_protocol
from drivers.serial_port import SerialDriver
from gateway.events import UNIT_RE, Decoded, Event, Kind
from gateway.outbox import Outbox
from gateway.publisher import OutboxPublisher

log = logging.getLogger(__name__)


def _value(d: Decoded, key: str) -> Any:
    return str(d.kind) if key == "kind" else d.unit if key == "unit" else d.detail.get(key)


def rule_matches(rule: Rule, d: Decoded) -> re.Match[str] | None:
    """The last regular-expression match (for the unit template), or a dummy match; None: no match."""
    for key, want in rule.when.items():
        got = _value(d, key)
        if key == "unit":
            if got is None or not fnmatch.fnmatchcase(got, str(want)):
                return None
            continue
        wanted = want if isinstance(want, list) else [want]
        if got not in wanted and str(got) not in [str(w) for w in wanted]:
            return None
    found = _ALWAYS.match("")
    for key, pattern in rule.match.items():
        got = _value(d, key)
        m = re.fullmatch(pattern, str(got)) if got is not None else None
        if m is None:
            return None
        found = m
    return found


_ALWAYS = re.compile("")


def apply_rules(rules: list[Rule], d: Decoded) -> Decoded:
    """The first matching rule decides what the decoded thing means on this channel."""
    for rule in rules:
        m = rule_matches(rule, d)
        if m is None:
            continue
        unit = d.unit
        detail = {**d.detail, "rule": rule.label or rule.kind, "decoded_kind": str(d.kind)}
        if rule.unit is not None:
            made = rule.unit.format(m.group(0), *m.groups(""), **m.groupdict(""))
            if UNIT_RE.match(made):
                unit = made
            else:  # the alert still goes out; the technician sees why it has no unit
                detail["unit_error"] = f"rule made {made!r}, not a unit identity"
        return Decoded(kind=Kind(rule.kind), time=d.time, unit=unit, position=d.position, detail=detail)
    return d


class Gateway:
    def __init__(self, config: Config, *, on_event: Callable[[Event], None] | None = None) -> None:
        self.config = config
        self.gw = config.require_gateway()
        self.outbox = Outbox(config.outbox_path(), self.gw.name)
        self.on_event = on_event
        self.rejected = 0
        self._lock = threading.Lock()
        self.drivers: list[tuple[str, SerialDriver | AudioDriver]] = []
        audio: dict[tuple[str, int, int], AudioDriver] = {}  # one capture stream per device
        for ci, channel in enumerate(config.channels):
            for di, dcfg in enumerate(channel.drivers):
                if isinstance(dcfg, AudioDriverConfig):
                    self._attach_audio(audio, ci, channel, di, dcfg)
                else:
                    self.drivers.append((channel.name, self._build_driver(ci, channel, di, dcfg)))
        self.publisher = OutboxPublisher(self.outbox, config.mqtt, self.gw, self.health)

    def _attach_audio(
        self, streams: dict[tuple[str, int, int], AudioDriver], ci: int, channel: ChannelConfig, di: int,
        d: AudioDriverConfig,
    ) -> None:
        key = f"channels[{ci}].drivers[{di}]"
        decoders = []
        for name in d.decoders:
            try:
                decoders.append(create_audio_decoder(name, None, d.options.get(name)))
            except UnknownProtocol as exc:
                raise ConfigError(f"{key}.decoders: {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"{key}.options.{name}: {exc}") from None
        replay = d.device.startswith(("wav:", "file:")) or d.device.endswith(".wav")
        spec = d.device if replay else f"device:{d.device}"
        stream = (spec, d.rate, d.channels)
        if stream not in streams:
            streams[stream] = AudioDriver(
                f"audio:{d.device}", spec, rate=d.rate, channels=d.channels, realtime=True, loop=d.loop,
                on_health=lambda: self.publisher.publish_state(),
            )
            self.drivers.append((channel.name, streams[stream]))
        streams[stream].attach(f"{channel.name}/{d.name or 'audio'}", d.input, decoders, self._sink(channel))

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
            on_health=lambda: self.publisher.publish_state(),
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
