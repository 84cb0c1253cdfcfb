"""The gateway: runs the configured drivers, applies each channel's rules, and feeds the outbox.

    SerialDriver(s) --outputs--> Gateway.submit --rules--> Outbox.append --> OutboxPublisher --> MQTT

``pttbridge gateway -c FILE`` builds one of these and runs it until SIGINT/SIGTERM.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from config.schema import (
    AudioDriverConfig,
    ChannelConfig,
    Config,
    ConfigError,
    ModbusDriverConfig,
    Rule,
    SerialDriverConfig,
    SerialLinesConfig,
)
from drivers.audio.driver import AudioDriver
from drivers.audio.playback import open_output
from drivers.audio.recorder import CallEnded, CallMark, CallRecorder, CallStarted, flac
from drivers.base import Output, Rejected
from drivers.modbus import ModbusDriver, ModbusPoint
from drivers.ptt import CoilPtt, Ptt, SerialPtt, VoxPtt
from drivers.registry import UnknownProtocol, create_audio_decoder, create_protocol
from drivers.serial_lines import LineWatcher, SerialLinesDriver
from drivers.serial_port import SerialDriver
from gateway.answer import AnswerError, emergency_ack_burst
from gateway.events import UNIT_RE, Decoded, Event, Kind
from gateway.outbox import Outbox
from gateway.publisher import OutboxPublisher
from gateway.transmit import Transmitter

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


class _Transmission:
    """The transmission open on a channel, as far as the gateway knows it."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.units: list[str] = []  # identified during it (PTT ID before or after, an emergency)
        self.carried = False  # something was decoded in it: a call, however short


