"""Dispatching to radios: what the gateway transmits when the bridge gives a case to a unit, or checks on
a unit that has gone quiet, path by path, each attempt reported back to the bridge.

The contract (MQTT, under the installation's prefix; the bridge is written against it):

``gw/{gateway}/cmd/dispatch``::

    {"request": "<uuid>", "case": <int>, "unit": "<unit>", "channel": "<channel>",
     "paths": ["<path>", ...],              optional: the order to try; default: the best the channel
                                             and the unit's protocol have (below)
     "text": "<short text for data paths>",
     "speech": {"text": "<what to say>", "language": "<espeak-ng voice: cmn, en, ...>"},   optional
     "operator": "<name>", "repeat_if_busy": <int, default 3>}

``gw/{gateway}/cmd/radio_check``: ``{"request", "case", "unit", "channel", "operator"}`` and optionally
``paths``, ``text``, ``speech``, ``repeat_if_busy`` as above.

Paths (``DISPATCH_PATHS``, ``CHECK_PATHS``), each for the units it can reach:

    kenwood_message    fleetsync:, nxdn:  the channel's Kenwood data port (a ``kenwood`` serial driver):
                                          the radio's send-message frame, STX F|G FFF IIII text ETX; the
                                          radio replies 0 (the unit acknowledged: acked) or 1 (no_ack)
    fleetsync_message  fleetsync:         over the air: a FleetSync short text message (at most 48
                                          characters), in the channel's ``dispatch.fleetsync_version``
    mdc_call_alert     mdc:               over the air: an MDC-1200 call alert (page) from ``dispatch.mdc_id``
    aprs_message       aprs:              through the channel's KISS TNC (a ``kiss`` serial driver): an APRS
                                          message from ``dispatch.aprs_callsign``, retried until acked
                                          (acked / no_ack after ``dispatch.aprs_retry_s``)
    announcement       any unit           speech (espeak-ng) keyed with PTT on the channel's transmitter
    mdc_radio_check    mdc:               (radio_check) MDC-1200 radio check; the radio answers by itself
    kenwood_poll       fleetsync:, nxdn:  (radio_check) the data port's GPS poll, STX R3 FFF IIII ETX: the
                                          radio polls the unit, whose radio answers by itself (acked) or not
    fleetsync_page     fleetsync:         (radio_check) over the air: a FleetSync selective call (paging)

Default order: dispatch: kenwood_message, fleetsync_message, mdc_call_alert, aprs_message, announcement;
radio_check: mdc_radio_check, kenwood_poll, fleetsync_page, aprs_message, announcement; of those, the
ones the unit's protocol and the channel have. A channel's ``dispatch.paths`` gives its own order of a
dispatch's paths (a site whose officers listen rather than read: the announcement first). Paths are
tried in order until one delivers (``sent`` or ``acked``); in a dispatch a call alert says nothing of
the case, so the next path follows it.

Each path tried is one ``io`` event, its ``unit`` null (the gateway speaking is not the unit heard) and::

    detail = {"protocol": "tx", "command": "dispatch" | "radio_check", "request", "case", "unit",
              "channel", "path", "result", "reason", "operator",
              "keyed_s", "audio_s", "ptt", "busy_waits"      (paths keyed with PTT)
              "acked", "message_id", "tries"                  (aprs_message; kenwood_*: "acked")}

    result: sent | acked | no_ack | failed | busy | timeout | no_transmit_path | unsupported

A body that does not hold (a field missing or of the wrong type) is one event with ``path`` null and
``failed``, the field named in ``reason``; an unknown path is ``failed`` too; a path that cannot reach
the unit's protocol is ``unsupported``; a path the channel does not have (no transmitter, no data
port, no TNC) and every path of a receive-only channel are ``no_transmit_path``. A channel that is
receiving (its recorder has a transmission open) is busy: a keyed path waits up to
``dispatch.busy_retry_s`` for it to clear, at most ``repeat_if_busy`` times, then answers ``busy``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from config.schema import ChannelConfig, DispatchConfig
from drivers import kenwood, kiss
from drivers.aprs_messaging import MessagingError, Messenger, Outcome
from drivers.audio import fleetsync, mdc1200
from drivers.audio.base import Samples
from drivers.io import DeviceError
from drivers.serial_port import SerialDriver
from gateway.events import Decoded, is_unit
from gateway.speech import VOICE, SpeechError, speak
from gateway.transmit import Transmitter

log = logging.getLogger(__name__)

DISPATCH_PATHS = ("kenwood_message", "fleetsync_message", "mdc_call_alert", "aprs_message", "announcement")
CHECK_PATHS = ("mdc_radio_check", "kenwood_poll", "fleetsync_page", "aprs_message", "announcement")
PATHS = {"dispatch": DISPATCH_PATHS, "radio_check": CHECK_PATHS}
AUDIO_PATHS = frozenset({"fleetsync_message", "mdc_call_alert", "announcement", "mdc_radio_check", "fleetsync_page"})
# Which unit protocols each path reaches ("*": any).
REACHES: dict[str, frozenset[str]] = {
    "kenwood_message": frozenset({"fleetsync", "nxdn"}),
    "kenwood_poll": frozenset({"fleetsync", "nxdn"}),
    "fleetsync_message": frozenset({"fleetsync"}),
    "fleetsync_page": frozenset({"fleetsync"}),
    "mdc_call_alert": frozenset({"mdc"}),
    "mdc_radio_check": frozenset({"mdc"}),
    "aprs_message": frozenset({"aprs"}),
    "announcement": frozenset({"*"}),
}
DELIVERED = frozenset({"sent", "acked"})
ALERTS_ONLY = frozenset({"mdc_call_alert"})  # in a dispatch: says nothing of the case, the next path follows
MAX_REPEAT = 20
DEFAULT_REPEAT = 3


class BadRequest(ValueError):
    """A command body that does not hold; the message names the field."""


class _Unreachable(ValueError):
    """The unit's identity cannot be addressed by the path (e.g. a FleetSync id out of range)."""


