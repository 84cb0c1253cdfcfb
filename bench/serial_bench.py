"""Serial-side benchmark: decoder throughput, publisher throughput to Mosquitto, pty-to-subscriber latency.

    python -m bench.serial_bench [--quick]

Peers on the same input, in the same run:
- NMEA: gpsd's ``gpsdecode -j`` (Debian gpsd-clients) decodes the same concatenated receiver logs.
- Publishing: ``mosquitto_pub -q 1 -l`` sends the same event payloads to the same broker, and a bare
  paho-mqtt QoS 1 loop does too; our publisher adds the SQLite outbox and ordering on top.

Writes a Markdown table to bench/out/serial.md and prints it. Needs mosquitto, mosquitto-clients,
socat and (for the NMEA peer) gpsd-clients.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import Listener, Mosquitto, SocatLink, caller_id, wait_until  # noqa: E402

from config.schema import parse_config  # noqa: E402
from drivers.ax25 import encode_ui  # noqa: E402
from drivers.base import Rejected  # noqa: E402
from drivers.kiss import kiss_encode  # noqa: E402
from drivers.registry import create_protocol  # noqa: E402
from gateway.events import Decoded, Kind  # noqa: E402
from gateway.outbox import Outbox  # noqa: E402
from gateway.publisher import OutboxPublisher  # noqa: E402
from gateway.runner import Gateway  # noqa: E402

DATA = ROOT / "tests" / "data"
OUT = ROOT / "bench" / "out"


def nmea_corpus(repeat: int) -> bytes:
    logs = sorted((DATA / "nmea").glob("*.log"))
    one = b"".join(
        b"\n".join(line for line in p.read_bytes().splitlines() if not line.startswith(b"#")) + b"\n" for p in logs
    )
    return one * repeat


def kenwood_corpus(n: int) -> bytes:
    from drivers.nmea import checksum

    parts = []
    for i in range(n):
        unit = 1000 + i % 500
        parts.append(b"\x02I1100%04d\x03" % unit)
        body = f"PKLSH,3012.{i % 10000:04d},N,12012.6420,E,1930{i % 60:02d},A,100,{unit:04d},"
        parts.append(f"${body}*{checksum(body):02X}\r\n".encode())
    return b"".join(parts)


def kiss_corpus(n: int) -> bytes:
    frames = []
    for i in range(n):
        info = f"!3012.{i % 100:02d}N/12012.64E>patrol {i}".encode()
        frame = encode_ui(f"BG5ABC-{i % 16}", "APRS", info)
        frames.append(kiss_encode(frame))
    return b"".join(frames)


def decoder_rate(protocol: str, corpus: bytes, options: dict[str, Any] | None = None,
                 runs: int = 3) -> tuple[float, int, int]:
    """Best of ``runs``: (seconds, events, rejected) for feeding the corpus in 4 KiB reads."""
    best = float("inf")
    events = rejected = 0
    for _ in range(runs):
        dec = create_protocol(protocol, options or {})
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        out = []
        for i in range(0, len(corpus), 4096):
            out += dec.feed(corpus[i : i + 4096], now)
        out += dec.flush()
        best = min(best, time.perf_counter() - t0)
        rejected = sum(isinstance(o, Rejected) for o in out)
        events = len(out) - rejected
    return best, events, rejected


def gpsdecode_rate(corpus: bytes) -> tuple[float, int] | None:
    if shutil.which("gpsdecode") is None:
        return None
    best, tpv = float("inf"), 0
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(["gpsdecode", "-j"], input=corpus, capture_output=True, check=True).stdout
        best = min(best, time.perf_counter() - t0)
        tpv = out.count(b'"class":"TPV"')
    return best, tpv


def publisher_rate(broker: Mosquitto, n: int, workdir: Path) -> float:
    cfg = parse_config({"gateway": {"name": "bench"}, "mqtt": {"url": broker.url}})
    outbox = Outbox(workdir / f"pub-{time.monotonic_ns()}.sqlite", "bench")
    now = datetime.now(UTC)
    for i in range(n):
        outbox.append(Decoded(Kind.BEACON, now, f"fleetsync:100-{1000 + i % 500}", None, {"protocol": "bench"}), "c")
    pub = OutboxPublisher(outbox, cfg.mqtt, cfg.require_gateway(), lambda: {})
    t0 = time.perf_counter()
    pub.start()
    wait_until(lambda: outbox.stats()["pending"] == 0, 300, "outbox to drain")
    elapsed = time.perf_counter() - t0
    pub.stop()
    outbox.close()
    return n / elapsed


def append_rate(n: int, workdir: Path) -> float:
    outbox = Outbox(workdir / "append.sqlite", "bench")
    now = datetime.now(UTC)
    d = Decoded(Kind.BEACON, now, "fleetsync:100-1001", None, {"protocol": "bench"})
    t0 = time.perf_counter()
    for _ in range(n):
        outbox.append(d, "c")
    rate = n / (time.perf_counter() - t0)
    outbox.close()
    return rate


def mosquitto_pub_rate(broker: Mosquitto, n: int, payload: bytes) -> float | None:
    if shutil.which("mosquitto_pub") is None:
        return None
    lines = (payload.replace(b"\n", b" ") + b"\n") * n
    t0 = time.perf_counter()
    subprocess.run(
        ["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "bench/peer", "-l"], input=lines, check=True
    )
    return n / (time.perf_counter() - t0)


def paho_rate(broker: Mosquitto, n: int, payload: bytes) -> float:
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.max_inflight_messages_set(200)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    t0 = time.perf_counter()
    infos = [c.publish("bench/paho", payload, qos=1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(60)
    rate = n / (time.perf_counter() - t0)
    c.loop_stop()
    c.disconnect()
    return rate


def latency(broker: Mosquitto, workdir: Path, n: int) -> tuple[float, float]:
    """p50/p99 seconds from the last byte of a frame written to the pty to the event at a subscriber."""
    link = SocatLink(workdir, "lat")
    link.plug()
    cfg = parse_config(
        {
            "gateway": {"name": "lat", "outbox": str(workdir / "lat.sqlite")},
            "mqtt": {"url": broker.url},
            "channels": [{"name": "c", "drivers": [{"port": str(link.radio), "protocol": "kenwood"}]}],
        }
    )
    arrivals: dict[str, float] = {}
    lock = threading.Condition()
    listener = Listener(broker.url, "pttbridge/v1/gw/lat/event/#")

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        t = time.perf_counter()
        import json

        with lock:
            arrivals[json.loads(msg.payload)["unit"]] = t
            lock.notify_all()

    listener.client.on_message = on_message
    gw = Gateway(cfg)
    gw.start()
    wait_until(lambda: gw.publisher.connected and gw.drivers[0][1].snapshot()["state"] == "open", 10, "gateway")
    delays = []
    for i in range(n):
        unit = f"fleetsync:100-{1000 + i}"
        t0 = time.perf_counter()
        link.write(caller_id(i))
        with lock:
            lock.wait_for(lambda: unit in arrivals, 5)  # noqa: B023 - called here, in this turn of the loop
            delays.append(arrivals[unit] - t0)
        time.sleep(0.005)
    gw.stop()
    listener.close()
    link.unplug()
    delays.sort()
    return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller corpora, for a smoke run")
    args = ap.parse_args()
    scale = 1 if args.quick else 10
    rows: list[tuple[str, str, str]] = []
    progress: Callable[[str], None] = lambda s: print(f"... {s}", file=sys.stderr, flush=True)  # noqa: E731

    progress("NMEA decoder vs gpsdecode")
    corpus = nmea_corpus(2 * scale)
    t, ev, rej = decoder_rate("nmea", corpus, {"unit": "gps:bench"})
    lines = corpus.count(b"\n")
    peer = gpsdecode_rate(corpus)
    peer_text = "gpsdecode missing"
    if peer:
        peer_text = f"gpsdecode -j: {lines / peer[0]:,.0f} sentences/s, {peer[1]:,} TPV (one per RMC or GGA)"
    ours = f"{lines / t:,.0f} sentences/s, {ev:,} fixes (RMC+GGA merged), {rej:,} bad checksums"
    rows.append(("NMEA (10 gpsd receiver logs, repeated)", ours, peer_text))

    progress("Kenwood decoder")
    corpus = kenwood_corpus(5000 * scale)
    t, ev, rej = decoder_rate("kenwood", corpus)
    rows.append(("Kenwood (caller ID + $PKLSH)", f"{ev / t:,.0f} events/s ({len(corpus) / t / 1e6:.1f} MB/s)", "-"))

    progress("KISS/APRS decoder")
    corpus = kiss_corpus(5000 * scale)
    t, ev, rej = decoder_rate("kiss", corpus)
    rows.append(("KISS -> AX.25 -> APRS", f"{ev / t:,.0f} events/s", "-"))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work, "max_queued_messages 0\nmax_inflight_messages 0\n", persistent=False)
        broker.start()
        try:
            n = 2000 * scale
            progress("outbox append (fsync per event)")
            rows.append(("outbox append (SQLite WAL, synchronous=FULL)", f"{append_rate(n, work):,.0f} events/s",
                         "-"))
            progress("publisher to mosquitto")
            publisher = publisher_rate(broker, n, work)
            payload = Outbox(":memory:", "bench").append(
                Decoded(Kind.BEACON, datetime.now(UTC), "fleetsync:100-1001", None, {"protocol": "bench"}), "c"
            )
            from gateway.events import encode_event

            body = encode_event(payload)
            peer_pub = mosquitto_pub_rate(broker, n, body)
            peer_paho = paho_rate(broker, n, body)
            rows.append(
                (
                    "publish QoS 1 to Mosquitto (outbox -> PUBACK)",
                    f"{publisher:,.0f} events/s",
                    f"mosquitto_pub -q 1 -l: {peer_pub:,.0f} msg/s; bare paho: {peer_paho:,.0f} msg/s"
                    if peer_pub
                    else f"bare paho: {peer_paho:,.0f} msg/s",
                )
            )
            progress("latency pty -> subscriber")
            p50, p99 = latency(broker, work, 100 * scale)
            rows.append(("frame on pty -> event at subscriber", f"p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms",
                         "-"))
        finally:
            broker.stop()

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    table = [f"Machine: {os.cpu_count()} cores, {cpu}; Python {sys.version.split()[0]}.", "",
             "| what | pttbridge | peer on the same input |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serial.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
