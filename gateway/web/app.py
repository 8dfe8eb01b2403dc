"""The safeguarding leads' web console: sign in, search the archive, read a message with its
findings marked, review flagged messages, release or cancel held mail, and export a young
person's history. Pages are rendered on the server (templates/web/); every page needs a
session, every form its session's CSRF token, and every view of the archive is audited."""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta, tzinfo
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import structlog
from aiohttp import web
from sqlalchemy import Engine
from yarl import URL

from gateway.chat import sent_apart, text_of
from gateway.clock import Clock
from gateway.config import Settings, WebSettings
from gateway.directory.model import DirectoryView, normalise_email
from gateway.export import cover_page, matching_ids, outcome, person_history
from gateway.export import export as write_export
from gateway.httpserver import HttpServer
from gateway.message.parse import EMAIL_CHANNEL, parse_message
from gateway.notify.policy import held_cancelled_notice
from gateway.policy.types import Organisation
from gateway.search import QueryError, is_whole_address, parse
from gateway.search.labels import (
    FINDING_LABELS,
    SEARCH_VERDICT_LABELS,
    VERDICT_LABELS,
    chat_told,
)
from gateway.search.people import other_addresses
from gateway.smtp.auth import Authenticator, anyone
from gateway.store.audit import AUDIT_ACTIONS, AuditLog, AuditNote
from gateway.store.credentials import CredentialStore
from gateway.store.held import HeldMail
from gateway.store.messages import (
    ArchivedMessage,
    QueueHistory,
    archive_id_for,
    archived_message,
    listed_messages,
)
from gateway.store.reviews import OUTCOMES, NoSuchMessage, ReviewStore
from gateway.store.search import ArchiveSearch, NotASafeguardingLead
from gateway.store.sessions import ConsoleSession, SessionStore
from gateway.store.signin import SigninAttempts
from gateway.web.highlight import find_marks, highlighted
from gateway.web.pages import STATIC, pages_environment

log = structlog.get_logger("gateway.web")

COOKIE = "sg_session"
SIGNIN_COOKIE = "sg_signin"  # double-submit token of the sign-in form, before any session
# With secure cookies, both names carry this prefix: a browser then keeps them only if they are
# Secure, for the whole site and for this host alone, so a sibling host (another site under the
# school's domain) cannot plant a session or a sign-in token of its own.
HOST_PREFIX = "__Host-"
PER_PAGE = 25
MAX_FORM = 64 * 1024
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION = web.RequestKey("session", ConsoleSession)
# Set once a download has started: an error after that cannot become an error page (it would
# be written into the file); the connection is dropped instead.
STREAMING = web.RequestKey("streaming", bool)
TOKEN = web.RequestKey("token", str)


@dataclass
class WebServices:
    engine: Engine
    clock: Clock
    # The directory as the relay reads it (DirectorySource: re-read only when it changed), not
    # loaded whole on every click.
    directory: Callable[[], DirectoryView]
    organisation: Organisation
    hostname: str
    notices: jinja2.Environment  # the gateway's notice wording (a cancelled message's notice)
    settings: WebSettings
    secure_cookies: bool
    queue_lifetime: float  # seconds a queued notice may wait for delivery
    # The pack's urgent rules: held mail with a finding of one is not announced to its sender
    # unless the lead decides to (`HeldMail`).
    urgent_rules: frozenset[str] = frozenset()

    @property
    def zone(self) -> tzinfo:
        """The organisation's time zone (the site's setting, else its pack's)."""
        return self.organisation.timezone

    @classmethod
    def of(
        cls,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        directory: Callable[[], DirectoryView],
        organisation: Organisation,
        notices: jinja2.Environment,
        urgent_rules: frozenset[str] = frozenset(),
    ) -> WebServices:
        secure = settings.web.secure_cookies
        if secure is None:
            # Behind a TLS proxy on loopback (deploy/README.md), `[web] url` says https.
            host = settings.web_listen[0] if settings.web_listen else "127.0.0.1"
            behind_tls = (settings.web.url or "").startswith("https://")
            secure = behind_tls or host not in ("127.0.0.1", "::1", "localhost")
        return cls(
            engine=engine,
            clock=clock,
            directory=directory,
            organisation=organisation,
            hostname=settings.server.hostname,
            notices=notices,
            settings=settings.web,
            secure_cookies=secure,
            queue_lifetime=settings.delivery.lifetime,
            urgent_rules=urgent_rules,
        )


