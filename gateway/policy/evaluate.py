"""Evaluate every rule of a pack, keep every finding, then decide once (Mailman's lesson)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.registry import CheckSpec, discover
from gateway.policy.types import Action, Finding, Pack, Verdict

log = structlog.get_logger("gateway.policy")


def strongest(findings: tuple[Finding, ...]) -> Action:
    """reject > defer > rewrite > flag > deliver."""
    return max((f.action for f in findings), key=lambda a: a.strength, default=Action.DELIVER)


class Policy:
    """A loaded pack bound to its checks; immutable and shared by every session."""

    def __init__(
        self, pack: Pack, *, mode: str = "enforce", checks: Mapping[str, CheckSpec] | None = None
    ) -> None:
        self.pack = pack
        self.mode = mode
        self.checks = checks if checks is not None else discover()

    @property
    def organisation(self):
        return self.pack.organisation

    def evaluate(self, message: Message, view: DirectoryView, now: datetime) -> Verdict:
        org = self.pack.organisation
        local_now = now.astimezone(org.timezone)
        findings: list[Finding] = []
        for rule in self.pack.rules:
            try:
                findings.extend(self.checks[rule.check].run(message, view, local_now, rule, org))
            except Exception as exc:
                # A check bug must not lose or block mail; it is logged and shows in review.
                log.error("check_failed", rule=rule.id, check=rule.check, error=repr(exc))
                findings.append(
                    Finding(
                        code="check_error",
                        rule=rule.id,
                        action=Action.FLAG,
                        evidence=repr(exc)[:200],
                    )
                )
        result = tuple(findings)
        action = strongest(result)
        deliver_at = org.office_hours.next_opening(local_now) if action is Action.DEFER else None
        return Verdict(
            action=action,
            findings=result,
            evaluated=tuple(rule.id for rule in self.pack.rules),
            deliver_at=deliver_at,
            monitor=self.mode == "monitor",
        )
