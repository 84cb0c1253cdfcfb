"""Dispatch and radio check on a gateway with real parts around it: transmissions into WAV dry runs decoded
by our own decoders, a Kenwood radio's data port and a KISS TNC played from the other end of real
pseudo-terminals, a channel made busy by a recording it hears; and every bad command answered with its
reason while the gateway goes on."""

from __future__ import annotations

import os
import select
import threading
import wave
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st
from support import Mosquitto, SocatLink, wait_until

from config.schema import ConfigError, parse_config
from drivers import ax25
from drivers.audio import fleetsync as fs
from drivers.audio import mdc1200
from drivers.audio.fleetsync import FleetSyncDecoder
from drivers.audio.mdc1200 import Mdc1200Decoder
from drivers.kiss import KissFrame, KissFramer, frame_to_output, kiss_encode
from gateway.dispatch import BadRequest, Request, parse_request
from gateway.events import Decoded, Event, Kind
from gateway.runner import Gateway

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
TX_RATE = 16000


def transmit(tmp_path: Path, name: str = "tx.wav", **extra: Any) -> dict[str, Any]:
    return {"device": f"wav:{tmp_path / name}", "rate": TX_RATE, "lead_in_ms": 0, "tail_ms": 0, "timeout_s": 30,
            **extra}


class Site:
    """A started gateway whose events are collected as they are appended to its outbox."""

    def __init__(self, tmp_path: Path, broker: Mosquitto, channels: list[dict[str, Any]]) -> None:
        self.events: list[Event] = []
        config = parse_config({"gateway": {"name": "gw-d", "outbox": str(tmp_path / "outbox.sqlite")},
                               "mqtt": {"url": broker.url}, "channels": channels})
        self.gateway = Gateway(config, on_event=self.events.append)

    def reports(self, request: str) -> list[Mapping[str, Any]]:
        return [e.detail for e in self.events if e.kind == Kind.IO and e.detail.get("request") == request]

    def run(self, command: str, body: dict[str, Any]) -> list[Mapping[str, Any]]:
        """The command to its end (as the gateway's command thread runs it); its reports."""
        self.gateway.dispatcher.run(command, body)
        return self.reports(body.get("request", ""))

    def driver_open(self, name: str) -> None:
        wait_until(lambda: any(d.name == name and d.snapshot()["state"] == "open" for _, d in self.gateway.drivers),
                   10, f"{name} to open")


@pytest.fixture
def site_factory(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Callable[[list[dict[str, Any]]], Site]]:
    sites: list[Site] = []

    def make(channels: list[dict[str, Any]]) -> Site:
        site = Site(tmp_path, mosquitto, channels)
        site.gateway.start()
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.gateway.stop()


