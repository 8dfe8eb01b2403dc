"""The HTTP API for chat tools (interface.md, "HTTP API"): a chat message is judged as mail to
the same people would be, `/messages` archives it once, and every refusal names what to fix.
Everything here goes over a real socket to the API running on a started gateway's loop."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from gateway.api.app import ApiServer, ApiServices
from gateway.export import export, matching_ids
from gateway.search.query import parse
from gateway.service import Gateway
from gateway.store.audit import AuditLog
from gateway.store.integrity import verify
from gateway.store.schema import archive, queue
from gateway.store.search import ArchiveSearch
from gateway.store.tokens import TokenStore
from tests.support import RunningGateway, Sink, make_settings

SAM = "sam.minor@home.example"  # 15 in the demo directory; parent priya.shah@parents.example
PARENT = "priya.shah@parents.example"
TEACHER = "alex.teacher@safe.example"


class Api:
    def __init__(self, running: RunningGateway, port: int, token: str) -> None:
        self.running = running
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    @property
    def gateway(self) -> Gateway:
        return self.running.gateway

    def call(
        self,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if token is None:
            token = self.token
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers
        if kind.get_content_type() == "application/json":
            return status, json.loads(payload)
        return status, payload.decode()

    def archived(self) -> list[Any]:
        with self.gateway.engine.connect() as conn:
            return conn.execute(archive.select().order_by(archive.c.id)).all()


def chat(**changes: Any) -> dict[str, Any]:
    message = {
        "channel": "whatsapp",
        "conversation": "c-42",
        "message_id": "m-1001",
        "sender": TEACHER,
        "participants": [SAM, PARENT],
        "text": "Hi Sam, the session moves to room 4 on Thursday.",
        "sent_at": "2026-11-23T10:15:00+00:00",  # a Monday, in office hours
    }
    return message | changes


@pytest.fixture
def api(tmp_path: Path, database_url: str, sink: Sink) -> Iterator[Api]:
    yield from _running_api(tmp_path, database_url, sink, mode="enforce")


@pytest.fixture
def monitoring_api(tmp_path: Path, database_url: str, sink: Sink) -> Iterator[Api]:
    """`[policy] mode = "monitor"`: records what would have happened, blocks nothing."""
    yield from _running_api(tmp_path, database_url, sink, mode="monitor")


def _running_api(tmp_path: Path, database_url: str, sink: Sink, *, mode: str) -> Iterator[Api]:
    policy = {"pack": "default", "mode": mode}
    settings = make_settings(tmp_path, database_url, upstream=sink.url, policy=policy)
    with RunningGateway(Gateway(settings)) as running:
        g = running.gateway
        server = ApiServer(
            ApiServices.of(g),
            "127.0.0.1",
            0,
            reuse_port=False,
        )
        port = running.call(server.start())
        token = TokenStore(g.engine).create("chat-bridge", datetime.now(UTC))
        try:
            yield Api(running, port, token)
        finally:
            running.call(server.stop())


def test_check_answers_what_safeguard_check_prints_and_stores_nothing(api: Api):
    """ "Email to a child or young person under 18 is copied to their parent or guardian": a
    DM to Sam alone is refused, with the correction naming Sam's parent."""
    status, result = api.call("/api/v1/check", chat(participants=[SAM], text="See you x"))
    assert status == 200
    assert result["verdict"] == "reject"
    assert result["deliver_at"] is None
    assert result["mode"] == "enforce"
    codes = {f["code"]: f for f in result["findings"]}
    assert set(codes) == {"missing_required_cc", "informal_sign_off"}
    missing = codes["missing_required_cc"]
    assert missing["recipient"] == SAM
    assert PARENT in missing["correction"]
    assert missing["policy"].startswith("Gateway baseline")
    assert api.archived() == []


def test_a_compliant_message_is_delivered_with_no_findings(api: Api):
    status, result = api.call("/api/v1/check", chat())
    assert (status, result) == (
        200,
        {
            "verdict": "deliver",
            "deliver_at": None,
            "findings": [],
            "mode": "enforce",
            "unknown_participants": [],
        },
    )


