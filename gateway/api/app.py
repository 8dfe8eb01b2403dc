"""The HTTP API: a chat tool asks what the policy says of a message (`/api/v1/check`) or hands
it over to be archived (`/api/v1/messages`); monitoring reads `/healthz`, `/readyz` and
`/metrics`. Answers are JSON; an error is `{"error": "..."}` naming what to fix, never a
traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import structlog
from aiohttp import web
from sqlalchemy import Engine, text

from gateway.chat import ChatInvalid, ChatMessage, chat_from_json, check_sent_by
from gateway.clock import Clock
from gateway.httpserver import HttpServer
from gateway.ids import new_queue_id
from gateway.metrics import Metrics, SharedCounters, metrics_folder
from gateway.pipeline import Pipeline, check_result
from gateway.service import Gateway
from gateway.store.failures import API_TOKEN_FAILED
from gateway.store.queue import QueueStore
from gateway.store.tokens import TokenStore
from gateway.store.writer import ArchiveWriter
from gateway.throttle import FailureLimiter

log = structlog.get_logger("gateway.api")

MAX_BODY = 256 * 1024  # bytes: a chat message and its participants, with room to spare
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ApiServices:
    pipeline: Pipeline
    writer: ArchiveWriter
    tokens: TokenStore
    queue: QueueStore
    engine: Engine
    clock: Clock
    executor: Executor
    metrics: Metrics
    sessions: Callable[[], int]  # SMTP sessions in flight
    # Wrong tokens per client address, as [auth] limits wrong SMTP passwords: a guesser's
    # further wrong tokens are answered 429 (not counted, not audited) until the window passes;
    # a valid token from the address is still accepted (`_Api._chat`).
    limiter: FailureLimiter
    # Several relay processes: where each publishes its counters for the others' scrapes.
    shared: SharedCounters | None = None

    @classmethod
    def of(cls, gateway: Gateway) -> ApiServices:
        """The running gateway's own pipeline, writer and database: one process, one archive."""
        return cls(
            pipeline=gateway.pipeline,
            writer=gateway.writer,
            tokens=TokenStore(gateway.engine),
            queue=gateway.queue,
            engine=gateway.engine,
            clock=gateway.clock,
            executor=gateway.executor,
            metrics=gateway.metrics,
            sessions=lambda: gateway.counter.active,
            limiter=gateway.failure_limiter(API_TOKEN_FAILED),
            shared=SharedCounters(metrics_folder(gateway.settings.state_dir))
            if gateway.settings.server.processes > 1
            else None,
        )


SERVICES = web.AppKey("services", ApiServices)
PUBLISH_EVERY = 2.0  # seconds: how stale another process's counts may be in a scrape


async def _publishing(app: web.Application) -> AsyncIterator[None]:
    """Each process's counts, to its file every PUBLISH_EVERY seconds and once at stop."""
    services = app[SERVICES]
    shared = services.shared

    async def loop() -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            await asyncio.to_thread(shared.publish, services.metrics.snapshot())

    task = asyncio.create_task(loop(), name="metrics-publish") if shared else None
    yield
    if task is not None and shared is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(shared.publish, services.metrics.snapshot())


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _unauthorised() -> web.Response:
    return _error(
        401,
        "a valid token is needed: Authorization: Bearer TOKEN (safeguard api token create NAME)",
        **{"WWW-Authenticate": 'Bearer realm="safeguard"'},
    )


def make_app(services: ApiServices) -> web.Application:
    api = _Api(services)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[api.errors])
    app[SERVICES] = services
    app.cleanup_ctx.append(_publishing)
    app.router.add_post("/api/v1/check", api.check)
    app.router.add_post("/api/v1/messages", api.messages)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    return app


