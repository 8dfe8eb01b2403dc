"""What every check's `parse_settings` shares: refusing keys the check does not know."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any


def reject_unknown(raw: Mapping[str, Any], known: Collection[str]) -> None:
    """Raise ValueError naming each key of `raw` not in `known`, with the nearest known one.

    A misspelt setting would otherwise be ignored and the rule silently run on its default.
    """
    unknown = sorted(set(raw) - set(known))
    if not unknown:
        return
    names = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        names.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise ValueError(
        f"unknown setting(s) {', '.join(names)}; known: {', '.join(sorted(known)) or 'none'}"
    )