class Gateway:
    def __init__(self, config: Config, *, on_event: Callable[[Event], None] | None = None) -> None:
        self.config = config
        self.gw = config.require_gateway()
        self.outbox = Outbox(config.outbox_path(), self.gw.name)
        self.on_event = on_event
        self.rejected = 0
        self._lock = threading.Lock()
        self._open: dict[str, _Transmission] = {}  # channel -> the transmission being received
        self._recorders: dict[str, CallRecorder] = {}  # channel -> its recorder (one per channel)
        self.transmitters: dict[str, Transmitter] = {}
        self.drivers: list[tuple[str, SerialDriver | AudioDriver | ModbusDriver | SerialLinesDriver]] = []
        audio: dict[tuple[str, int, int], AudioDriver] = {}  # one capture stream per device
        for ci, channel in enumerate(config.channels):
            for di, dcfg in enumerate(channel.drivers):
                if isinstance(dcfg, AudioDriverConfig):
                    self._attach_audio(audio, ci, channel, di, dcfg)
                elif isinstance(dcfg, ModbusDriverConfig):
                    self.drivers.append((channel.name, self._build_modbus(ci, channel, di, dcfg)))
                elif isinstance(dcfg, SerialLinesConfig):
                    watcher = LineWatcher(dcfg.points, invert=dcfg.invert, debounce_s=dcfg.debounce_ms / 1000)
                    self.drivers.append((channel.name, SerialLinesDriver(
                        f"{channel.name}/{dcfg.name or 'lines'}", dcfg.port, watcher, self._sink(channel),
                        poll_s=dcfg.poll_ms / 1000, on_health=lambda: self.publisher.publish_state())))
                else:
                    self.drivers.append((channel.name, self._build_driver(ci, channel, di, dcfg)))
        for ci, channel in enumerate(config.channels):
            if channel.transmit is not None:
                self.transmitters[channel.name] = self._build_transmitter(ci, channel)
            if channel.record is not None and channel.name not in self._recorders:
                raise ConfigError(f"channels[{ci}].record: the channel has no audio driver to record from")
        self.publisher = OutboxPublisher(self.outbox, config.mqtt, self.gw, self.health, on_command=self._command)

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
        recorder = None
        rec = channel.record
        if rec is not None and channel.name not in self._recorders:  # the channel's first audio input
            recorder = self._recorders[channel.name] = CallRecorder(
                detect=rec.detect, threshold_dbfs=rec.threshold_dbfs, hang_s=rec.hang_ms / 1000,
                min_s=rec.min_ms / 1000, pre_roll_s=rec.pre_roll_ms / 1000, max_s=rec.max_s)
        streams[stream].attach(f"{channel.name}/{d.name or 'audio'}", d.input, decoders, self._sink(channel),
                               recorder=recorder, on_call=self._calls(channel) if recorder else None)

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

    def _build_modbus(self, ci: int, channel: ChannelConfig, di: int, d: ModbusDriverConfig) -> ModbusDriver:
        points = []
        for pi, p in enumerate(d.points):
            try:
                points.append(ModbusPoint(**p.model_dump()))
            except ValueError as exc:  # the schema checks the same; this names the key if they ever differ
                raise ConfigError(f"channels[{ci}].drivers[{di}].points[{pi}].{exc}") from None
        serial_options = {"baudrate": d.baudrate, "bytesize": d.bytesize, "parity": d.parity, "stopbits": d.stopbits}
        return ModbusDriver(
            f"{channel.name}/{d.name or 'modbus'}",
            d.url,
            points,
            self._sink(channel),  # through the channel's rules, like every other driver
            slave=d.slave,
            poll_interval_s=d.poll_interval_s,
            timeout_s=d.timeout_s,
            serial_options=serial_options,
            on_health=lambda: self.publisher.publish_state(),
        )

    def _build_transmitter(self, ci: int, channel: ChannelConfig) -> Transmitter:
        t = channel.transmit
        assert t is not None
        key = f"channels[{ci}].transmit"
        ptt: Ptt
        if t.ptt.method == "serial":
            ptt = SerialPtt(t.ptt.port, t.ptt.line, active_low=t.ptt.active_low)
        elif t.ptt.method == "modbus":
            coil = t.ptt.coil
            found = [drv for _, drv in self.drivers if isinstance(drv, ModbusDriver)
                     and drv.name.split("/", 1)[1] == t.ptt.driver]
            if not found:
                raise ConfigError(f"{key}.ptt.driver: no modbus driver named {t.ptt.driver!r} in this gateway")
            modbus = found[0]
            target: str | int = int(coil) if coil.isdigit() else coil  # a point's name, or a coil address
            ptt = CoilPtt(f"{modbus.name}:{coil}", lambda on: modbus.write_coil(target, on))
        else:
            ptt = VoxPtt()
        device = t.device.replace("{data_dir}", str(self.config.data_dir))
        output = open_output(device, t.rate, channels=t.channels, output=t.output)
        return Transmitter(f"{channel.name}/tx", output, ptt, lead_in_s=t.lead_in_ms / 1000, tail_s=t.tail_ms / 1000,
                           timeout_s=t.timeout_s)

    def _sink(self, channel: ChannelConfig) -> Callable[[list[Output]], None]:
        cor = channel.record.cor_point if channel.record is not None and channel.record.detect == "cor" else None

        def submit(outputs: list[Output]) -> None:
            for item in outputs:
                if isinstance(item, Rejected):
                    with self._lock:
                        self.rejected += 1
                    continue
                decoded = apply_rules(channel.rules, item)
                if cor is not None and decoded.kind == Kind.IO and decoded.detail.get("point") == cor:
                    self._recorders[channel.name].carrier(bool(decoded.detail.get("value")))
                self._submit(channel.name, self._in_transmission(channel.name, decoded))
            self.publisher.wake()

        return submit

    def _submit(self, channel: str, decoded: Decoded, *, event_id: str | None = None,
                clip: bytes | None = None) -> Event:
        event = self.outbox.append(decoded, channel, event_id=event_id, clip=clip)
        log.info("%s %s %s seq=%d", channel, event.kind, event.unit or "-", event.seq)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def _in_transmission(self, channel: str, d: Decoded) -> Decoded:
        """What is decoded during a transmission names it (``detail.call``), and may name its unit."""
        with self._lock:
            tx = self._open.get(channel)
            if tx is None or d.kind == Kind.IO:
                return d
            tx.carried = True
            if d.unit is not None and d.kind in (Kind.PTT, Kind.ALERT, Kind.STATUS):
                tx.units.append(d.unit)
        return dataclasses.replace(d, detail={**d.detail, "call": tx.call_id})

    def _calls(self, channel: ChannelConfig) -> Callable[[list[CallMark]], None]:
        detect = channel.record.detect if channel.record is not None else "vad"

        def on_call(marks: list[CallMark]) -> None:
            for mark in marks:
                if isinstance(mark, CallStarted):
                    with self._lock:
                        self._open[channel.name] = _Transmission(mark.call_id)
                    continue
                with self._lock:
                    tx = self._open.pop(channel.name, None) or _Transmission(mark.call_id)
                if mark.short and not tx.carried:
                    log.debug("%s: %.2f s of activity, no transmission", channel.name, mark.duration_s)
                    continue
                decoded, clip = self._call_event(mark, tx, detect)
                self._submit(channel.name, decoded, event_id=mark.call_id, clip=clip)
            self.publisher.wake()

        return on_call

    @staticmethod
    def _call_event(mark: CallEnded, tx: _Transmission, detect: str) -> tuple[Decoded, bytes]:
        clip = flac(mark.samples, mark.rate)
        unit = tx.units[-1] if tx.units else None  # a post-key-up ID is the last word on who spoke
        detail = {
            "protocol": detect,
            "duration_s": round(mark.duration_s, 3),
            "cut": mark.cut,
            "audio": {"codec": "flac", "rate": mark.rate, "bytes": len(clip),
                      "sha256": hashlib.sha256(clip).hexdigest(), "clip_start": mark.clip_start.isoformat(),
                      "clip_s": round(len(mark.samples) / mark.rate, 3)},
        }
        return Decoded(kind=Kind.CALL, time=mark.time, unit=unit, detail=detail), clip

    # --- commands from the bridge ----------------------------------------------------------------

    def _command(self, verb: str, body: dict[str, Any]) -> None:
        if verb == "ack_emergency":
            # Transmitting takes seconds: never on the publisher's thread, which keeps events flowing.
            threading.Thread(target=self._ack_emergency, args=(body,), name="ack-emergency", daemon=True).start()
        elif verb == "output":
            threading.Thread(target=self._set_output, args=(body,), name="output", daemon=True).start()
        else:
            log.warning("command %r not understood by this gateway", verb)

    def _set_output(self, body: dict[str, Any]) -> None:
        """Switch an output point (a coil of a Modbus module, by its point name), e.g. the beacon lamp."""
        point, value = body.get("point"), body.get("value")
        modules = [drv for _, drv in self.drivers if isinstance(drv, ModbusDriver) and point in drv.inputs.coils()]
        if not isinstance(point, str) or value not in (0, 1, True, False) or not modules:
            log.warning("output %r=%r: no such coil on this gateway's Modbus modules", point, value)
            return
        try:
            modules[0].write_coil(point, bool(value))
        except Exception as exc:  # the module's errors vary; the command's sender sees the state in health
            log.warning("output %s=%d failed: %s", point, int(bool(value)), exc)

    def _ack_emergency(self, body: dict[str, Any]) -> None:
        """Key the radio on the channel that heard the emergency and send the unit its acknowledgement;
        the result goes back to the bridge as an ``io`` event (through the outbox, so it is not lost)."""
        channel, unit = body.get("channel"), body.get("unit")
        known = {c.name for c in self.config.channels}
        detail: dict[str, Any] = {"protocol": "tx", "output": "ptt", "command": "ack_emergency",
                                  "incident": body.get("incident"), "request": body.get("request"),
                                  "operator": body.get("operator")}
        tx = self.transmitters.get(channel) if isinstance(channel, str) else None
        if channel not in known or not isinstance(unit, str) or not UNIT_RE.match(unit):
            detail.update(result="failed", reason=f"no channel {channel!r} here, or {unit!r} is no unit")
        elif tx is None:
            detail.update(result="no_transmit_path", reason=f"channel {channel} has no transmit section")
        else:
            try:
                signalling = body.get("signalling")
                burst = emergency_ack_burst(unit, tx.output.rate, signalling if isinstance(signalling, dict) else None)
            except AnswerError as exc:
                detail.update(result="unsupported", reason=str(exc))
            else:
                report = tx.send(burst, tx.output.rate, f"emergency ack to {unit}")
                detail.update(result=report.result, reason=report.reason, keyed_s=report.keyed_s, ptt=tx.ptt.name)
        log.info("ack_emergency to %s on %s: %s %s", unit, channel, detail["result"], detail["reason"])
        where = channel if isinstance(channel, str) and channel in known else "gateway"
        named = unit if isinstance(unit, str) and UNIT_RE.match(unit) else None
        self._submit(where, Decoded(kind=Kind.IO, time=datetime.now(UTC), unit=named, detail=detail))
        self.publisher.wake()

    def health(self) -> dict[str, Any]:
        return {"radios": {drv.name: drv.snapshot() for _, drv in self.drivers}, "rejected": self.rejected,
                "transmitters": {name: tx.snapshot() for name, tx in self.transmitters.items()}}

    def start(self) -> None:
        self.publisher.start()
        for _, drv in self.drivers:
            drv.start()

    def stop(self) -> None:
        for _, drv in self.drivers:
            drv.stop()
        self.publisher.stop()
        for tx in self.transmitters.values():
            tx.close()
        self.outbox.close()
