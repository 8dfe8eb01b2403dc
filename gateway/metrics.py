"""Counters the running gateway keeps for `/metrics` (Prometheus text format).

Each process counts in memory. With `[server] processes = N` the kernel hands each scrape to
any one of them, so each also publishes its counts to a file of its own every few seconds
(SharedCounters), and a scrape adds the others' files to its own counts: every scrape sees the
whole gateway's totals, not one process's, which Prometheus would take for counter resets.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

Labels = tuple[tuple[str, str], ...]
Snapshot = dict[str, dict[Labels, float]]
# Totals kept elsewhere (another thread's), as (name, labels, value): read at each snapshot.
Source = Callable[[], Iterable[tuple[str, Labels, float]]]

CPU_SECONDS = "safeguard_cpu_seconds_total"
ARCHIVE_TRANSACTIONS = "safeguard_archive_transactions_total"
ARCHIVE_RECORDS = "safeguard_archive_records_total"
NOTICES_LOST = "safeguard_notices_undeliverable_total"
DELIVERY_RECIPIENTS = "safeguard_delivery_recipients_total"

_HELP = {
    "safeguard_smtp_transactions_total": "SMTP transactions that reached DATA, by outcome",
    "safeguard_api_requests_total": "HTTP API requests, by endpoint and status",
    "safeguard_chat_messages_total": "Chat messages judged by the API, by endpoint and verdict",
    CPU_SECONDS: "CPU seconds by part: policy (parsing and every rule, for mail), "
    "archive_writer (its thread: commits, full-text indexing)",
    ARCHIVE_TRANSACTIONS: "Transactions the archive writer committed, by what they held: "
    "records (group commit; with delivery marks or not), or marks alone",
    ARCHIVE_RECORDS: "Messages the archive writer archived: per records transaction, its batch",
    NOTICES_LOST: "The gateway's own notices (alerts, bounces) upstream refused for good, "
    "by kind: with none delivered, the safeguarding lead and staff are not told",
    DELIVERY_RECIPIENTS: "Recipients of this gateway's delivery attempts, by kind and result: "
    "delivered, deferred (to retry), refused, expired (deferred past the lifetime: bounced)",
}


class Metrics:
    """Monotonic counters, touched only from the event loop's thread; a source added with
    `add_source` is read there too, at each snapshot."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._sources: list[Source] = []

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counts[name][tuple(sorted(labels.items()))] += amount

    def add_source(self, source: Source) -> None:
        """Counters another thread keeps (the archive writer's CPU), read at each snapshot."""
        self._sources.append(source)

    def snapshot(self) -> Snapshot:
        snapshot = {name: dict(values) for name, values in self._counts.items()}
        for source in self._sources:
            for name, labels, value in source():
                snapshot.setdefault(name, {})[labels] = value
        return snapshot

    def render(
        self,
        gauges: Iterable[tuple[str, str, Labels, float]] = (),
        others: Iterable[Snapshot] = (),
    ) -> str:
        """Counters (this process's plus `others`, the other processes'), then `gauges` as
        (name, help, labels, value), in the text format 0.0.4."""
        counts: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        for snapshot in (self.snapshot(), *others):
            for name, values in snapshot.items():
                for labels, value in values.items():
                    counts[name][labels] += value
        lines: list[str] = []
        for name in sorted(set(_HELP) | set(counts)):
            lines.append(f"# HELP {name} {_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(counts.get(name, {}).items()):
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


def metrics_folder(state_dir: Path) -> Path:
    """Where the relay processes of one `serve` publish their counters."""
    return state_dir / "metrics"


class SharedCounters:
    """The counts of each relay process in `folder/<pid>.json`, written whole and renamed into
    place, so that a reader never sees half a file."""

    def __init__(self, folder: Path, pid: int | None = None) -> None:
        self.folder = folder
        self.pid = os.getpid() if pid is None else pid

    def publish(self, snapshot: Snapshot) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = [
            [name, [list(pair) for pair in labels], value]
            for name, values in snapshot.items()
            for labels, value in values.items()
        ]
        part = self.folder / f".{self.pid}.json.part"
        part.write_text(json.dumps(data))
        part.replace(self.folder / f"{self.pid}.json")

    def others(self) -> list[Snapshot]:
        """Every other process's last published counts (a process that has ended keeps its
        file, so the totals do not fall; `serve` empties the folder when it starts)."""
        found: list[Snapshot] = []
        for path in sorted(self.folder.glob("*.json")):
            if path.stem == str(self.pid):
                continue
            try:
                rows = json.loads(path.read_text())
            except (OSError, ValueError):  # being replaced, or not ours: skip this scrape
                continue
            snapshot: Snapshot = defaultdict(dict)
            for name, labels, value in rows:
                snapshot[name][tuple((str(k), str(v)) for k, v in labels)] = float(value)
            found.append(dict(snapshot))
        return found
