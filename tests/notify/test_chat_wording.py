"""A chat tool sends its own messages: the gateway holds none of them, so what it tells the
sender of a chat message to change must not promise a hold (a reviewer's finding: "The gateway
will hold it and deliver it when the office opens" for a DM, and nothing was queued)."""

from __future__ import annotations

from gateway.chat import chat_from_json
from tests.policy.harness import domain, pipeline

# "Staff will never contact children or young people directly outside of normal office
# hours" (thread-and-press, office-hours-only: defer)


def test_a_chat_message_outside_office_hours_is_told_to_wait_not_that_it_is_held():
    p = pipeline("thread-and-press")
    chat = chat_from_json(
        {
            "channel": "whatsapp",
            "conversation": "c-9",
            "message_id": "m-1",
            "sender": f"lee.mentor@{domain('thread-and-press')}",
            "participants": ["sam.minor@home.example", "priya.shah@parents.example"],
            "text": "Hi Sam, the session moves to room 4 on Thursday. Kind regards, Lee",
            "sent_at": "2026-11-21T21:30:00+00:00",  # a Saturday night
        }
    )
    _message, _verdict, explained = p._check_chat(chat, p.directory())
    [late] = [e for e in explained if e.finding.code == "out_of_hours"]
    assert late.finding.action.value == "defer"
    assert late.correction.startswith("Send it when the office opens, Monday 23 November 2026")
    assert "the gateway does not hold chat messages" in late.correction
    assert "will hold it" not in late.correction
