"""The safeguarding lead's digest: flags by rule and by member of staff, with counts of what
was returned or held."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import jinja2

from gateway.policy.types import stored_finding_urgent
from gateway.store.reports import ArchivedVerdict


@dataclass(frozen=True)
class Digest:
    since: datetime
    until: datetime
    messages: int
    by_verdict: dict[str, int]
    by_rule: list[tuple[str, int]]
    by_sender: list[tuple[str, int]]
    urgent: list[ArchivedVerdict]  # messages with findings of urgent rules, one by one


def summarise(
    items: Sequence[ArchivedVerdict],
    since: datetime,
    until: datetime,
    urgent_rules: frozenset[str] = frozenset(),
) -> Digest:
    """`urgent_rules`: the pack's (`Pack.urgent_rules`), with each finding's own record."""
    by_rule: Counter[str] = Counter()
    by_sender: Counter[str] = Counter()
    for item in items:
        by_sender[item.sender] += 1
        for rule in {f["rule"] for f in item.findings}:
            by_rule[rule] += 1
    return Digest(
        since=since,
        until=until,
        messages=len(items),
        by_verdict=dict(Counter(i.verdict for i in items)),
        by_rule=by_rule.most_common(),
        by_sender=by_sender.most_common(),
        urgent=[
            i for i in items if any(stored_finding_urgent(f, urgent_rules) for f in i.findings)
        ],
    )


def render(env: jinja2.Environment, digest: Digest, organisation: str) -> str:
    return env.get_template("notices/digest.txt.j2").render(
        digest=digest, organisation=organisation
    )
