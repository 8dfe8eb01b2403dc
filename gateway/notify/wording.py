"""What a finding means and how to fix it, in plain English, from `templates/findings/`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import jinja2

from gateway.policy.types import Finding, Organisation, Rule


@dataclass(frozen=True)
class Explained:
    finding: Finding
    rule: Rule
    explanation: str
    correction: str
    # What a bounce says beside its corrected draft when the draft leaves this finding's
    # recipient out (a finding template's optional `left_out()`); "" if it has none.
    left_out: str = ""

    def as_dict(self) -> dict[str, Any]:
        f = self.finding
        return {
            "code": f.code,
            "rule": f.rule,
            "action": f.action.value,
            "recipient": f.recipient,
            "explanation": self.explanation,
            "correction": self.correction,
            "policy": self.rule.policy,
            "evidence": f.evidence,
        }


def _template(env: jinja2.Environment, code: str) -> jinja2.Template:
    try:
        return env.get_template(f"findings/{code}.j2")
    except jinja2.TemplateNotFound:
        return env.get_template("findings/generic.j2")


def explain(
    env: jinja2.Environment,
    finding: Finding,
    rule: Rule,
    org: Organisation,
    outcome: str = "",
    recipients: Collection[str] = (),
    channel: str = "email",
) -> Explained:
    """`outcome`: the message's verdict (`reject`, ...), for wording that depends on it: a
    finding that would hold the message says otherwise when another refuses it.
    `recipients`: who the message goes to (normalised addresses), for wording that depends on
    it: a correction does not suggest writing to someone the message already goes to.
    `channel`: "email", or a chat tool's, which sends its own messages (the gateway holds
    none of them)."""
    module = _template(env, finding.code).make_module(
        {
            "f": finding,
            "p": finding.params,
            "rule": rule,
            "org": org,
            "outcome": outcome,
            "recipients": frozenset(recipients),
            "channel": channel,
        }
    )
    explanation = " ".join(str(module.explanation()).split())  # type: ignore[attr-defined]
    correction = " ".join(str(module.correction()).split())  # type: ignore[attr-defined]
    # Optional: a site's own template written before it existed need not define it.
    left_out = getattr(module, "left_out", None)
    note = " ".join(str(left_out()).split()) if callable(left_out) else ""
    return Explained(finding, rule, explanation, correction, note)
