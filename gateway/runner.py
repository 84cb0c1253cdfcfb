"""The gateway: runs the configured drivers, applies each channel's rules, and feeds the outbox.

    I/O drivers --outputs--> Gateway.submit --rules--> Outbox.append --> OutboxPublisher --> MQTT

Each ``[[channels.drivers]]`` table is built by the I/O driver its ``type`` names in the registry
(``drivers/registry.py``: built in, or a plugin's entry point), so a new radio interface needs nothing here.

Commands from the bridge that transmit (``ack_emergency`` here; ``dispatch`` and ``radio_check`` in
:mod:`gateway.dispatch`) each run on a thread of their own and report their result as an ``io`` event.

The channels come from the configuration file until the bridge sends a channel plan (retained on
``gw/{gateway}/config``); a plan is applied while running, kept beside the outbox, and used at the next
start. The state reports the ``plan_version`` running (null: the file's channels) and ``plan_error``.

``pttbridge gateway -c FILE`` builds one of these and runs it until SIGINT/SIGTERM.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from config.private import private_file
from config.schema import ChannelConfig, Config, ConfigError, DriverTable, Rule, parse_config
from drivers.audio.playback import open_output
from drivers.audio.recorder import CallEnded, CallMark, CallRecorder, CallStarted, flac
from drivers.audio.workers import DecodePool
from drivers.base import Output, Rejected
from drivers.io import CallSink, DriverContext, IoDriver
from drivers.modbus import ModbusDriver
from drivers.ptt import CoilPtt, Ptt, SerialPtt, VoxPtt
from drivers.registry import UnknownIoDriver, io_driver_class
from drivers.serial_port import SerialDriver
from gateway.answer import AnswerError, emergency_ack_burst
from gateway.devices import visible_devices
from gateway.dispatch import Dispatcher
from gateway.events import Decoded, Event, Kind, is_unit
from gateway.metrics import serve_gateway_metrics
from gateway.outbox import Outbox
from gateway.publisher import OutboxPublisher
from gateway.transmit import Transmitter
from gateway.voice_stream import VoiceService
from monitoring.prometheus import MetricsServer

log = logging.getLogger(__name__)

COMMAND_JOIN_S = 5.0  # how long stop() waits for commands (a transmission under way) to report


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
            if is_unit(made):
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


Driver = IoDriver[Any, Any]
# (driver type, its share key): tables naming one device share one driver, e.g. one capture stream per
# sound device (IoDriver.share_key)
SharedKey = tuple[str, Hashable]


@dataclass
class _Built:
    """What one channel plan runs: drivers (in plan order), transmitters and recorders by channel."""

    drivers: list[tuple[str, Driver]] = field(default_factory=list)
    by_key: dict[tuple[str, int], Driver] = field(default_factory=dict)  # (channel, driver index) -> driver
    shared: dict[SharedKey, Driver] = field(default_factory=dict)
    shared_channels: dict[SharedKey, set[str]] = field(default_factory=dict)  # who is attached to each
    transmitters: dict[str, Transmitter] = field(default_factory=dict)
    recorders: dict[str, CallRecorder] = field(default_factory=dict)


def _driver_class(key: str, d: DriverTable) -> type[Driver]:
    try:
        return io_driver_class(d.type)
    except UnknownIoDriver as exc:  # the schema found it; a plugin can still fail to load here
        raise ConfigError(f"{key}.type: {exc}") from None


def _shared_key(key: str, d: DriverTable) -> SharedKey | None:
    share = _driver_class(key, d).share_key(d)
    return None if share is None else (d.type, share)


class PlanRefused(ConfigError):
    """A channel plan from the bridge that cannot run here; the old plan keeps running."""


class Gateway:
    def __init__(self, config: Config, *, on_event: Callable[[Event], None] | None = None) -> None:
        self.config = config
        self.gw = config.require_gateway()
        self.outbox = Outbox(config.outbox_path(), self.gw.name)
        self.on_event = on_event
        self.rejected = 0
        self.appended: Counter[str] = Counter()  # events by kind, for the metrics
        self.metrics: MetricsServer | None = None  # [gateway] metrics: the Prometheus endpoint
        self._lock = threading.Lock()
        self._commands: list[threading.Thread] = []  # commands running (see _spawn)
        self._open: dict[str, _Transmission] = {}  # channel -> the transmission being received
        self._channel_clear = threading.Condition(self._lock)  # a received transmission ended
        # The last plan the bridge sent is kept beside the outbox: the gateway starts from it when the
        # bridge (or the broker) is unreachable, and the file's channels are the plan until one comes.
        self.plan_path = config.outbox_path().parent / f"plan-{self.gw.name}.json"
        self.plan_version: int | None = None  # None: running the configuration file's channels
        self.plan_error: str | None = None  # why the last plan received was refused
        self._plan_lock = threading.Lock()  # one plan applied at a time, and never while stopping
        self._started = False
        self.channels: list[ChannelConfig] = list(config.channels)
        stored = self._stored_plan()
        if stored is not None:
            self.plan_version, self.channels = stored
        # Live voice (gateway/voice_stream.py): its own MQTT connection; fed each channel's receive audio.
        self.voice = VoiceService(config.mqtt, self.gw.name, transmitters=lambda: self.transmitters,
                                  submit=self._voice_event)
        # Audio decoding in worker processes (drivers/audio/workers.py); each starts at its first audio.
        radios = sum(d.type == "audio" for c in self.channels for d in c.drivers)
        workers = self.gw.decoding_workers(radios, os.cpu_count())
        if self.gw.decode_workers == "auto" and workers:
            log.info("%d audio radios: their decoders run in %d worker processes (decode_workers = auto)",
                     radios, workers)
        self.decode_pool = DecodePool(workers) if workers else None
        self._built = self._build(self.channels)
        self.voice.configure(self.channels, config.patches)
        self.publisher = OutboxPublisher(self.outbox, config.mqtt, self.gw, self.health, on_command=self._command,
                                         levels=self.levels)
        self.dispatcher = Dispatcher(self)

    # Views of the running plan; replaced whole when a plan is applied (readers on other threads see
    # either the old plan or the new one).
    @property
    def drivers(self) -> list[tuple[str, Driver]]:
        return self._built.drivers

    @property
    def transmitters(self) -> dict[str, Transmitter]:
        return self._built.transmitters

    @property
    def _recorders(self) -> dict[str, CallRecorder]:
        return self._built.recorders

    def _build(self, channels: list[ChannelConfig], old: _Built | None = None,
               changed: set[str] | None = None) -> _Built:
        """Drivers, transmitters and recorders for ``channels``; with ``old``, the parts of channels not
        in ``changed`` are taken over as they run, and so is every shared driver (a capture stream) whose
        channels did not change. Raises ConfigError naming the key; nothing built here has been started."""
        built = _Built()
        changed = changed or set()
        affected: set[SharedKey] = set()
        if old is not None:
            affected = {key for key, names in old.shared_channels.items() if names & changed}
            affected |= {k for ci, c in enumerate(channels) if c.name in changed for di, d in enumerate(c.drivers)
                         if (k := _shared_key(f"channels[{ci}].drivers[{di}]", d)) is not None}
        for ci, channel in enumerate(channels):
            kept = old is not None and channel.name not in changed
            for di, dcfg in enumerate(channel.drivers):
                key = f"channels[{ci}].drivers[{di}]"
                cls = _driver_class(key, dcfg)
                ctx = DriverContext(channel.name, key, self._sink(channel), self._health_changed,
                                    self._recording(built, channel), self.voice.tap_for(channel), self.decode_pool)
                share = cls.share_key(dcfg)
                if share is None:
                    if kept and old is not None and (channel.name, di) in old.by_key:
                        driver = old.by_key[(channel.name, di)]
                    else:
                        driver = cls.from_config(dcfg, ctx)
                    built.by_key[(channel.name, di)] = driver
                    built.drivers.append((channel.name, driver))
                    continue
                skey = (dcfg.type, share)
                built.shared_channels.setdefault(skey, set()).add(channel.name)
                if old is not None and skey in old.shared and skey not in affected:
                    if skey not in built.shared:  # runs on, with everything attached to it as it was
                        built.shared[skey] = old.shared[skey]
                        built.drivers.append((channel.name, old.shared[skey]))
                    if channel.name in old.recorders and channel.name not in built.recorders:
                        built.recorders[channel.name] = old.recorders[channel.name]
                    continue
                if skey not in built.shared:
                    built.shared[skey] = cls.from_config(dcfg, ctx)
                    built.drivers.append((channel.name, built.shared[skey]))
                built.shared[skey].attach(dcfg, ctx)
        for ci, channel in enumerate(channels):
            if channel.transmit is not None and channel.receive_only:
                # The radio must not transmit there (CHIRP's Duplex 'off'): its PTT is never opened, so that
                # nothing on this gateway, an acknowledgement or anything later, can key it.
                log.warning("channels[%d] %s is receive-only: its transmit section is not used", ci, channel.name)
            elif channel.transmit is not None:
                running = old.transmitters.get(channel.name) if old is not None else None
                # A coil PTT names another channel's Modbus driver, which may have been rebuilt.
                if running is not None and channel.name not in changed and channel.transmit.ptt.method != "modbus":
                    built.transmitters[channel.name] = running
                else:
                    built.transmitters[channel.name] = self._build_transmitter(ci, channel, built.drivers)
            if channel.record is not None and channel.name not in built.recorders:
                raise ConfigError(f"channels[{ci}].record: the channel has no audio driver to record from")
        return built

    def _recording(self, built: _Built, channel: ChannelConfig) -> Callable[[], tuple[CallRecorder, CallSink] | None]:
        """The channel's call recorder, for the first of its drivers that asks (its first audio input)."""

        def take() -> tuple[CallRecorder, CallSink] | None:
            rec = channel.record
            if rec is None or channel.name in built.recorders:
                return None
            recorder = built.recorders[channel.name] = CallRecorder(
                detect=rec.detect, threshold_dbfs=rec.threshold_dbfs, hang_s=rec.hang_ms / 1000,
                min_s=rec.min_ms / 1000, pre_roll_s=rec.pre_roll_ms / 1000, max_s=rec.max_s)
            return recorder, self._calls(channel)

        return take

    def _health_changed(self) -> None:
        self.publisher.publish_state()

    # --- channel plans from the bridge ------------------------------------------------------------

    def _stored_plan(self) -> tuple[int, list[ChannelConfig]] | None:
        try:
            body = json.loads(self.plan_path.read_text(encoding="utf-8"))
            return self._parse_plan(body, str(self.plan_path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # ConfigError and JSON errors are ValueErrors
            log.error("stored plan %s not used (%s); running the configuration's channels", self.plan_path, exc)
            return None

    @staticmethod
    def _parse_plan(body: Any, source: str) -> tuple[int, list[ChannelConfig]]:
        """``{"version": n, "channels": [...]}`` validated as the configuration file's channels are."""
        if not isinstance(body, dict):
            raise PlanRefused(f"{source}: expected a JSON object")
        version, channels = body.get("version"), body.get("channels")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise PlanRefused(f"{source}: version: expected a positive integer, got {version!r}")
        if not isinstance(channels, list):
            raise PlanRefused(f"{source}: channels: expected a list of channel tables")
        return version, parse_config({"channels": channels}, source).channels

    def apply_plan(self, body: dict[str, Any]) -> bool:
        """Run the plan the bridge sent (``gw/{gateway}/config``) without a restart: channels added are
        started, removed ones stopped, changed ones rebuilt; the rest runs on untouched. A plan that
        cannot run is refused (``plan_error`` in the state says why) and the old one keeps running."""
        with self._plan_lock:
            if not body:
                return False  # a retained plan being cleared: keep what runs
            try:
                version, channels = self._parse_plan(body, f"plan v{body.get('version')}")
                if version == self.plan_version and channels == self.channels:
                    return False  # the retained plan again, on a reconnect
                old = {c.name: c for c in self.channels}
                changed = {c.name for c in channels if old.get(c.name) != c}
                changed |= set(old) - {c.name for c in channels}
                built = self._build(channels, self._built, changed)
                self.voice.check_patches(channels, self.config.patches)
            except ConfigError as exc:
                self.plan_error = str(exc)
                log.error("channel plan refused, the old one keeps running: %s", exc)
                self.publisher.publish_state()
                return False
            self._swap(built)
            self.channels, self.plan_version, self.plan_error = channels, version, None
            self.voice.configure(channels, self.config.patches)
            with self._lock:
                for name in set(self._open) - {c.name for c in channels}:
                    del self._open[name]
            self._store_plan(body)
            log.info("channel plan v%d running: %d channels (%s changed)", version, len(channels),
                     ", ".join(sorted(changed)) or "none")
        self.publisher.publish_state()
        return True

    def _swap(self, built: _Built) -> None:
        old = self._built
        keep = {id(d) for _, d in built.drivers}
        was = {id(d) for _, d in old.drivers}
        for _, drv in old.drivers:
            if id(drv) not in keep:
                drv.stop()  # before the new one opens the same port or device
        for name, tx in old.transmitters.items():
            if built.transmitters.get(name) is not tx:
                tx.close()
        self._built = built
        if self._started:
            for _, drv in built.drivers:
                if id(drv) not in was:
                    drv.start()

    def _store_plan(self, body: dict[str, Any]) -> None:
        tmp = self.plan_path.with_suffix(".tmp")
        try:
            private_file(tmp)  # the site's channel plan: its owner's alone, whatever the umask
            tmp.write_text(json.dumps({"version": body["version"], "channels": body["channels"]}), encoding="utf-8")
            os.replace(tmp, self.plan_path)  # whole or not at all: a crash never leaves half a plan
        except OSError as exc:
            log.error("cannot keep the plan in %s (%s): a restart without the bridge runs an older one",
                      self.plan_path, exc)

    def _build_transmitter(self, ci: int, channel: ChannelConfig, drivers: list[tuple[str, Driver]]) -> Transmitter:
        t = channel.transmit
        assert t is not None
        key = f"channels[{ci}].transmit"
        ptt: Ptt
        if t.ptt.method == "serial":
            ptt = SerialPtt(t.ptt.port, t.ptt.line, active_low=t.ptt.active_low)
        elif t.ptt.method == "modbus":
            coil = t.ptt.coil
            found = [drv for _, drv in drivers if isinstance(drv, ModbusDriver)
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
                self.dispatcher.heard(channel.name, item)  # acks of our APRS messages, messages to us
                decoded = apply_rules(channel.rules, item)
                if cor is not None and decoded.kind == Kind.IO and decoded.detail.get("point") == cor:
                    self._recorders[channel.name].carrier(bool(decoded.detail.get("value")))
                    self.voice.carrier(channel.name, bool(decoded.detail.get("value")))
                if decoded.unit is not None and decoded.kind in (Kind.PTT, Kind.ALERT):
                    self.voice.identified(channel.name, decoded.unit)  # who is talking, in the live stream
                self._submit(channel.name, self._in_transmission(channel.name, decoded))
            self.publisher.wake()

        return submit

    def _submit(self, channel: str, decoded: Decoded, *, event_id: str | None = None,
                clip: bytes | None = None) -> Event:
        event = self.outbox.append(decoded, channel, event_id=event_id, clip=clip)
        with self._lock:
            self.appended[str(event.kind)] += 1
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
                    self._channel_clear.notify_all()
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
        # Each command that takes a while (devices reopened, a transmission) runs on a thread of its own,
        # never on the publisher's, which keeps events flowing.
        if verb == "config":
            self._spawn("channel-plan", self.apply_plan, body)
        elif verb == "ack_emergency":
            self._spawn("ack-emergency", self._ack_emergency, body)
        elif verb in ("dispatch", "radio_check"):
            self._spawn(verb, self.dispatcher.run, verb, body)
        elif verb == "output":
            self._spawn("output", self._set_output, body)
        elif verb == "remote_monitor":
            self._spawn("remote-monitor", self.voice.remote_monitor, body, {c.name: c for c in self.channels})
        elif verb == "patch":
            self.voice.patch_command(body)
        else:
            log.warning("command %r not understood by this gateway", verb)

    def _join_commands(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        with self._lock:
            running = list(self._commands)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("command %s still running as the gateway stops; its result is not reported",
                            thread.name)

    def _spawn(self, name: str, target: Callable[..., object], *args: Any) -> None:
        """A command's thread, known to :meth:`stop`, which waits for it before the outbox closes: a command
        reports its result through the outbox, and one still running then would write to a closed one."""
        def run() -> None:
            try:
                target(*args)
            except Exception:  # a command's failure is its own; after stop(), the outbox is shut
                if self._started:
                    log.exception("command %s failed", name)
                else:
                    log.warning("command %s ended after the gateway stopped; its result is not reported", name)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._commands = [t for t in self._commands if t.is_alive()]
            self._commands.append(thread)
        thread.start()

    def _set_output(self, body: dict[str, Any]) -> None:
        """Switch an output point (a coil of a Modbus module, by its point name), e.g. the beacon lamp."""
        point, value = body.get("point"), body.get("value")
        modules = [drv for _, drv in self.drivers if isinstance(drv, ModbusDriver) and point in drv.inputs.coils()]
        if not isinstance(point, str) or value not in (0, 1, True, False) or not modules:
            log.warning("output %r=%r: no such coil on this gateway's Modbus modules", point, value)
            return
        try:
            modules[0].write_coil(point, bool(value))
        except Exception as exc:  # noqa: BLE001 - the module's errors vary; the command's sender sees the state in health
            log.warning("output %s=%d failed: %s", point, int(bool(value)), exc)

    def _ack_emergency(self, body: dict[str, Any]) -> None:
        """Key the radio on the channel that heard the emergency and send the unit its acknowledgement;
        the result goes back to the bridge as an ``io`` event (through the outbox, so it is not lost)."""
        channel, unit = body.get("channel"), body.get("unit")
        known = {c.name for c in self.channels}
        detail: dict[str, Any] = {"protocol": "tx", "output": "ptt", "command": "ack_emergency",
                                  "incident": body.get("incident"), "request": body.get("request"),
                                  "operator": body.get("operator")}
        tx = self.transmitters.get(channel) if isinstance(channel, str) else None
        if channel not in known or not isinstance(unit, str) or not is_unit(unit):
            detail.update(result="failed", reason=f"no channel {channel!r} here, or {unit!r} is no unit")
        elif tx is None:
            receive_only = any(c.name == channel and c.receive_only for c in self.channels)
            detail.update(result="no_transmit_path", reason=f"channel {channel} is receive-only: the radio does not "
                          "transmit there" if receive_only else f"channel {channel} has no transmit section")
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
        named = unit if is_unit(unit) else None
        self._submit(where, Decoded(kind=Kind.IO, time=datetime.now(UTC), unit=named, detail=detail))
        self.publisher.wake()

    def _voice_event(self, channel: str, decoded: Decoded, event_id: str | None, clip: bytes | None) -> None:
        """A dispatcher's transmission (a ``call``) or a remote monitor's result (``io``), into the outbox."""
        self._submit(channel, decoded, event_id=event_id, clip=clip)
        self.publisher.wake()

    # --- what the dispatcher uses (gateway.dispatch.Site) ------------------------------------------

    def channel_config(self, name: str) -> ChannelConfig | None:
        return next((c for c in self.channels if c.name == name), None)

    def transmitter(self, name: str) -> Transmitter | None:
        return self.transmitters.get(name)

    def serial_driver(self, channel: str, protocol: str) -> SerialDriver | None:
        """The channel's serial driver of that protocol (its Kenwood data port, its KISS TNC)."""
        return next((d for name, d in self.drivers if name == channel and isinstance(d, SerialDriver)
                     and d.decoder.name == protocol), None)

    def channel_busy(self, name: str) -> bool:
        """The channel is receiving a transmission (known where it records: voice activity or COR)."""
        with self._lock:
            return name in self._open

    def wait_channel_clear(self, name: str, timeout: float) -> bool:
        with self._channel_clear:
            return self._channel_clear.wait_for(lambda: name not in self._open, timeout)

    def report(self, channel: str | None, detail: dict[str, Any]) -> None:
        """A transmit command's result, as an ``io`` event of the channel (or of the gateway). Its unit is
        null: the gateway transmitting to a unit is not that unit heard."""
        known = channel is not None and any(c.name == channel for c in self.channels)
        self._submit(channel if known and channel else "gateway",
                     Decoded(kind=Kind.IO, time=datetime.now(UTC), unit=None, detail=detail))
        self.publisher.wake()

    def health(self) -> dict[str, Any]:
        built = self._built  # one plan's view, even if another is being applied meanwhile
        return {"radios": {drv.name: drv.snapshot() for _, drv in built.drivers}, "rejected": self.rejected,
                "transmitters": {name: tx.snapshot() for name, tx in built.transmitters.items()},
                "plan_version": self.plan_version, "plan_error": self.plan_error, "voice": self.voice.snapshot(),
                **({"decode_workers": self.decode_pool.snapshot()} if self.decode_pool is not None else {}),
                **visible_devices()}  # what a technician can plug a driver into (the console's health screen)

    def levels(self) -> dict[str, dict[str, Any]]:
        """The input levels of each driver's radios (audio drivers'), for ``gw/{name}/levels`` every second."""
        out: dict[str, dict[str, Any]] = {}
        for _, drv in self._built.drivers:
            radios = drv.snapshot().get("radios")
            if isinstance(radios, dict):
                out[drv.name] = {name: r["level"] for name, r in radios.items() if r.get("level") is not None}
        return {k: v for k, v in out.items() if v}

    def start(self) -> None:
        with self._plan_lock:
            self.metrics = serve_gateway_metrics(self)  # first: an address in use fails the start
            self._started = True
            self.publisher.start()
            self.voice.start()
            for _, drv in self.drivers:
                drv.start()

    def stop(self) -> None:
        self.dispatcher.stop()
        with self._plan_lock:
            self._started = False
            for _, drv in self.drivers:  # all told first: their threads wind down together, not in turn
                drv.request_stop()
            for _, drv in self.drivers:
                drv.stop()
            if self.decode_pool is not None:  # after the drivers: their last audio is decoded and flushed
                self.decode_pool.close()
            self.voice.stop()  # a live transmission ends (PTT released) before its transmitter closes
            self._join_commands(COMMAND_JOIN_S)
            self.publisher.stop()
            for tx in self.transmitters.values():
                tx.close()
            if self.metrics is not None:
                self.metrics.stop()
            self.outbox.close()
