"""A started gateway (pack: the baseline with out-of-hours mail held) with its console on a real
port, mail sent through its SMTP port, and a browser-like HTTP client that keeps cookies."""

from __future__ import annotations

import html
import http.cookiejar
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.clock import FixedClock
from gateway.service import Gateway
from gateway.smtp.auth import hash_password
from gateway.store.credentials import CredentialStore
from gateway.store.schema import archive
from gateway.web.app import WebServer, WebServices
from tests.support import RunningGateway, Sink, make_settings

PACK = Path(__file__).resolve().parents[1] / "data" / "packs" / "console.toml"
DSL = "dsl@safe.example"  # Dana Lee, dsl = yes in the demo directory
AUDITOR = "morgan.hughes@safe.example"  # named in [web] auditors
TEACHER = "alex.teacher@safe.example"  # staff, not a safeguarding lead
SAM = "sam.minor@home.example"  # 15; parent priya.shah@parents.example
PARENT = "priya.shah@parents.example"
PASSWORD = "correct horse battery staple"
MONDAY = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)  # in office hours
SATURDAY = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
CONSOLE_URL = "https://safeguarding.safe.example"  # as leads reach it: alerts link here


@dataclass
class Reply:
    status: int
    text: str
    url: str
    headers: dict[str, str]
    body: bytes

    def field(self, name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', self.text)
        assert found, f"no {name} field on {self.url}"
        return html.unescape(found.group(1))


class Browser:
    """Cookies kept, redirects followed, 4xx/5xx returned rather than raised."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.headers: dict[str, str] = {}  # sent with every request
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _open(self, request: urllib.request.Request) -> Reply:
        for name, value in self.headers.items():
            request.add_header(name, value)
        try:
            with self.opener.open(request, timeout=30) as response:
                body = response.read()
                return Reply(
                    response.status,
                    body.decode("utf-8", "replace"),
                    response.url,
                    dict(response.headers),
                    body,
                )
        except urllib.error.HTTPError as error:
            body = error.read()
            return Reply(
                error.code, body.decode("utf-8", "replace"), error.url, dict(error.headers), body
            )

    def get(self, path: str) -> Reply:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: dict[str, str | list[str]]) -> Reply:
        data = urllib.parse.urlencode(fields, doseq=True).encode()
        return self._open(urllib.request.Request(self.base + path, data=data, method="POST"))

    def sign_in(self, email: str, password: str = PASSWORD, next_path: str = "") -> Reply:
        form = self.get("/signin" + (f"?next={urllib.parse.quote(next_path)}" if next_path else ""))
        return self.post(
            "/signin",
            {
                "signin_token": form.field("signin_token"),
                "next": next_path,
                "email": email,
                "password": password,
            },
        )


@dataclass
class Console:
    running: RunningGateway
    clock: FixedClock
    base: str
    smtp_port: int
    web: WebServices  # what the running console was given (a test may change its settings)

    @property
    def gateway(self) -> Gateway:
        return self.running.gateway

    def browser(self) -> Browser:
        return Browser(self.base)

    def send(
        self,
        at: datetime,
        *,
        to: list[str],
        cc: list[str],
        subject: str,
        body: str,
        html: str | None = None,
    ) -> int:
        """Mail from the teacher through the relay at `at` (`html`: an HTML alternative beside
        the plain text); the new archive id."""
        self.clock.moment = at
        message = EmailMessage()
        message["From"] = TEACHER
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Subject"] = subject
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as client:
            client.send_message(message, from_addr=TEACHER, to_addrs=to + cc)
        with self.gateway.engine.connect() as conn:
            return int(
                conn.execute(select(archive.c.id).order_by(archive.c.id.desc()).limit(1)).scalar()
            )


@pytest.fixture
def console(tmp_path: Path, database_url: str, sink: Sink) -> Iterator[Console]:
    settings = make_settings(
        tmp_path,
        database_url,
        upstream=sink.url,
        policy={"pack": str(PACK)},
        # Alerts link to CONSOLE_URL (https), which would turn secure cookies on; the tests
        # reach the console over plain HTTP on loopback.
        web={"auditors": [AUDITOR], "url": CONSOLE_URL, "secure_cookies": False},
        notify={"digest_at": ""},
    )
    clock = FixedClock(MONDAY)
    with RunningGateway(Gateway(settings, clock=clock)) as running:
        g = running.gateway
        store = CredentialStore(g.engine)
        for email in (DSL, AUDITOR, TEACHER):
            store.set_hash(email, hash_password(PASSWORD), MONDAY)
        services = WebServices.of(
            settings, g.engine, clock, g.directory, g.policy.pack.organisation, g.templates
        )
        server = WebServer(services, "127.0.0.1", 0, reuse_port=False)
        port = running.call(server.start())
        try:
            yield Console(running, clock, f"http://127.0.0.1:{port}", running.port, services)
        finally:
            running.call(server.stop())
