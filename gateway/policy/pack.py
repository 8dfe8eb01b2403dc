"""Loading a policy pack (`rules/NAME.toml`) once, strictly, with errors an admin can act on.

Every error names the file, the line where known, the rule id, and the reason; the loader
collects all of them instead of stopping at the first.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config import (
    ORGANISATION_KEYS,
    OrganisationSettings,
    did_you_mean,
    nearest,
    read_text_file,
)
from gateway.policy.hours import HoursError, OfficeHours
from gateway.policy.packs_dir import RULES_DIR, available_packs, pack_path
from gateway.policy.registry import CheckSpec, discover
from gateway.policy.types import RULE_ACTIONS, Action, Organisation, Pack, Retention, Rule, Where

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PACK_KEYS = {"pack", "organisation", "retention", "rule"}
_RULE_KEYS = {
    "id",
    "check",
    "action",
    "urgent",
    "section",
    "policy",
    "reading",
    "where",
    "settings",
}


class PackError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
        self.problems = problems


class NoSuchPack(PackError):
    """The pack named is not there at all (bad usage), rather than a pack with problems."""


_RETENTION_KEYS = {"years", "until_age", "policy"}


def _retention(raw: Any, p: _Problems) -> Retention:
    if not isinstance(raw, dict):
        p.add("[retention] must be a table", line=p.line_of("retention", None))
        return Retention()
    values: dict[str, int | None] = {}
    for key in raw:
        if key not in _RETENTION_KEYS:
            hint = did_you_mean(key, _RETENTION_KEYS)
            p.add(f"[retention] unknown key {key!r} ({hint})", line=p.line_of(key, None))
    for key, lowest, highest in (("years", 1, 100), ("until_age", 18, 120)):
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest
        ):
            p.add(
                f"[retention] {key} must be a whole number from {lowest} to {highest}, "
                f"not {value!r}",
                line=p.line_of(key, None, section="retention"),
            )
            value = None
        values[key] = value
    return Retention(
        years=values["years"], until_age=values["until_age"], policy=str(raw.get("policy", ""))
    )


def _rule_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "[[rule]]"]


class _Problems:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.items: list[str] = []

    def line_of(self, key: str, start: int | None, section: str | None = None) -> int | None:
        """The line of `key = ` after `start` (a rule's header), before the next [[rule]]."""
        begin = (start or 1) - 1
        for number in range(begin, len(self.lines)):
            stripped = self.lines[number].strip()
            if number > begin and stripped == "[[rule]]":
                break
            if (
                section is not None
                and start is None
                and stripped.startswith("[")
                and section not in stripped
            ):
                continue
            if re.match(rf"^{re.escape(key)}\s*=", stripped) or stripped == f"[rule.{key}]":
                return number + 1
        return start

    def add(
        self,
        reason: str,
        *,
        line: int | None = None,
        rule: str | None = None,
        path: Path | None = None,
    ) -> None:
        """`path`: another file the problem is in (the site's gateway.toml), `line` in it."""
        path = path or self.path
        where = f"{path}:{line}" if line else str(path)
        who = f" rule {rule!r}:" if rule else ""
        self.items.append(f"{where}:{who} {reason}")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _organisation(
    raw: Mapping[str, Any], site: OrganisationSettings | None, p: _Problems, pack_title: str
) -> Organisation | None:
    merged = dict(raw)
    from_site = site.set_here() if site is not None else frozenset()

    def refuse(key: str, reason: str) -> None:
        """A value the site set is wrong in its gateway.toml; any other, in the pack."""
        if site is not None and key in from_site:
            if site.source is None:
                p.add(f"{reason} (set by the site's [organisation])")
            else:
                p.add(reason, line=site.lines.get(key), path=site.source)
        else:
            p.add(reason, line=p.line_of(key, None, "organisation"))

    if site is not None:
        merged.update(site.overrides)
        if site.domains:
            merged["domains"] = list(site.domains)
        if site.timezone is not None:
            merged["timezone"] = site.timezone.key
        if site.name:
            merged["name"] = site.name
    for key in merged:
        if key not in ORGANISATION_KEYS:
            refuse(
                key, f"[organisation] unknown key {key!r} ({did_you_mean(key, ORGANISATION_KEYS)})"
            )
    domains = merged.get("domains", [])
    if not _strings(domains) or not domains:
        refuse("domains", "[organisation] domains must be a non-empty list of domains")
        return None
    try:
        zone = ZoneInfo(str(merged.get("timezone", "Europe/London")))
    except (ZoneInfoNotFoundError, ValueError):
        zone_name = merged.get("timezone")
        refuse("timezone", f"[organisation] timezone {zone_name!r} is not a time zone")
        return None
    bank = merged.get("bank_holidays", "GB-ENG")
    try:
        hours = OfficeHours(
            str(merged.get("office_hours", "Mon-Fri 09:00-17:00")),
            zone,
            str(bank) if bank else None,
        )
    except HoursError as exc:
        key = "bank_holidays" if "bank-holiday" in str(exc) else "office_hours"
        refuse(key, f"[organisation] {key}: {exc}")
        return None
    dsl = merged.get("dsl", [])
    numbers = merged.get("own_phone_numbers", [])
    own_addresses = merged.get("own_addresses", [])
    mailboxes = merged.get("mailboxes", {})
    for key, value, ok in (
        ("dsl", dsl, _strings(dsl)),
        ("own_phone_numbers", numbers, _strings(numbers)),
        ("own_addresses", own_addresses, _strings(own_addresses)),
        (
            "mailboxes",
            mailboxes,
            isinstance(mailboxes, dict) and all(isinstance(v, str) for v in mailboxes.values()),
        ),
    ):
        if not ok:
            refuse(key, f"[organisation] {key} has the wrong shape: {value!r}")
            return None
    return Organisation(
        name=str(merged.get("name") or pack_title),
        domains=tuple(d.lower() for d in domains),
        timezone=zone,
        office_hours=hours,
        bank_holidays=str(bank or ""),
        dsl=tuple(a.lower() for a in dsl),
        mailboxes={k: v.lower() for k, v in mailboxes.items()},
        own_phone_numbers=tuple(numbers),
        own_addresses=tuple(own_addresses),
        reject_in_session=bool(merged.get("reject_in_session", False)),
    )


def _rule(
    raw: Any, line: int | None, checks: Mapping[str, CheckSpec], p: _Problems, seen: set[str]
) -> Rule | None:
    if not isinstance(raw, dict):
        p.add("[[rule]] must be a table", line=line)
        return None
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        p.add(f"id {rule_id!r} must be kebab-case (a-z, 0-9, -)", line=p.line_of("id", line))
        return None
    ok = True
    # A key misspelt for one the rule needs ("chek" for "check") is reported once, as the typo:
    # not again as the missing key's own error ("unknown check None").
    misspelt: set[str] = set()
    for key in raw:
        if key not in _RULE_KEYS:
            hint = did_you_mean(key, _RULE_KEYS)
            p.add(f"unknown key {key!r} ({hint})", line=p.line_of(key, line), rule=rule_id)
            meant = nearest(key, _RULE_KEYS)
            if meant is not None and meant not in raw:
                misspelt.add(meant)
            ok = False
    if rule_id in seen:
        p.add("the same id is used twice in this pack", line=line, rule=rule_id)
        ok = False
    seen.add(rule_id)
    code = raw.get("check")
    spec = checks.get(code) if isinstance(code, str) else None
    if spec is None and "check" not in misspelt:
        known = ", ".join(sorted(checks))
        p.add(
            f"missing key 'check' (known checks: {known})"
            if "check" not in raw
            else f"unknown check {code!r} ({did_you_mean(str(code), checks)})",
            line=p.line_of("check", line),
            rule=rule_id,
        )
    ok = ok and spec is not None
    try:
        action = Action(raw.get("action"))
        if action not in RULE_ACTIONS:
            raise ValueError
    except ValueError:
        if "action" not in misspelt:
            p.add(
                "missing key 'action' (one of reject, defer, rewrite, flag)"
                if "action" not in raw
                else f"action {raw.get('action')!r} must be one of reject, defer, rewrite, flag",
                line=p.line_of("action", line),
                rule=rule_id,
            )
        ok = False
    if ok and action is not Action.FLAG and raw.get("urgent", False):
        # An urgent finding alerts the lead and is never shown to the sender (it would tell
        # them what is watched for); a refused, held or rewritten message is explained to them.
        p.add(
            f"an urgent rule must flag, not {action.value}: the sender is not told of an "
            "urgent finding, and a message refused, held or changed is explained to its sender",
            line=p.line_of("urgent", line),
            rule=rule_id,
        )
        ok = False
    policy = raw.get("policy")
    if not isinstance(policy, str) or not policy.strip():
        if "policy" not in misspelt:
            p.add(
                "every rule quotes the policy sentence it enforces: `policy` is missing",
                line=line,
                rule=rule_id,
            )
        ok = False
    where_raw = raw.get("where", {})
    where = Where()
    if not isinstance(where_raw, dict) or set(where_raw) - {"categories", "minors_only"}:
        p.add("[rule.where] takes only categories and minors_only", line=line, rule=rule_id)
        ok = False
    else:
        categories = where_raw.get("categories")
        if categories is not None and not _strings(categories):
            p.add("where.categories must be a list of category names", line=line, rule=rule_id)
            ok = False
        else:
            where = Where(
                categories=tuple(c.lower() for c in categories) if categories is not None else None,
                minors_only=bool(where_raw.get("minors_only", True)),
            )
    settings: Any = None
    if spec is not None:
        raw_settings = raw.get("settings", {})
        try:
            if not isinstance(raw_settings, dict):
                raise ValueError("[rule.settings] must be a table")
            settings = spec.parse_settings(raw_settings)
        except (ValueError, TypeError) as exc:
            p.add(f"settings: {exc}", line=p.line_of("settings", line), rule=rule_id)
            ok = False
    if not ok:
        return None
    return Rule(
        id=rule_id,
        check=str(code),
        action=action,
        policy=" ".join(str(policy).split()),
        section=str(raw.get("section", "")),
        reading=" ".join(str(raw.get("reading", "")).split()),
        urgent=bool(raw.get("urgent", False)),
        where=where,
        settings=settings,
        line=line,
    )


def load_pack(
    name_or_path: str,
    *,
    site: OrganisationSettings | None = None,
    rules_dir: Path = RULES_DIR,
    checks: Mapping[str, CheckSpec] | None = None,
) -> Pack:
    """Parse and validate a pack; raises PackError listing every problem."""
    path = pack_path(name_or_path, rules_dir)
    if not path.exists():
        known = ", ".join(available_packs(rules_dir))
        raise NoSuchPack([f"{path}: no such policy pack (available: {known})"])
    text = read_text_file(path, lambda problem: PackError([problem]))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PackError([f"{path}: not valid TOML: {exc}"]) from None
    p = _Problems(path, text)
    for key in data:
        if key not in _PACK_KEYS:
            p.add(f"unknown top-level key {key!r} ({did_you_mean(key, _PACK_KEYS)})")
    meta = data.get("pack", {})
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        p.add("[pack] needs a name")
        meta = {}
    organisation = _organisation(
        data.get("organisation", {}),
        site,
        p,
        str(meta.get("title") or meta.get("name") or path.stem),
    )
    retention = _retention(data.get("retention", {}), p)
    checks = checks if checks is not None else discover()
    raw_rules = data.get("rule", [])
    lines = _rule_lines(text)
    seen: set[str] = set()
    rules = []
    for index, raw in enumerate(raw_rules if isinstance(raw_rules, list) else []):
        rule = _rule(raw, lines[index] if index < len(lines) else None, checks, p, seen)
        if rule is not None:
            rules.append(rule)
    if organisation is not None:
        for rule in rules:
            validate = checks[rule.check].validate
            for problem in validate(rule, organisation) if validate else []:
                p.add(problem, line=rule.line, rule=rule.id)
    if p.items:
        raise PackError(p.items)
    assert organisation is not None
    return Pack(
        name=str(meta["name"]),
        title=str(meta.get("title", meta["name"])),
        path=path,
        summary=" ".join(str(meta.get("summary", "")).split()),
        seed=meta.get("seed"),
        organisation=organisation,
        retention=retention,
        rules=tuple(rules),
    )
