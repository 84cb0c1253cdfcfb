"""Prometheus metrics of the gateway and the bridge: scraped over HTTP from running programs after real
traffic (a radio on a pty, a real Mosquitto), parsed strictly, and checked against what was sent."""

from __future__ import annotations

import itertools
import math
import re
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import Mosquitto, SocatLink, caller_id, free_port, site_config, wait_until

from bridge.service import Bridge
from config.schema import ConfigError, load_config, parse_config
from gateway.runner import Gateway
from monitoring.prometheus import Exposition, Histogram, MetricsServer

Sample = tuple[str, frozenset[tuple[str, str]]]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_exposition(text: str) -> dict[Sample, float]:
    """The text format 0.0.4, strictly: HELP and TYPE before a family's samples, each family once, valid
    names, escaped label values, numbers Prometheus reads, no sample twice, counters ending in _total,
    histogram buckets cumulative up to +Inf equal to _count."""
    assert text.endswith("\n"), "the exposition ends with a line feed"
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples: dict[Sample, float] = {}
    current: str | None = None
    for n, line in enumerate(text.splitlines(), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(_NAME, name) and name not in helped, where
            helped.add(name)
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and name not in types and kind in _TYPES, where
            types[name] = kind
            continue
        assert not line.startswith("#") and line.strip(), where
        m = _SAMPLE.match(line)
        assert m, where
        sample_name, labels_text, value_text = m.groups()
        family = current or ""
        family_kind = types.get(family)
        assert family_kind is not None, f"{where}: no TYPE for it"
        allowed = {family} if family_kind != "histogram" else {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        assert sample_name in allowed, f"{where}: not of family {family}"
        if family_kind == "counter":
            assert sample_name.endswith("_total"), where
        labels: list[tuple[str, str]] = []
        rest = labels_text or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm, where
            labels.append((lm.group(1), lm.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")))
            rest = rest[lm.end():]
        assert len({k for k, _ in labels}) == len(labels), where
        value = float(value_text)  # accepts NaN, +Inf, -Inf as Prometheus writes them
        key = (sample_name, frozenset(labels))
        assert key not in samples, f"{where}: sample twice"
        samples[key] = value
    for family, kind in types.items():
        if kind == "histogram":
            buckets = sorted((float(dict(lb)["le"]), v) for (nm, lb), v in samples.items() if nm == f"{family}_bucket")
            assert buckets and buckets[-1][0] == math.inf, family
            assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets)), f"{family}: not cumulative"
            assert buckets[-1][1] == samples[(f"{family}_count", frozenset())], family
    return samples


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(port: int) -> dict[Sample, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse_exposition(r.read().decode())


def test_the_exposition_escapes_labels_and_keeps_histograms_cumulative() -> None:
    h = Histogram([0.1, 1.0])
    h.observe_many([0.05, 0.1, 0.5, 7.0])
    out = Exposition()
    out.counter("x_total", "help with a \\ backslash\nand a line", [({"radio": 'a "b"\\c\nd'}, 3)])
    out.gauge("y", "a level", [({"m": "rms"}, -math.inf), ({"m": "peak"}, -3.25)])
    out.histogram("z_seconds", "latency", h)
    s = parse_exposition(out.text())
    assert value(s, "x_total", radio='a "b"\\c\nd') == 3
    assert value(s, "y", m="rms") == -math.inf and value(s, "y", m="peak") == -3.25
    assert [value(s, "z_seconds_bucket", le=le) for le in ("0.1", "1", "+Inf")] == [2, 3, 4]
    assert value(s, "z_seconds_count") == 4 and value(s, "z_seconds_sum") == pytest.approx(7.65)


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.1:99999", "host name:9101", ":9101", "http://x:1"])
def test_a_bad_metrics_address_names_the_key(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"bridge\.metrics"):
        parse_config({"bridge": {"metrics": listen}})


def test_a_metrics_address_in_use_fails_at_start_and_other_paths_are_not_found() -> None:
    server = MetricsServer(f"127.0.0.1:{free_port()}", lambda: "", name="t")
    server.start()
    try:
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
            MetricsServer(f"127.0.0.1:{server.port}", lambda: "").start()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5)
        assert err.value.code == 404
    finally:
        server.stop()


def test_gateway_and_bridge_metrics_count_what_was_sent(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink
) -> None:
    gw_port, br_port = free_port(), free_port()
    cfg_path = site_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path / 'bridge.sqlite'}", socat_link.radio,
                           bridge={"metrics": f"127.0.0.1:{br_port}", "mqtt_version": "5"})
    cfg = load_config(cfg_path)
    cfg = cfg.model_copy(update={"gateway": cfg.require_gateway().model_copy(
        update={"metrics": f"127.0.0.1:{gw_port}"})})
    bridge, gateway = Bridge(cfg), Gateway(cfg)
    bridge.start()
    gateway.start()
    n, garbage = 12, 3
    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 15, "bridge and gateway to connect")
        # What is written before the driver has opened its port may be flushed by the opening.
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 15, "the port open")
        for i in range(n):
            socat_link.write(caller_id(i))  # every key-up on this channel is an alert, each of another unit
            if i < garbage:
                socat_link.write(b"\x02Ijunk!!\x03")
        # And one payload no gateway would send, straight to the bridge.
        bad = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-bad")
        bad.connect("127.0.0.1", mosquitto.port)
        bad.loop_start()
        bad.publish("pttbridge/v1/gw/gw1/event/alert", b"{not json", qos=1).wait_for_publish(5)
        bad.loop_stop()
        bad.disconnect()
        assert bridge.store is not None
        store = bridge.store
        wait_until(lambda: store.count_events("gw1") == n and bridge.counts["rejected"] == 1, 30,
                   f"{n} alerts stored and the bad payload rejected")

        def gateway_done() -> bool:
            s = scrape(gw_port)
            return value(s, "pttbridge_gateway_events_published_total") == n \
                and value(s, "pttbridge_gateway_radio_rejected_total", radio="emergency-1/kenwood") == garbage

        wait_until(gateway_done, 15, "every PUBACK and every rejected frame counted")
        g = scrape(gw_port)
        assert value(g, "pttbridge_gateway_events_total", kind="alert") == n
        assert value(g, "pttbridge_gateway_outbox_pending") == 0
        assert value(g, "pttbridge_gateway_outbox_oldest_pending_seconds") == 0
        assert value(g, "pttbridge_gateway_outbox_next_seq") == n + 1
        assert value(g, "pttbridge_gateway_connected") == 1
        radio = "emergency-1/kenwood"
        assert value(g, "pttbridge_gateway_radio_decoded_total", radio=radio) == n
        assert value(g, "pttbridge_gateway_radio_state", radio=radio, state="open") == 1
        assert value(g, "pttbridge_gateway_radio_state", radio=radio, state="down") == 0
        assert value(g, "pttbridge_gateway_radio_input_total", radio=radio, unit="bytes_in") == \
            n * len(caller_id(0)) + garbage * len(b"\x02Ijunk!!\x03")
        assert value(g, "pttbridge_gateway_info", gateway="gw1") == 1

        b = scrape(br_port)
        assert value(b, "pttbridge_bridge_events_received_total") == n + 1
        assert value(b, "pttbridge_bridge_events_stored_total") == n
        assert value(b, "pttbridge_bridge_events_rejected_total") == 1
        assert value(b, "pttbridge_bridge_events_duplicate_total") == 0
        assert value(b, "pttbridge_bridge_events_lost_total") == 0
        assert value(b, "pttbridge_bridge_connected") == 1
        assert value(b, "pttbridge_bridge_database_up") == 1
        assert value(b, "pttbridge_bridge_incidents_open") == n  # one unit each: an incident each
        assert value(b, "pttbridge_bridge_incidents_unacknowledged") == n
        assert value(b, "pttbridge_bridge_gateway_last_seq", gateway="gw1") == n
        assert value(b, "pttbridge_bridge_gateway_contiguous_seq", gateway="gw1") == n
        assert value(b, "pttbridge_bridge_ingest_latency_seconds_count") == n
        assert value(b, "pttbridge_bridge_batch_size_events_sum") == n
        assert value(b, "pttbridge_bridge_store_duration_seconds_count") == \
            value(b, "pttbridge_bridge_batch_size_events_count") >= 1
    finally:
        gateway.stop()
        bridge.stop()
    with pytest.raises(urllib.error.URLError):  # stopped with its program
        urllib.request.urlopen(f"http://127.0.0.1:{br_port}/metrics", timeout=2)
