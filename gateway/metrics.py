"""Counters the running gateway keeps for `/metrics` (Prometheus text format), per process."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]

_HELP = {
    "safeguard_smtp_transactions_total": "SMTP transactions that reached DATA, by outcome",
    "safeguard_api_requests_total": "HTTP API requests, by endpoint and status",
    "safeguard_chat_messages_total": "Chat messages judged by the API, by endpoint and verdict",
}


class Metrics:
    """Monotonic counters, touched only from the event loop's thread."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counts[name][tuple(sorted(labels.items()))] += amount

    def render(self, gauges: Iterable[tuple[str, str, Labels, float]] = ()) -> str:
        """Counters, then `gauges` as (name, help, labels, value), in the text format 0.0.4."""
        lines: list[str] = []
        for name in sorted(set(_HELP) | set(self._counts)):
            lines.append(f"# HELP {name} {_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(self._counts.get(name, {}).items()):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        seen: set[str] = set()
        for name, help_text, labels, value in gauges:
            if name not in seen:
                seen.add(name)
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
