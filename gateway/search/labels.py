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


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, verdict)


def finding_label(code: str) -> str:
    return FINDING_LABELS.get(code, code.replace("_", " "))
