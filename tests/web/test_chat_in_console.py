"""Chat messages in the console and in the lead's alert, as a reviewer playing the safeguarding
lead found them. Chat messages go to the running gateway's `/api/v1/messages` (interface.md,
"HTTP API"), a chat tool may pass on late what it held during an outage (an old `sent_at`), and
the chat tool, not the gateway, delivers them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import select

from gateway.api.app import ApiServer, ApiServices
from gateway.store.schema import queue
from gateway.store.tokens import TokenStore
from tests.web.conftest import DSL, MONDAY, PARENT, SAM, TEACHER, Browser, Console

# The reviewer's case: received on Monday 7 December 2026 at 17:48, sent (the chat tool says)
# on Wednesday 1 July 2026 at 23:30, London time.
RECEIVED = datetime(2026, 12, 7, 17, 48, tzinfo=UTC)
SENT_IN_JULY = "2026-07-01T22:30:00+00:00"
SECRET = "Don't tell your mum about this, it's our little secret."


@dataclass
class ChatTool:
    """A chat tool's integration, posting to the API of the console's own gateway."""

    console: Console
    base: str
    token: str

    def post(self, at: datetime, **changes: Any) -> int:
        """A chat message handed over at `at` (the gateway's clock); its archive id."""
        self.console.clock.moment = at
        body = {
            "channel": "whatsapp",
            "conversation": "c-9",
            "message_id": f"m-{self.console.clock.moment.timestamp()}-{len(changes)}",
            "sender": TEACHER,
            "participants": [SAM, PARENT],
            "text": "Hi Sam, the session moves to room 4 on Thursday.",
            "sent_at": at.isoformat(),
        } | changes
        request = urllib.request.Request(
            self.base + "/api/v1/messages",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(error.read().decode()) from None
        return int(answer["archive_id"])

    def alert(self) -> tuple[str, Any]:
        """The one alert queued for the lead: its text, and the mail it is."""
        with self.console.gateway.engine.connect() as conn:
            [content] = conn.execute(
                select(queue.c.content_gz).where(queue.c.kind == "alert")
            ).scalars()
        mail = message_from_bytes(zlib.decompress(content), policy=policy.default)
        return mail.get_body(("plain",)).get_content().replace("\r\n", "\n"), mail


@pytest.fixture
def chat_tool(console: Console) -> Iterator[ChatTool]:
    gateway = console.gateway
    server = ApiServer(ApiServices.of(gateway), "127.0.0.1", 0, reuse_port=False)
    port = console.running.call(server.start())
    token = TokenStore(gateway.engine).create("chat-bridge", MONDAY)
    try:
        yield ChatTool(console, f"http://127.0.0.1:{port}", token)
    finally:
        console.running.call(server.stop())


def signed_in(console: Console) -> Browser:
    browser = console.browser()
    assert browser.sign_in(DSL).url.endswith("/review")
    return browser


def row_of(page: str, archive_id: int) -> str:
    """The table row that links to the message."""
    before, after = page.split(f'href="/messages/{archive_id}"', 1)
    return before.rsplit("<tr>", 1)[1] + after.split("</tr>", 1)[0]


def test_a_chat_message_passed_on_late_shows_when_it_was_sent(chat_tool: ChatTool):
    """The reviewer: "The console (message page, search results, review queue) shows only the
    time the gateway received a chat message ("Received 07 Dec 2026 17:48"), never when it was
    sent (1 July 2026 23:30), while the DSL alert says when it was sent. A lead following the
    alert by date cannot find it." Its page says both; its rows in search results and the review
    queue say when it was sent beside when it was received; the search form says that dates go
    by receipt (the search itself still does)."""
    late = chat_tool.post(RECEIVED, sent_at=SENT_IN_JULY, text="Hi Sam, room 4 on Thursday.")
    on_time = chat_tool.post(RECEIVED, message_id="m-now", text="Hi Sam, room 5 on Friday.")
    browser = signed_in(chat_tool.console)

    page = browser.get(f"/messages/{late}").text
    assert "<dt>Received</dt><dd>Monday 7 December 2026, 17:48 (Europe/London)" in page
    assert (
        "<dt>Sent (by the chat tool)</dt><dd>Wednesday 1 July 2026, 23:30 (Europe/London)" in page
    )
    assert "Sent (by the chat tool)" not in browser.get(f"/messages/{on_time}").text

    # Out of hours in July: held, so in the review queue too.
    for path in ("/search?q=room", "/review", f"/contacts/{SAM}"):
        listing = browser.get(path).text
        row = row_of(listing, late)
        assert "07 Dec 2026 17:48" in row, path
        assert "Sent by the chat tool 01 Jul 2026 23:30" in row, path
        if path != "/review":
            assert "Sent by the chat tool" not in row_of(listing, on_time), path

    form = browser.get("/search").text
    assert "Dates (after: and before: too) go by when the gateway received a message" in form
    # Its verdict list finds chat messages too, and says so.
    assert '<option value="reject">Refused, or chat tool told not to send</option>' in form
    assert '<option value="defer">Held for office hours, or chat tool told to hold</option>' in form
    # after:/before: stay on the received date.
    assert f'href="/messages/{late}"' in browser.get("/search?after=2026-12-07").text
    assert f'href="/messages/{late}"' not in browser.get("/search?before=2026-12-01&q=room").text


def test_the_alert_names_a_chat_message_as_the_console_does(chat_tool: ChatTool):
    """The reviewer: "The alert says 'Subject: (no subject)' for a chat message while the
    archive's subject (what the console shows) is e.g. 'whatsapp message in conversation
    c-9'." It says that subject now; sent on late, it says when the gateway received it too
    (the date the console lists and searches it by), and is dated then, not months back."""
    archive_id = chat_tool.post(RECEIVED, sent_at=SENT_IN_JULY, text=SECRET)
    text, mail = chat_tool.alert()
    assert "Subject: whatsapp message in conversation c-9\n" in text
    assert "(no subject)" not in text
    page = signed_in(chat_tool.console).get(f"/messages/{archive_id}").text
    assert "<h1>whatsapp message in conversation c-9</h1>" in page
    assert "When: Wednesday 1 July 2026, 23:30\n" in text
    assert "Received by the gateway: Monday 7 December 2026, 17:48" in text
    assert mail["Date"].datetime == RECEIVED


def test_the_alert_says_in_plain_words_what_the_chat_tool_was_told(chat_tool: ChatTool):
    """The reviewer: the alert's "judged reject (the chat tool delivers its own messages)" is
    jargon. It says: "The gateway told the chat tool not to send it; the chat tool may have
    sent it anyway." """
    chat_tool.post(MONDAY, participants=[SAM], text=SECRET)  # no parent copied: refused
    text, _mail = chat_tool.alert()
    assert (
        "What happened to it: The gateway told the chat tool not to send it; "
        "the chat tool may have sent it anyway.\n"
    ) in text
    assert "judged" not in text
    # On time, one time is enough.
    assert "Received by the gateway" not in text


def test_a_held_chat_message_s_alert_says_the_tool_was_told_to_hold_it(chat_tool: ChatTool):
    """As above, for a chat message out of hours: held (defer), the tool told to wait."""
    chat_tool.post(datetime(2026, 11, 28, 19, 30, tzinfo=UTC), text=SECRET)  # a Saturday
    text, _mail = chat_tool.alert()
    assert (
        "What happened to it: The gateway told the chat tool to hold it until "
        "Monday 30 November 2026, 08:00; the chat tool may have sent it anyway.\n"
    ) in text


def test_a_refused_or_held_chat_message_is_not_called_refused(chat_tool: ChatTool):
    """The reviewer: "A chat message judged `reject` shows as 'Refused' in the console and the
    review queue, but the chat tool delivers its own messages: the child may have received
    it." The console and the queue say "Chat tool told not to send" (and "Chat tool told to
    hold" for a held one), and its page says what that means; mail keeps its wording."""
    console = chat_tool.console
    refused = chat_tool.post(MONDAY, participants=[SAM], text="Hi Sam, room 4 on Thursday x")
    held = chat_tool.post(
        datetime(2026, 11, 28, 19, 30, tzinfo=UTC), text="Hi Sam, room 6 on Monday x"
    )
    mail = console.send(
        MONDAY, to=[SAM], cc=[], subject="Room change", body="Hi Sam,\n\nRoom 4.\n\nAlex\n"
    )
    browser = signed_in(console)

    page = browser.get(f"/messages/{refused}").text
    assert '<span class="badge badge-reject">Chat tool told not to send</span>' in page
    assert (
        "The gateway told the chat tool not to send it; the chat tool may have sent it anyway."
        in page
    )
    assert "Refused" not in page
    # A review: "What the sender was told: Nothing", when the tool had the verdict and why.
    assert "The chat tool was given the verdict and each finding's correction" in page
    assert "Nothing: no bounce or notice was sent" not in page
    assert "Chat tool told to hold" in browser.get(f"/messages/{held}").text

    for path in ("/search?q=room", "/review"):
        listing = browser.get(path).text
        assert "Chat tool told not to send" in row_of(listing, refused), path
        assert "Chat tool told to hold" in row_of(listing, held), path
        assert ">Refused</span>" in row_of(listing, mail), path
    assert ">Refused</span>" in browser.get(f"/messages/{mail}").text


def test_group_mail_moved_to_bcc_is_not_listed_as_awaiting_review(console: Console):
    """The reviewer: the message list's "Review" column shows "Not yet" for a message whose
    only finding is a rewrite (mass mail moved to Bcc), which never appears in the review
    queue. It says "Not needed"; a flagged message still says "Not yet"."""
    rota = console.send(
        MONDAY,
        to=[f"volunteer{n}@example.org" for n in range(6)],
        cc=[],
        subject="Rota",
        body="Hello all,\n\nThe rota is attached.\n\nKind regards,\nAlex\n",
    )
    kiss = console.send(
        MONDAY, to=[SAM], cc=[PARENT], subject="Rota too", body="Hi Sam,\n\nThe rota.\n\nx\n"
    )
    browser = signed_in(console)
    assert f'href="/messages/{rota}"' not in browser.get("/review").text
    listing = browser.get("/search?q=rota").text
    assert "<td>Not needed</td>" in row_of(listing, rota)
    assert "<td>Not yet</td>" in row_of(listing, kiss)


def test_a_chat_blockquote_is_shown_as_the_message_s_own_text(chat_tool: ChatTool):
    """The reviewer: in chat tools "a '> ' line is a blockquote the staff member wrote and the
    child sees". The console shows a chat message's whole text as new text, its finding marked
    there, not under "Quoted earlier message"."""
    text = "Hi Sam, see you on Thursday.\n> my number is 07700 900123"
    archive_id = chat_tool.post(MONDAY, text=text)
    page = signed_in(chat_tool.console).get(f"/messages/{archive_id}").text
    assert "Quoted earlier message" not in page
    new_text = page.split('<pre class="text new">', 1)[1].split("</pre>", 1)[0]
    assert new_text.startswith("Hi Sam, see you on Thursday.\n&gt; my number is ")
    assert "07700 900123</mark>" in new_text
