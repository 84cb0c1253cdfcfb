"""What the configuration says of cases, as the store applies it: the departments and their units, the case
kinds, and which signals from the site's radios are answers to a case (and which transition each means)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from config.schema import AnswersConfig, CaseKindConfig, Config, DepartmentConfig
from gateway.events import Event, Kind


@dataclass(frozen=True, slots=True)
class CaseRules:
    """What the configuration says of cases: the departments, the case kinds, the radios' answers."""

    departments: tuple[DepartmentConfig, ...] = ()
    kinds: Mapping[str, CaseKindConfig] = field(default_factory=dict)
    answers: AnswersConfig = field(default_factory=AnswersConfig)

    @classmethod
    def of(cls, config: Config) -> CaseRules:
        return cls(tuple(config.departments), dict(config.case_kinds), config.answers)

    @property
    def answering(self) -> bool:
        """Whether any answer is configured (else no event is looked at as one)."""
        a = self.answers
        return bool(a.fleetsync_status or a.mdc_status or a.dtmf or a.aprs or a.modbus)

    def department_of(self, unit: str) -> str | None:
        """The department a unit belongs to: the first whose pattern matches it."""
        for d in self.departments:
            if any(fnmatch.fnmatchcase(unit, pattern) for pattern in d.units):
                return d.name
        return None

    def department(self, name: str) -> DepartmentConfig | None:
        return next((d for d in self.departments if d.name == name), None)

    def answer_of(self, e: Event) -> tuple[str, str] | None:
        """``(signal, transition)`` if the event is an answer the site's radios are configured to send."""
        d, a = e.detail, self.answers
        protocol = d.get("protocol")
        if protocol == "tx":  # the gateway's own report of what it transmitted
            return None
        status = d.get("status")
        number = status if isinstance(status, int) and not isinstance(status, bool) else \
            int(status) if isinstance(status, str) and status.isascii() and status.isdigit() and len(status) <= 4 \
            else None
        if number is not None and (d.get("name") == "status" or d.get("frame") == "status") \
                and protocol in ("fleetsync", "nxdn") and str(number) in a.fleetsync_status:
            return f"{protocol} status {number}", a.fleetsync_status[str(number)]
        if number is not None and protocol == "mdc1200" and d.get("name") in ("status", "status_response") \
                and str(number) in a.mdc_status:
            return f"mdc1200 status {number}", a.mdc_status[str(number)]
        digits = d.get("digits")
        if isinstance(digits, str) and digits in a.dtmf:
            return f"dtmf {digits}", a.dtmf[digits]
        text = d.get("text")
        if d.get("type") == "message" and isinstance(text, str) and a.aprs and text.strip():
            word = text.strip().split()[0].upper()
            for key, transition in a.aprs.items():
                if key.upper() == word:
                    return f"aprs {word[:40]}", transition
        point = d.get("point")
        if e.kind == Kind.IO and isinstance(point, str) and point in a.modbus and d.get("value") \
                and not d.get("previous"):
            return f"modbus {point}", a.modbus[point]
        return None


