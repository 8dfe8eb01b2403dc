"""Teens in AI: "What we expect of staff, mentors and volunteers"."""

from __future__ import annotations

import pytest

from tests.policy.harness import Draft, evaluate

PACK = "teens-in-ai"
STAFF_COPY = "lee.mentor@teensinai.example"


def test_parents_need_to_be_copied_at_all_times():
    """'When sending emails to young people under the age of 18, parents need to be copied at
    all times.'"""
    result = evaluate(PACK, Draft(to=("sam.minor@home.example",), cc=(STAFF_COPY,)))
    assert result.action == "reject"
    assert result.codes == {"missing_required_cc"}
    [finding] = result.verdict.findings
    assert finding.recipient == "sam.minor@home.example"
    assert "priya.shah@parents.example" in result.text()
    assert "Sam's parent or guardian" in result.text()


@pytest.mark.parametrize("where", ["to", "cc", "bcc"])
def test_a_parent_copied_in_to_cc_or_bcc_counts(where):
    draft = Draft(to=("sam.minor@home.example",), cc=(STAFF_COPY,))
    roles = {"to": draft.to, "cc": draft.cc, "bcc": draft.bcc}
    roles[where] = (*roles[where], "Priya.Shah@Parents.Example")
    result = evaluate(PACK, Draft(to=roles["to"], cc=roles["cc"], bcc=roles["bcc"]))
    assert result.action == "deliver", result.text()


def test_the_day_before_an_18th_birthday_the_rule_applies_and_on_the_day_it_does_not():
    draft = dict(to=("leo.birthday@home.example",), cc=(STAFF_COPY,))
    assert evaluate(PACK, Draft(**draft, at="2027-01-14T10:00:00")).action == "reject"
    assert evaluate(PACK, Draft(**draft, at="2027-01-15T10:00:00")).action == "deliver"


def test_the_birthday_is_the_local_date_not_utc():
    """23:30 UTC on 14 Jan is still 14 Jan in London (GMT): Leo is 17."""
    draft = Draft(
        to=("leo.birthday@home.example",), cc=(STAFF_COPY,), at="2027-01-14T23:30:00+00:00"
    )
    assert evaluate(PACK, draft).action == "reject"


def test_at_least_one_other_member_of_staff_or_volunteer_should_be_copied():
    """'At least one other member of staff or volunteer should be copied into any emails sent to
    children or young people.' (should: flagged, not refused)"""
    result = evaluate(
        PACK, Draft(to=("sam.minor@home.example",), cc=("priya.shah@parents.example",))
    )
    assert result.action == "flag"
    assert result.rules == {"copy-another-staff-or-volunteer"}


def test_all_mass_emails_will_be_sent_in_bcc():
    """'All mass emails will be sent in BCC to avoid revealing other participants' personal
    data.'"""
    crowd = tuple(f"parent{i}@parents.example" for i in range(6))
    result = evaluate(PACK, Draft(to=crowd))
    assert result.action == "rewrite"
    assert "Bcc" in result.text()


def test_communications_should_not_be_copied_to_anybody_besides_parents_and_mentors():
    """'Communications should not be copied to anybody besides parents and mentors/volunteers
    without explicit permission of parties concerned'"""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example", STAFF_COPY, "friend@elsewhere.example"),
    )
    result = evaluate(PACK, draft)
    assert result.action == "flag"
    assert [(f.code, f.recipient) for f in result.verdict.findings] == [
        ("unapproved_third_party", "friend@elsewhere.example")
    ]


def test_the_outside_copy_is_told_who_the_policy_allows_not_a_school_it_does_not_name():
    """Teens in AI allows "parents and mentors/volunteers": a review found the finding said
    "is not a parent, guardian or school contact", naming schools the policy does not allow."""
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("priya.shah@parents.example", STAFF_COPY, "head@school.example"),
    )
    text = evaluate(PACK, draft).text()
    assert (
        "head@school.example is copied, but is not a parent or guardian of Sam Taylor, "
        "nor a member of staff." in text
    )


def test_a_fellow_participant_of_18_in_a_team_mail_is_not_an_outside_copy():
    """A team's mail to two participants, one of them 18, copies nobody 'besides parents and
    mentors/volunteers': the review found the 18-year-old flagged as a third party."""
    draft = Draft(
        to=("sam.minor@home.example", "ada.adult@home.example"),
        cc=("priya.shah@parents.example", STAFF_COPY),
    )
    assert "unapproved_third_party" not in evaluate(PACK, draft).codes


def test_a_participant_of_18_or_over_is_covered_where_the_sentence_names_no_age():
    """'At least one other member of staff or volunteer should be copied into any emails sent
    to children or young people.' and 'Emails should be signed off in a professional manner':
    unlike 'young people under the age of 18, parents need to be copied', no age. A review
    found mail to an 18-year-old participant, uncopied and signed 'Alex xx', delivered clean."""
    draft = Draft(to=("ada.adult@home.example",), body="Hi Ada,\n\nSee you Thursday.\n\nAlex xx")
    result = evaluate(PACK, draft)
    assert result.action == "flag"
    assert result.codes == {"missing_required_cc", "informal_sign_off"}


def test_a_compliant_message_is_delivered_untouched():
    draft = Draft(to=("sam.minor@home.example",), cc=("priya.shah@parents.example", STAFF_COPY))
    result = evaluate(PACK, draft)
    assert (result.action, result.verdict.findings) == ("deliver", ())
