"""Broker security for a site: who may connect (a private CA and its client certificates) and what each
identity may do on the broker (a Mosquitto ACL file).

An identity is ``{role}-{name}``: the certificate's Common Name (the broker takes it as the username,
``use_identity_as_username``) or, for a device that cannot hold a certificate, the username of a
password. The role is everything before the first ``-``, so an identity names exactly one role:

    gw-{gateway}      a field gateway: publishes its own events, audio, state and levels; reads its own
                      commands and channel plan
    console-{desk}    a dispatcher console: sends bridge/cmd; reads incidents, units, gateway state and
                      levels
    cam-{camera}      a camera (or its detector): publishes cam/{camera}/event only
    frigate-{name}    a Frigate NVR: its own topic tree (frigate/#), which the bridge reads events,
                      snapshots and tracked-object updates from
    bridge-{name}     a bridge: reads what gateways, cameras and consoles send; publishes incidents,
                      units, gateway commands and plans
    monitor-{name}    read-only view of everything under the prefix, for operations and tests

The ACL names every identity with explicit ``user`` blocks, generated from the site's lists of
gateways, consoles, cameras, ... (``pttbridge broker-acl``). It has no ``pattern`` lines on purpose: a
pattern applies to every user, so ``pattern write gw/%u/event/+`` would let a console identity publish
events of a made-up gateway named after itself. An identity that is not in the file may do nothing at
all, which is also how a lost device is shut out at once (regenerate without it, send SIGHUP).

The PKI is plain openssl (``pttbridge certs``): a CA, a server certificate for the broker, one client
certificate per identity (EC P-256 keys, files only readable by their owner), and a revocation list
(``crl.pem``) for certificates that must no longer connect at all.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config.mqtt import frigate_filters

#: Role prefix -> role, in the order the ACL lists them.
ROLES = {
    "bridge": "bridge",
    "gw": "gateway",
    "console": "console",
    "cam": "camera",
    "frigate": "frigate",
    "monitor": "monitor",
}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # one MQTT topic level (config/schema.py's rule)
#: X.509 caps a Common Name at 64 characters (RFC 5280 ub-common-name).
MAX_IDENTITY = 64


class SecurityError(ValueError):
    """A bad identity, list or PKI request; the message says which and why."""


def identity(role: str, name: str) -> str:
    """The identity of ``name`` in ``role`` (a key of :data:`ROLES`, or its long name)."""
    prefix = next((p for p, r in ROLES.items() if role in (p, r)), None)
    if prefix is None:
        raise SecurityError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    if not _NAME.match(name):
        raise SecurityError(f"{role} {name!r}: expected 1-64 characters of A-Z a-z 0-9 _ . - (a topic level)")
    ident = f"{prefix}-{name}"
    if len(ident) > MAX_IDENTITY:
        raise SecurityError(f"{ident!r}: an identity is at most {MAX_IDENTITY} characters (a certificate's CN)")
    return ident


def role_of(ident: str) -> tuple[str, str]:
    """``(role prefix, name)`` of an identity such as ``gw-xixing-1``."""
    prefix, sep, name = ident.partition("-")
    if not sep or prefix not in ROLES:
        raise SecurityError(f"{ident!r}: an identity is ROLE-NAME with ROLE one of {', '.join(ROLES)}")
    identity(prefix, name)  # validates the name
    return prefix, name


@dataclass(frozen=True, slots=True)
class Site:
    """The identities of one installation, by role (names without the role prefix)."""

    bridges: Sequence[str] = ()
    gateways: Sequence[str] = ()
    consoles: Sequence[str] = ()
    cameras: Sequence[str] = ()
    frigates: Sequence[str] = ()
    monitors: Sequence[str] = ()
    prefix: str = "pttbridge/v1"
    frigate_topic: str = "frigate/events"
    _by_role: dict[str, Sequence[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_role = dict(zip(ROLES, (self.bridges, self.gateways, self.consoles, self.cameras, self.frigates,
                                   self.monitors), strict=True))
        object.__setattr__(self, "_by_role", by_role)
        seen: set[str] = set()
        for role, names in by_role.items():
            for name in names:
                ident = identity(role, name)
                if ident in seen:
                    raise SecurityError(f"{ident!r} is listed twice")
                seen.add(ident)

    def identities(self) -> list[str]:
        return [identity(role, name) for role, names in self._by_role.items() for name in names]

    def rules(self, ident: str) -> list[tuple[str, str]]:
        """``(access, topic)`` pairs of one identity: everything it may do, nothing else."""
        role, name = role_of(ident)
        p = self.prefix
        if role == "gw":
            own = f"{p}/gw/{name}"
            return [("write", f"{own}/event/+"), ("write", f"{own}/audio/+"), ("write", f"{own}/state"),
                    ("write", f"{own}/levels"), ("read", f"{own}/cmd/+"), ("read", f"{own}/config")]
        if role == "console":
            return [("write", f"{p}/bridge/cmd"), ("read", f"{p}/bridge/incident/+"), ("read", f"{p}/bridge/unit/+"),
                    ("read", f"{p}/bridge/refused"), ("read", f"{p}/gw/+/state"), ("read", f"{p}/gw/+/levels")]
        if role == "cam":
            return [("write", f"{p}/cam/{name}/event")]
        if role == "frigate":
            return [("readwrite", f"{self.frigate_topic.split('/', 1)[0]}/#")]
        frigate = [("read", t) for t in (self.frigate_topic, *frigate_filters(self.frigate_topic))]
        if role == "bridge":
            return [("read", f"{p}/gw/+/event/+"), ("read", f"{p}/gw/+/audio/+"), ("read", f"{p}/gw/+/state"),
                    ("read", f"{p}/cam/+/event"), *frigate, ("read", f"{p}/bridge/cmd"),
                    ("write", f"{p}/bridge/incident/+"), ("write", f"{p}/bridge/unit/+"),
                    ("write", f"{p}/bridge/refused"), ("write", f"{p}/gw/+/cmd/+"), ("write", f"{p}/gw/+/config")]
        return [("read", f"{p}/#"), *frigate]  # monitor

    def acl(self, command: str = "") -> str:
        """The Mosquitto ACL file for this site (``acl_file``)."""
        lines = [
            "# Mosquitto ACL of a pttbridge site: one block per identity, no pattern lines (a pattern applies",
            "# to every user). An identity not listed here may publish nothing and receive nothing.",
            "# Generated; edit the lists and generate it again, then reload mosquitto (SIGHUP):",
            f"#   {command}" if command else "#   pttbridge broker-acl ...",
        ]
        for role, names in self._by_role.items():
            for name in names:
                ident = identity(role, name)
                lines += ["", f"# {ROLES[role]} {name}", f"user {ident}"]
                lines += [f"topic {access} {t}" for access, t in self.rules(ident)]
        return "\n".join(lines) + "\n"


# --- PKI (openssl) -------------------------------------------------------------------------------

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
