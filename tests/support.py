"""Real parts for tests: a Mosquitto broker process, socat pseudo-terminal pairs, an MQTT listener."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.request import urlopen

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

if TYPE_CHECKING:
    from datetime import datetime

    from drivers.audio.base import AudioDecoder
    from drivers.base import Output


def caller_id(n: int) -> bytes:
    """A FleetSync caller ID (key-up) from fleet 100, unit 1000+n, as a radio's data port sends it."""
    return b"\x02I1100%04d\x03" % (1000 + n)


def emergency_channel(port: Path | str, name: str = "emergency-1") -> str:
    """TOML of a dedicated emergency channel on a Kenwood radio at ``port``: any key-up on it is an
    emergency (a rule, as a technician sets it), so every ``caller_id`` frame becomes an alert."""
    return f"""
[[channels]]
name = "{name}"
[[channels.drivers]]
port = "{port}"
protocol = "kenwood"
[[channels.rules]]
when = {{ kind = "ptt", transmission = "begin" }}
kind = "alert"
label = "key-up on the emergency channel"
"""


def site_config(tmp: Path, broker_url: str, database_url: str, port: Path | None = None, *,
                bridge: dict[str, Any] | None = None, console: str = "") -> Path:
    """One file for every program of a site: a gateway (with the emergency channel on ``port``, if
    given), a bridge on ``database_url`` with ``bridge`` settings, and the console's section."""
    bridge_toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in (bridge or {}).items())
    cfg = tmp / "pttbridge.toml"
    cfg.write_text(f"""
data_dir = "data"

[gateway]
name = "gw1"
outbox = "outbox.sqlite"
state_interval_s = 1

[mqtt]
url = "{broker_url}"

[bridge]
database_url = "{database_url}"
{bridge_toml}

[console]
{console}
{emergency_channel(port) if port else ""}""")
    return cfg


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port free now and not handed out before in this run: the kernel may offer a port again
    as soon as it is closed, and two brokers (or listeners) given one port would fight over it."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def end_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], *, kill_after: float = 5.0) -> None:
    """Ask a test's server process to stop (SIGTERM), and kill it if it will not."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(kill_after)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    def is_open() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(is_open, timeout, f"127.0.0.1:{port}")


class Mosquitto:
    """A real mosquitto on a loopback port; restartable on the same port."""

    def __init__(self, workdir: Path, extra_conf: str = "", *, persistent: bool = True, prelude: str = "") -> None:
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        # Persistence as deployed: sessions of clean_session=False subscribers survive a restart.
        store = f"persistence true\npersistence_location {workdir}/\n" if persistent else "persistence false\n"
        # Started as root, mosquitto would become user "mosquitto" and could not read or write the test's
        # private temporary folder (persistence, password file, certificates).
        user = "user root\n" if os.geteuid() == 0 else ""
        # set_tcp_nodelay as a deployment should: a message queued behind another is not held ~40 ms.
        self.conf.write_text(
            f"{prelude}\n{user}listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            f"{store}{extra_conf}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.conf.with_suffix(".log").open("ab")  # kept: a broker that will not start says why there
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None


class SocatLink:
    """A pseudo-terminal pair whose two ends appear as symlinks, like a USB serial adapter's udev link.

    ``radio`` is what the gateway opens; tests write what the radio sends into ``feed``. ``unplug()``
    makes both ends vanish (as pulling the USB cable does), ``plug()`` brings them back at the same paths.
    """

    def __init__(self, workdir: Path, name: str = "radio") -> None:
        self.radio = workdir / f"{name}.tty"
        self.feed = workdir / f"{name}.feed"
        self.proc: subprocess.Popen[bytes] | None = None
        self._fd: int | None = None

    def plug(self) -> None:
        self.proc = subprocess.Popen(
            ["socat", f"pty,link={self.radio},raw,echo=0", f"pty,link={self.feed},raw,echo=0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.radio.exists() and self.feed.exists(), 5, "socat pty links")

    def write(self, data: bytes) -> None:
        if self._fd is None:
            self._fd = os.open(self.feed, os.O_RDWR | os.O_NOCTTY)
        os.write(self._fd, data)

    def unplug(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None
        wait_until(lambda: not self.radio.exists(), 5, "socat links to vanish")


class Listener:
    """An MQTT subscriber that records what arrives, for assertions.

    Made, it has subscribed (the broker acknowledged its SUBSCRIBE): what is published after that reaches
    it. ``subscribed`` is set on every acknowledgement and cleared when the connection drops.
    """

    def __init__(self, url: str, topic: str, *, persistent: bool = True, timeout: float = 10.0) -> None:
        port = int(url.rsplit(":", 1)[1])
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        # A persistent session (like the bridge's): what is published while it is away is queued for it.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-listener-{free_port()}", clean_session=not persistent
        )
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # paho says int; seconds work
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.close()
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for the subscription to {topic}")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, suffix: str = "") -> list[Any]:
        """Any JSON: a state is an object, a broker's $SYS counter a bare number."""
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith(suffix) or suffix in t]

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if "/event/" in t]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Postgres:
    """A real PostgreSQL server in a temporary directory on a loopback port (for the PostgreSQL path).

    Runs the Debian server binaries (``apt-get install postgresql``) as the ``postgres`` user when the
    tests run as root, since PostgreSQL refuses to run as root. Every test gets a database of its own.
    """

    def __init__(self, *, durable: bool = False) -> None:
        import glob
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = found[-1] if found else shutil.which("initdb")
        if initdb is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = Path(initdb).parent
        self.dir = Path(tempfile.mkdtemp(prefix="pttbridge-pg-"))
        self.port = free_port()
        self.durable = durable
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as_user, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        data = self.dir / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "pttbridge", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        # Durability off for tests (they kill bridges, never the database server); on for benchmarks.
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-w",
                  "-o", options, "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://pttbridge@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    """A new empty database on the server of ``admin_url``; returns its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database, autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def afsk_audio(packets: list[bytes], workdir: Path, rate: int = 44100) -> bytes:
    """16-bit mono PCM of APRS packets (TNC2 text) from Dire Wolf's gen_packets, one run each
    (from a file it would keep each line's newline in the info field)."""
    import wave

    pcm = b""
    for i, packet in enumerate(packets):
        wav = workdir / f"packet{i}.wav"
        subprocess.run(["gen_packets", "-r", str(rate), "-o", str(wav), "-"], input=packet, check=True,
                       capture_output=True, timeout=10)
        with wave.open(str(wav)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, 1, 2)
            pcm += w.readframes(w.getnframes())
    return pcm + bytes(rate)  # half a second of silence lets the last frame finish


