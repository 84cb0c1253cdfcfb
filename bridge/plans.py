"""Channel plans: which channels each gateway runs, kept centrally with every version.

    console --bridge/cmd {"action": "plan", ...}--> Plans.save --> channel_plans (gateway, version)
    bridge  --gw/{gateway}/config (retained) {"version": n, "channels": [...]}--> gateway

A plan is the list of a gateway's channels as configuration tables (``[[channels]]`` of the TOML file,
as JSON), validated by the configuration's own schema: a bad plan is refused with the same message a bad
file gets (``plan for gw1: channels[0].rx_mhz: ...``). Plans are stored in their canonical form (defaults
left out), so that saving the same plan again, however it is spelled, makes no new version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bridge.models import ChannelPlanRow
from config.schema import TOPIC_LEVEL, ConfigError, parse_config


@dataclass(frozen=True, slots=True)
class PlanView:
    gateway: str
    version: int
    channels: list[dict[str, Any]]
    author: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The retained ``gw/{gateway}/config`` payload."""
        return {"version": self.version, "channels": self.channels}


def canonical(channels: Any, source: str = "plan") -> list[dict[str, Any]]:
    """The plan validated, in its canonical form; raises ConfigError naming ``channels[i].key``."""
    if not isinstance(channels, list):
        raise ConfigError(f"{source}: channels: expected a list of channel tables, got {type(channels).__name__}")
    config = parse_config({"channels": channels}, source)
    return [c.model_dump(mode="json", exclude_defaults=True) for c in config.channels]


class Plans:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def current(self, gateway: str) -> PlanView | None:
        with self._session() as s:
            row = s.scalars(select(ChannelPlanRow).where(ChannelPlanRow.gateway == gateway)
                            .order_by(ChannelPlanRow.version.desc()).limit(1)).first()
            return _view(row) if row is not None else None

    def history(self, gateway: str) -> list[PlanView]:
        """Every version of ``gateway``'s plan, newest first."""
        with self._session() as s:
            rows = s.scalars(select(ChannelPlanRow).where(ChannelPlanRow.gateway == gateway)
                             .order_by(ChannelPlanRow.version.desc()))
            return [_view(r) for r in rows]

    def all_current(self) -> list[PlanView]:
        """The newest plan of every gateway that has one, by gateway."""
        with self._session() as s:
            newest = (select(ChannelPlanRow.gateway, func.max(ChannelPlanRow.version).label("v"))
                      .group_by(ChannelPlanRow.gateway).subquery())
            rows = s.scalars(select(ChannelPlanRow).join(
                newest, (ChannelPlanRow.gateway == newest.c.gateway) & (ChannelPlanRow.version == newest.c.v))
                .order_by(ChannelPlanRow.gateway))
            return [_view(r) for r in rows]

    def save(self, gateway: str, channels: Any, author: str) -> int:
        """Store ``channels`` as ``gateway``'s next version; the same plan again is no new version.
        Returns the version that is now current. Raises ConfigError for a plan that cannot run."""
        errors: list[str] = []  # every mistake of the command at once, as a configuration file's are
        if not isinstance(gateway, str) or not re.match(TOPIC_LEVEL, gateway):
            errors.append(f"gateway: expected a gateway's name, got {gateway!r}")
        if not isinstance(author, str) or not author.strip():
            errors.append("operator: a plan is saved by a named operator")
        try:
            plan = canonical(channels, f"plan for {gateway}")
        except ConfigError as exc:
            errors.append(str(exc))
        if errors:
            raise ConfigError("\n".join(errors))
        for _ in range(3):  # another bridge may take the same version number at the same moment
            with self._session() as s:
                last = s.scalars(select(ChannelPlanRow).where(ChannelPlanRow.gateway == gateway)
                                 .order_by(ChannelPlanRow.version.desc()).limit(1)).first()
                if last is not None and _same(last.plan, plan):
                    return last.version
                version = (last.version if last is not None else 0) + 1
                s.add(ChannelPlanRow(gateway=gateway, version=version, plan=plan, author=author.strip()[:64],
                                     created_at=datetime.now(UTC)))
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    continue
                return version
        raise ConfigError(f"plan for {gateway}: could not take a version number (saved elsewhere meanwhile)")


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _view(r: ChannelPlanRow) -> PlanView:
    return PlanView(r.gateway, r.version, list(r.plan), r.author, r.created_at)