def test_messages_archives_once_per_channel_and_message_id(api: Api):
    """`/messages` "also archives the message (once per channel + message_id) and adds its
    archive_id"; the archive's hash chain still verifies."""
    status, first = api.call("/api/v1/messages", chat())
    assert status == 201
    assert first["verdict"] == "deliver" and first["duplicate"] is False
    status, again = api.call("/api/v1/messages", chat())
    assert status == 200
    assert again["archive_id"] == first["archive_id"] and again["duplicate"] is True
    # The same id on another channel is another message.
    status, other = api.call("/api/v1/messages", chat(channel="teams"))
    assert status == 201 and other["archive_id"] != first["archive_id"]

    rows = api.archived()
    assert len(rows) == 2
    row = rows[0]
    assert row.channel == "whatsapp"
    assert row.from_addr == TEACHER
    assert sorted(row.to_addrs) == sorted([SAM, PARENT])
    assert row.subject == "whatsapp message in conversation c-42"
    assert "room 4" in row.body_text
    assert row.auth_user == "api:chat-bridge"
    assert verify(api.gateway.engine).ok
    # Nothing is delivered: the chat tool sends the message itself.
    with api.gateway.engine.connect() as conn:
        assert conn.execute(queue.select()).all() == []


def test_a_message_dated_after_the_gateways_clock_is_refused_for_the_archive(api: Api):
    """A DM is "judged as of its sent_at (office hours, ages)": one dated hours ahead would be
    judged at a time that has not come, so `/messages` refuses it and names the field; a
    chat tool's clock a minute or two fast is not refused."""
    now = datetime.now(UTC)
    late = (now + timedelta(hours=3)).isoformat()
    with capture_logs() as logs:
        status, result = api.call("/api/v1/messages", chat(sent_at=late))
    # Every message of a tool whose clock runs fast is refused: the log says so, for the admin.
    assert [e["token"] for e in logs if e["event"] == "chat_sent_at_ahead"] == ["chat-bridge"]
    assert status == 422
    assert result["error"].startswith(f"sent_at: {late} is 3 hours after the gateway's clock")
    assert "check the chat tool's clock" in result["error"]
    assert api.archived() == []
    fast = (now + timedelta(minutes=2)).isoformat()
    assert api.call("/api/v1/messages", chat(sent_at=fast, message_id="m-fast"))[0] == 201
    # Asking ahead of sending may name a time to come.
    assert api.call("/api/v1/check", chat(sent_at=late))[0] == 200


def test_a_message_sent_during_an_outage_is_archived_with_both_times(api: Api, tmp_path: Path):
    """A tool sends what it held while the gateway was away: the message is judged as of its
    sent_at, and the archive records when the gateway received it too."""
    sent = datetime.now(UTC) - timedelta(days=2)
    assert api.call("/api/v1/messages", chat(sent_at=sent.isoformat()))[0] == 201
    (row,) = api.archived()
    assert datetime.now(UTC) - row.received_at.replace(tzinfo=UTC) < timedelta(minutes=5)
    raw = zlib.decompress(row.raw_gz)
    assert f"Date: {format_datetime(sent.replace(microsecond=0))}".encode() in raw
    # A review: an export gave only when it was received; its outcome says when it was sent.
    out = tmp_path / "sam.mbox"
    engine = api.gateway.engine
    export(engine, matching_ids(engine, parse(f"contact:{SAM}")), fmt="mbox", out=out)
    [manifest] = json.loads(out.with_name("sam.mbox.manifest.json").read_text())
    when = f"{sent.astimezone(UTC):%d %b %Y %H:%M}"
    assert manifest["outcome"].endswith(f"most likely been sent. It was sent {when}.")


def test_a_refused_chat_message_is_archived_with_its_findings(api: Api):
    status, result = api.call(
        "/api/v1/messages", chat(participants=[SAM], message_id="m-2", text="Hi Sam")
    )
    assert status == 201 and result["verdict"] == "reject"
    (row,) = api.archived()
    assert row.verdict == "reject"
    assert [f["code"] for f in row.findings] == ["missing_required_cc"]


