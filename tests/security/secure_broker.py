"""A real Mosquitto started from the shipped config/mosquitto-secure.conf and config/mosquitto.acl, with
only its paths and listener ports changed, a PKI made by ``pttbridge certs``, and MQTT clients that
record what the broker answers (CONNACK, PUBACK and SUBACK reason codes) and what reaches them."""

from __future__ import annotations

import itertools
import os
import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from support import end_process, free_port, wait_for_port, wait_until

from security.pki import issue, make_broker_cert, make_ca, revoke

# Client ids of probes: two probes with one id would knock each other off the broker.
_PROBE_IDS = itertools.count(1)

ROOT = Path(__file__).parents[2]
CONF = ROOT / "config" / "mosquitto-secure.conf"
ACL = ROOT / "config" / "mosquitto.acl"
PREFIX = "pttbridge/v1"
PASSWORD = "Xixi-cam-9f2"  # of the camera that connects with a password
PASSWORD_USER = "cam-binjiang-bridge"
NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87, in CONNACK and PUBACK


def shipped_identities() -> list[str]:
    return [line.split()[1] for line in ACL.read_text().splitlines() if line.startswith("user ")]


class Pki:
    """The site's CA with a certificate for every identity of the shipped ACL, one for an identity the ACL
    does not list, one revoked (gw-xixing-1's old certificate, stolen with its box), and a second CA (as an
    attacker would make) with its own certificate for a gateway."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "pki"
        make_ca(self.dir)
        make_broker_cert(self.dir, ["127.0.0.1", "localhost"])
        self.stolen = root / "stolen"
        self.stolen.mkdir()
        for ident in [*shipped_identities(), "gw-rogue"]:
            issue(self.dir, ident)
            if ident == "gw-xixing-1":  # as a site does when a gateway's box is stolen: revoke, issue anew
                for suffix in (".crt", ".key"):
                    shutil.copy(self.dir / f"{ident}{suffix}", self.stolen / f"{ident}{suffix}")
                revoke(self.dir, ident)
                issue(self.dir, ident)
        self.other = root / "other-ca"
        make_ca(self.other, name="someone else's CA")
        issue(self.other, "gw-xixing-1")
        self.ca = self.dir / "ca.crt"

    def cert(self, ident: str, *, other_ca: bool = False, stolen: bool = False) -> tuple[Path, Path]:
        d = self.other if other_ca else self.stolen if stolen else self.dir
        return d / f"{ident}.crt", d / f"{ident}.key"


class SecureBroker:
    """mosquitto -c <the shipped secure configuration>: ``cert_port`` takes client certificates,
    ``password_port`` usernames and passwords; both TLS, both under the shipped ACL."""

    def __init__(self, workdir: Path, pki: Pki, passwords: dict[str, str] | None = None) -> None:
        self.dir, self.pki = workdir, pki
        self.cert_port, self.password_port = free_port(), free_port()
        self.passwords = workdir / "pttbridge.passwd"
        for i, (user, password) in enumerate({PASSWORD_USER: PASSWORD, **(passwords or {})}.items()):
            subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(self.passwords), user, password],
                           check=True, capture_output=True)
        text = CONF.read_text()
        replacements = {
            "/etc/mosquitto/certs/": f"{pki.dir}/",
            "/etc/mosquitto/pttbridge.acl": str(ACL),
            "/etc/mosquitto/pttbridge.passwd": str(self.passwords),
            "/var/lib/mosquitto/": f"{workdir}/",
            "listener 8883\n": f"listener {self.cert_port} 127.0.0.1\n",
            "listener 8884\n": f"listener {self.password_port} 127.0.0.1\n",
        }
        for old, new in replacements.items():
            assert old in text, f"the shipped configuration no longer has {old!r}"
            text = text.replace(old, new)
        # As root, mosquitto would become user "mosquitto" and could not read the test's private folder.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf = workdir / "mosquitto-secure.conf"
        self.conf.write_text(f"{user}log_dest file {workdir}/mosquitto.log\nlog_type all\n{text}")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.cert_port)
        wait_for_port(self.password_port)

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mqtt_config(self, ident: str) -> dict[str, Any]:
        """The ``[mqtt]`` table of a pttbridge program connecting as ``ident`` with its certificate."""
        cert, key = self.pki.cert(ident)
        return {"url": f"mqtts://127.0.0.1:{self.cert_port}",
                "tls": {"ca": str(self.pki.ca), "cert": str(cert), "key": str(key)}}

    def password_config(self, user: str, password_env: str) -> dict[str, Any]:
        """The ``[mqtt]`` table of a program connecting as ``user`` with a password from ``password_env``."""
        return {"url": f"mqtts://127.0.0.1:{self.password_port}", "username": user, "password_env": password_env,
                "tls": {"ca": str(self.pki.ca)}}

    def client(self, ident: str | None, **kwargs: Any) -> Probe:
        return Probe(self, ident, **kwargs)


class Probe:
    """An MQTT client connecting as an identity, recording every answer of the broker.

    ``ident`` is whose client certificate it presents (None: none); ``username``/``password`` go to
    the password listener instead when ``password_port`` is true."""

    def __init__(self, broker: SecureBroker, ident: str | None, *, v5: bool = True, username: str | None = None,
                 password: str | None = None, password_port: bool = False, other_ca: bool = False, stolen: bool = False,
                 client_id: str | None = None, tls: bool = True, clean_session: bool = True) -> None:
        self.ident = ident
        self.connack: int | None = None
        self.session_present = False
        self.connack_props: Any = None
        self.disconnected = threading.Event()
        self.pubacks: dict[int, int] = {}
        self.subacks: list[list[int]] = []
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{next(_PROBE_IDS)}",
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                  clean_session=None if v5 else clean_session)
        if tls:
            cert, key = broker.pki.cert(ident, other_ca=other_ca, stolen=stolen) if ident else (None, None)
            self.client.tls_set(ca_certs=str(broker.pki.ca), certfile=str(cert) if cert else None,
                                keyfile=str(key) if key else None, cert_reqs=ssl.CERT_REQUIRED)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.error: str | None = None
        port = broker.password_port if password_port else broker.cert_port
        try:
            self.client.connect("127.0.0.1", port)
        except (OSError, ssl.SSLError) as exc:  # the TLS handshake refused outright
            self.error = str(exc) or exc.__class__.__name__
            self.disconnected.set()
            return
        self.client.loop_start()

    # --- paho's thread --------------------------------------------------------------------------

    def _on_connect(self, _c: Any, _u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        self.connack, self.connack_props = rc.value, props

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._lock:
            self.pubacks[mid] = rc.value

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        with self._lock:
            self.subacks.append([rc.value for rc in rcs])

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    # --- the test's side ------------------------------------------------------------------------

    def connected(self, timeout: float = 10.0) -> Probe:
        wait_until(lambda: self.connack is not None or self.disconnected.is_set(), timeout, f"{self.ident}'s CONNACK")
        assert self.connack == 0, f"{self.ident} was refused: {self.connack} {self.error or ''}"
        return self

    def refused(self, timeout: float = 10.0) -> str:
        """Wait until the broker has turned this client away; what it said (a CONNACK code, or the TLS error)."""
        wait_until(lambda: self.disconnected.is_set() or (self.connack not in (None, 0)), timeout,
                   f"{self.ident} to be refused")
        assert self.connack in (None, NOT_AUTHORIZED, 5), f"connected: CONNACK {self.connack}"
        return self.error or f"CONNACK {self.connack}"

    def publish(self, topic: str, payload: bytes | str = b"x", *, qos: int = 1, retain: bool = False) -> int:
        """Publish under the prefix and wait for the broker's PUBACK; its reason code (0 under MQTT 3.1.1)."""
        info = self.client.publish(f"{PREFIX}/{topic}" if not topic.startswith("frigate/") else topic, payload,
                                   qos=qos, retain=retain)
        wait_until(lambda: info.mid in self.pubacks, 15, f"the PUBACK of {topic}")
        return self.pubacks[info.mid]

    def subscribe(self, *filters: str) -> list[int]:
        before = len(self.subacks)
        self.client.subscribe([(f"{PREFIX}/{f}" if not f.startswith("frigate/") and f != "#" else f, 1)
                               for f in filters])
        wait_until(lambda: len(self.subacks) > before, 10, f"the SUBACK of {filters}")
        return self.subacks[before]

    def topics(self) -> list[str]:
        with self._lock:
            return [t.removeprefix(f"{PREFIX}/") for t, _ in self.messages]

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t.removeprefix(f"{PREFIX}/") == topic]

    def wait_for(self, topic: str, timeout: float = 10.0) -> None:
        wait_until(lambda: topic in self.topics(), timeout, f"{self.ident} to receive {topic}")

    def close(self) -> None:
        try:
            self.client.disconnect()
        except (OSError, ssl.SSLError):
            pass
        self.client.loop_stop()


SENTINEL = "bridge/incident/sentinel"


def watch(probes: Any) -> tuple[Probe, Probe]:
    """The monitor (reads everything) and the bridge (publishes the sentinel); ``probes`` is the fixture."""
    monitor = probes("monitor-ops").connected()
    assert monitor.subscribe("#") == [1]
    return monitor, probes("bridge-center").connected()


def sentinel(monitor: Probe, bridge: Probe, n: int = 0) -> None:
    """A refused publish followed by this, once the monitor has it, was not delivered: the broker handles
    publishes one at a time and delivers to one subscriber in order."""
    assert bridge.publish(f"{SENTINEL}{n}") == 0
    monitor.wait_for(f"{SENTINEL}{n}")
