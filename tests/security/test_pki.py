"""``pttbridge certs`` and ``pttbridge broker-acl`` as a technician runs them: the files they make, what
openssl says of the certificates, and the mistakes they refuse."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

import pttbridge
from security.acl import Site
from security.identities import SecurityError, identity, role_of


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], check=True, capture_output=True, text=True).stdout


def test_certs_makes_a_ca_a_broker_certificate_and_client_certificates(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pki = tmp_path / "pki"
    pttbridge.main(["certs", "ca", str(pki)])
    pttbridge.main(["certs", "broker", str(pki), "broker.example.org", "10.20.0.5"])
    pttbridge.main(["certs", "issue", str(pki), "gw-xixing-1,console-desk-1", "cam-xixing-dome"])
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["ca.crt", "broker.crt", "broker.key", "gw-xixing-1.crt",
                                               "gw-xixing-1.key", "console-desk-1.crt", "console-desk-1.key",
                                               "cam-xixing-dome.crt", "cam-xixing-dome.key"]
    for key in pki.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    broker = openssl("x509", "-in", str(pki / "broker.crt"), "-noout", "-text")
    assert "DNS:broker.example.org" in broker and "IP Address:10.20.0.5" in broker
    assert "TLS Web Server Authentication" in broker
    client = openssl("x509", "-in", str(pki / "gw-xixing-1.crt"), "-noout", "-subject", "-ext", "extendedKeyUsage")
    assert "CN = gw-xixing-1" in client and "TLS Web Client Authentication" in client
    assert openssl("verify", "-CAfile", str(pki / "ca.crt"), str(pki / "console-desk-1.crt")).strip().endswith("OK")

    # A stolen gateway: its certificate goes on the revocation list the broker reads (crlfile).
    pttbridge.main(["certs", "revoke", str(pki), "gw-xixing-1"])
    assert capsys.readouterr().out.strip() == str(pki / "crl.pem")
    check = ["openssl", "verify", "-crl_check", "-CAfile", str(pki / "ca.crt"), "-CRLfile", str(pki / "crl.pem")]
    revoked = subprocess.run([*check, str(pki / "gw-xixing-1.crt")], capture_output=True, text=True)
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stderr
    assert subprocess.run([*check, str(pki / "cam-xixing-dome.crt")], capture_output=True).returncode == 0


def test_certs_refuses_what_would_break_a_site(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    with pytest.raises(SystemExit, match="certs ca"):
        pttbridge.main(["certs", "issue", str(pki), "gw-xixing-1"])  # no CA yet
    pttbridge.main(["certs", "ca", str(pki)])
    with pytest.raises(SystemExit, match="would invalidate"):
        pttbridge.main(["certs", "ca", str(pki)])
    with pytest.raises(SystemExit, match="ROLE-NAME"):
        pttbridge.main(["certs", "issue", str(pki), "xixing-1"])
    with pytest.raises(SystemExit, match="at most 64"):
        pttbridge.main(["certs", "issue", str(pki), "console-" + "d" * 60])
    with pytest.raises(SystemExit, match="host names"):
        pttbridge.main(["certs", "broker", str(pki)])
    assert not list(pki.glob("*-*.crt"))  # nothing half-made


def test_broker_acl_refuses_bad_names_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="topic level"):
        pttbridge.main(["broker-acl", "--gateway", "xi xing"])
    with pytest.raises(SystemExit, match="twice"):
        pttbridge.main(["broker-acl", "--gateway", "xixing-1", "--gateway", "xixing-1"])
    out = tmp_path / "site.acl"
    pttbridge.main(["broker-acl", "--bridge", "center", "--gateway", "a", "--prefix", "city/v1", "-o", str(out)])
    text = out.read_text()
    assert "user gw-a\ntopic write city/v1/gw/a/event/+\n" in text
    assert "--prefix city/v1" in text.splitlines()[3]


def test_an_identity_names_exactly_one_role() -> None:
    assert identity("gateway", "console-1") == "gw-console-1"
    assert role_of("gw-console-1") == ("gw", "console-1")  # a gateway named like a console stays a gateway
    assert role_of("console-gw-1") == ("console", "gw-1")
    with pytest.raises(SecurityError):
        role_of("operator-alice")
    site = Site(gateways=["console-1"], consoles=["1"])
    assert site.identities() == ["gw-console-1", "console-1"]
    assert ("write", "pttbridge/v1/gw/console-1/event/+") in site.rules("gw-console-1")
    assert all("gw/" not in t or a == "read" for a, t in site.rules("console-1"))