class RadioEnd:
    """The radio's (or the TNC's) end of a socat pair: what the gateway writes is read here."""

    def __init__(self, link: SocatLink) -> None:
        self.fd = os.open(link.feed, os.O_RDWR | os.O_NOCTTY)
        self.buffer = b""

    def read_until(self, done: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
        deadline = datetime.now(UTC).timestamp() + timeout
        while not done(self.buffer):
            left = deadline - datetime.now(UTC).timestamp()
            if left <= 0:
                raise AssertionError(f"the gateway wrote only {self.buffer!r}")
            if select.select([self.fd], [], [], left)[0]:
                self.buffer += os.read(self.fd, 4096)
        return self.buffer

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        os.close(self.fd)


def decoded(decoder: Mdc1200Decoder | FleetSyncDecoder, path: Path) -> list[Decoded]:
    x, rate = soundfile.read(path, dtype="float32")
    assert rate == decoder.rate
    return [d for d in decoder.feed(x, NOW) + decoder.flush(NOW) if isinstance(d, Decoded)]


def voiced_s(path: Path) -> float:
    x, rate = soundfile.read(path, dtype="float32")
    n = rate // 50
    rms = np.sqrt(np.mean(x[: x.size // n * n].reshape(-1, n).astype(np.float64) ** 2, axis=1))
    return float(np.count_nonzero(rms > 0.01) * 0.02)


# --- paths, each decoded from what went out ------------------------------------------------------------


def test_an_mdc_unit_is_paged_and_then_told_the_case_in_speech(tmp_path: Path, site_factory: Any) -> None:
    site = site_factory([{"name": "patrol-1", "transmit": transmit(tmp_path), "dispatch": {"mdc_id": "A1"}}])
    reports = site.run("dispatch", {"request": "r1", "case": 1234, "unit": "mdc:1234", "channel": "patrol-1",
                                    "text": "Case 1234", "operator": "alice",
                                    "speech": {"text": "案件一二三四，占道经营，请前往文一路。", "language": "cmn"}})
    # the call alert says nothing of the case, so the announcement follows it
    assert [(r["path"], r["result"]) for r in reports] == [("mdc_call_alert", "sent"), ("announcement", "sent")]
    for r in reports:
        assert (r["protocol"], r["command"], r["case"], r["unit"], r["channel"], r["operator"]) == (
            "tx", "dispatch", 1234, "mdc:1234", "patrol-1", "alice")
        assert r["ptt"] == "vox" and r["busy_waits"] == 0 and r["keyed_s"] >= 0
    assert all(e.unit is None for e in site.events if e.kind == Kind.IO)  # the gateway speaking is no unit heard
    [page] = decoded(Mdc1200Decoder(TX_RATE), tmp_path / "tx.wav")
    assert (page.detail["name"], page.detail["target_id"], page.unit) == ("call_alert", "1234", "mdc:00A1")
    speech_s = reports[1]["audio_s"]
    assert 3.0 < speech_s < 15.0 and voiced_s(tmp_path / "tx.wav") > 0.5 * speech_s


def test_a_fleetsync_unit_gets_a_text_on_the_data_port_and_over_the_air_when_the_radio_reports_no_answer(
    tmp_path: Path, site_factory: Any, socat_link: SocatLink
) -> None:
    site = site_factory([{"name": "patrol-2", "transmit": transmit(tmp_path),
                          "drivers": [{"port": str(socat_link.radio), "protocol": "kenwood"}],
                          "dispatch": {"fleetsync_id": "100-1000", "kenwood_reply_s": 5}}])
    site.driver_open("patrol-2/kenwood")
    radio = RadioEnd(socat_link)
    try:
        body = {"request": "r2", "case": 7, "unit": "fleetsync:100-1001", "channel": "patrol-2", "operator": "bob",
                "text": "CASE 7 STALL AT WENYI RD ACCEPT 5MIN"}
        worker = threading.Thread(target=site.run, args=("dispatch", body))
        worker.start()
        frame = radio.read_until(lambda b: b.endswith(b"\x03"))
        assert frame == b"\x02F1001001CASE 7 STALL AT WENYI RD ACCEPT 5MIN\x03"  # the radio's send-message frame
        radio.write(b"\x021\x03")  # the radio: the unit did not respond
        worker.join(20)
        reports = site.reports("r2")
        assert [(r["path"], r["result"], r.get("acked")) for r in reports] == [
            ("kenwood_message", "no_ack", False), ("fleetsync_message", "sent", None)]
        assert reports[0]["reason"] == "the radio reports no response from fleetsync:100-1001"
        [text] = decoded(FleetSyncDecoder(TX_RATE), tmp_path / "tx.wav")
        assert (text.detail["name"], text.detail["text"], text.unit) == (
            "message", "CASE 7 STALL AT WENYI RD ACCEPT 5MIN", "fleetsync:100-1000")
        assert (text.detail["to_fleet"], text.detail["to_unit"], text.detail["version"]) == (100, 1001, 2)

        # a radio check polls the unit through the data port; the radio reports it answered
        radio.buffer = b""
        worker = threading.Thread(target=site.run, args=("radio_check", {
            "request": "r3", "case": 7, "unit": "fleetsync:100-1001", "channel": "patrol-2", "operator": "bob"}))
        worker.start()
        assert radio.read_until(lambda b: b.endswith(b"\x03")) == b"\x02R31001001\x03"
        radio.write(b"\x020\x03")
        worker.join(20)
        assert [(r["path"], r["result"], r["command"]) for r in site.reports("r3")] == [
            ("kenwood_poll", "acked", "radio_check")]
    finally:
        radio.close()


def test_a_channel_that_orders_the_announcement_first_speaks_the_case_and_writes_nothing_to_the_data_port(
    tmp_path: Path, site_factory: Any, socat_link: SocatLink
) -> None:
    site = site_factory([{"name": "patrol-2", "transmit": transmit(tmp_path),
                          "drivers": [{"port": str(socat_link.radio), "protocol": "kenwood"}],
                          "dispatch": {"paths": ["announcement", "kenwood_message"]}}])
    site.driver_open("patrol-2/kenwood")
    radio = RadioEnd(socat_link)
    try:
        reports = site.run("dispatch", {"request": "r4", "case": 8, "unit": "fleetsync:100-1001", "channel": "patrol-2",
                                        "operator": "bob", "text": "CASE 8 STALL",
                                        "speech": {"text": "Case 8. street stall, at Wenyi Road.", "language": "en"}})
        assert [(r["path"], r["result"]) for r in reports] == [("announcement", "sent")]
        assert 1.0 < reports[0]["audio_s"] < 8.0 and voiced_s(tmp_path / "tx.wav") > 0.5 * reports[0]["audio_s"]
        assert not select.select([radio.fd], [], [], 0.2)[0]  # the data port was not written
    finally:
        radio.close()


def test_a_dispatch_order_naming_an_unknown_path_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError, match=r"channels\[0\]\.dispatch\.paths\[1\]: .*got .pigeon."):
        parse_config({"gateway": {"name": "gw"}, "channels": [{"name": "c", "dispatch": {
            "paths": ["announcement", "pigeon"]}}]})


def kiss_frames(data: bytes) -> list[KissFrame]:
    return [f for f in KissFramer().feed(data) if isinstance(f, KissFrame)]


def test_an_aprs_message_is_retried_until_the_unit_acks_it_and_its_answer_is_acknowledged(
    tmp_path: Path, site_factory: Any, socat_link: SocatLink
) -> None:
    site = site_factory([{"name": "aprs", "drivers": [{"port": str(socat_link.radio), "protocol": "kiss"}],
                          "dispatch": {"aprs_callsign": "BG5ZZZ-10", "aprs_retry_s": [0.5, 0.5, 5]}}])
    site.driver_open("aprs/kiss")
    tnc = RadioEnd(socat_link)
    try:
        body = {"request": "r4", "case": 8, "unit": "aprs:BG5ABC-9", "channel": "aprs", "text": "CASE 8 STALL",
                "operator": "carol"}
        worker = threading.Thread(target=site.run, args=("dispatch", body))
        worker.start()
        frames = kiss_frames(tnc.read_until(lambda b: len(kiss_frames(b)) >= 2))  # the first try and a retry
        msgs = [frame_to_output(f.data, NOW, "kiss") for f in frames]
        assert all(isinstance(m, Decoded) for m in msgs)
        first = msgs[0]
        assert isinstance(first, Decoded)
        assert (first.unit, first.detail["addressee"], first.detail["text"]) == (
            "aprs:BG5ZZZ-10", "BG5ABC-9", "CASE 8 STALL")
        message_id = first.detail["message_id"]
        assert all(isinstance(m, Decoded) and m.detail["message_id"] == message_id for m in msgs)
        # the unit acks, and answers with a message of its own, which the gateway acknowledges
        tnc.write(kiss_encode(ax25.encode_ui("BG5ABC-9", "APDW16", f":BG5ZZZ-10:ack{message_id}".encode())))
        worker.join(20)
        [report] = site.reports("r4")
        assert (report["path"], report["result"], report["acked"], report["message_id"]) == (
            "aprs_message", "acked", True, message_id)
        assert report["tries"] >= 2
        tnc.buffer = b""
        tnc.write(kiss_encode(ax25.encode_ui("BG5ABC-9", "APDW16", b":BG5ZZZ-10:ACCEPTED{77")))
        [ack] = kiss_frames(tnc.read_until(lambda b: len(kiss_frames(b)) >= 1))
        ours = frame_to_output(ack.data, NOW, "kiss")
        assert isinstance(ours, Decoded) and (ours.detail["addressee"], ours.detail["ack"]) == ("BG5ABC-9", "77")
        # the answer itself reaches the bridge as the unit's message
        wait_until(lambda: any(e.unit == "aprs:BG5ABC-9" and e.detail.get("text") == "ACCEPTED"
                               for e in site.events), 5, "the unit's answer as an event")
    finally:
        tnc.close()


def test_an_aprs_message_nobody_acks_is_given_up_after_its_tries(
    tmp_path: Path, site_factory: Any, socat_link: SocatLink
) -> None:
    site = site_factory([{"name": "aprs", "drivers": [{"port": str(socat_link.radio), "protocol": "kiss"}],
                          "dispatch": {"aprs_callsign": "BG5ZZZ-10", "aprs_retry_s": [0.2, 0.2, 0.2]}}])
    site.driver_open("aprs/kiss")
    tnc = RadioEnd(socat_link)
    try:
        reports = site.run("radio_check", {"request": "r5", "case": 9, "unit": "aprs:BG5ABC-9", "channel": "aprs",
                                           "operator": "carol"})
        assert [(r["path"], r["result"], r["tries"], r["acked"]) for r in reports] == [
            ("aprs_message", "no_ack", 3, False)]
        assert reports[0]["reason"] == "no ack from BG5ABC-9 after 3 tries"
        assert len(kiss_frames(tnc.read_until(lambda b: len(kiss_frames(b)) >= 3))) == 3
    finally:
        tnc.close()


# --- a busy channel ---------------------------------------------------------------------------------------


def test_a_busy_channel_is_waited_for_and_refused_when_the_command_says_not_to_wait(
    tmp_path: Path, site_factory: Any
) -> None:
    """The channel hears a 3 s transmission (a recording replayed as its receive audio, recorded by voice
    activity): a dispatch that may not wait answers busy at once; one that may waits for it to end."""
    rate = 8000
    t = np.arange(3 * rate) / rate
    x = np.concatenate([np.zeros(rate // 2), 0.3 * np.sin(2 * np.pi * 700 * t), np.zeros(2 * rate)])
    with wave.open(str(tmp_path / "rx.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    site = site_factory([{"name": "patrol-3", "transmit": transmit(tmp_path),
                          "drivers": [{"type": "audio", "device": f"wav:{tmp_path / 'rx.wav'}", "rate": rate,
                                       "decoders": []}],
                          "record": {"hang_ms": 300}, "dispatch": {"busy_retry_s": 10}}])
    wait_until(lambda: site.gateway.channel_busy("patrol-3"), 10, "the channel to be receiving")
    body = {"case": 10, "unit": "mdc:1234", "channel": "patrol-3", "text": "Case 10", "paths": ["mdc_call_alert"]}
    [refused] = site.run("dispatch", {**body, "request": "r6", "repeat_if_busy": 0})
    assert (refused["result"], refused["busy_waits"]) == ("busy", 0)
    assert refused["reason"] == "channel patrol-3 was busy (receiving) after 0 waits of 10 s"
    assert not (tmp_path / "tx.wav").exists()
    [sent] = site.run("dispatch", {**body, "request": "r7"})
    assert (sent["result"], sent["busy_waits"]) == ("sent", 1)
    # it went out after the transmission it heard had ended
    wait_until(lambda: any(e.kind == Kind.CALL for e in site.events), 5, "the call heard")
    call = next(e for e in site.events if e.kind == Kind.CALL)
    report = next(e for e in site.events if e.detail.get("request") == "r7")
    assert call.detail["duration_s"] > 2.5
    assert report.time >= call.time + timedelta(seconds=call.detail["duration_s"])
    [page] = decoded(Mdc1200Decoder(TX_RATE), tmp_path / "tx.wav")
    assert page.detail["target_id"] == "1234"


# --- bad commands ------------------------------------------------------------------------------------------


GOOD = {"request": "rb", "case": 11, "unit": "mdc:1234", "channel": "patrol-4", "text": "Case 11", "operator": "dan"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"request": None}, "request: expected a string"),
    ({"case": True}, "case: expected the case number"),
    ({"case": "11"}, "case: expected the case number"),
    ({"unit": "1234"}, "unit: expected a unit"),
    ({"channel": 5}, "channel: expected a string"),
    ({"paths": "announcement"}, "paths: expected a list"),
    ({"paths": []}, "paths: expected a list"),
    ({"text": 5}, "text: expected a string"),
    ({"text": None}, "text: a dispatch needs the text"),
    ({"text": " "}, "text: a dispatch needs the text"),
    ({"speech": {"text": "hi", "language": "-w /tmp/x"}}, "speech.language: expected an espeak-ng voice"),
    ({"speech": "hi"}, "speech: expected"),
    ({"repeat_if_busy": 99}, "repeat_if_busy: expected 0-20"),
    ({"operator": 7}, "operator: expected a name"),
    ({"channel": "nowhere"}, "channel: no channel 'nowhere' on this gateway"),
])
def test_a_malformed_command_is_one_report_naming_the_field(
    tmp_path: Path, site_factory: Any, change: dict[str, Any], reason: str
) -> None:
    site = site_factory([{"name": "patrol-4", "transmit": transmit(tmp_path)}])
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    site.gateway.dispatcher.run("dispatch", body)
    [report] = [e for e in site.events if e.kind == Kind.IO]
    assert report.detail["result"] == "failed" and report.detail["reason"].startswith(reason)
    assert report.detail["path"] is None and report.detail["command"] == "dispatch"
    assert not (tmp_path / "tx.wav").exists()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
NAMES = ["request", "case", "unit", "channel", "paths", "text", "speech", "operator", "repeat_if_busy"]
FIELDS = st.sampled_from(NAMES)


@given(st.sampled_from(["dispatch", "radio_check"]), st.dictionaries(FIELDS, JSON, max_size=9),
       st.dictionaries(FIELDS, JSON, max_size=3))
def test_any_json_body_is_a_request_or_the_reason_it_is_not(command: str, body: dict[str, Any],
                                                           noise: dict[str, Any]) -> None:
    for candidate in (body, {**GOOD, **noise}):
        try:
            req = parse_request(command, candidate)
        except BadRequest as exc:
            assert str(exc).split(":")[0].split(".")[0] in NAMES  # the reason names the field
            continue
        assert isinstance(req, Request) and req.command == command and 0 <= req.repeat_if_busy <= 20


def test_paths_that_cannot_be_taken_each_say_why_and_the_next_is_tried(tmp_path: Path, site_factory: Any) -> None:
    site = site_factory([
        {"name": "patrol-5", "transmit": transmit(tmp_path, timeout_s=3)},
        {"name": "marine-16", "receive_only": True, "transmit": transmit(tmp_path, "marine.wav")},
        {"name": "listen", "drivers": [{"port": "loop://", "protocol": "kenwood"}]},
        {"name": "tnc", "drivers": [{"port": "loop://", "protocol": "kiss"}]},
    ])
    reports = site.run("dispatch", {**GOOD, "request": "p1", "unit": "fleetsync:100-1001", "channel": "patrol-5",
                                    "text": "案件 11 占道经营",
                                    "paths": ["teleport", "mdc_call_alert", "kenwood_message", "aprs_message",
                                              "fleetsync_message", "announcement"]})
    assert [(r["path"], r["result"], r["reason"]) for r in reports] == [
        ("teleport", "failed", "unknown path 'teleport' for dispatch; paths are kenwood_message, fleetsync_message, "
                               "mdc_call_alert, aprs_message, announcement"),
        ("mdc_call_alert", "unsupported", "mdc_call_alert reaches mdc units, not fleetsync:100-1001"),
        ("kenwood_message", "no_transmit_path", "channel patrol-5 has no kenwood serial driver (data port)"),
        ("aprs_message", "unsupported", "aprs_message reaches aprs units, not fleetsync:100-1001"),
        ("fleetsync_message", "failed", "text: '案件' cannot be sent by fleetsync_message (ascii only)"),
        # the Mandarin text spoken in English takes longer than the channel may transmit
        ("announcement", "failed", reports[-1]["reason"]),
    ]
    assert "longer than the channel's transmit timeout_s (3 s)" in reports[-1]["reason"]
    assert not (tmp_path / "tx.wav").exists()  # nothing was keyed

    [rx_only] = site.run("radio_check", {**GOOD, "request": "p2", "channel": "marine-16"})
    assert (rx_only["result"], rx_only["reason"]) == (
        "no_transmit_path", "channel marine-16 is receive-only: the radio does not transmit there")
    [nothing] = site.run("dispatch", {**GOOD, "request": "p3", "unit": "dtmf:1234", "channel": "listen"})
    assert (nothing["path"], nothing["result"]) == (None, "no_transmit_path")
    assert nothing["reason"] == ("channel listen has no path to dtmf units (no transmit audio, Kenwood data port, "
                                 "no KISS TNC)")
    [no_call] = site.run("dispatch", {**GOOD, "request": "p4", "unit": "aprs:BG5ABC-9", "channel": "tnc"})
    assert (no_call["result"], no_call["reason"]) == (
        "failed", "channel tnc: dispatch.aprs_callsign is not set, so this station has no callsign to send from")
    [bad_id] = site.run("dispatch", {**GOOD, "request": "p5", "unit": "fleetsync:099-1001",
                                     "channel": "patrol-5", "paths": ["fleetsync_message"]})
    assert bad_id["result"] == "unsupported" and "fleet 100-354" in bad_id["reason"]
    # digits a radio does not read (a unit id may hold any printable character) reach no radio
    [arabic] = site.run("dispatch", {**GOOD, "request": "p5a", "unit": "fleetsync:١٠٠-١٠٠١",
                                     "channel": "patrol-5", "paths": ["fleetsync_message"]})
    assert arabic["result"] == "unsupported"
    [on_port] = site.run("dispatch", {**GOOD, "request": "p5b", "unit": "fleetsync:١٠٠-١٠٠١",
                                      "channel": "listen", "paths": ["kenwood_message"]})
    assert on_port["result"] == "failed" and on_port["reason"].startswith("not a Kenwood unit")
    # and after all that the gateway still transmits
    [ok] = site.run("dispatch", {**GOOD, "request": "p6", "channel": "patrol-5", "paths": ["mdc_call_alert"]})
    assert ok["result"] == "sent"


def test_a_data_port_that_is_not_open_fails_with_the_reason(tmp_path: Path, site_factory: Any) -> None:
    site = site_factory([{"name": "patrol-6",
                          "drivers": [{"port": str(tmp_path / "gone.tty"), "protocol": "kenwood"}]}])
    wait_until(lambda: site.gateway.drivers[0][1].snapshot()["state"] == "down", 10, "the port to be down")
    [report] = site.run("dispatch", {**GOOD, "request": "p7", "unit": "fleetsync:100-1001", "channel": "patrol-6"})
    assert (report["path"], report["result"]) == ("kenwood_message", "failed")
    assert report["reason"].startswith(f"{tmp_path / 'gone.tty'} is not open (cannot open")


def test_a_radio_check_of_an_mdc_unit_is_the_radio_check_opcode(tmp_path: Path, site_factory: Any) -> None:
    site = site_factory([{"name": "patrol-7", "transmit": transmit(tmp_path)}])
    [report] = site.run("radio_check", {"request": "c1", "case": 12, "unit": "mdc:0A1B", "channel": "patrol-7",
                                        "operator": "eve"})
    assert (report["path"], report["result"], report["command"]) == ("mdc_radio_check", "sent", "radio_check")
    [check] = decoded(Mdc1200Decoder(TX_RATE), tmp_path / "tx.wav")
    assert (check.detail["name"], check.unit) == ("radio_check", "mdc:0A1B")
    # a FleetSync unit on a channel without a data port is paged over the air
    [page] = site.run("radio_check", {"request": "c2", "case": 12, "unit": "fleetsync:100-1001",
                                      "channel": "patrol-7", "operator": "eve"})
    assert (page["path"], page["result"]) == ("fleetsync_page", "sent")
    heard = decoded(FleetSyncDecoder(TX_RATE), tmp_path / "tx.wav")
    assert [(d.detail["name"], d.detail["to_fleet"], d.detail["to_unit"]) for d in heard] == [("paging", 100, 1001)]
    assert fs.paging(100, 1000, 100, 1001).byte0 == fs.NO_FLAGS & ~fs.F_PAGING  # the same flags
    assert mdc1200.radio_check(0x0A1B).op == 0x63
