"""The Mosquitto ACL of a site: for each identity, exactly the topics its role may read and write, as
explicit ``user`` blocks (no ``pattern`` lines: a pattern applies to every user; see :mod:`security`).

Live voice adds two roles a console may have besides its own: ``listen`` (ask for a channel's receive
audio and hear it) and ``talk`` (ask for the floor, send audio to be transmitted, remote-monitor a unit
and patch channels; a console that talks also listens). A console without ``talk`` cannot key any radio:
the gateway reads ``floor``, ``tx`` and ``cmd/remote_monitor`` only from the identities the broker lets
publish them. A gateway named in ``patching`` may listen and talk on other gateways' channels, as a
console does, for the patches configured on it (which lets it key their radios: name only those that
need it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from config.mqtt import frigate_filters
from security.identities import ROLES, SecurityError, identity, role_of


@dataclass(frozen=True, slots=True)
class Site:
    """The identities of one installation, by role (names without the role prefix)."""

    bridges: Sequence[str] = ()
    gateways: Sequence[str] = ()
    consoles: Sequence[str] = ()
    cameras: Sequence[str] = ()
    frigates: Sequence[str] = ()
    monitors: Sequence[str] = ()
    listen: Sequence[str] = ()  # consoles that may hear channels live (names of ``consoles``)
    talk: Sequence[str] = ()  # consoles that may talk on channels (and hear them)
    patching: Sequence[str] = ()  # gateways that may join other gateways' channels into their patches
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
        for option, names in (("listen", self.listen), ("talk", self.talk)):
            for name in names:
                if name not in self.consoles:
                    raise SecurityError(f"--{option} {name}: not one of the consoles ({', '.join(self.consoles)})")
        for name in self.patching:
            if name not in self.gateways:
                raise SecurityError(f"--patch {name}: not one of the gateways ({', '.join(self.gateways)})")

    def identities(self) -> list[str]:
        return [identity(role, name) for role, names in self._by_role.items() for name in names]

    def rules(self, ident: str) -> list[tuple[str, str]]:
        """``(access, topic)`` pairs of one identity: everything it may do, nothing else."""
        role, name = role_of(ident)
        p = self.prefix
        if role == "gw":
            own = f"{p}/gw/{name}"
            voice = f"{own}/voice/+"
            return [("write", f"{own}/event/+"), ("write", f"{own}/audio/+"), ("write", f"{own}/state"),
                    ("write", f"{own}/levels"), ("read", f"{own}/cmd/+"), ("read", f"{own}/config"),
                    ("write", f"{voice}/rx"), ("write", f"{voice}/state"), ("write", f"{voice}/floor/answer"),
                    ("read", f"{voice}/listen"), ("read", f"{voice}/floor"), ("read", f"{voice}/tx")] + (
                [("write", f"{p}/gw/+/voice/+/listen"), ("write", f"{p}/gw/+/voice/+/floor"),
                 ("write", f"{p}/gw/+/voice/+/tx"), ("read", f"{p}/gw/+/voice/+/rx"),
                 ("read", f"{p}/gw/+/voice/+/floor/answer")] if name in self.patching else [])
        if role == "console":
            voice = f"{p}/gw/+/voice/+"
            rules = [("write", f"{p}/bridge/cmd"), ("read", f"{p}/bridge/incident/+"), ("read", f"{p}/bridge/unit/+"),
                     ("read", f"{p}/bridge/refused"), ("read", f"{p}/gw/+/state"), ("read", f"{p}/gw/+/levels"),
                     ("read", f"{voice}/state")]
            if name in self.listen or name in self.talk:
                rules += [("write", f"{voice}/listen"), ("read", f"{voice}/rx")]
            if name in self.talk:
                rules += [("write", f"{voice}/floor"), ("write", f"{voice}/tx"), ("read", f"{voice}/floor/answer"),
                          ("write", f"{p}/gw/+/cmd/remote_monitor"), ("write", f"{p}/gw/+/cmd/patch")]
            return rules
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
                roles = [r for r, who in (("listens", self.listen), ("talks", self.talk)) if name in who]
                said = f" ({', '.join(roles)})" if role == "console" and roles else ""
                if role == "gw" and name in self.patching:
                    said = " (patches other gateways' channels)"
                lines += ["", f"# {ROLES[role]} {name}{said}", f"user {ident}"]
                lines += [f"topic {access} {t}" for access, t in self.rules(ident)]
        return "\n".join(lines) + "\n"
