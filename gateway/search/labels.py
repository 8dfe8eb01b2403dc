"""Words for the codes of interface.md (`query.FINDING_CODES` and `VERDICTS`), as the console and
an export's cover page show them; tests/web/test_highlight.py checks that each has its words."""

from __future__ import annotations

# Flagged and changed mail is sent too: "Delivered" for `deliver` alone read, in the search
# form's list, as if flagged mail had not been delivered.
VERDICT_LABELS = {
    "reject": "Refused",
    "defer": "Held for office hours",
    "rewrite": "Sent with addresses hidden",
    "flag": "Sent, flagged",
    "deliver": "Sent, nothing found",
}
# A chat tool delivers its own messages: the gateway only answers it. "Refused" read as if the
# child could not have received a chat message the tool may have sent all the same.
CHAT_VERDICT_LABELS = {
    "reject": "Chat tool told not to send",
    "defer": "Chat tool told to hold",
}
# The search form's list picks a verdict whatever the channel: each choice says what it finds.
SEARCH_VERDICT_LABELS = {
    code: f"{label}, or {CHAT_VERDICT_LABELS[code][0].lower()}{CHAT_VERDICT_LABELS[code][1:]}"
    if code in CHAT_VERDICT_LABELS
    else label
    for code, label in VERDICT_LABELS.items()
}
FINDING_LABELS = {
    "missing_required_cc": "Required copy missing",
    "no_consent": "No consent on record",
    "mass_mail_visible_recipients": "Addresses exposed",
    "informal_sign_off": "Informal sign-off",
    "out_of_hours": "Out of hours",
    "personal_contact_details": "Personal contact details",
    "unapproved_third_party": "Unapproved third party",
    "risk_language": "Risk language",
    "sender_not_permitted": "Sender not permitted",
    "check_error": "A check failed",
}


def verdict_label(verdict: str, channel: str = "email") -> str:
    """`channel`: the message's; a chat message's (any but "email") refusal or hold was advice
    to the chat tool, not a stop."""
    if channel != "email" and verdict in CHAT_VERDICT_LABELS:
        return CHAT_VERDICT_LABELS[verdict]
    return VERDICT_LABELS.get(verdict, verdict)


def chat_told(verdict: str, until: str = "") -> str:
    """What the gateway's answer to a chat tool meant for a chat message, in plain words (the
    lead's alert, the console's message page): the tool sends its own messages, so one it was
    told not to send may have reached its recipients anyway. `until`: when a held one may go."""
    if verdict == "reject":
        return (
            "The gateway told the chat tool not to send it; the chat tool may have sent it anyway."
        )
    if verdict == "defer":
        when = f" until {until}" if until else ""
        return (
            f"The gateway told the chat tool to hold it{when}; "
            "the chat tool may have sent it anyway."
        )
    if verdict == "rewrite":
        return (
            "The gateway told the chat tool to send it with the recipients' addresses hidden; "
            "the chat tool may have sent it as it was."
        )
    return "The gateway told the chat tool it may send it, so it has most likely been sent."


def finding_label(code: str) -> str:
    return FINDING_LABELS.get(code, code.replace("_", " "))
