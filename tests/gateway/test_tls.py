"""MQTT over TLS with a username and a password from the environment, against a real Mosquitto:
the gateway publishes through it, a wrong password or an unknown CA is refused and said so, the
events wait in the outbox, and the password never reaches the log."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Listener, Mosquitto, SocatLink, caller_id, free_port, wait_until

from config.schema import Config, parse_config
from gateway.runner import Gateway

PASSWORD = "s3cret-Wensan-7"


def make_pki(d: Path) -> tuple[Path, Path, Path]:
    """A CA, and a broker certificate for 127.0.0.1 signed by it (openssl)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pttbridge test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key", "-out", "broker.csr")
    (d / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "broker.crt")
    return d / "ca.crt", d / "broker.crt", d / "broker.key"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, int, Path]]:
    ca, cert, key = make_pki(tmp_path)
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "gw-xixing-1", PASSWORD], check=True)
    tls_port = free_port()
    # The TLS listener takes only known users; a plain loopback listener lets the test watch.
    broker = Mosquitto(tmp_path, prelude="per_listener_settings true", extra_conf=f"""
listener {tls_port} 127.0.0.1
cafile {ca}
certfile {cert}
keyfile {key}
allow_anonymous false
password_file {passwords}
""")
    broker.start()
    yield broker, tls_port, ca
    broker.stop()


def gateway_config(tmp: Path, tls_port: int, ca: Path, radio: Path) -> Config:
    return parse_config({
        "gateway": {"name": "xixing-1", "outbox": str(tmp / "outbox.sqlite")},
        "mqtt": {"url": f"mqtts://127.0.0.1:{tls_port}", "username": "gw-xixing-1", "password_env": "GW_PASSWORD",
                 "tls": {"ca": str(ca)}},
        "channels": [{"name": "patrol-1", "drivers": [{"port": str(radio), "protocol": "kenwood"}]}],
    })


def test_gateway_publishes_over_tls_with_a_password_from_the_environment(
    tmp_path: Path, tls_broker: tuple[Mosquitto, int, Path], socat_link: SocatLink, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    broker, tls_port, ca = tls_broker
    monkeypatch.setenv("GW_PASSWORD", PASSWORD)
    watcher = Listener(broker.url, "pttbridge/v1/gw/#")
    gateway = Gateway(gateway_config(tmp_path, tls_port, ca, socat_link.radio))
    gateway.start()
    try:
        wait_until(lambda: gateway.publisher.connected, 10, "a TLS connection")
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 5, "the port")
        socat_link.write(caller_id(1))
        wait_until(lambda: len(watcher.events()) == 1, 10, "the event through TLS")
        assert watcher.events()[0]["unit"] == "fleetsync:100-1001"
    finally:
        gateway.stop()
        watcher.close()
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("trouble", ["wrong password", "unknown CA"])
def test_a_refused_connection_is_said_and_nothing_is_lost(
    tmp_path: Path, tls_broker: tuple[Mosquitto, int, Path], socat_link: SocatLink, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    _, tls_port, ca = tls_broker
    other_ca = tmp_path / "other"
    other_ca.mkdir()
    monkeypatch.setenv("GW_PASSWORD", "guess" if trouble == "wrong password" else PASSWORD)
    gateway = Gateway(gateway_config(tmp_path, tls_port, make_pki(other_ca)[0] if trouble == "unknown CA" else ca,
                                     socat_link.radio))
    gateway.start()
    try:
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 5, "the port")
        socat_link.write(caller_id(1))
        wait_until(lambda: gateway.outbox.stats()["pending"] == 1, 5, "the event queued in the outbox")
        expected = "refused the connection" if trouble == "wrong password" else "certificate verify failed"
        wait_until(lambda: expected in caplog.text, 15, f"the log to say {expected!r}")
        assert not gateway.publisher.connected
    finally:
        gateway.stop()
    assert PASSWORD not in caplog.text and "guess" not in caplog.text