def test_risk_language_in_a_dm_alerts_the_safeguarding_lead(api: Api):
    """ "Language that asks a young person for secrecy ... is reported to the safeguarding lead
    at once": the API archives the DM and queues the lead's alert."""
    text = "Don't tell your mum about this, it's our little secret."
    status, result = api.call("/api/v1/messages", chat(message_id="m-3", text=text))
    assert status == 201
    with api.gateway.engine.connect() as conn:
        entries = conn.execute(queue.select()).all()
        [findings] = conn.execute(select(archive.c.findings)).scalars().all()
    assert [(e.kind, list(e.recipients)) for e in entries] == [("alert", ["dsl@safe.example"])]
    assert "risk_language" in {f["code"] for f in findings}  # the archive keeps it
    # The chat tool shows its answer to the person writing: no tipping off.
    assert "risk_language" not in {f["code"] for f in result["findings"]}
    assert "little secret" not in json.dumps(result)


def test_the_check_endpoint_is_no_oracle_for_the_watch_list(api: Api):
    """`/api/v1/check` stores nothing and alerts nobody: it must not tell anyone which words
    the lead watches for (the sender is not told of an urgent finding)."""
    text = "Don't tell your mum about this, it's our little secret."
    status, result = api.call("/api/v1/check", chat(message_id="m-4", text=text))
    plain = api.call("/api/v1/check", chat(message_id="m-5", text="See you at 4 in room 2."))[1]
    assert status == 200
    assert result["verdict"] == plain["verdict"]
    assert "little secret" not in json.dumps(result)


@pytest.mark.parametrize("token", ["", "sgw_not-a-real-token", "some other secret"])
def test_a_request_without_a_valid_token_is_refused(api: Api, token: str):
    status, result = api.call("/api/v1/messages", chat(), token=token or "")
    assert status == 401
    assert "safeguard api token create" in result["error"]
    assert api.archived() == []


def test_repeated_wrong_tokens_turn_the_address_away_but_not_a_valid_token(api: Api):
    """As wrong SMTP passwords are limited ([auth] max_failures, 5 in 10 minutes): the sixth
    wrong token from the address is refused with 429. The reviewer: "five bad requests from one
    client address ... make the API answer 429 for ten minutes even to a valid token, so anyone
    on the network can switch off the safeguarding API for every chat tool". A valid token is
    not a guess: it is accepted while the address is locked out."""
    for n in range(5):
        assert api.call("/api/v1/check", chat(), token=f"sgw_guess-{n}")[0] == 401
    status, result = api.call("/api/v1/check", chat(), token="sgw_guess-5")
    assert status == 429 and "too many requests with a wrong token" in result["error"]
    assert api.call("/api/v1/check", chat())[0] == 200
    assert api.call("/api/v1/messages", chat())[0] == 201
    # Still locked out for wrong tokens, a valid one between them notwithstanding.
    assert api.call("/api/v1/check", chat(), token="sgw_guess-6")[0] == 429
    assert api.call("/healthz", token="")[0] == 200  # monitoring needs no token
    # Counted in the database, for every process and gateway on it, and shown to the IT admin;
    # the ones turned away while locked out are not (as before).
    entries = AuditLog(api.gateway.engine).entries(action="api_token_failed")
    assert [(e.actor, e.query) for e in entries] == [("(wrong API token)", "127.0.0.1")] * 5


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic YWxleDpwYXNz"])
def test_a_request_with_no_token_is_401_and_not_counted_as_a_guess(api: Api, header: str | None):
    """The reviewer: "five bad requests from one client address (including requests with no
    Authorization header at all) make the API answer 429". A request with no credentials is
    answered 401 and not counted: it guesses nothing."""
    for _ in range(8):
        request = urllib.request.Request(
            api.base + "/api/v1/check",
            data=json.dumps(chat()).encode(),
            headers={"Content-Type": "application/json"},
        )
        if header is not None:
            request.add_header("Authorization", header)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401
        assert "safeguard api token create" in json.loads(refused.value.read())["error"]
    assert AuditLog(api.gateway.engine).entries(action="api_token_failed") == []
    # A wrong token after them is the address's first failure: 401, not 429.
    assert api.call("/api/v1/check", chat(), token="sgw_guess")[0] == 401
    assert api.call("/api/v1/check", chat())[0] == 200