class _Api:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # A route's own path, so that a scan of made-up URLs cannot grow the label set.
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            response = _error(413, f"the body is larger than {MAX_BODY} bytes")
        except web.HTTPException as exc:
            response = _error(exc.status, exc.reason)
        except Exception as exc:  # logged for the operator; the caller learns nothing inside
            log.error("api_failed", path=request.path, error=repr(exc))
            response = _error(500, "internal error; nothing was stored")
        if endpoint.startswith("/api/") or endpoint == "unmatched":
            self.s.metrics.inc(
                "safeguard_api_requests_total", endpoint=endpoint, status=str(response.status)
            )
        return response

    async def _chat(self, request: web.Request) -> tuple[str, ChatMessage] | web.Response:
        client = request.remote or ""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            # No token at all guesses nothing: not counted, or anyone on the network could
            # lock every chat tool behind the same address out by sending five empty requests.
            return _unauthorised()
        # A valid token is accepted even from an address locked out for wrong ones. The
        # lockout is there to stop guessing, and a valid token is not a guess: tokens are
        # "sgw_" + secrets.token_urlsafe(32), 256 random bits (gateway/store/tokens.py), which
        # no number of guesses finds. Refusing it would let a stranger behind the same NAT
        # switch off the safeguarding API for every chat tool. So the token is looked up first
        # (one indexed lookup of its SHA-256, none for a token without the prefix).
        name = await asyncio.to_thread(self.s.tokens.name_for, token)
        if name is None:
            if self.s.limiter.blocked(client):
                return _error(
                    429,
                    "too many requests with a wrong token from this address; "
                    "check the integration's token, then try again later",
                    **{"Retry-After": str(int(self.s.limiter.window))},
                )
            await self.s.limiter.failed(client, actor="(wrong API token)")
            return _unauthorised()
        if request.content_type != "application/json":
            return _error(415, "send the message as Content-Type: application/json")
        try:
            data = json.loads(await request.read())
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            return _error(400, f"the body is not JSON this API can read: {exc}")
        try:
            return name, chat_from_json(data)
        except ChatInvalid as exc:
            return _error(422, str(exc))

    async def check(self, request: web.Request) -> web.Response:
        parsed = await self._chat(request)
        if isinstance(parsed, web.Response):
            return parsed
        _name, chat = parsed
        loop = asyncio.get_running_loop()
        _message, verdict, explained, unknown = await loop.run_in_executor(
            self.s.executor, self.s.pipeline.check_chat, chat
        )
        self.s.metrics.inc(
            "safeguard_chat_messages_total", endpoint="check", verdict=verdict.action.value
        )
        payload = check_result(verdict, explained, sender_facing=True)
        payload["unknown_participants"] = unknown
        return web.json_response(payload)

    async def messages(self, request: web.Request) -> web.Response:
        parsed = await self._chat(request)
        if isinstance(parsed, web.Response):
            return parsed
        name, chat = parsed
        received_at = self.s.clock.now()
        try:
            check_sent_by(chat, received_at)
        except ChatInvalid as exc:
            # Every message of a tool whose clock runs fast is refused: the admin must hear.
            log.warning(
                "chat_sent_at_ahead",
                token=name,
                channel=chat.channel,
                sent_at=chat.sent_at.isoformat(),
            )
            return _error(422, str(exc))
        loop = asyncio.get_running_loop()
        prepared, verdict, explained, unknown = await loop.run_in_executor(
            self.s.executor,
            lambda: self.s.pipeline.prepare_chat(
                chat,
                queue_id=new_queue_id(),
                received_at=received_at,
                client_address=request.remote or "",
                auth_user=f"api:{name}",
            ),
        )
        try:
            stored = await self.s.writer.submit(prepared.record, prepared.items)
        except Exception as exc:
            log.error("api_archive_failed", channel=chat.channel, error=repr(exc))
            return _error(503, "the archive is unavailable; nothing was stored, try again")
        self.s.metrics.inc(
            "safeguard_chat_messages_total", endpoint="messages", verdict=verdict.action.value
        )
        log.info(
            "chat_message",
            token=name,
            channel=chat.channel,
            archive_id=stored.archive_id,
            verdict=verdict.action.value,
            duplicate=stored.duplicate,
        )
        payload = check_result(verdict, explained, sender_facing=True)
        payload["unknown_participants"] = unknown
        payload["archive_id"] = stored.archive_id
        payload["duplicate"] = stored.duplicate
        return web.json_response(payload, status=200 if stored.duplicate else 201)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when the database answers and the archive writer takes work."""
        problems = []
        if not self.s.writer.running:
            problems.append("the archive writer is not running")
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), 5)
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        if problems:
            return web.json_response({"status": "unavailable", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    def _ping(self) -> None:
        with self.s.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def metrics(self, request: web.Request) -> web.Response:
        try:
            waiting = await asyncio.wait_for(asyncio.to_thread(self.s.queue.waiting), 5)
        except Exception as exc:
            log.warning("metrics_queue_unavailable", error=repr(exc))
            waiting = {}
        gauges = [
            ("safeguard_up", "1 while this gateway process runs", (), 1.0),
            ("safeguard_smtp_sessions", "SMTP sessions in flight", (), float(self.s.sessions())),
        ]
        gauges += [
            (
                "safeguard_queue_entries",
                "queue entries waiting for delivery (queued) or being sent (sending)",
                (("status", status),),
                float(count),
            )
            for status, count in sorted(waiting.items())
        ]
        shared = self.s.shared
        others = await asyncio.to_thread(shared.others) if shared is not None else []
        return web.Response(
            text=self.s.metrics.render(gauges, others),
            content_type="text/plain",
            charset="utf-8",
        )


class ApiServer(HttpServer):
    """The API on a TCP port, on the running event loop (inside `safeguard serve`)."""

    def __init__(self, services: ApiServices, host: str, port: int, *, reuse_port: bool) -> None:
        super().__init__(make_app(services), host, port, reuse_port=reuse_port)