class DireWolf:
    """A real Dire Wolf soft TNC reading audio from stdin and serving KISS over TCP.

    It refuses a KISSPORT above 49151 (and quietly uses 8001), so the port is picked below that.
    It exits at the end of its input: ``stop()`` closes stdin, which is how a TNC goes away.
    """

    def __init__(self, workdir: Path, rate: int = 44100, port: int | None = None) -> None:
        if shutil.which("direwolf") is None or shutil.which("gen_packets") is None:
            raise RuntimeError("Dire Wolf is not installed (apt-get install direwolf)")
        self.workdir, self.rate = workdir, rate
        self.chosen = port  # None: a free port, picked again if another process takes it first
        self.port = port if port is not None else self._free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _free_port() -> int:
        import random

        while True:
            candidate = random.randint(20000, 49151)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", candidate))
                except OSError:
                    continue
            return candidate

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> None:
        # The port was free when picked, but another test's server may take it before Dire Wolf binds it:
        # Dire Wolf then runs on without KISS, and a client would reach that other server. So wait for its
        # own word that it listens, and pick another port if it could not bind.
        for _ in range(5):
            if self._launch():
                wait_for_port(self.port)
                return
            self.stop()
            if self.chosen is not None:
                break
            self.port = self._free_port()
        raise RuntimeError(f"Dire Wolf could not listen on port {self.port} (its log is in {self.workdir})")

    def _launch(self) -> bool:
        """Start Dire Wolf on ``self.port``; whether it listens there (False: the port was taken)."""
        conf = self.workdir / f"direwolf-{self.port}.conf"
        conf.write_text(f"ADEVICE stdin null\nACHANNELS 1\nMODEM 1200\nKISSPORT {self.port}\nAGWPORT 0\n")
        log = self.workdir / f"direwolf-{self.port}.log"
        with log.open("ab") as out:
            since = out.tell()  # a restart appends: only what this run writes counts
            self.proc = subprocess.Popen(["direwolf", "-c", str(conf), "-t", "0", "-q", "hd", "-r", str(self.rate)],
                                         stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        listening = f"Ready to accept KISS TCP client application 0 on port {self.port}"

        def said() -> str:
            with log.open("rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")

        wait_until(lambda: listening in said() or "Bind failed" in said(), 10, f"Dire Wolf on port {self.port}")
        return listening in said()

    def play(self, pcm: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(pcm)
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # how a TNC fed from stdin ends: it exits at the end of its input
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            end_process(self.proc)
        self.proc = None


def pacat_play(device: str, rate: int, channels: int, data: bytes, *, stderr: int) -> subprocess.Popen[bytes]:
    """Play float32 samples into a PulseAudio sink with ``pacat``, fed from a thread; returns at once."""
    player = subprocess.Popen(
        ["pacat", "--playback", f"--device={device}", f"--rate={rate}", f"--channels={channels}",
         "--format=float32le", "--latency-msec=20"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
    )

    def feed() -> None:
        assert player.stdin is not None
        # A test that has heard what it waits for stops the player before the end of the audio.
        with contextlib.suppress(BrokenPipeError):
            try:
                player.stdin.write(data)
            finally:
                player.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    return player


class PulseNullSink:
    """A private PulseAudio daemon with one null sink: audio played into it comes out of its monitor,
    which PortAudio captures as the ALSA device ``pulse`` (the ``pcm.pulse`` of libasound2-plugins).

    The daemon runs unprivileged-style (``-n -F <script>``, no ``--system``, also as root) with its runtime
    folder, socket and state under ``workdir``, so it never meets a desktop's PulseAudio. ``start()`` sets,
    in this process, ``PULSE_SERVER`` (the private socket), ``PULSE_SOURCE`` (``<sink>.monitor``),
    ``PULSE_SINK`` and ``PULSE_CLIENTCONFIG`` (autospawn off), and restarts PortAudio so it enumerates the
    ``pulse`` device; ``env`` holds the same variables for a gateway started as a subprocess.
    ``stop()`` restores the environment.
    """

    device = "pulse"

    def __init__(self, workdir: Path, sink: str = "pttbridge_radio", rate: int = 48000, channels: int = 1,
                 tx_sink: str | None = None) -> None:
        if shutil.which("pulseaudio") is None:
            raise RuntimeError("PulseAudio is not installed (apt-get install pulseaudio)")
        if shutil.which("pacat") is None or shutil.which("pactl") is None:
            raise RuntimeError("pacat/pactl are not installed (apt-get install pulseaudio-utils)")
        self.dir = workdir / "pulse"
        self.sink, self.rate, self.channels = sink, rate, channels
        # A second sink for what the gateway transmits: PortAudio's "pulse" device plays into PULSE_SINK.
        self.tx_sink = tx_sink
        self.socket = self.dir / "native"
        self.proc: subprocess.Popen[bytes] | None = None
        self._players: list[subprocess.Popen[bytes]] = []
        self._saved_env: dict[str, str | None] = {}
        self.env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_SOURCE": f"{sink}.monitor",
            "PULSE_SINK": tx_sink or sink,
            "PULSE_CLIENTCONFIG": str(self.dir / "client.conf"),
        }

    def start(self) -> None:
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        (self.dir / "client.conf").write_text("autospawn = no\n")
        script = self.dir / "default.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name={self.sink} rate={self.rate} channels={self.channels}\n"
            + (f"load-module module-null-sink sink_name={self.tx_sink} rate={self.rate} channels=1\n"
               if self.tx_sink else "")
            + f"set-default-sink {self.tx_sink or self.sink}\nset-default-source {self.sink}.monitor\n"
        )
        daemon_env = {**os.environ, **self.env, "HOME": str(self.dir), "XDG_RUNTIME_DIR": str(self.dir / "run"),
                      "PULSE_RUNTIME_PATH": str(self.dir / "run"), "PULSE_STATE_PATH": str(self.dir / "state")}
        log = (self.dir / "pulseaudio.log").open("ab")  # kept: a daemon that will not start says why there
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             "--disallow-exit", "--log-target=stderr", "--log-level=notice"],
            env=daemon_env, stdout=log, stderr=log,
        )
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {(self.dir / 'pulseaudio.log').read_text()[-2000:]}")
            return self.socket.exists() and subprocess.run(["pactl", "info"], capture_output=True).returncode == 0

        wait_until(answers, 10, "the PulseAudio daemon")
        self._restart_portaudio()
        import sounddevice as sd

        if not any(d["name"] == self.device and d["max_input_channels"] > 0 for d in sd.query_devices()):
            self.stop()
            raise RuntimeError("PortAudio has no 'pulse' device: the ALSA PulseAudio plugin is missing "
                               "(apt-get install libasound2-plugins)")

    @staticmethod
    def _restart_portaudio() -> None:
        # PortAudio lists (and probes) devices once, at initialisation: restart it to see the new server.
        import sounddevice as sd

        sd._terminate()
        sd._initialize()

    def play(self, samples: Any, rate: int | None = None) -> subprocess.Popen[bytes]:
        """Play float samples (1-D, or (frames, channels)) into the sink; returns at once (see ``wait``)."""
        import numpy as np

        x = np.asarray(samples, dtype="<f4")
        player = pacat_play(self.sink, rate or self.rate, 1 if x.ndim == 1 else x.shape[1], x.tobytes(),
                            stderr=subprocess.PIPE)
        self._players.append(player)
        return player

    def record_tx(self) -> MonitorRecording:
        """Start recording what is played into the transmit sink (its monitor), mono float at ``rate``."""
        assert self.tx_sink is not None
        return MonitorRecording(f"{self.tx_sink}.monitor", self.rate)

    def wait(self, timeout: float = 30.0) -> None:
        """Until everything played so far has been played out."""
        for player in self._players:
            player.wait(timeout)
        self._players.clear()

    def stop(self) -> None:
        for player in self._players:
            player.kill()
            player.wait(5)
        self._players.clear()
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        try:
            self._restart_portaudio()
        except Exception:  # noqa: BLE001 - teardown goes on; the next test that needs PortAudio reports it
            pass


