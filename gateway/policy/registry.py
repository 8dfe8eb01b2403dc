"""Checks register themselves by living in `gateway.checks`: no list to edit.

Each public module there defines `CODE` (its finding code), a docstring, `parse_settings(raw)`
and `check(message, view, now, rule, org) -> list[Finding]`. Two modules claiming one code is
an error at start-up.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gateway.checks
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.policy.types import Finding, Organisation, Rule

CheckFunction = Callable[[Message, DirectoryView, datetime, Rule, Organisation], list[Finding]]


@dataclass(frozen=True)
class CheckSpec:
    code: str
    description: str
    parse_settings: Callable[[Mapping[str, Any]], Any]
    run: CheckFunction
    # Optional: problems that need the organisation too (e.g. a mailbox name it must define).
    validate: Callable[[Rule, Organisation], list[str]] | None = None


class RegistryError(RuntimeError):
    pass


def discover() -> dict[str, CheckSpec]:
    found: dict[str, CheckSpec] = {}
    where: dict[str, str] = {}
    for info in pkgutil.iter_modules(gateway.checks.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"gateway.checks.{info.name}")
        code = getattr(module, "CODE", None)
        if code is None:
            continue
        if code in found:
            raise RegistryError(
                f"checks {where[code]} and {module.__name__} both claim code {code!r}"
            )
        found[code] = CheckSpec(
            code=code,
            description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else code,
            parse_settings=module.parse_settings,
            run=module.check,
            validate=getattr(module, "validate", None),
        )
        where[code] = module.__name__
    return found
