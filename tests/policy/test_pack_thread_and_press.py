"""Thread and Press CIC: contacting children by email."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.policy.harness import Draft, evaluate

PACK = "thread-and-press"
COMPLIANT = dict(to=("sam.minor@home.example",), cc=("lee.mentor@threadandpress.example",))


def test_we_will_copy_at_least_one_other_member_of_staff_into_any_emails_sent():
    """'If staff need to contact children via email, we would only do so with parents
    permission and we will copy at least one other member of staff into any emails sent.'"""
    result = evaluate(
        PACK, Draft(to=("sam.minor@home.example",), cc=("priya.shah@parents.example",))
    )
    assert result.action == "reject"
    assert result.codes == {"missing_required_cc"}
    assert evaluate(PACK, Draft(**COMPLIANT)).action == "deliver"


def test_the_sender_copying_themselves_at_a_sub_address_is_not_another_member_of_staff():
    """'we will copy at least one other member of staff': a review found the sender's own
    alex.teacher+copy@ (their own mailbox) satisfied the rule."""
    own = Draft(to=("sam.minor@home.example",), cc=("alex.teacher+copy@threadandpress.example",))
    assert evaluate(PACK, own).codes == {"missing_required_cc"}


def test_we_would_only_contact_children_by_email_with_parents_permission():
    result = evaluate(
        PACK, Draft(to=("nora.noconsent@home.example",), cc=("lee.mentor@threadandpress.example",))
    )
    assert result.codes == {"no_consent"}


@pytest.mark.parametrize(
    ("sent", "expected", "opens"),
    [
        ("2026-11-23T16:59:00", "deliver", None),  # Monday, a minute before closing
        ("2026-11-23T17:00:00", "defer", "2026-11-24T09:00:00+00:00"),  # closing time
        ("2026-11-28T11:00:00", "defer", "2026-11-30T09:00:00+00:00"),  # Saturday
        (
            "2026-12-24T17:30:00",
            "defer",
            "2026-12-29T09:00:00+00:00",
        ),  # Christmas, Boxing Day substitute
        ("2026-12-28T10:00:00", "defer", "2026-12-29T09:00:00+00:00"),  # 28 Dec 2026: bank holiday
        ("2026-03-29T10:00:00", "defer", "2026-03-30T09:00:00+01:00"),  # clocks go forward
        ("2026-10-25T01:30:00+01:00", "defer", "2026-10-26T09:00:00+00:00"),  # clocks go back
    ],
)
def test_staff_will_never_contact_children_directly_outside_normal_office_hours(
    sent, expected, opens
):
    """'Staff will never contact children or young people directly outside of normal office
    hours' — the message is held until the office opens."""
    result = evaluate(PACK, Draft(**COMPLIANT, at=sent))
    assert result.action == expected
    if opens:
        assert result.verdict.deliver_at == datetime.fromisoformat(opens)
        assert result.codes == {"out_of_hours"}


def test_all_staff_communicating_to_children_will_have_an_enhanced_dbs_check():
    """'All staff communicating to children or vulnerable adults online will have an up-t-date
    Enhanced DBS check.'"""
    result = evaluate(PACK, Draft(**COMPLIANT, sender="jamie.nodbs@{domain}"))
    assert result.action == "reject"
    assert result.codes == {"sender_not_permitted"}
    assert "DBS" in result.text()


def test_out_of_hours_mail_to_an_adult_is_not_held():
    result = evaluate(PACK, Draft(to=("ada.adult@home.example",), at="2026-11-28T11:00:00"))
    assert result.action == "deliver"


def test_every_finding_is_reported_and_the_strongest_action_wins():
    result = evaluate(PACK, Draft(to=("sam.minor@home.example",), at="2026-11-28T11:00:00"))
    assert result.codes == {"missing_required_cc", "out_of_hours"}
    assert result.action == "reject"


@pytest.mark.parametrize(
    "closing", ["See ya,\nAlex", "Laters,\nAlex", "Cheers mate,\nAlex", "Ta ta for now\nAlex"]
)
def test_slang_closings_are_not_signed_off_in_a_formal_manner(closing):
    """'Emails and contact will be signed off in an an appropriate and formal manner'."""
    draft = Draft(**COMPLIANT, body=f"Hi Sam,\n\nSee you Thursday.\n\n{closing}")
    result = evaluate(PACK, draft)
    assert (result.action, result.codes) == ("reject", {"informal_sign_off"})


def test_cheers_alone_is_still_not_informal():
    draft = Draft(**COMPLIANT, body="Hi Sam,\n\nSee you Thursday.\n\nCheers,\nAlex")
    assert evaluate(PACK, draft).action == "deliver"