def _mdc_id(unit: str) -> int:
    ident = unit.partition(":")[2]
    if not re.fullmatch(r"[0-9A-Fa-f]{1,4}", ident):
        raise _Unreachable(f"{unit}: an MDC-1200 unit id is 1-4 hex digits")
    return int(ident, 16)


def _fleetsync_id(unit: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{3})-(\d{4})", unit.partition(":")[2], re.ASCII)
    if m is None or not 100 <= int(m[1]) <= 354 or not 1000 <= int(m[2]) <= 5094:
        raise _Unreachable(f"{unit}: a FleetSync unit is FFF-UUUU, fleet 100-354, unit 1000-5094")
    return int(m[1]), int(m[2])


@dataclass(frozen=True, slots=True)
class Request:
    command: str  # dispatch | radio_check
    request: str
    case: int
    unit: str
    channel: str
    paths: tuple[str, ...] | None
    text: str
    speech_text: str | None
    language: str | None
    operator: str | None
    repeat_if_busy: int

    @property
    def protocol(self) -> str:
        return self.unit.partition(":")[0]

    @property
    def ident(self) -> str:
        return self.unit.partition(":")[2]


def _echo(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a report that repeat the command, where they are of the right type (else null)."""
    def text(key: str) -> str | None:
        v = body.get(key)
        return v if isinstance(v, str) and len(v) <= 200 else None

    case = body.get("case")
    return {"request": text("request"), "case": case if isinstance(case, int) and not isinstance(case, bool) else None,
            "unit": text("unit"), "channel": text("channel"), "operator": text("operator")}


def parse_request(command: str, body: Mapping[str, Any]) -> Request:
    """The command, or BadRequest naming the first field that does not hold."""
    def need_str(key: str, limit: int = 200) -> str:
        v = body.get(key)
        if not isinstance(v, str) or not v or len(v) > limit:
            raise BadRequest(f"{key}: expected a string of 1-{limit} characters, got {v!r}"[:300])
        return v

    request = need_str("request", 64)
    case = body.get("case")
    if not isinstance(case, int) or isinstance(case, bool) or case < 0:
        raise BadRequest(f"case: expected the case number (an integer), got {case!r}"[:300])
    unit = body.get("unit")
    if not is_unit(unit):
        raise BadRequest(f"unit: expected a unit such as mdc:1234 or fleetsync:100-1001, got {unit!r}"[:300])
    assert isinstance(unit, str)
    channel = need_str("channel", 64)
    paths = body.get("paths")
    if paths is not None and (not isinstance(paths, list) or not paths or len(paths) > 10
                              or not all(isinstance(p, str) for p in paths)):
        raise BadRequest(f"paths: expected a list of 1-10 path names, got {paths!r}"[:300])
    text = body.get("text", "")
    if not isinstance(text, str) or len(text) > 4096:
        raise BadRequest("text: expected a string of at most 4096 characters")
    if command == "dispatch" and not text.strip() and body.get("speech") is None:
        raise BadRequest("text: a dispatch needs the text (or speech) to send")
    speech_text = language = None
    speech = body.get("speech")
    if speech is not None:
        if not isinstance(speech, dict) or not isinstance(speech.get("text"), str) or not speech["text"].strip():
            raise BadRequest(f"speech: expected {{\"text\": ..., \"language\": ...}}, got {speech!r}"[:300])
        speech_text, language = speech["text"], speech.get("language")
        if language is not None and (not isinstance(language, str) or not VOICE.fullmatch(language)):
            raise BadRequest(f"speech.language: expected an espeak-ng voice such as cmn or en, got {language!r}")
    operator = body.get("operator")
    if operator is not None and not isinstance(operator, str):
        raise BadRequest(f"operator: expected a name, got {operator!r}"[:300])
    repeat = body.get("repeat_if_busy", DEFAULT_REPEAT)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 0 <= repeat <= MAX_REPEAT:
        raise BadRequest(f"repeat_if_busy: expected 0-{MAX_REPEAT}, got {repeat!r}"[:300])
    return Request(command, request, case, unit, channel, tuple(paths) if paths else None, text, speech_text,
                   language, operator, repeat)


class Site(Protocol):
    """What the dispatcher needs of the gateway that runs it (gateway/runner.py implements it)."""

    def channel_config(self, name: str) -> ChannelConfig | None: ...

    def transmitter(self, name: str) -> Transmitter | None: ...

    def serial_driver(self, channel: str, protocol: str) -> SerialDriver | None: ...

    def channel_busy(self, name: str) -> bool: ...

    def wait_channel_clear(self, name: str, timeout: float) -> bool: ...

    def report(self, channel: str | None, detail: dict[str, Any]) -> None: ...


@dataclass
class _Attempt:
    """The result of one path, as it goes into the report."""

    result: str
    reason: str = ""
    extra: dict[str, Any] | None = None


class _AprsStation:
    """One channel's APRS messaging: the messenger (sans-I/O) and the KISS port it sends through; threads
    waiting for their acks sleep on one condition that every heard packet and every try wakes."""

    def __init__(self, key: tuple[Any, ...], messenger: Messenger, driver: SerialDriver, port: int) -> None:
        self.key, self.messenger, self.driver, self.port = key, messenger, driver, port
        self.cond = threading.Condition()
        self.settled: dict[str, Outcome] = {}

    def write(self, frame: bytes) -> None:
        self.driver.write(kiss.kiss_encode(frame, self.port))

    def heard(self, unit: str, detail: Mapping[str, Any]) -> None:
        with self.cond:
            heard = self.messenger.heard(unit.removeprefix("aprs:"), detail)
            for outcome in heard.outcomes:
                self.settled[outcome.message_id] = outcome
            if heard.outcomes:
                self.cond.notify_all()
        for frame in heard.frames:  # the acks this station owes
            try:
                self.write(frame)
            except DeviceError as exc:
                log.warning("%s: cannot acknowledge a message to this station: %s", self.driver.name, exc)

    def send(self, addressee: str, text: str, stop: threading.Event) -> Outcome:
        """Send and wait until the message is settled (acked, rejected, given up); DeviceError when the
        first try cannot be written, MessagingError when the text cannot be sent."""
        with self.cond:
            message_id, frame = self.messenger.send(addressee, text, time.monotonic())
        try:
            self.write(frame)
        except DeviceError:
            with self.cond:
                self.messenger.forget(message_id)
            raise
        while True:
            with self.cond:
                frames, outcomes = self.messenger.due(time.monotonic())
                for outcome in outcomes:
                    self.settled[outcome.message_id] = outcome
                if message_id in self.settled:
                    return self.settled.pop(message_id)
                if not frames:
                    due = self.messenger.next_due
                    self.cond.wait(max(0.01, min(1.0, (due or 0) - time.monotonic())) if due else 1.0)
                    if stop.is_set():
                        self.messenger.forget(message_id)
                        raise DeviceError("the gateway stopped before the message was acknowledged")
                    continue
            for again in frames:  # another try (of this message or of another thread's)
                try:
                    self.write(again)
                except DeviceError as exc:
                    log.warning("%s: a retry of an APRS message was not sent: %s", self.driver.name, exc)


class Dispatcher:
    """Runs dispatch and radio-check commands on a :class:`Site` (each on the caller's thread)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._aprs: dict[str, _AprsStation] = {}  # channel -> its messaging
        self._port_locks: dict[str, threading.Lock] = {}  # one command at a time on a Kenwood data port

    def stop(self) -> None:
        self._stop.set()
        for station in list(self._aprs.values()):
            with station.cond:
                station.cond.notify_all()

    # --- what the gateway hears ----------------------------------------------------------------

    def heard(self, channel: str, decoded: Decoded) -> None:
        """Every decoded thing of a channel passes here: APRS acks settle our messages, messages to this
        station are acknowledged. Cheap for everything else."""
        d = decoded.detail
        if d.get("type") != "message" or decoded.unit is None or not decoded.unit.startswith("aprs:"):
            return
        station = self._aprs.get(channel)
        if station is not None:
            station.heard(decoded.unit, d)

    # --- commands ------------------------------------------------------------------------------

    def run(self, command: str, body: Mapping[str, Any]) -> None:
        """One command from the bridge, to the end: every path tried is reported (see the module docstring)."""
        base = {"protocol": "tx", "command": command, **_echo(body)}
        try:
            req = parse_request(command, body)
        except BadRequest as exc:
            self._report(None, {**base, "path": None, "result": "failed", "reason": str(exc)})
            return
        channel = self.site.channel_config(req.channel)
        if channel is None:
            self._report(None, {**base, "path": None, "result": "failed",
                                "reason": f"channel: no channel {req.channel!r} on this gateway"})
            return
        if channel.receive_only:
            self._report(channel.name, {**base, "path": None, "result": "no_transmit_path",
                                        "reason": f"channel {channel.name} is receive-only: the radio does not "
                                        "transmit there"})
            return
        paths = req.paths or self._default_paths(req, channel)
        if not paths:
            self._report(channel.name, {**base, "path": None, "result": "no_transmit_path",
                                        "reason": f"channel {channel.name} has no path to {req.protocol} units "
                                        f"({self._what_it_has(channel)})"})
            return
        for path in paths:
            attempt = self._attempt(req, channel, path)
            self._report(channel.name, {**base, "path": path, "result": attempt.result, "reason": attempt.reason,
                                        **(attempt.extra or {})})
            if attempt.result in DELIVERED and not (command == "dispatch" and path in ALERTS_ONLY):
                return

    def _report(self, channel: str | None, detail: dict[str, Any]) -> None:
        log.info("%s to %s on %s by %s: %s %s", detail["command"], detail.get("unit"), channel, detail.get("path"),
                 detail["result"], detail["reason"])
        self.site.report(channel, detail)

    # --- which paths ---------------------------------------------------------------------------

    def _has(self, channel: ChannelConfig, path: str) -> bool:
        if path in AUDIO_PATHS:
            return self.site.transmitter(channel.name) is not None
        if path.startswith("kenwood_"):
            return self.site.serial_driver(channel.name, "kenwood") is not None
        return self.site.serial_driver(channel.name, "kiss") is not None

    def _what_it_has(self, channel: ChannelConfig) -> str:
        parts = [what if self._has(channel, path) else f"no {what}" for path, what in (
            ("announcement", "transmit audio"), ("kenwood_message", "Kenwood data port"), ("aprs_message", "KISS TNC"))]
        return ", ".join(parts)

    def _default_paths(self, req: Request, channel: ChannelConfig) -> list[str]:
        order = channel.dispatch.paths if req.command == "dispatch" and channel.dispatch.paths else PATHS[req.command]
        return [p for p in order if self._reaches(p, req.protocol) and self._has(channel, p)]

    @staticmethod
    def _reaches(path: str, protocol: str) -> bool:
        reach = REACHES[path]
        return "*" in reach or protocol in reach

    # --- one path ------------------------------------------------------------------------------

    def _attempt(self, req: Request, channel: ChannelConfig, path: str) -> _Attempt:
        if path not in PATHS[req.command]:
            return _Attempt("failed", f"unknown path {path!r} for {req.command}; paths are "
                            f"{', '.join(PATHS[req.command])}")
        if not self._reaches(path, req.protocol):
            return _Attempt("unsupported", f"{path} reaches {' and '.join(sorted(REACHES[path]))} units, "
                            f"not {req.unit}")
        if not self._has(channel, path):
            what = ("transmit section" if path in AUDIO_PATHS else
                    "kenwood serial driver (data port)" if path.startswith("kenwood_") else "kiss serial driver (TNC)")
            return _Attempt("no_transmit_path", f"channel {channel.name} has no {what}")
        try:
            if path in AUDIO_PATHS:
                return self._keyed(req, channel, path)
            if path.startswith("kenwood_"):
                return self._kenwood(req, channel, path)
            return self._aprs_message(req, channel)
        except UnicodeEncodeError as exc:
            return _Attempt("failed", f"text: {exc.object[exc.start:exc.end]!r} cannot be sent by {path} "
                            f"({exc.encoding} only)")
        except (ValueError, DeviceError) as exc:  # what cannot be encoded for the unit, a port that failed
            return _Attempt("unsupported" if isinstance(exc, _Unreachable) else "failed", str(exc))

    # audio, keyed with PTT

    def _burst(self, req: Request, cfg: DispatchConfig, path: str, rate: int) -> tuple[Samples, int]:
        if path == "announcement":
            default = f"Radio check. Unit {req.ident}, please answer." if req.command == "radio_check" else req.text
            return speak(req.speech_text or default, req.language or cfg.language, wpm=cfg.speech_wpm,
                         level=cfg.speech_level)
        if path in ("mdc_call_alert", "mdc_radio_check"):
            target = _mdc_id(req.unit)
            packet = (mdc1200.call_alert(target, int(cfg.mdc_id, 16)) if path == "mdc_call_alert"
                      else mdc1200.radio_check(target))
            return mdc1200.encode(packet, rate=rate), rate
        to_fleet, to_unit = _fleetsync_id(req.unit)
        fleet, unit = (int(cfg.fleetsync_id[:3]), int(cfg.fleetsync_id[4:])) if cfg.fleetsync_id else (None, None)
        if path == "fleetsync_message":
            message = fleetsync.text_message(to_fleet, to_unit, req.text, fleet=fleet, unit=unit)
        else:
            message = fleetsync.FleetSyncMessage(fleetsync.NO_FLAGS & ~fleetsync.F_PAGING, 0, fleet, unit, to_fleet,
                                                 to_unit)
        return fleetsync.encode(message, rate, cfg.fleetsync_version, baud=cfg.fleetsync_baud), rate

    def _keyed(self, req: Request, channel: ChannelConfig, path: str) -> _Attempt:
        tx = self.site.transmitter(channel.name)
        assert tx is not None
        cfg = channel.dispatch
        try:
            samples, rate = self._burst(req, cfg, path, tx.output.rate)
        except SpeechError as exc:
            return _Attempt("failed", str(exc))
        audio_s = round(len(samples) / rate, 3)
        if audio_s + tx.lead_in_s + tx.tail_s > tx.timeout_s:
            return _Attempt("failed", f"{audio_s:g} s of audio with lead-in and tail is longer than the channel's "
                            f"transmit timeout_s ({tx.timeout_s:g} s)", {"audio_s": audio_s})
        waits = 0
        what = f"{req.command} {path} to {req.unit}"
        while True:
            if self._stop.is_set():
                return _Attempt("failed", "the gateway stopped", {"audio_s": audio_s, "busy_waits": waits})
            if self.site.channel_busy(channel.name):
                if waits >= req.repeat_if_busy:
                    return _Attempt("busy", f"channel {channel.name} was busy (receiving) after {waits} "
                                    f"wait{'s' if waits != 1 else ''} of {cfg.busy_retry_s:g} s",
                                    {"audio_s": audio_s, "busy_waits": waits})
                waits += 1
                self.site.wait_channel_clear(channel.name, cfg.busy_retry_s)
                continue
            report = tx.send(samples, rate, what)
            if report.result == "busy" and waits < req.repeat_if_busy:
                waits += 1  # our own transmitter was in use (another command): its wait was the wait
                continue
            return _Attempt(report.result, report.reason, {"keyed_s": report.keyed_s, "audio_s": audio_s,
                                                           "ptt": tx.ptt.name, "busy_waits": waits})

    # the Kenwood data port

    def _port_lock(self, channel: str) -> threading.Lock:
        with self._lock:
            return self._port_locks.setdefault(channel, threading.Lock())

    def _kenwood(self, req: Request, channel: ChannelConfig, path: str) -> _Attempt:
        driver = self.site.serial_driver(channel.name, "kenwood")
        assert driver is not None
        decoder = driver.decoder
        assert isinstance(decoder, kenwood.KenwoodDecoder)
        frame = kenwood.encode_text_to(req.unit, req.text) if path == "kenwood_message" \
            else kenwood.encode_gps_poll_to(req.unit)
        wait = channel.dispatch.kenwood_reply_s
        with self._port_lock(channel.name):
            before, sent_at = decoder.last_reply_time, datetime.now(UTC)
            driver.write(frame)

            def replied() -> bool:
                at = decoder.last_reply_time
                return at is not None and at is not before and at >= sent_at

            answered = driver.wait_for(lambda: replied() or self._stop.is_set(), wait)
            reply = decoder.last_reply if answered and replied() else None
        if reply is None:
            return _Attempt("sent", f"written to {driver.url}; no reply from the radio within {wait:g} s",
                            {"acked": False})
        if reply.ok:
            return _Attempt("acked", f"the radio reports {req.unit} acknowledged", {"acked": True})
        return _Attempt("no_ack", f"the radio reports no response from {req.unit}", {"acked": False})

    # APRS through the TNC

    def _station(self, channel: ChannelConfig) -> _AprsStation:
        cfg = channel.dispatch
        if cfg.aprs_callsign is None:
            raise DeviceError(f"channel {channel.name}: dispatch.aprs_callsign is not set, so this station has no "
                              "callsign to send from")
        driver = self.site.serial_driver(channel.name, "kiss")
        assert driver is not None
        key = (cfg.aprs_callsign.upper(), tuple(cfg.aprs_path), tuple(cfg.aprs_retry_s), cfg.kiss_port, id(driver))
        with self._lock:
            station = self._aprs.get(channel.name)
            if station is None or station.key != key:  # new, or its channel changed with a new plan
                messenger = Messenger(cfg.aprs_callsign, path=cfg.aprs_path, retry_s=cfg.aprs_retry_s)
                station = self._aprs[channel.name] = _AprsStation(key, messenger, driver, cfg.kiss_port)
            return station

    def _aprs_message(self, req: Request, channel: ChannelConfig) -> _Attempt:
        station = self._station(channel)
        text = req.text if req.command == "dispatch" or req.text.strip() else "RADIO CHECK"
        try:
            outcome = station.send(req.ident, text, self._stop)
        except MessagingError as exc:
            return _Attempt("failed", str(exc))
        extra = {"acked": outcome.result == "acked", "message_id": outcome.message_id, "tries": outcome.tries}
        if outcome.result == "acked":
            return _Attempt("acked", f"{req.ident} acknowledged message {outcome.message_id}", extra)
        if outcome.result == "rejected":
            return _Attempt("failed", f"{req.ident} rejected message {outcome.message_id}", extra)
        return _Attempt("no_ack", f"no ack from {req.ident} after {outcome.tries} tries", extra)

