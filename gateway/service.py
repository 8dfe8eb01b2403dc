"""The running gateway: the relay, its archive writer and its delivery worker, wired once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import jinja2
import structlog
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from gateway.clock import Clock, SystemClock
from gateway.config import ConfigError, Settings
from gateway.delivery.transports import Transport, check_upstream, make_transport
from gateway.delivery.worker import DeliveryWorker
from gateway.directory_source import DirectorySource, demo_view, seed_demo_if_empty
from gateway.metrics import (
    ARCHIVE_RECORDS,
    ARCHIVE_TRANSACTIONS,
    CPU_SECONDS,
    DELIVERY_RECIPIENTS,
    NOTICES_LOST,
    Metrics,
)
from gateway.notify.render import environment_for, template_problems
from gateway.notify.schedule import run_daily
from gateway.pipeline import Pipeline
from gateway.policy.evaluate import Policy
from gateway.policy.pack import PackError, load_pack
from gateway.smtp.auth import Authenticator
from gateway.smtp.handler import RelayHandler
from gateway.smtp.server import SessionCounter, start_listeners
from gateway.store.archive import Archive
from gateway.store.credentials import CredentialStore
from gateway.store.db import make_engine
from gateway.store.directory import DirectoryStore
from gateway.store.failures import SMTP_AUTH_FAILED, FailureLog
from gateway.store.fulltext import INDEX_INTERVAL, INDEX_MOST, deferred, index_pending
from gateway.store.migrate import SchemaTooNew, upgrade
from gateway.store.queue import QueueStore
from gateway.store.writer import ArchiveWriter
from gateway.throttle import LOGINS_PER_ADDRESS, FailureLimiter

log = structlog.get_logger("gateway.service")


def load_policy(settings: Settings) -> Policy:
    return Policy(load_pack(settings.pack, site=settings.organisation), mode=settings.mode)


def load_policy_and_wording(settings: Settings) -> tuple[Policy, jinja2.Environment]:
    """The pack and every notice template, compiled: a broken one raises PackError naming
    each problem (the CLI prints one per line), at start rather than in the first bounce."""
    policy = load_policy(settings)
    templates = environment_for(
        settings.pack, settings.templates, settings.web.url, policy.pack.organisation.timezone
    )
    problems = template_problems(templates, {rule.check for rule in policy.pack.rules})
    if problems:
        where = settings.templates or "templates"
        raise PackError([f"{where}: {problem}" for problem in problems])
    return policy, templates


def alert_warnings(policy: Policy) -> list[tuple[str, dict[str, object]]]:
    """Where urgent alerts would not reach the organisation's safeguarding lead: no `dsl` at
    all, or an address outside its own domains (the `default` pack's placeholder, kept by a
    gateway.toml that set `domains` but not `dsl`)."""
    org = policy.pack.organisation
    urgent = sorted(policy.pack.urgent_rules)
    if not urgent:
        return []
    if not org.dsl:
        return [("alerts_have_no_dsl", {"rules": urgent, "fix": "set [organisation] dsl"})]
    outside = [address for address in org.dsl if not org.is_internal(address)]
    if outside:
        return [
            (
                "alerts_go_outside_your_domains",
                {"dsl": outside, "domains": list(org.domains), "fix": "set [organisation] dsl"},
            )
        ]
    return []


def relay_warnings(settings: Settings) -> list[tuple[str, dict[str, object]]]:
    """A relay nobody can send through: no trusted network, and no TLS, over which alone AUTH
    is offered (a password is never sent in the clear), so every message would get `530`. And
    an upstream signed in to as a mailbox (Microsoft 365's SMTP AUTH): such services commonly
    refuse the null sender the gateway's own notices go from, so alerts and bounces are lost."""
    warnings: list[tuple[str, dict[str, object]]] = []
    if not (settings.auth.trusted_networks or settings.server.tls_enabled):
        warnings.append(
            (
                "nobody_can_send",
                {
                    "why": "[auth] trusted_networks is empty and there is no TLS, which AUTH "
                    "needs: every message will be refused with 530",
                    "fix": "set [server] tls_cert and tls_key, or [auth] trusted_networks",
                },
            )
        )
    if settings.upstream.username:
        warnings.append(
            (
                "notices_may_not_be_delivered",
                {
                    "why": "[upstream] url signs in as a mailbox; the gateway's alerts and bounces "
                    "are sent from <> (no sender), which such services (Microsoft 365 over SMTP "
                    "AUTH) refuse: the safeguarding lead would get no alerts",
                    "fix": "relay through a connector that accepts them (deploy/README.md), and "
                    "check safeguard_notices_undeliverable_total stays 0",
                },
            )
        )
    return warnings


def open_engine(settings: Settings, pool_size: int = 8) -> Engine:
    engine = make_engine(settings.database_url, pool_size=pool_size)
    try:
        upgrade(engine)
    except SchemaTooNew as exc:
        engine.dispose()
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        raise ConfigError(f"{settings.path}: [database] url {shown}: {exc}") from None
    return engine


def _missing_sqlite_file(settings: Settings) -> str | None:
    """The SQLite file `[database] url` names, when there is none there yet."""
    url = make_url(settings.database_url)
    database = url.database
    on_disk = url.get_backend_name() == "sqlite" and database and database != ":memory:"
    return database if on_disk and not Path(database).exists() else None


def open_archive(settings: Settings, pool_size: int = 1) -> Engine:
    """`open_engine` for the commands that read what the gateway has archived (search, verify,
    export, audit, queue, digest): a SQLite file that is not there is a mistyped path, or a
    configuration copied away from its `state_dir`, said as such, not a new empty archive
    made there and reported on as if it were the gateway's ("No messages match")."""
    database = _missing_sqlite_file(settings)
    if database is not None and not settings.path.exists():
        raise ConfigError(_wrong_folder(settings.path.name, database))
    if database is not None:
        raise ConfigError(
            f"{settings.path}: [database] url {settings.database_url}: there is no archive "
            f"at {database}; check the path (the gateway makes it when it first runs); "
            "nothing was changed"
        )
    return open_engine(settings, pool_size)


def open_admin(
    settings: Settings, pool_size: int = 1, *, made: Callable[[str], None] | None = None
) -> Engine:
    """`open_engine` for an admin command that may make the database (a directory import, a
    password, API tokens). Run with no configuration file found and no archive at the
    built-in default, it is almost surely run in the wrong folder (the live gateway's
    configuration named only in its systemd unit): said so, rather than a new, empty database
    made here and changed as if it were the gateway's. A configuration named (`--config`,
    `$SAFEGUARD_CONFIG`, `./gateway.toml`) may make its database: a directory imported before
    the first `serve`. `made` is told of a database made so: a configuration copied away from
    its `state_dir` would otherwise change an archive no gateway reads, unremarked."""
    database = _missing_sqlite_file(settings)
    if database is not None and not settings.path.exists():
        raise ConfigError(_wrong_folder(settings.path.name, database))
    engine = open_engine(settings, pool_size)
    if database is not None and made is not None:
        made(database)
    return engine


def _wrong_folder(name: str, database: str) -> str:
    return (
        f"no configuration file ({name} in this folder, --config or "
        f"$SAFEGUARD_CONFIG) and no archive at {database}: run this in the gateway's "
        "folder, or name its configuration (safeguard --config /etc/safeguard/gateway.toml "
        "...); nothing was changed"
    )


def open_store(settings: Settings) -> DirectoryStore:
    return DirectoryStore(open_engine(settings, pool_size=1))


def build_checker(settings: Settings) -> Pipeline:
    """The evaluation path of `safeguard check`: the relay's, without SMTP or a queue."""
    store = open_store(settings)
    try:
        view = store.view()
        if store.version() == "0" and settings.demo_directory:
            view = demo_view(SystemClock().now())
    finally:
        store.engine.dispose()
    # Its templates checked as the relay's are: a broken one is named, not an unexpected error.
    policy, templates = load_policy_and_wording(settings)
    return Pipeline(
        hostname=settings.server.hostname,
        policy=policy,
        directory=lambda: view,
        templates=templates,
    )


@dataclass
class Gateway:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    run_worker: bool = True

    def __post_init__(self) -> None:
        # Pack and wording first: a broken one stops start-up before anything is opened.
        self.policy, self.templates = load_policy_and_wording(self.settings)
        check_upstream(self.settings.upstream)  # a Maildir made only for a gateway that starts
        self.engine = open_engine(self.settings)
        self.archive = Archive(self.engine, lifetime=self.settings.delivery.lifetime)
        self.queue = QueueStore(self.engine, lease=self.settings.delivery.lease)
        self.directory_store = DirectoryStore(self.engine)
        if self.settings.demo_directory:
            seed_demo_if_empty(self.directory_store, self.clock.now())
        self.directory = DirectorySource(self.directory_store)
        self.pipeline = Pipeline(
            hostname=self.settings.server.hostname,
            policy=self.policy,
            directory=self.directory,
            templates=self.templates,
        )
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pipeline")
        self.counter = SessionCounter()
        self.metrics = Metrics()
        self.writer = ArchiveWriter(
            self.archive,
            # Bounded, so that this process's sessions never wait long behind a backlog.
            index=partial(index_pending, self.engine, most=INDEX_MOST)
            if deferred(self.engine)
            else None,
            index_interval=INDEX_INTERVAL,
        )
        self.worker = DeliveryWorker(
            queue=self.queue,
            archive=self.archive,
            transport_factory=self.transport,
            settings=self.settings.delivery,
            templates=self.templates,
            clock=self.clock,
            hostname=self.settings.server.hostname,
            commit_delivered=self.writer.mark_delivered,
        )
        # Entries committed by the relay go to this process's worker in memory (see Lease).
        self.writer.lease = self.worker.lease
        self.writer.committed = self.worker.committed
        self.metrics.add_source(
            lambda: [
                (CPU_SECONDS, (("part", "archive_writer"),), self.writer.cpu_seconds),
                (ARCHIVE_TRANSACTIONS, (("held", "records"),), float(self.writer.transactions)),
                (
                    ARCHIVE_TRANSACTIONS,
                    (("held", "marks"),),
                    float(self.writer.mark_transactions),
                ),
                (ARCHIVE_RECORDS, (), float(self.writer.records)),
                *(
                    (NOTICES_LOST, (("kind", kind),), float(count))
                    for kind, count in self.worker.notices_lost.items()
                ),
                *(
                    (DELIVERY_RECIPIENTS, (("kind", kind), ("result", result)), float(count))
                    for (kind, result), count in self.worker.outcomes.items()
                    if count
                ),
            ]
        )
        self.handler = RelayHandler(
            settings=self.settings,
            pipeline=self.pipeline,
            writer=self.writer,
            authenticator=Authenticator(
                CredentialStore(self.engine), allowed=lambda login: self.directory().is_staff(login)
            ),
            limiter=self.failure_limiter(SMTP_AUTH_FAILED),
            clock=self.clock,
            executor=self.executor,
            metrics=self.metrics,
        )
        self._servers: list[asyncio.Server] = []
        self._worker_task: asyncio.Task[None] | None = None
        self._digest_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def transport(self) -> Transport:
        return make_transport(self.settings.upstream, local_hostname=self.settings.server.hostname)

    @property
    def ports(self) -> list[int]:
        return [s.sockets[0].getsockname()[1] for s in self._servers]

    def failure_limiter(self, action: str) -> FailureLimiter:
        """`[auth] max_failures` for one kind of failure (`gateway.store.failures`), counted
        in this gateway's database with every other process's."""
        limit = self.settings.auth.max_failures
        return FailureLimiter(
            limit,
            self.settings.auth.failure_window,
            clock=self.clock,
            failures=FailureLog(self.engine),
            action=action,
            # Relay logins are counted per address and login, and per address across logins
            # at this many times the limit; API tokens name no login: per address only.
            address_limit=limit * LOGINS_PER_ADDRESS if action == SMTP_AUTH_FAILED else limit,
        )

    async def start(self) -> None:
        # Read the directory before the first session: while one thread loads it, the
        # DirectorySource hands other threads the view it has - at start an empty one, which
        # would let mail to a child through unchecked.
        await asyncio.to_thread(self.directory)
        self.writer.start()
        self._servers = await start_listeners(self.handler, self.settings.server, self.counter)
        if self.run_worker:
            await asyncio.to_thread(self.worker.release_dead)
            self._worker_task = asyncio.create_task(self.worker.run(), name="delivery-worker")
            if self.settings.digest_at is not None:
                self._digest_task = asyncio.create_task(
                    run_daily(
                        engine=self.engine,
                        archive=self.archive,
                        env=self.templates,
                        org=self.policy.pack.organisation,
                        hostname=self.settings.server.hostname,
                        clock=self.clock,
                        at=self.settings.digest_at,
                        stop=self._stopping,
                        wake_worker=self.worker.wake,
                        urgent_rules=self.policy.pack.urgent_rules,
                    ),
                    name="daily-digest",
                )
        log.info(
            "gateway_started",
            listen=[f"{self.settings.server.host}:{p}" for p in self.ports],
            upstream=self.settings.upstream.display,
            database=self.engine.url.render_as_string(hide_password=True),
            mode=self.settings.mode,
        )
        for warning, fields in [*alert_warnings(self.policy), *relay_warnings(self.settings)]:
            log.warning(warning, **fields)

    async def stop(self) -> None:
        """A clean stop: no new sessions, let those in flight finish, then stop the worker."""
        for server in self._servers:
            server.close()
        # Sessions between transactions are closed now (and each that finishes one meanwhile);
        # a transaction under way has up to drain_timeout to finish.
        deadline = asyncio.get_running_loop().time() + self.settings.server.drain_timeout
        while not self.counter.idle.is_set():
            self.counter.close_idle()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.warning("sessions_still_open_at_stop", active=self.counter.active)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.counter.idle.wait(), min(left, 0.1))
        self._stopping.set()
        if self._digest_task is not None:
            await self._digest_task
        # The writer first: what it commits last is handed to the worker before the worker
        # stops and sends what it holds (nothing is left leased to a stopped worker).
        self.writer.stop()
        if self._worker_task is not None:
            self.worker.stop()
            await self._worker_task
        self.executor.shutdown(wait=True)
        self.engine.dispose()
        log.info("gateway_stopped")
