"""Identities of a site: ``{role}-{name}``, a certificate's Common Name or a password's username (see
:mod:`security`), and the roles they name."""

from __future__ import annotations

import re

#: Role prefix -> role, in the order the ACL lists them.
ROLES = {
    "bridge": "bridge",
    "gw": "gateway",
    "console": "console",
    "cam": "camera",
    "frigate": "frigate",
    "monitor": "monitor",
}
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}\Z")  # one MQTT topic level (config/schema.py's rule)
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