class MonitorRecording:
    """``parec`` of a sink's monitor, collected on a thread; :meth:`samples` is what it has heard so far."""

    def __init__(self, source: str, rate: int) -> None:
        self.rate = rate
        self.proc = subprocess.Popen(
            ["parec", f"--device={source}", f"--rate={rate}", "--channels=1", "--format=float32le",
             "--latency-msec=20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert isinstance(self.proc.stdout, io.BufferedReader)  # unbuffered pipes would read one byte at a time
        while chunk := self.proc.stdout.read1(65536):
            with self._lock:
                self._chunks.append(chunk)

    def samples(self) -> Any:
        import numpy as np

        with self._lock:
            data = b"".join(self._chunks)
        return np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4")

    def stop(self) -> None:
        end_process(self.proc)


class DeviceServer:
    """A serial device server (tests/rfc2217_server.py) in its own process, for PTT on RTS/DTR; ``lines``
    is what it saw, with when it saw it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"rfc2217://127.0.0.1:{self.port}"
        server = Path(__file__).parent / "rfc2217_server.py"
        self.proc = subprocess.Popen([sys.executable, str(server), str(self.port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._ready.wait(10), "the device server did not start"
        self.lines.clear()  # its own port opening

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "READY":
                self._ready.set()
            else:
                self.lines.append((time.monotonic(), line.strip()))

    def set_line(self, line: str, on: bool) -> None:
        """Change an input line (cts, dsr, cd, ri) as the radio interface would."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"set {line} {int(on)}\n")
        self.proc.stdin.flush()

    def rts(self) -> list[str]:
        return [text for _, text in self.lines if text.startswith("RTS")]

    def stop(self) -> None:
        end_process(self.proc)


class ModbusServer:
    """A Modbus I/O module: tests/modbus_server.py in its own process, its inputs set through its stdin
    and every coil write a client makes seen on its stdout (``expect("write co 4 1")``)."""

    def __init__(self, workdir: Path, where: list[str], device_id: int = 3) -> None:
        self.workdir, self.where, self.device_id = workdir, where, device_id
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []

    def start(self) -> None:
        log = (self.workdir / "modbus-server.log").open("a")  # kept: a server that will not start says why
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "modbus_server.py"), *self.where,
                                      "--device-id", str(self.device_id)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        lines, stdout = self.lines, self.proc.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                lines.put(line.strip())

        threading.Thread(target=read, daemon=True).start()
        self.expect("ready")

    def expect(self, line: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while line not in self.seen:
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"the server did not say {line!r}; it said {self.seen}") from None

    def set(self, table: str, address: int, value: int) -> None:
        """Change an input, and wait until the server has it (the get is answered after the set)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"set {table} {address} {value}\nget {table} {address}\n")
        self.proc.stdin.flush()
        self.expect(f"{table} {address} {value}")
        self.seen.remove(f"{table} {address} {value}")

    def kill(self) -> None:
        """Pulled from the mains: no goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None


def ptt_keyed_by(ptt: str, tmp_path: Path, device_server: DeviceServer
                 ) -> tuple[list[dict[str, Any]], dict[str, Any], ModbusServer | None]:
    """A test channel's PTT: RTS of the RFC 2217 device server (``"serial"``), or coil 4 of a real Modbus
    server started here (``"modbus"``; the caller stops it). The drivers the channel needs for it (the
    Modbus driver), its ``[channels.transmit] ptt`` table, and the Modbus server."""
    if ptt != "modbus":
        return [], {"method": "serial", "port": device_server.url, "line": "rts"}, None
    port = free_port()
    io_module = ModbusServer(tmp_path, ["--tcp", str(port)], device_id=1)
    io_module.start()
    driver = {"type": "modbus", "name": "io", "url": f"tcp://127.0.0.1:{port}", "slave": 1, "poll_interval_s": 0.1,
              "points": [{"name": "ptt-relay", "table": "coil", "address": 4}]}
    return [driver], {"method": "modbus", "driver": "io", "coil": "ptt-relay"}, io_module


class CameraServer:
    """A road camera's web server (tests/camera_server.py) in its own process on a free port: snapshots
    good, slow, hanging and failing, behind authentication if ``auth`` is given."""

    def __init__(self, media: Path, auth: str | None = None) -> None:
        self.port = free_port()
        server = Path(__file__).parent / "camera_server.py"
        self.proc = subprocess.Popen([sys.executable, str(server), str(self.port), "--media", str(media),
                                      *(["--auth", auth] if auth else [])], stdout=subprocess.PIPE, text=True)
        stdout = self.proc.stdout
        assert stdout is not None
        ready = threading.Event()

        def read() -> None:
            if stdout.readline() == "ready\n":
                ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(10), "the camera server did not start"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        with urlopen(self.url(f"/hits?path={path.replace('&', '%26').replace('?', '%3F')}"), timeout=5) as r:
            return int(r.read())

    def stop(self) -> None:
        end_process(self.proc)


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5, channels: int = 1) -> Any:
    """A float32 sine of ``freq`` Hz, shaped (frames,) for one channel, else (frames, channels)."""
    import numpy as np

    t = np.arange(round(seconds * rate)) / rate
    x = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def peak_frequency(x: Any, rate: int) -> float:
    """The frequency of the strongest FFT bin (Hann window, parabolic interpolation between bins)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
    return float((k + shift) * rate / len(x))


# --- a radio channel's audio, made with numpy ------------------------------------------------

RATE = 16000
DTMF = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "9": (852, 1477),
        "*": (941, 1209), "#": (941, 1477), "0": (941, 1336)}
ZVEI1 = {"1": 1060, "2": 1160, "3": 1270, "4": 1400, "5": 1530, "E": 2600}


def tones(freqs: tuple[float, ...], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return sum((0.2 * np.sin(2 * np.pi * f * t) for f in freqs), np.zeros(t.size))


def recording(path: Path) -> Path:
    """A radio channel at RATE Hz, its tones made here and not by our encoders: silence, an officer's
    DTMF emergency code, silence, a 5-tone ID, silence."""
    parts = [np.zeros(RATE // 2)]
    for digit in "*911*1234#":
        parts += [tones(DTMF[digit], 0.08), np.zeros(int(0.08 * RATE))]
    parts.append(np.zeros(RATE * 2))
    for digit in "12345":
        parts.append(tones((ZVEI1[digit],), 0.07))
    parts.append(np.zeros(RATE * 2))
    pcm = (np.concatenate(parts) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def read_recording(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV as float samples and its rate."""
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return (pcm / 32768).astype(np.float32), w.getframerate()