def test_a_revoked_token_is_refused_from_then_on(api: Api):
    assert api.call("/api/v1/check", chat())[0] == 200
    assert TokenStore(api.gateway.engine).revoke("chat-bridge")
    assert api.call("/api/v1/check", chat())[0] == 401


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (chat(participants=[]), 422, "participants: expected a non-empty list"),
        (
            chat(sender="not an address"),
            422,
            "sender: 'not an address' is not one plain e-mail address",
        ),
        (chat(sent_at="2026-11-23 10:15"), 422, "sent_at: needs a time zone"),
        (chat(sent_at="Thursday"), 422, "sent_at: 'Thursday' is not an ISO-8601 time"),
        (chat(message_id=None), 422, "message_id: required"),
        (chat(text=7), 422, "text: expected a string"),
        (chat(conversation="c-1\r\nBcc: x@y.example"), 422, "conversation: contains a control"),
        (["not", "an", "object"], 422, "the body must be one JSON object"),
    ],
)
def test_a_bad_request_names_the_field_and_stores_nothing(
    api: Api, body: object, status: int, error: str
):
    got_status, result = api.call("/api/v1/messages", body)
    assert got_status == status
    assert result["error"].startswith(error), result
    assert api.archived() == []


def test_a_body_that_is_not_json_or_too_large_gets_a_clear_error(api: Api):
    status, result = api.call("/api/v1/check", raw=b"{not json")
    assert status == 400 and result["error"].startswith("the body is not JSON")
    status, result = api.call("/api/v1/check", raw=b"text=hello", content_type="text/plain")
    assert status == 415 and "application/json" in result["error"]
    status, result = api.call("/api/v1/check", raw=b"[" + b" " * 300_000 + b"]")
    assert status == 413 and "larger than" in result["error"]


def test_health_readiness_and_metrics_need_no_token(api: Api, sink: Sink):
    assert api.call("/healthz", token="") == (200, {"status": "ok"})
    assert api.call("/readyz", token="") == (200, {"status": "ready"})
    with smtplib.SMTP("127.0.0.1", api.gateway.ports[0]) as client:
        client.sendmail(TEACHER, [PARENT], b"Subject: hello\r\n\r\nThe trip is on.\r\n")
    sink.handler.wait_for(1)
    api.call("/api/v1/check", chat())
    status, text = api.call("/metrics", token="")
    assert status == 200
    lines = text.splitlines()
    assert 'safeguard_smtp_transactions_total{result="accepted",verdict="deliver"} 1' in lines
    assert 'safeguard_api_requests_total{endpoint="/api/v1/check",status="200"} 1' in lines
    assert 'safeguard_chat_messages_total{endpoint="check",verdict="deliver"} 1' in lines
    assert "safeguard_up 1" in lines
    assert any(line.startswith('safeguard_queue_entries{status="queued"}') for line in lines)
    assert "# TYPE safeguard_queue_entries gauge" in lines


def test_readyz_says_unavailable_once_the_archive_writer_stops(api: Api):
    api.gateway.writer.stop()
    status, result = api.call("/readyz", token="")
    assert status == 503
    assert result == {"status": "unavailable", "problems": ["the archive writer is not running"]}
    status, result = api.call("/api/v1/messages", chat())
    assert status == 503 and "nothing was stored" in result["error"]


