"""The console's jinja2 pages (templates/web/), rendered on the server; autoescaped."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path

import jinja2

from gateway.notify.render import BUILTIN_TEMPLATES

# Words for the codes of interface.md (gateway.search.query's FINDING_CODES and VERDICTS);
# tests/web/test_highlight.py checks that each has its words here.
VERDICT_LABELS = {
    "reject": "Refused",
    "defer": "Held for office hours",
    "rewrite": "Changed",
    "flag": "Flagged",
    "deliver": "Delivered",
}
FINDING_LABELS = {
    "missing_required_cc": "Required copy missing",
    "no_consent": "No consent on record",
    "mass_mail_visible_recipients": "Addresses exposed",
    "informal_sign_off": "Informal sign-off",
    "out_of_hours": "Out of hours",
    "personal_contact_details": "Personal contact details",
    "unapproved_third_party": "Unapproved third party",
    "risk_language": "Risk language",
    "sender_not_permitted": "Sender not permitted",
    "check_error": "A check failed",
}
STATIC = BUILTIN_TEMPLATES / "web" / "static"


def pages_environment(zone: tzinfo, folder: Path = BUILTIN_TEMPLATES / "web") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )

    def local(moment: datetime | None, style: str = "long") -> str:
        if moment is None:
            return ""
        here = moment.astimezone(zone)
        if style == "short":
            return f"{here:%d %b %Y %H:%M}"
        return f"{here:%A} {here.day} {here:%B %Y}, {here:%H:%M}"

    def verdict_label(verdict: str) -> str:
        return VERDICT_LABELS.get(verdict, verdict)

    def finding_label(code: str) -> str:
        return FINDING_LABELS.get(code, code.replace("_", " "))

    env.filters["local"] = local
    env.filters["verdict_label"] = verdict_label
    env.filters["finding_label"] = finding_label
    env.globals["zone"] = str(zone)
    return env