def feed_split(decoder: AudioDecoder, x: np.ndarray, cuts: list[int], start: datetime) -> list[Output]:
    """An audio decoder fed ``x`` cut at ``cuts`` (sample indices), each block timed from ``start``,
    then flushed: what it says must not depend on where the cuts fall."""
    from datetime import timedelta
    from itertools import pairwise

    out: list[Output] = []
    for a, b in pairwise([0, *sorted(set(cuts)), x.size]):
        out += decoder.feed(x[a:b], start + timedelta(seconds=a / decoder.rate))
    return out + decoder.flush(start + timedelta(seconds=x.size / decoder.rate))


class ConsoleSound:
    """A console's speaker and microphone on a running :class:`PulseNullSink`'s daemon: two more null sinks
    (``console_speaker``: what the console plays, recorded from its monitor; ``console_mic``: played by the
    test, captured by the console from its monitor) and two ALSA devices naming them, which PortAudio lists
    as ``pttbridge_speaker`` and ``pttbridge_mic`` (an ``asoundrc`` under ``XDG_CONFIG_HOME``, which
    alsa-lib reads when PortAudio starts). So a gateway and a console share one daemon, each with its own
    devices."""

    speaker = "pttbridge_speaker"
    microphone = "pttbridge_mic"

    def __init__(self, pulse: PulseNullSink) -> None:
        self.pulse = pulse
        self.dir = pulse.dir / "console"
        self._saved: str | None = None
        self._players: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for sink in ("console_speaker", "console_mic"):
            subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={sink}",
                            f"rate={self.pulse.rate}", "channels=1"], check=True, capture_output=True)
        (self.dir / "alsa").mkdir(parents=True, exist_ok=True)
        (self.dir / "alsa" / "asoundrc").write_text(
            f'pcm.{self.speaker} {{\n  type pulse\n  device "console_speaker"\n}}\n'
            f'pcm.{self.microphone} {{\n  type pulse\n  device "console_mic.monitor"\n}}\n')
        self._saved = os.environ.get("XDG_CONFIG_HOME")
        os.environ["XDG_CONFIG_HOME"] = str(self.dir)
        PulseNullSink._restart_portaudio()

    def record_speaker(self) -> MonitorRecording:
        """What the console plays, from now on."""
        return MonitorRecording("console_speaker.monitor", self.pulse.rate)

    def say(self, samples: Any, rate: int | None = None) -> subprocess.Popen[bytes]:
        """Play float samples into the console's microphone; returns at once."""
        import numpy as np

        player = pacat_play("console_mic", rate or self.pulse.rate, 1, np.asarray(samples, dtype="<f4").tobytes(),
                            stderr=subprocess.DEVNULL)
        self._players.append(player)
        return player

    def stop(self) -> None:
        for player in self._players:
            player.kill()
            player.wait(5)
        if self._saved is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = self._saved
