"""CPU per message of the gateway's own stages, in one process, without sockets (issue 7).

`throughput.py` measures the whole relay end to end, but on a shared 2-core VM its msg/s drift
by a third within an hour. This measures what the gateway adds to a bare relay, stage by stage,
as CPU time (time.process_time) in a single thread: steadier, and what to read before and after
an optimisation. Same pack, directory (5,000 contacts) and message mix as throughput.py.

  prepare   parse + every rule of the pack + the archive record and queue items (and the
            bounce, for refused mail): `Pipeline.prepare`, what the relay runs per message
  commit    archive + queue rows, in batches of --batch as the group-commit writer does,
            leased to a worker (SQLite WAL synchronous=FULL, or PostgreSQL); CPU of this
            process only (a PostgreSQL server's own work is not counted)
  index     SQLite only: the full-text index of those rows, filled after the commit in
            transactions of 500 as the archive writer does (`gateway.store.fulltext`);
            0 on PostgreSQL, whose commit writes the search vector with the row
  server    PostgreSQL only: the server's own CPU for those commits (every postgres
            process on this machine, from /proc: run nothing else against it meanwhile)

    .venv/bin/python bench/stage_cost.py                      # SQLite, 2000 messages x 3
    .venv/bin/python bench/stage_cost.py --database postgres  # a fresh database on 127.0.0.1
    .venv/bin/python bench/stage_cost.py --profile            # cProfile's top functions
    SORT=cumulative TOP=60 .venv/bin/python bench/stage_cost.py --profile  # another order
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import GROUPS, PACK, PG_ADMIN, SENDER, database_cpu, import_directory, split

from gateway.config import load_settings
from gateway.pipeline import Prepared, Submission
from gateway.service import Gateway
from gateway.store.fulltext import deferred, index_pending
from gateway.store.records import Lease


def submissions(count: int) -> Iterator[Submission]:
    """The throughput mix, interleaved: 60 % adults, 30 % a minor with a parent, 10 % refused."""
    counts = split(count, [g.share for g in GROUPS])
    order = [g for g, c in zip(GROUPS, counts, strict=True) for _ in range(c)]
    random.Random(7).shuffle(order)
    serial = itertools.count(1)
    for n, group in enumerate(order, 1):
        text = group.message(f"Programme update ({group.name})", 5000)
        raw = text.replace("\n", "\r\n").encode()
        yield Submission(
            queue_id=f"S{next(serial):07d}{uuid.uuid4().hex[:6]}",
            raw=raw,
            envelope_from=SENDER,
            envelope_to=tuple(group.recipients(n)),
            received_at=datetime.now(UTC),
            client_address="127.0.0.1",
            helo="bench.localhost",
        )


def cpu_per_message(action: Callable[[], int]) -> float:
    start = time.process_time()
    done = action()
    return (time.process_time() - start) / done


@contextlib.contextmanager
def database_url(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'archive.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"bench_stage_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def measure(
    database: str = "sqlite",
    messages: int = 2000,
    rounds: int = 3,
    batch: int = 8,
    profile: bool = False,
) -> dict[str, list[float]]:
    """CPU seconds per message of `prepare`, `commit` and `index`, one value per round."""
    results: dict[str, list[float]] = {"prepare": [], "commit": [], "index": []}
    if database == "postgres":
        results["server"] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stage-cost-")))
        url = stack.enter_context(database_url(database, workdir))
        config = workdir / "gateway.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n'
            f'state_dir = "{workdir}"\n[directory]\ndemo = false\n'
            f'[notify]\ndigest_at = ""\n[policy]\npack = "{PACK}"\n'
        )
        import_directory(config, workdir)
        gateway = Gateway(load_settings(config), run_worker=False)
        gateway.directory()
        lease = Lease("bench", datetime.now(UTC))

        def prepare(into: list[Prepared]) -> Callable[[], int]:
            def run() -> int:
                into.extend(gateway.pipeline.prepare(s) for s in submissions(messages))
                return len(into)

            return run

        def commit(prepared: list[Prepared]) -> Callable[[], int]:
            def run() -> int:
                for i in range(0, len(prepared), batch):
                    chunk = prepared[i : i + batch]
                    gateway.archive.store_many([(p.record, p.items) for p in chunk], lease=lease)
                return len(prepared)

            return run

        warm: list[Prepared] = []
        prepare(warm)()
        if profile:
            for name in ("prepare", "commit"):
                prepared: list[Prepared] = []
                if name == "commit":
                    prepare(prepared)()
                profiler = cProfile.Profile(time.process_time)
                action = prepare(prepared) if name == "prepare" else commit(prepared)
                profiler.runcall(action)
                print(f"--- {name}")
                stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
                stats.print_stats(int(os.environ.get("TOP", "25")))
            return results
        for _ in range(rounds):
            prepared = []
            results["prepare"].append(cpu_per_message(prepare(prepared)))
            server = database_cpu()
            results["commit"].append(cpu_per_message(commit(prepared)))
            if "server" in results:
                results["server"].append((database_cpu() - server) / len(prepared))
            if deferred(gateway.engine):
                results["index"].append(cpu_per_message(lambda: index_pending(gateway.engine)))
            else:
                results["index"].append(0.0)
        gateway.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="records per commit")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", action="store_true", help="print seconds per message as JSON")
    args = parser.parse_args()
    results = measure(args.database, args.messages, args.rounds, args.batch, args.profile)
    if args.profile:
        return
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"{args.messages} messages x {args.rounds} rounds, {args.database}, "
        f"commits of {args.batch}: CPU per message (median, min-max)"
    )
    for name, values in results.items():
        ms = [v * 1000 for v in values]
        print(f"  {name:8} {statistics.median(ms):.3f} ms ({min(ms):.3f}-{max(ms):.3f})")


if __name__ == "__main__":
    main()