def test_an_archived_dm_is_found_and_exported_like_mail(api: Api, tmp_path: Path):
    """A parent asks for everything sent to their child: the DM is in the contact's history,
    as a message with its channel and conversation named."""
    status, result = api.call("/api/v1/messages", chat(participants=[SAM], message_id="m-9"))
    assert status == 201
    engine = api.gateway.engine
    hits = ArchiveSearch(engine).run(parse(f"contact:{SAM} flag:missing_required_cc")).hits
    assert [hit.id for hit in hits] == [result["archive_id"]]
    out = tmp_path / "sam.mbox"
    export(engine, matching_ids(engine, parse(f"contact:{SAM}")), fmt="mbox", out=out)
    exported = out.read_bytes()
    assert b"X-Safeguard-Channel: whatsapp" in exported
    assert b"X-Safeguard-Conversation: c-42" in exported
    assert b"room 4 on Thursday" in exported


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # A list inside one address would archive a To: naming people the policy never saw.
        (chat(participants=[f"x@y.example,{SAM}"]), "participants[0]: 'x@y.example,sam"),
        (chat(participants=[f"Sam <{SAM}>"]), "participants[0]: 'Sam <sam"),
        (chat(participants=["a" * 80 + "@y.example"]), "participants[0]: 'aaaa"),
        (chat(message_id="   "), "message_id: required"),
        (chat(conversation="c\u2028d"), "conversation: contains a control"),
        (chat(message_id="m\ud800"), "message_id: contains a control"),
        (chat(text="hello\ud800"), "text: contains a NUL or an unpaired surrogate"),
        (chat(sent_at="9999-12-31T23:00:00-14:00"), "sent_at: '9999-12-31T23:00:00-14:00' is not"),
        (chat(channel="c" * 33), "channel: longer than 32 characters"),
        (chat(participants=[TEACHER]), "participants: nobody but the sender"),
    ],
)
def test_a_request_the_archive_could_not_keep_faithfully_is_refused(
    api: Api, body: dict[str, Any], error: str
):
    status, result = api.call("/api/v1/messages", body)
    assert status == 422, result
    assert result["error"].startswith(error), result
    assert api.archived() == []


def test_the_same_id_with_other_content_is_archived_not_dropped(api: Api):
    """An edit (or an id a channel reuses in another chat) must not vanish as a 'resend': its
    risk language still reaches the safeguarding lead."""
    assert api.call("/api/v1/messages", chat(message_id="d1", text="hi"))[0] == 201
    secret = "Don't tell your mum, it's our little secret."
    status, result = api.call("/api/v1/messages", chat(message_id="d1", text=secret))
    assert status == 201 and result["duplicate"] is False
    assert len(api.archived()) == 2
    with api.gateway.engine.connect() as conn:
        assert [e.kind for e in conn.execute(queue.select()).all()] == ["alert"]