class _Refused(Exception):
    """A page the signed-in person may not use or see; shown as a page, with the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _done_at(request: web.Request, archive_id: int, done: str) -> str:
    """Back where the lead acted: the message's own page (its form says `from=message`), else
    Held mail."""
    form = await request.post()
    if form.get("from") == "message":
        return f"/messages/{archive_id}?done={done}"
    return f"/held?done={done}"


def _tell_sender(answers: list[str], *, urgent: bool) -> bool:
    """Whether a cancelled message's sender gets the "Not sent" notice. The forms send
    `tell_sender=no`, then `yes` when its box is ticked; a form without the field (a script)
    gets the default: told, unless a finding alerted the lead, when the notice could tip off
    the very person the alert is about: the lead decides whether, and when, they are told."""
    if not answers:
        return not urgent
    return "yes" in answers


def make_app(services: WebServices) -> web.Application:
    console = _Console(services)
    app = web.Application(client_max_size=MAX_FORM, middlewares=[console.guard])
    routes = [
        web.get("/", console.home),
        web.get("/signin", console.signin_form),
        web.post("/signin", console.signin),
        web.post("/signout", console.signout),
        web.get("/search", console.search),
        web.get("/messages/{id:\\d+}", console.message),
        web.get("/ref/{ref:[A-Za-z0-9]{1,32}}", console.reference),
        web.post("/messages/{id:\\d+}/review", console.review),
        web.get("/review", console.review_queue),
        web.get("/held", console.held),
        web.get("/audit", console.audit_log),
        web.post("/held/{entry:\\d+}/release", console.release),
        web.post("/held/{entry:\\d+}/cancel", console.cancel),
        web.get("/contacts/{email}", console.contact),
        web.post("/contacts/{email}/export", console.export),
        web.get("/static/console.css", console.stylesheet),
    ]
    app.add_routes(routes)
    return app


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NOT_HELD = "That message is no longer held: it was released, cancelled or sent already."
PUBLIC = frozenset({"/signin", "/static/console.css", "/favicon.ico"})


def client_of(request: web.Request) -> str:
    """Who is signing in, for the lockout and the audit log: the peer, or, from a proxy on
    loopback (deploy/README.md), the address it appended last to X-Forwarded-For - what a
    client sent in that header itself comes before it."""
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded.rsplit(",", 1)[-1].strip()[:64] or remote
    return remote


def _safe_next(target: str | None) -> str:
    """Only a path on this console: never another site (an open redirect). A tab or newline
    inside would be dropped on the way out ("/\t/evil.example" becomes "//evil.example"), so
    any control character or space refuses the target, and what is left is parsed as the
    browser will."""
    if not target or any(c.isspace() or not c.isprintable() for c in target):
        return "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    url = URL(target)
    if url.scheme or url.host or not url.path.startswith("/") or url.path.startswith("//"):
        return "/"
    return target


class _Console:
    def __init__(self, services: WebServices) -> None:
        self.s = services
        self.pages = pages_environment(services.zone)
        self.sessions = SessionStore(services.engine)
        self.audit = AuditLog(services.engine)
        self.reviews = ReviewStore(services.engine)
        self.held_mail = HeldMail(
            services.engine, lifetime=services.queue_lifetime, urgent_rules=services.urgent_rules
        )
        self.authenticator = Authenticator(CredentialStore(services.engine), allowed=anyone)
        self.searcher = ArchiveSearch(services.engine, services.zone)
        self.attempts = SigninAttempts(
            services.engine,
            limit=services.settings.max_failures,
            window=timedelta(minutes=services.settings.lockout_minutes),
        )

    # ----------------------------------------------------------------------- plumbing

    def _page(
        self, request: web.Request, name: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        session: ConsoleSession | None = request.get(SESSION)
        body = self.pages.get_template(name).render(
            session=session,
            csrf=session.csrf if session else "",
            organisation=self.s.organisation.name,
            path=request.path,
            **context,
        )
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _audit(self, request: web.Request, action: str, **fields: Any) -> Awaitable[Any]:
        return self._run(self.audit.add, self._audit_note(request, action, **fields))

    def _audit_note(self, request: web.Request, action: str, **fields: Any) -> AuditNote:
        """The row recording `action` by the signed-in person, for an action's own transaction."""
        session: ConsoleSession = request[SESSION]
        detail = {"via": "web", "role": session.role, **fields.pop("detail", {})}
        return AuditNote(
            actor=session.email, action=action, at=self.s.clock.now(), detail=detail, **fields
        )

    def _name(self, cookie: str) -> str:
        return HOST_PREFIX + cookie if self.s.secure_cookies else cookie

    def _forget(self, response: web.StreamResponse, name: str) -> None:
        # A browser ignores a __Host- cookie's deletion unless it is Secure too.
        secure = self.s.secure_cookies
        response.del_cookie(
            self._name(name), path="/", secure=secure, httponly=True, samesite="Strict"
        )

    def _cookie(self, response: web.StreamResponse, name: str, value: str, **extra: Any) -> None:
        response.set_cookie(
            self._name(name),
            value,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.s.secure_cookies,
            **extra,
        )

    async def _current(self, request: web.Request) -> tuple[str, ConsoleSession] | None:
        token = request.cookies.get(self._name(COOKIE))
        if not token:
            return None
        session = await self._run(self.sessions.find, token, self.s.clock.now())
        if session is None:
            return None
        # The directory may have changed since sign-in: a lead no longer a lead is signed out.
        if await self._run(self._role_of, session.email) != session.role:
            await self._run(self.sessions.end, token, self.s.clock.now())
            return None
        return token, session

    def _role_of(self, email: str) -> str | None:
        member = self.s.directory().staff_member(email)
        if member is not None and member.dsl:
            return "dsl"
        return "auditor" if email.lower() in self.s.settings.auditors else None

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path not in PUBLIC:
                current = await self._current(request)
                if current is None:
                    if request.method == "GET":
                        target = request.path_qs if request.path != "/" else ""
                        query = "?" + urlencode({"next": target}) if target else ""
                        raise web.HTTPSeeOther(f"/signin{query}")
                    raise _Refused(403, "Your session has ended. Sign in again, then retry.")
                request[TOKEN], request[SESSION] = current
                if request.method == "POST":
                    form = await request.post()
                    sent = str(form.get("csrf", ""))
                    if not hmac.compare_digest(sent.encode(), current[1].csrf.encode()):
                        raise _Refused(
                            403,
                            "This form has expired or did not come from this console. "
                            "Go back, reload the page and try again.",
                        )
            response = await handler(request)
        except web.HTTPRedirection:
            raise
        except _Refused as exc:
            response = self._page(
                request, "error.html", status=exc.status, title="Not allowed", message=exc.message
            )
        except web.HTTPRequestEntityTooLarge:
            response = self._page(
                request,
                "error.html",
                status=413,
                title="Too long",
                message="What you sent is too long for this form.",
            )
        except web.HTTPException as exc:
            title = "Not found" if exc.status == 404 else exc.reason
            message = "There is no such page or message." if exc.status == 404 else exc.text or ""
            response = self._page(
                request, "error.html", status=exc.status, title=title, message=message
            )
        except Exception as exc:  # logged for the IT admin; the reader gets a plain page
            if request.get(STREAMING):
                raise
            log.error("web_failed", path=request.path, error=repr(exc))
            response = self._page(
                request,
                "error.html",
                status=500,
                title="Something went wrong",
                message="Nothing was changed. Try again; if it happens again, tell your IT "
                "admin the time it happened.",
            )
        if not response.prepared:  # a download sent itself, with these already
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    async def _require_dsl(self, request: web.Request, doing: str) -> ConsoleSession:
        """Lead-only actions; an auditor's attempt at one is refused and audited."""
        session: ConsoleSession = request[SESSION]
        if session.role != "dsl":
            await self._audit(request, "refused", query=doing, detail={"path": request.path})
            raise _Refused(
                403,
                f"Only a safeguarding lead may {doing}. You are signed in as an auditor, "
                "who may search and read.",
            )
        return session

    # ----------------------------------------------------------------------- sign-in

    async def signin_form(self, request: web.Request) -> web.Response:
        return self._signin_page(request, next_path=request.query.get("next", ""))

    def _signin_page(
        self,
        request: web.Request,
        *,
        next_path: str,
        error: str = "",
        email: str = "",
        status: int = 200,
    ) -> web.Response:
        # The same token while the browser has one: a second sign-in page opened meanwhile
        # (another tab, a redirect for /favicon.ico) must not make the first one's form stale.
        token = request.cookies.get(self._name(SIGNIN_COOKIE), "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
            token = secrets.token_urlsafe(24)
        response = self._page(
            request,
            "signin.html",
            status=status,
            signin_token=token,
            next_path=_safe_next(next_path) if next_path else "",
            error=error,
            email=email,
            # A browser drops a Secure cookie sent over plain HTTP: sign-in would never stick.
            plain_http=self.s.secure_cookies
            and request.scheme != "https"
            and request.headers.get("X-Forwarded-Proto", "").lower() != "https",
        )
        self._cookie(response, SIGNIN_COOKIE, token, max_age=3600)
        return response

    async def signin(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        email = normalise_email(str(form.get("email", "")).strip())[:320]
        password = str(form.get("password", ""))
        next_path = str(form.get("next", ""))
        sent = str(form.get("signin_token", ""))
        expected = request.cookies.get(self._name(SIGNIN_COOKIE), "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return self._signin_page(
                request,
                next_path=next_path,
                email=email,
                status=403,
                error="The sign-in form had expired. Please try again.",
            )
        now = self.s.clock.now()
        if not email or not password:
            return self._signin_page(
                request,
                next_path=next_path,
                email=email,
                status=400,
                error="Enter your work e-mail address and your password.",
            )
        client = client_of(request)
        if not await self._run(self.attempts.begin, email, now, client):
            minutes = int(self.s.settings.lockout_minutes)
            return self._signin_page(
                request,
                next_path=next_path,
                email=email,
                status=429,
                error=f"Too many failed attempts for this address. Wait {minutes} minutes, "
                "or ask your IT admin to set a new password (safeguard staff set-password).",
            )
        refused = None
        if not await self.authenticator.verify(email, password):
            refused = ("signin_failed", 401, "That address and password do not match.")
        elif (role := await self._run(self._role_of, email)) is None:
            refused = (
                "signin_refused",
                403,
                "This console is for safeguarding leads. Your address is not a safeguarding "
                "lead (dsl = yes) in the directory, nor a named auditor.",
            )
        if refused is not None:
            action, status, error = refused
            await self._run(
                self.audit.record,
                actor=email,
                action=action,
                at=now,
                query=email,
                detail={"via": "web", "client": client},
            )
            return self._signin_page(
                request, next_path=next_path, email=email, status=status, error=error
            )
        assert role is not None
        if previous := request.cookies.get(self._name(COOKIE)):
            # Signing in again (as someone else, or after sharing a screen) ends the session
            # this browser had: its old cookie, if copied, no longer opens anything.
            await self._run(self.sessions.end, previous, now)
        token, _session = await self._run(
            self.sessions.open, email, role, now, timedelta(hours=self.s.settings.session_hours)
        )
        await self._run(
            self.audit.record,
            actor=email,
            action="signin",
            at=now,
            query=email,
            detail={"via": "web", "role": role, "client": client},
        )
        log.info("console_signin", email=email, role=role)
        response = web.HTTPSeeOther(_safe_next(next_path))
        self._cookie(response, COOKIE, token, max_age=int(self.s.settings.session_hours * 3600))
        self._forget(response, SIGNIN_COOKIE)
        raise response

    async def signout(self, request: web.Request) -> web.StreamResponse:
        await self._run(self.sessions.end, request[TOKEN], self.s.clock.now())
        await self._audit(request, "signout")
        response = web.HTTPSeeOther("/signin")
        self._forget(response, COOKIE)
        raise response

    # ----------------------------------------------------------------------- pages

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/review")

    async def stylesheet(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "console.css")
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    def _search_text(self, query: Any, view: DirectoryView | None) -> tuple[str, list[str]]:
        """The query language text for the search form's box and filters, and what is wrong."""
        problems: list[str] = []
        parts = [query.get("q", "").strip()]
        for name in ("after", "before"):
            value = query.get(name, "").strip()
            if value:
                try:
                    if not _DATE.fullmatch(value):
                        raise ValueError(value)
                    date.fromisoformat(value)
                    parts.append(f"{name}:{value}")
                except ValueError:
                    problems.append(f"“{value}” is not a date (YYYY-MM-DD).")
        flag = query.get("flag", "")
        if flag:
            if flag in FINDING_LABELS:
                parts.append(f"flag:{flag}")
            else:
                problems.append("Choose a flag from the list.")
        verdict = query.get("verdict", "")
        if verdict:
            if verdict in VERDICT_LABELS:
                parts.append(f"verdict:{verdict}")
            else:
                problems.append("Choose a verdict from the list.")
        for name, field, what in (
            ("staff", "from", "staff member"),
            ("child", "contact", "person"),
        ):
            value = query.get(name, "").strip()
            if not value:
                continue
            if not is_whole_address(value):
                problems.append(f"The {what} must be an e-mail address.")
            elif field == "contact":
                # Every address the directory has for them, as their page and export cover
                # (a pupil may write from home and from school).
                assert view is not None  # read off the loop when `child` is given
                history = person_history(view, value.lower())
                several = len(history.addresses) > 1
                parts.append(f"({history.query})" if several else history.query)
            else:
                parts.append(f"{field}:{value}")
        return " ".join(p for p in parts if p), problems

    def _page_number(self, request: web.Request) -> int:
        value = request.query.get("page", "1")
        return max(1, min(int(value), 10_000)) if value.isascii() and value.isdigit() else 1

    async def search(self, request: web.Request) -> web.Response:
        session: ConsoleSession = request[SESSION]
        view = await self._run(self.s.directory) if request.query.get("child") else None
        text, problems = self._search_text(request.query, view)
        result = None
        page = self._page_number(request)
        if text and not problems:
            try:
                result = await self._run(
                    self.searcher.search,
                    text,
                    actor=session.email,
                    as_dsl=session.role == "dsl",
                    at=self.s.clock.now(),
                    limit=PER_PAGE,
                    page=page,
                    detail={"via": "web", "role": session.role},
                )
            except QueryError as exc:
                problems.append(f"The search could not be read: {exc}")
            except NotASafeguardingLead:
                raise _Refused(403, "Only a safeguarding lead may search.") from None
        others = []
        if result is not None:
            directory = view or await self._run(self.s.directory)
            others = other_addresses(parse(text), lambda: directory)
        params = {k: v for k, v in request.query.items() if k != "page" and v}
        ids = [h.id for h in result.hits] if result else []
        reviewed = await self._run(self.reviews.latest, ids) if ids else {}
        return self._page(
            request,
            "search.html",
            reviewed=reviewed,
            facts=await self._run(listed_messages, self.s.engine, ids),
            form=dict(request.query),
            text=text,
            problems=problems,
            result=result,
            others=others,
            flags=FINDING_LABELS,
            verdicts=SEARCH_VERDICT_LABELS,
            page_link=lambda n: "/search?" + urlencode({**params, "page": n}),
        )

    async def reference(self, request: web.Request) -> web.StreamResponse:
        """An archive reference as alerts and notices quote it: the link in a lead's alert."""
        found = await self._run(archive_id_for, self.s.engine, request.match_info["ref"])
        if found is None:
            raise web.HTTPNotFound()
        raise web.HTTPSeeOther(f"/messages/{found}")

    async def message(self, request: web.Request) -> web.Response:
        return await self._message_page(request, int(request.match_info["id"]))

    async def _message_page(
        self,
        request: web.Request,
        archive_id: int,
        *,
        status: int = 200,
        review_error: str = "",
        chosen: str = "",
        note: str = "",
    ) -> web.Response:
        """A message's page; after a review that could not be saved, with why (`status` 400)
        beside the form and the lead's choice kept."""
        found: ArchivedMessage | None = await self._run(archived_message, self.s.engine, archive_id)
        if found is None:
            raise web.HTTPNotFound()
        await self._audit(
            request,
            "view",
            query=f"message {archive_id}",
            result_count=1,
            detail={"archive_id": archive_id, "queue_id": found.queue_id},
        )
        reviews = await self._run(self.reviews.of, archive_id)
        held = await self._run(self.held_mail.of_message, archive_id, self.s.clock.now())
        # Parsing and marking a 10 MB message takes seconds: not on the loop the relay shares.
        body, told = await self._run(self._reading, found)
        # What became of it, in the words a child's export uses.
        now = outcome(
            found.verdict,
            [entry for entry in found.history if entry.kind == "deliver"],
            self.s.zone,
            channel=found.channel,
            envelope_to=found.envelope_to,
        )
        return self._page(
            request,
            "message.html",
            m=found,
            now=now,
            sent=sent_apart(found.channel, found.raw, found.received_at),
            # A chat tool sends its own messages: what the gateway's answer meant for this one.
            chat_told=chat_told(found.verdict) if found.channel != EMAIL_CHANNEL else "",
            body=body,
            told=told,
            reviews=reviews,
            held=held,
            outcomes=OUTCOMES,
            can_review=request[SESSION].role == "dsl" and bool(found.findings),
            saved=request.query.get("saved") == "1",
            done=request.query.get("done", ""),
            status=status,
            review_error=review_error,
            chosen=chosen,
            note=note,
        )

    def _reading(
        self, found: ArchivedMessage
    ) -> tuple[dict[str, Any] | None, list[tuple[QueueHistory, str]]]:
        """The message's text with its findings marked, and each notice its sender was sent."""
        told = [
            (entry, _notice_text(entry.content))
            for entry in found.history
            if entry.kind in ("bounce", "notice") and entry.content
        ]
        if found.raw is None:
            return None, told
        parsed = parse_message(
            found.raw,
            envelope_from=found.envelope_from,
            envelope_to=found.envelope_to,
            sent_at=found.received_at,
        )
        evidence = [(str(f.get("code", "")), _quoted(f)) for f in found.findings]
        evidence = [(code, text) for code, text in evidence if text]

        def mark(text: str) -> Any:
            return highlighted(text, find_marks(text, evidence))

        new_text, signature, quoted = parsed.new_text, parsed.signature, parsed.quoted_text
        if found.channel != EMAIL_CHANNEL:
            # Chat text is all new text, as it was judged: a "> " line is a blockquote the
            # young person saw, not an earlier message quoted.
            new_text, signature, quoted = text_of(found.raw), "", ""
        body = {
            "new_text": mark(new_text),
            "signature": mark(signature),
            "quoted_text": mark(quoted),
            # What only the HTML beside the plain part says (what most clients show).
            "alternative_text": mark(parsed.alternative_text),
            "attachments": parsed.attachments,
        }
        return body, told

    async def review(self, request: web.Request) -> web.StreamResponse:
        session = await self._require_dsl(request, "review messages")
        archive_id = int(request.match_info["id"])
        form = await request.post()
        outcome = str(form.get("outcome", ""))
        note = str(form.get("note", "")).strip()
        problem = ""
        if outcome not in OUTCOMES:
            problem = "Choose “No concern” or “Concern — escalated”, then save."
        elif outcome == "escalated" and not note:
            problem = "Say in the note what was escalated, and to whom, then save again."
        if problem:
            return await self._message_page(
                request, archive_id, status=400, review_error=problem, chosen=outcome, note=note
            )
        audit = self._audit_note(
            request,
            "review",
            query=f"message {archive_id}",
            detail={"archive_id": archive_id, "outcome": outcome},
        )
        try:
            await self._run(
                self.reviews.add,
                archive_id,
                reviewer=session.email,
                outcome=outcome,
                note=note[:10_000],
                at=audit.at,
                audit=audit,
            )
        except NoSuchMessage:
            raise web.HTTPNotFound() from None
        raise web.HTTPSeeOther(f"/messages/{archive_id}?saved=1#reviews")

    async def review_queue(self, request: web.Request) -> web.Response:
        page = self._page_number(request)
        waiting, total = await self._run(
            self.reviews.awaiting,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
            urgent_rules=self.s.urgent_rules,
        )
        await self._audit(
            request,
            "view",
            query="review queue",
            result_count=total,
            detail={"page": page, "shown": [w.archive_id for w in waiting]},
        )
        return self._page(
            request,
            "review.html",
            waiting=waiting,
            facts=await self._run(listed_messages, self.s.engine, [w.archive_id for w in waiting]),
            total=total,
            page=page,
            pages=max(1, -(-total // PER_PAGE)),
        )

    async def held(self, request: web.Request) -> web.Response:
        waiting = await self._run(self.held_mail.waiting, self.s.clock.now())
        await self._audit(
            request,
            "view",
            query="held mail",
            result_count=len(waiting),
            detail={"shown": [h.archive_id for h in waiting]},
        )
        return self._page(request, "held.html", waiting=waiting, done=request.query.get("done", ""))

    async def audit_log(self, request: web.Request) -> web.Response:
        """Who signed in, searched, read, reviewed, released and exported what: for an auditor
        above all. Opening it is recorded too."""
        page = self._page_number(request)
        actor = request.query.get("actor", "").strip().lower() or None
        action = request.query.get("action", "").strip() or None
        # One more than a page: whether there is a next one, without counting the whole log.
        entries = await self._run(
            self.audit.entries,
            actor=actor,
            action=action,
            limit=PER_PAGE * 2 + 1,
            offset=(page - 1) * PER_PAGE * 2,
        )
        more = len(entries) > PER_PAGE * 2
        entries = entries[: PER_PAGE * 2]
        await self._audit(
            request,
            "view",
            query="audit log",
            result_count=len(entries),
            detail={"page": page, "actor": actor, "action": action},
        )
        params = {k: v for k, v in (("actor", actor), ("action", action)) if v}
        return self._page(
            request,
            "audit.html",
            entries=entries,
            page=page,
            more=more,
            actor=actor or "",
            action=action or "",
            actions=AUDIT_ACTIONS,
            page_link=lambda n: "/audit?" + urlencode({**params, "page": n}),
        )

    async def release(self, request: web.Request) -> web.StreamResponse:
        await self._require_dsl(request, "release held mail")
        entry_id = int(request.match_info["entry"])
        now = self.s.clock.now()
        held = await self._run(self.held_mail.get, entry_id, now)
        if held is None:
            raise _Refused(409, NOT_HELD)
        audit = self._audit_note(
            request,
            "release",
            query=f"message {held.archive_id}",
            detail={"archive_id": held.archive_id, "entry": entry_id, "queue_id": held.queue_id},
        )
        if not await self._run(self.held_mail.release, entry_id, now, audit=audit):
            raise _Refused(409, NOT_HELD)
        raise web.HTTPSeeOther(await _done_at(request, held.archive_id, "released"))

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        session = await self._require_dsl(request, "cancel held mail")
        entry_id = int(request.match_info["entry"])
        form = await request.post()
        note = str(form.get("note", "")).strip()[:2000]
        now = self.s.clock.now()
        held = await self._run(self.held_mail.get, entry_id, now)
        if held is None:
            raise _Refused(409, NOT_HELD)
        answers = [str(a) for a in form.getall("tell_sender", [])]
        if any(a not in ("yes", "no") for a in answers):
            raise _Refused(400, "Say yes or no to telling the sender (tell_sender), then cancel.")
        tell = _tell_sender(answers, urgent=held.urgent)
        notice = None
        if held.envelope_from and tell:
            notice = held_cancelled_notice(
                self.s.notices,
                hostname=self.s.hostname,
                org=self.s.organisation,
                sender=held.envelope_from,
                recipients=held.recipients,
                subject=held.subject,
                sent=held.received_at,
                cancelled=now,
                cancelled_by=session.email,
                note=note,
                queue_id=held.queue_id,
            )
        audit = self._audit_note(
            request,
            "cancel",
            query=f"message {held.archive_id}",
            # Not the note's words: they may name the child, and the audit log is kept longer
            # than the message (they stay in its delivery history, and the notice if sent).
            detail={
                "archive_id": held.archive_id,
                "entry": entry_id,
                "queue_id": held.queue_id,
                "with_note": bool(note and notice),
                "told_sender": notice is not None,
            },
        )
        done = await self._run(
            self.held_mail.cancel,
            entry_id,
            now,
            reason=f"cancelled by {session.email}" + (f": {note}" if note else ""),
            notice=notice,
            notify=(held.envelope_from,) if notice is not None else (),
            audit=audit,
        )
        if not done:
            raise _Refused(409, NOT_HELD)
        outcome = "cancelled" if notice is not None else "cancelled-untold"
        raise web.HTTPSeeOther(await _done_at(request, held.archive_id, outcome))

    async def contact(self, request: web.Request) -> web.Response:
        session: ConsoleSession = request[SESSION]
        email = request.match_info["email"].strip().lower()
        if not is_whole_address(email):
            raise web.HTTPNotFound()
        view = await self._run(self.s.directory)
        page = self._page_number(request)
        result = await self._run(
            self.searcher.search,
            person_history(view, email).query,
            actor=session.email,
            as_dsl=session.role == "dsl",
            at=self.s.clock.now(),
            limit=PER_PAGE,
            page=page,
            detail={"via": "web", "role": session.role, "page_of": email},
        )
        today = self.s.clock.now().astimezone(self.s.zone).date()
        person = view.contact(email)
        ids = [h.id for h in result.hits]
        reviewed = await self._run(self.reviews.latest, ids)
        return self._page(
            request,
            "contact.html",
            reviewed=reviewed,
            facts=await self._run(listed_messages, self.s.engine, ids),
            email=email,
            person=person,
            age=person.age_on(today) if person and person.date_of_birth else None,
            staff=view.staff_member(email),
            children=view.children_of_guardian(email) + view.children_of_school(email),
            result=result,
            page_link=lambda n: f"/contacts/{quote(email)}?page={n}",
            can_export=session.role == "dsl",
        )

    async def export(self, request: web.Request) -> web.StreamResponse:
        session = await self._require_dsl(request, "export a person's history")
        email = request.match_info["email"].strip().lower()
        if not is_whole_address(email):
            raise web.HTTPNotFound()
        now = self.s.clock.now()
        form = await request.post()
        # The form's box: unticked (absent) leaves the reviews out, as a family's request may.
        with_reviews = form.get("reviews") == "yes"
        history = person_history(await self._run(self.s.directory), email)
        query = history.query

        def build(out: Path) -> tuple[int, str]:
            ids = matching_ids(self.s.engine, parse(query), self.s.zone)
            cover = cover_page(
                self.s.notices,
                contact=", ".join(history.addresses),
                name=history.name,
                organisation=self.s.organisation.name,
                exported_by=session.email,
                at=now,
                query=query,
                zone=self.s.zone,
                with_reviews=with_reviews,
            )
            done = write_export(
                self.s.engine,
                ids,
                fmt="eml-zip",
                out=out,
                cover=cover,
                zone=self.s.zone,
                with_reviews=with_reviews,
                urgent_rules=self.s.urgent_rules,
            )
            return done.count, done.sha256

        # Written to a file and sent from it in pieces: a long history must not be held in
        # the memory of a process that is also the relay.
        with tempfile.TemporaryDirectory(prefix="safeguard-export-") as folder:
            out = Path(folder) / "history.zip"
            count, digest = await self._run(build, out)
            await self._audit(
                request,
                "export",
                query=query,
                result_count=count,
                detail={
                    "format": "eml-zip",
                    "sha256": digest,
                    "file": "(download)",
                    "reviews": with_reviews,
                },
            )
            stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M")
            # Notes meant for a referral must not be mistaken for the family's copy.
            marked = "-with-reviews" if with_reviews else ""
            safe = re.sub(r"[^A-Za-z0-9._@-]", "_", email)
            response = web.StreamResponse(
                headers={
                    **SECURITY_HEADERS,
                    "Content-Type": "application/zip",
                    "Content-Disposition": (
                        f'attachment; filename="history-{safe}-{stamp}{marked}.zip"'
                    ),
                    "X-Content-SHA256": digest,
                }
            )
            response.content_length = out.stat().st_size
            request[STREAMING] = True
            try:
                await response.prepare(request)
                with out.open("rb") as handle:
                    while chunk := await self._run(handle.read, 1 << 20):
                        await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:  # the browser went away; the audit row stands
                log.info("export_download_abandoned", by=session.email)
            return response


def _quoted(finding: dict[str, Any]) -> str:
    """The passage a finding quotes: the matched phrase where the check names it (risk
    language: its evidence is the phrase with some context), else the evidence."""
    params = finding.get("params") or {}
    phrase = params.get("phrase") if isinstance(params, dict) else None
    return str(phrase or finding.get("evidence") or "")


def _notice_text(content: bytes | None) -> str:
    """The words of a notice the gateway sent (its first text/plain part)."""
    if not content:
        return ""
    try:
        message = BytesParser(policy=email_policy.default).parsebytes(content)
        part = message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[attr-defined]
    except Exception:  # a notice we made ourselves; if it cannot be read, say nothing of it
        return ""


class WebServer(HttpServer):
    """The console on a TCP port, on the running event loop (`safeguard web`, or in `serve`)."""

    def __init__(self, services: WebServices, host: str, port: int, *, reuse_port: bool) -> None:
        super().__init__(make_app(services), host, port, reuse_port=reuse_port)
