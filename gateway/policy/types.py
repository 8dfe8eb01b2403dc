"""Values of the policy layer: actions, findings, rules, packs and verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.policy.hours import OfficeHours


class Action(StrEnum):
    """What a rule asks for when it finds something; a verdict is the strongest of these."""

    DELIVER = "deliver"
    FLAG = "flag"
    REWRITE = "rewrite"
    DEFER = "defer"
    REJECT = "reject"

    @property
    def strength(self) -> int:
        return _STRENGTH[self]


_STRENGTH = {
    Action.DELIVER: 0,
    Action.FLAG: 1,
    Action.REWRITE: 2,
    Action.DEFER: 3,
    Action.REJECT: 4,
}

RULE_ACTIONS = (Action.REJECT, Action.DEFER, Action.REWRITE, Action.FLAG)


@dataclass(frozen=True)
class Finding:
    """One thing a check found. Wording for people is made later, from templates."""

    code: str
    rule: str
    action: Action
    recipient: str | None = None
    evidence: str = ""  # the passage that matched, e.g. the sign-off line
    params: Mapping[str, Any] = field(
        default_factory=dict
    )  # names, addresses, times for the notice

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "action": self.action.value,
            "recipient": self.recipient,
            "evidence": self.evidence,
            "params": dict(self.params),
        }


def stored_finding_urgent(
    finding: Mapping[str, Any], urgent_rules: frozenset[str] = frozenset()
) -> bool:
    """Whether an archived finding's rule was urgent (it alerted the safeguarding lead at once,
    and its sender is not to learn of it): as its record says, or as `urgent_rules` (the pack's
    now, `Pack.urgent_rules`) say of its rule. Findings archived before they said so: risk
    language, what every shipped pack's urgent rules look for."""
    if finding.get("rule") in urgent_rules:
        return True
    return bool(finding.get("urgent", finding.get("code") == "risk_language"))


@dataclass(frozen=True)
class Organisation:
    """The organisation's settings as a pack states them, with the site's overrides applied."""

    name: str
    domains: tuple[str, ...]
    timezone: Any  # ZoneInfo
    office_hours: OfficeHours
    bank_holidays: str  # holidays-library code, e.g. GB-ENG
    dsl: tuple[str, ...]
    mailboxes: Mapping[str, str]
    own_phone_numbers: tuple[str, ...]
    own_addresses: tuple[str, ...] = ()  # postal addresses of the organisation, never "personal"
    reject_in_session: bool = False

    def is_internal(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() in self.domains


@dataclass(frozen=True)
class Where:
    categories: tuple[str, ...] | None = None  # None: every category
    minors_only: bool = True


@dataclass(frozen=True)
class Rule:
    id: str
    check: str
    action: Action
    policy: str  # the sentence of the organisation's policy this rule enforces, quoted
    section: str = ""
    reading: str = ""
    urgent: bool = False
    where: Where = field(default_factory=Where)
    settings: Any = None  # the check's own parsed settings object
    line: int | None = None  # where the rule starts in its pack file


@dataclass(frozen=True)
class Retention:
    years: int | None = None
    until_age: int | None = None
    policy: str = ""


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    path: Path
    summary: str
    seed: str | None
    organisation: Organisation
    retention: Retention
    rules: tuple[Rule, ...]

    @property
    def urgent_rules(self) -> frozenset[str]:
        """The ids of the rules whose findings alert the safeguarding lead at once."""
        return frozenset(rule.id for rule in self.rules if rule.urgent)

    @property
    def categories(self) -> frozenset[str]:
        """The young people's categories its rules are kept for (`[rule.where] categories`);
        empty when every rule applies whatever the category."""
        return frozenset(c for rule in self.rules for c in rule.where.categories or ())


@dataclass(frozen=True)
class Verdict:
    action: Action
    findings: tuple[Finding, ...]
    evaluated: tuple[str, ...]  # rule ids evaluated, hit or not
    deliver_at: datetime | None = None  # for a deferral: the next opening
    monitor: bool = False  # monitor mode: recorded, never enforced

    @property
    def hits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule for f in self.findings))

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.action.value,
            "deliver_at": self.deliver_at.isoformat() if self.deliver_at else None,
            "findings": [f.as_dict() for f in self.findings],
        }