def test_deeply_nested_json_is_a_clear_400(api: Api):
    status, result = api.call("/api/v1/check", raw=b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and result["error"].startswith("the body is not JSON this API can read")


def test_a_retry_with_participants_reordered_or_another_offset_is_a_resend(api: Api):
    """The reviewer: "a retry of the same message with participants reordered, or the same
    instant written '…11:15+01:00' instead of '…10:15Z', is archived twice". The content key
    takes the participants in any order and `sent_at` as the UTC instant."""
    first = chat(participants=[SAM, PARENT], sent_at="2026-11-23T10:15:00Z")
    status, stored = api.call("/api/v1/messages", first)
    assert status == 201
    for retry in (
        chat(participants=[PARENT, SAM], sent_at="2026-11-23T10:15:00Z"),
        chat(participants=[SAM, PARENT], sent_at="2026-11-23T11:15:00+01:00"),
        chat(participants=[PARENT.upper(), SAM], sent_at="2026-11-23T05:15:00-05:00"),
    ):
        status, again = api.call("/api/v1/messages", retry)
        assert (status, again["duplicate"]) == (200, True), retry
        assert again["archive_id"] == stored["archive_id"]
    # Another instant, or other people, is other content: archived, never dropped.
    later = chat(participants=[SAM, PARENT], sent_at="2026-11-23T10:15:00+01:00")
    assert api.call("/api/v1/messages", later)[0] == 201
    assert api.call("/api/v1/messages", chat(participants=[SAM]))[0] == 201
    assert len(api.archived()) == 3


@pytest.mark.parametrize("channel", ["email", "EMAIL", " Email "])
def test_the_email_channel_is_refused_as_mail_comes_through_the_relay(api: Api, channel: str):
    """The reviewer: "`channel: "email"` is accepted from the API and the message then shows in
    the console as mail ("Refused", "What the sender was told: Nothing")". Mail comes through
    the SMTP relay: the API refuses the channel with 422 naming the field."""
    for path in ("/api/v1/check", "/api/v1/messages"):
        status, result = api.call(path, chat(channel=channel))
        assert status == 422, result
        assert result["error"].startswith("channel: 'email' is mail"), result
        assert "SMTP relay" in result["error"]
    assert api.archived() == []
    assert api.call("/api/v1/messages", chat(channel="e-mail-bridge"))[0] == 201


@pytest.mark.parametrize(
    "control", ["\x1b", "\x07", "\x08", "\x0b", "\x0c", "\x1f", "\x7f", "\x9b"]
)
def test_text_refuses_control_characters_but_tab_newline_and_return(api: Api, control: str):
    """README: "text fields refuse control characters" (in `text`, all C0 controls but tab,
    newline and carriage return): the reviewer found text with ESC and BEL accepted."""
    text = f"Hi Sam,{control}[31m see you in room 4."
    status, result = api.call("/api/v1/messages", chat(text=text))
    assert status == 422, result
    assert result["error"] == (
        f"text: contains a control character ({control!r}); "
        "only tab, newline and carriage return are allowed"
    )
    assert api.archived() == []
    fine = "Hi Sam,\r\n\tthe session moves to room 4.\nSee you Thursday."
    assert api.call("/api/v1/messages", chat(text=fine))[0] == 201


def test_a_blockquote_in_chat_is_read_as_the_senders_own_words(api: Api):
    """The reviewer: in chat tools "a '> ' line is a blockquote the staff member wrote and the
    child sees", and "Hi Sam… \\n> my number is 07700 900123" was delivered with no finding.
    Chat text is all new text."""
    text = "Hi Sam, see you on Thursday.\n> my number is 07700 900123"
    status, result = api.call("/api/v1/check", chat(text=text))
    assert status == 200
    assert [f["code"] for f in result["findings"]] == ["personal_contact_details"]
    assert "07700 900123" in result["findings"][0]["evidence"]


def test_monitor_mode_says_so_and_keeps_the_verdict(monitoring_api: Api):
    """README: `[policy] mode = "monitor"` "records what would have happened without blocking
    or holding". The reviewer: "the API answers `reject` with no marker, so a tool blocks the
    message". The answer carries `"mode": "monitor"`; the verdict is what enforcing would do,
    and the tool sends as usual. (Enforcing, `"mode": "enforce"`: the tests above.)"""
    lone = chat(participants=[SAM], message_id="m-lone")
    for path in ("/api/v1/check", "/api/v1/messages"):
        _, result = monitoring_api.call(path, lone)
        assert (result["verdict"], result["mode"]) == ("reject", "monitor")
        assert [f["code"] for f in result["findings"]] == ["missing_required_cc"]
    (row,) = monitoring_api.archived()
    assert (row.verdict, row.mode) == ("reject", "monitor")


def test_participants_the_directory_does_not_list_are_named(api: Api):
    """The reviewer: "a participant address the directory does not know gets no age-based
    checks, silently". `/check` and `/messages` list them, sorted, in `unknown_participants`;
    a guardian or school representative is known."""
    # A tool sending its own user ids, not the directory's addresses.
    teams_ids = ["sam.taylor@tenant.teams.example", "priya@tenant.teams.example"]
    status, result = api.call("/api/v1/check", chat(participants=[*teams_ids, PARENT]))
    assert status == 200
    assert result["unknown_participants"] == sorted(teams_ids)
    assert result["verdict"] == "deliver"  # nothing says either is a young person
    status, result = api.call("/api/v1/messages", chat(participants=[SAM, "new@home.example"]))
    assert status == 201
    assert result["unknown_participants"] == ["new@home.example"]
    school = "mr.okafor@school.example"
    staff = "jordan.ellis@safe.example"
    _, known = api.call("/api/v1/check", chat(participants=[SAM, PARENT, school, staff]))
    assert known["unknown_participants"] == []
