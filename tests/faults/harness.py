"""The site the fault-injection suite breaks: a real Mosquitto, a real bridge process on a PostgreSQL
server of its own, and three gateway processes whose radios (socat pty pairs) a traffic generator
feeds with position beacons (bulk) and emergencies (alerts).

Every frame written carries its own identity into the database: an alert is a FleetSync caller ID
(fleet 100+g for gateway g, a unit number counted per gateway; the channel's rule makes every key-up on
it an emergency) and is found by ``detail.raw`` (the frame in hex); a beacon is a Kenwood ``$PKNSH``
sentence whose latitude's minutes count the beacons of its gateway, found by ``detail.raw`` (the
sentence). The bridge's ``received_at`` (set in the transaction that stores the row) times arrivals.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import operator
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from support import Mosquitto, Postgres, SocatLink, create_database, emergency_channel, end_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS = ("gw1", "gw2", "gw3")
BEACON_HZ = 20.0  # bulk: position beacons per gateway per second
ALERT_EVERY_S = 1.0  # one emergency per gateway per second (the gateways take turns)
DRAIN_S = 120.0  # how long everything sent may take to be stored once the fault is over


def nmea(body: str) -> bytes:
    return b"$%s*%02X\r\n" % (body.encode(), functools.reduce(operator.xor, body.encode(), 0))


@dataclass
class Frame:
    gateway: str
    kind: str  # "alert" | "beacon"
    key: str  # detail.raw as the bridge stores it
    written: float  # time.time() when it went into the radio's pty
    order: int  # position in its gateway's stream


@dataclass
class Radio:
    """One gateway's radio port: what is written to it, in order; ``paused`` while it cannot be."""

    gateway: str
    index: int
    link: SocatLink
    alerts: int = 0
    beacons: int = 0
    paused: bool = False
    frames: list[Frame] = field(default_factory=list)

    def alert(self) -> tuple[bytes, str]:
        self.alerts += 1
        frame = b"\x02I1%03d%04d\x03" % (100 + self.index, 1000 + self.alerts % 9000)
        return frame, frame.hex()

    def beacon(self) -> tuple[bytes, str]:
        self.beacons += 1
        n = self.beacons
        # The latitude's minutes count the beacons: 30 degrees, 10 + n/10000 minutes; ten units a gateway.
        body = (f"PKNSH,30{10 + n // 10000:02d}.{n % 10000:04d},N,120{10 + self.index:02d}.0000,E,"
                f"{datetime.now(UTC):%H%M%S},A,U{self.index}{n % 10:04d},")
        sentence = nmea(body)
        return sentence, sentence.decode().strip()


