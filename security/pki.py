"""The site's PKI, plain openssl (``pttbridge certs``): a CA, a server certificate for the broker, one
client certificate per identity (EC P-256 keys, files only readable by their owner), and a revocation
list (``crl.pem``) for certificates that must no longer connect at all."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from security.identities import SecurityError, role_of

CA_CERT, CA_KEY, CRL = "ca.crt", "ca.key", "crl.pem"
BROKER_CERT, BROKER_KEY = "broker.crt", "broker.key"
# openssl ca keeps revocations in index.txt; this is all of its configuration that a CRL needs. The CRL
# is valid for years: a broker refuses every client once its CRL's nextUpdate has passed.
_CA_CNF = """[ca]
default_ca = site
[site]
database = index.txt
crlnumber = crlnumber
certificate = ca.crt
private_key = ca.key
default_md = sha256
default_crl_days = 3650
"""
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(cwd: Path, *args: str) -> None:
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise SecurityError("openssl is not installed (apt-get install openssl)") from None
    except subprocess.CalledProcessError as exc:
        raise SecurityError(f"openssl {args[0]} failed: {exc.stderr.strip().splitlines()[-1:]}") from None


def _private(path: Path) -> None:
    os.chmod(path, 0o600)


def make_ca(directory: Path, *, name: str = "pttbridge CA", days: int = 3650) -> Path:
    """A new certificate authority in ``directory`` (``ca.crt``, ``ca.key``); refuses to overwrite one."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CA_KEY).exists():
        raise SecurityError(f"{directory / CA_KEY} exists: a new CA would invalidate every certificate it issued")
    _openssl(directory, "req", "-x509", *_KEY, "-days", str(days), "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", CA_KEY, "-out", CA_CERT)
    _private(directory / CA_KEY)
    (directory / "ca.cnf").write_text(_CA_CNF)
    (directory / "index.txt").write_text("")
    (directory / "crlnumber").write_text("1000\n")
    _openssl(directory, "ca", "-config", "ca.cnf", "-gencrl", "-out", CRL)  # empty, for the broker's crlfile
    return directory / CA_CERT


def revoke(directory: Path, ident: str) -> Path:
    """Revoke ``ident``'s certificate (a stolen or retired device) and write the CRL again; the broker
    reads its ``crlfile`` when it starts, so restart it."""
    role_of(ident)
    crt = directory / f"{ident}.crt"
    if not crt.exists():
        raise SecurityError(f"no certificate {crt}")
    _openssl(directory, "ca", "-config", "ca.cnf", "-revoke", crt.name)
    _openssl(directory, "ca", "-config", "ca.cnf", "-gencrl", "-out", CRL)
    return directory / CRL


def _sign(directory: Path, subject: str, stem: str, extensions: Iterable[str], days: int) -> tuple[Path, Path]:
    if not (directory / CA_KEY).exists():
        raise SecurityError(f"no CA in {directory}: run 'pttbridge certs ca {directory}' first")
    key, csr, crt, ext = f"{stem}.key", f"{stem}.csr", f"{stem}.crt", f"{stem}.ext"
    _openssl(directory, "req", *_KEY, "-subj", subject, "-keyout", key, "-out", csr)
    _private(directory / key)
    (directory / ext).write_text("".join(f"{line}\n" for line in extensions))
    try:
        _openssl(directory, "x509", "-req", "-in", csr, "-CA", CA_CERT, "-CAkey", CA_KEY, "-CAcreateserial",
                 "-days", str(days), "-extfile", ext, "-out", crt)
    finally:
        (directory / csr).unlink(missing_ok=True)
        (directory / ext).unlink(missing_ok=True)
    return directory / crt, directory / key


def make_broker_cert(directory: Path, hosts: Sequence[str], *, days: int = 825) -> tuple[Path, Path]:
    """The broker's server certificate for ``hosts`` (DNS names or IP addresses, as clients dial it)."""
    if not hosts:
        raise SecurityError("name the broker's host names or addresses (--host), as clients connect to it")
    alt = ", ".join(f"IP:{h}" if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:]*", h) else f"DNS:{h}"
                    for h in hosts)
    return _sign(directory, f"/CN={hosts[0]}", "broker",
                 ["basicConstraints = CA:FALSE", "keyUsage = critical, digitalSignature, keyEncipherment",
                  "extendedKeyUsage = serverAuth", f"subjectAltName = {alt}"], days)


def issue(directory: Path, ident: str, *, days: int = 825) -> tuple[Path, Path]:
    """A client certificate whose CN is ``ident`` (``gw-xixing-1``): ``{ident}.crt`` and ``{ident}.key``."""
    role_of(ident)
    return _sign(directory, f"/CN={ident}", ident,
                 ["basicConstraints = CA:FALSE", "keyUsage = critical, digitalSignature",
                  "extendedKeyUsage = clientAuth"], days)