class Traffic:
    """Writes beacons at BEACON_HZ and an alert every ALERT_EVERY_S into every radio, on a thread."""

    def __init__(self, radios: list[Radio]) -> None:
        self.radios = radios
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.write_errors = 0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @contextmanager
    def paused(self, radio: Radio) -> Iterator[None]:
        """Nothing is written to ``radio`` inside: a radio with its cable pulled sends nothing."""
        with self._lock:
            radio.paused = True
        try:
            yield
        finally:
            with self._lock:
                radio.paused = False

    def burst(self, radio: Radio, n: int) -> None:
        """``n`` more beacons into ``radio`` at once (counted like the rest), to make its gateway write."""
        with self._lock:
            for _ in range(n):
                data, key = radio.beacon()
                radio.link.write(data)
                radio.frames.append(Frame(radio.gateway, "beacon", key, time.time(), len(radio.frames)))

    def _run(self) -> None:
        tick = 1.0 / BEACON_HZ
        n = 0
        next_at = time.monotonic()
        per_alert = round(ALERT_EVERY_S / tick)
        while not self._stop.is_set():
            for radio in self.radios:
                frames = [("beacon", *radio.beacon())]
                # The gateways' alerts are spread over the second, not all in one tick.
                if (n + radio.index * per_alert // len(self.radios)) % per_alert == 0:
                    frames.append(("alert", *radio.alert()))
                with self._lock:
                    if radio.paused:
                        continue
                    for kind, data, key in frames:
                        try:
                            radio.link.write(data)
                        except OSError:
                            self.write_errors += 1
                            continue
                        radio.frames.append(Frame(radio.gateway, kind, key, time.time(), len(radio.frames)))
            n += 1
            next_at += tick
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def gateway_config(workdir: Path, name: str, broker_url: str, port: Path, outbox: Path) -> Path:
    cfg = workdir / f"{name}.toml"
    cfg.write_text(f"""
data_dir = "{workdir / name}"

[gateway]
name = "{name}"
outbox = "{outbox}"
state_interval_s = 1

[mqtt]
url = "{broker_url}"
{emergency_channel(port, f"patrol-{name}")}""")
    return cfg


def bridge_config(workdir: Path, broker_url: str, database_url: str) -> Path:
    cfg = workdir / "bridge.toml"
    cfg.write_text(f"""
data_dir = "{workdir / 'bridge'}"

[mqtt]
url = "{broker_url}"

[bridge]
database_url = "{database_url}"
""")
    return cfg


class Process:
    """A pttbridge program as its own process, restartable, its log kept for the failing test."""

    def __init__(self, args: list[str], log: Path, *, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.args, self.log, self.prefix, self.env = args, log, prefix or [], env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, prefix: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env, **(env or {})}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*(self.prefix if prefix is None else prefix), sys.executable, "-m", "pttbridge", "-v", *self.args],
                cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=log,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc, kill_after=10)
            self.proc = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Row:
    """One fault's line of the table."""

    fault: str
    sent: int
    stored: int
    duplicates: int
    lost: int
    out_of_order: int
    alerts: int
    worst_alert_delay_s: float
    recovered_in_s: float
    note: str = ""
    diagnosis: str = ""

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} events lost")
        if self.duplicates:
            out.append(f"{self.duplicates} stored twice")
        if self.out_of_order:
            out.append(f"{self.out_of_order} out of their gateway's order")
        return out


class Site:
    """Everything the suite runs, started once; each fault test breaks one part and measures."""

    def __init__(self, workdir: Path, *, outbox_mount: Path | None = None) -> None:
        self.workdir = workdir
        self.postgres = Postgres()
        self.postgres.start()
        self.database_url = create_database(self.postgres.url(), "pttbridge_faults")
        self.engine = sa.create_engine(self.database_url, pool_pre_ping=True)
        self.broker = Mosquitto(workdir, "max_queued_messages 1000000\nmax_queued_bytes 0\n")
        self.broker.start()
        self.radios: list[Radio] = []
        self.gateways: dict[str, Process] = {}
        self.outboxes: dict[str, Path] = {}
        for i, name in enumerate(GATEWAYS, start=1):
            link = SocatLink(workdir, f"radio-{name}")
            link.plug()
            self.radios.append(Radio(name, i, link))
            # The last gateway keeps its outbox on a filesystem of its own (when one can be mounted),
            # which the outbox-disk-full fault fills.
            outbox_dir = outbox_mount if (outbox_mount is not None and name == GATEWAYS[-1]) else workdir / name
            outbox_dir.mkdir(parents=True, exist_ok=True)
            self.outboxes[name] = outbox_dir / "outbox.sqlite"
            cfg = gateway_config(workdir, name, self.broker.url, link.radio, self.outboxes[name])
            self.gateways[name] = Process(["gateway", "-c", str(cfg)], workdir / f"{name}.log")
        self.outbox_dir = outbox_mount
        self.bridge = Process(["bridge", "-c", str(bridge_config(workdir, self.broker.url, self.database_url))],
                              workdir / "bridge.log")
        self.bridge.start()
        wait_until(lambda: "connected to" in self.bridge.text(), 30, "the bridge to connect")
        for name, gw in self.gateways.items():
            gw.start()
            wait_until(lambda gw=gw: "opened" in gw.text(), 30, f"{name} to open its radio")
        self.traffic = Traffic(self.radios)

    def admin(self, sql: str) -> None:
        """One statement as the server's superuser, on its maintenance database."""
        import psycopg

        url = sa.engine.make_url(self.postgres.url())
        with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database,
                             autocommit=True) as conn:
            conn.execute(sql.encode())

    def wait_decoded(self, radio: Radio, timeout: float = 30.0) -> None:
        """Until the gateway has decoded the last frame written to ``radio`` (it is in its outbox): bytes
        on the wire when the port or the process goes away are lost on any serial line, and not what a
        fault test counts."""
        if not radio.frames:
            return
        import sqlite3

        want = json.dumps(radio.frames[-1].key)
        outbox = self.outboxes[radio.gateway]

        def decoded() -> bool:
            with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)) as db:
                rows = db.execute("SELECT payload FROM events ORDER BY seq DESC LIMIT 20").fetchall()
            return any(want in p.decode() for (p,) in rows)

        wait_until(decoded, timeout, f"{radio.gateway} to decode the last frame written")

    def radio(self, gateway: str) -> Radio:
        return next(r for r in self.radios if r.gateway == gateway)

    def close(self) -> None:
        self.traffic.stop()
        for gw in self.gateways.values():
            gw.stop()
        self.bridge.stop()
        for radio in self.radios:
            if radio.link.proc is not None:
                radio.link.unplug()
        self.broker.stop()
        self.engine.dispose()
        self.postgres.stop()

    # --- what the database holds ----------------------------------------------------------------

    def stored(self, since: float) -> list[tuple[str, int, str, float]]:
        """(gateway, seq, detail.raw, received_at epoch) of the events received since ``since``."""
        after = datetime.fromtimestamp(since - 5, UTC)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT gateway, seq, detail, received_at FROM events WHERE received_at >= :t"),
                                {"t": after}).all()
        out = []
        for gateway, seq, detail, received in rows:
            body = detail if isinstance(detail, dict) else json.loads(detail)
            when = received if received.tzinfo else received.replace(tzinfo=UTC)
            out.append((gateway, int(seq), str(body.get("raw")), when.timestamp()))
        return out

    # --- one fault, measured ----------------------------------------------------------------------

    def measure(self, fault: str, inject: Callable[[], tuple[float, float]], *, affected: tuple[str, ...] = GATEWAYS,
                warmup_s: float = 3.0, after_s: float = 5.0, note: str = "") -> Row:
        """Traffic on, ``inject`` the fault (it returns when the fault began and when the broken part
        came back, as time.time()), traffic on for ``after_s`` more, then wait for every frame sent to be
        stored; returns the row of the table."""
        start = time.time()
        for radio in self.radios:
            radio.frames.clear()
        self.traffic.start()
        try:
            time.sleep(warmup_s)  # traffic before the fault, and after it: the measured windows
            began, back = inject()
            time.sleep(after_s)
        finally:
            self.traffic.stop()
        frames = [f for r in self.radios for f in r.frames]
        keys = {(f.gateway, f.key) for f in frames}

        def all_stored() -> bool:
            got = {(g, k) for g, _, k, _ in self.stored(start)}
            return keys <= got

        try:
            wait_until(all_stored, DRAIN_S, "every frame sent to be stored")
        except AssertionError:
            pass  # counted as lost below
        # A measurement, not a check: a duplicate stored after the last frame arrived is counted in the table
        # if it comes within this second (the processes are others': no fact says none is on its way).
        time.sleep(1.0)
        rows = [r for r in self.stored(start) if (r[0], r[2]) in keys]
        by_key: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for gateway, seq, key, received in rows:
            by_key.setdefault((gateway, key), []).append((seq, received))
        seqs = Counter((g, s) for g, s, _, _ in rows)
        duplicates = sum(len(v) - 1 for v in by_key.values()) + sum(n - 1 for n in seqs.values() if n > 1)
        lost = len(keys - set(by_key))
        out_of_order = 0
        for radio in self.radios:
            got = [by_key[(radio.gateway, f.key)][0][0] for f in radio.frames if (radio.gateway, f.key) in by_key]
            out_of_order += sum(1 for a, b in itertools.pairwise(got) if b <= a)
        worst = 0.0
        alerts = 0
        for f in frames:
            if f.kind != "alert" or (f.gateway, f.key) not in by_key:
                continue
            alerts += 1
            received = min(t for _, t in by_key[(f.gateway, f.key)])
            # An alert the fault kept from being delivered is timed from when the broken part came back.
            held = f.gateway in affected and f.written < back and received > began
            worst = max(worst, received - (max(f.written, back) if held else f.written))
        before = [min(t for _, t in by_key[(f.gateway, f.key)]) for f in frames
                  if f.written < back and (f.gateway, f.key) in by_key]
        recovered = max(0.0, max(before, default=back) - back)
        row = Row(fault, len(frames), len(by_key), duplicates, lost, out_of_order, alerts, worst, recovered, note)
        if row.problems():
            row.diagnosis = self.diagnose(by_key)
        return row

    def diagnose(self, by_key: dict[tuple[str, str], list[tuple[int, float]]]) -> str:
        """Where the missing frames went: per gateway, which were lost, and what its outbox and the
        bridge's database say about its seq."""
        out = []
        for radio in self.radios:
            missing = [f for f in radio.frames if (radio.gateway, f.key) not in by_key]
            if not missing:
                continue
            decoded = 0
            outbox = self.outboxes.get(radio.gateway)
            if outbox is not None and outbox.exists():
                import sqlite3

                with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as db:
                    payloads = "\n".join(p.decode() for (p,) in db.execute("SELECT payload FROM events"))
                decoded = sum(1 for f in missing if json.dumps(f.key) in payloads)
            with self.engine.connect() as conn:
                state = conn.execute(sa.text("SELECT last_seq, contiguous_seq, lost FROM gateways WHERE name = :g"),
                                     {"g": radio.gateway}).one_or_none()
            out.append(f"{radio.gateway}: {len(missing)} of {len(radio.frames)} missing, written "
                       f"#{missing[0].order}..#{missing[-1].order} ({Counter(f.kind for f in missing)}); "
                       f"{decoded} of them in its outbox; bridge (last_seq, contiguous_seq, lost) = "
                       f"{tuple(state) if state else None}")
            log = [line for line in self.gateways[radio.gateway].text().splitlines() if "gateway.runner" not in line]
            out.append("  " + "\n  ".join(log[-12:]))
            said = [line for line in self.bridge.text().splitlines() if f"gateway {radio.gateway}:" in line
                    or ("replay" in line and radio.gateway in line)]
            out.append("  bridge: " + "\n  bridge: ".join(said[-10:]))
            out.append(f"  missing: {[(f.kind, f.order, f.key[:40]) for f in missing][:5]}")
        return "\n".join(out)


ROWS: list[Row] = []  # the table, one row per fault test run; printed and written at the end of the session


def record(row: Row) -> Row:
    ROWS.append(row)
    return row


def markdown(rows: list[Row], notes: list[str]) -> str:
    lines = ["| fault | events sent | stored | duplicates | lost | out of order | worst alert delay | recovered in |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.fault}{' (' + r.note + ')' if r.note else ''} | {r.sent} | {r.stored} | {r.duplicates} "
                     f"| {r.lost} | {r.out_of_order} | {r.worst_alert_delay_s:.2f} s | {r.recovered_in_s:.1f} s |")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def restart_postgres(pg: Postgres, down_s: float) -> tuple[float, float]:
    """Stop the server (fast shutdown: sessions are cut), keep it down ``down_s``, start it again."""
    data = str(pg.dir / "data")
    began = time.time()
    pg._run(str(pg.bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
    time.sleep(down_s)  # the fault: the database down this long
    options = f"-p {pg.port} -k {pg.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not pg.durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg._run(str(pg.bindir / "pg_ctl"), "-D", data, "-l", str(pg.dir / "server.log"), "-w", "-o", options, "start")
    return began, time.time()
