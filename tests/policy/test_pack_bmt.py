"""Birmingham Museums Trust, section 6 "Direct e-communications"."""

from __future__ import annotations

from tests.policy.harness import Draft, evaluate

PACK = "bmt"


def test_work_experience_placements_a_parent_guardian_or_school_representative_must_be_copied():
    """'Work experience placements (aged 15-17): a parent/guardian or representative from the
    school must be copied in to email correspondence.'"""
    alone = evaluate(PACK, Draft(to=("wes.student@home.example",)))
    assert alone.action == "reject"
    assert alone.rules == {"work-experience-copy-guardian-or-school"}
    assert "w.parent@parents.example" in alone.text()
    assert "placements@school.example" in alone.text()

    for copy in ("w.parent@parents.example", "placements@school.example"):
        copied = evaluate(PACK, Draft(to=("wes.student@home.example",), cc=(copy,)))
        assert copied.action == "deliver", copied.text()


def test_where_this_is_not_possible_a_level_2_trained_colleague_is_copied_instead():
    """'Where this is not possible, a member of Birmingham Museums Trust staff with level 2
    safeguarding training must be copied in.'"""
    draft = Draft(to=("wendy.alone@home.example",), cc=("lee.mentor@bmt.example",))
    assert evaluate(PACK, draft).action == "deliver"
    without = evaluate(
        PACK, Draft(to=("wendy.alone@home.example",), cc=("alex.teacher@bmt.example",))
    )
    assert without.action == "reject"
    assert "Lee Mentor <lee.mentor@bmt.example>" in without.text()


def test_a_level_2_colleague_does_not_replace_a_guardian_who_is_on_record():
    """The fallback applies only 'where this is not possible'."""
    draft = Draft(to=("wes.student@home.example",), cc=("lee.mentor@bmt.example",))
    assert evaluate(PACK, draft).action == "reject"


def test_lapsed_training_does_not_count_and_training_expiring_today_has_lapsed():
    for colleague in ("chris.lapsed@bmt.example", "tara.today@bmt.example"):
        draft = Draft(to=("wendy.alone@home.example",), cc=(colleague,))
        assert evaluate(PACK, draft).action == "reject", colleague
    tomorrow = Draft(
        to=("wendy.alone@home.example",), cc=("tara.today@bmt.example",), at="2026-11-22T10:00:00"
    )
    assert evaluate(PACK, tomorrow).action == "deliver"


def test_volunteers_aged_16_17_a_level_2_trained_member_of_staff_must_be_copied():
    """'Volunteers aged 16-17: a member of Birmingham Museums Trust staff with at least level 2
    safeguarding training must be copied into email correspondence.'"""
    assert evaluate(PACK, Draft(to=("vic.volunteer@home.example",))).action == "reject"
    draft = Draft(to=("vic.volunteer@home.example",), bcc=("dana.lee@bmt.example",))
    assert evaluate(PACK, draft).action == "deliver"


def test_enquiries_for_work_placements_must_be_sent_from_the_work_experience_address():
    """'All enquiries for work placements, whether by adults or children must to be sent to and
    from BMT's work experience email address.'"""
    from_staff = evaluate(
        PACK, Draft(to=("enq.student@home.example",), cc=("e.parent@parents.example",))
    )
    assert from_staff.codes == {"sender_not_permitted"}
    assert "work.experience@bmt.example" in from_staff.text()
    from_mailbox = Draft(
        to=("enq.student@home.example",),
        cc=("e.parent@parents.example",),
        sender="work.experience@{domain}",
    )
    assert evaluate(PACK, from_mailbox).action == "deliver"


def test_a_student_already_on_placement_may_be_written_to_by_their_supervisor():
    """Seeds README: the mailbox sentence is about enquiries, not correspondence on placement."""
    draft = Draft(to=("wes.student@home.example",), cc=("w.parent@parents.example",))
    assert "sender_not_permitted" not in evaluate(PACK, draft).codes


def test_direct_email_contact_with_children_needs_manager_approval():
    """'Direct email or DM contact with children under 18 should only be with the approval of
    your manager and strictly for work purposes only.'"""
    result = evaluate(PACK, Draft(to=("nora.noconsent@home.example",)))
    assert result.codes == {"no_consent"}
    assert result.action == "reject"


def test_adults_are_not_subject_to_the_young_peoples_rules():
    assert evaluate(PACK, Draft(to=("ada.adult@home.example",))).action == "deliver"


def test_group_mail_hides_participants_contact_details():
    """'... so participants can't see other's contact details.' (extended to group email)"""
    crowd = tuple(f"visitor{i}@elsewhere.example" for i in range(5))
    result = evaluate(PACK, Draft(to=crowd))
    assert result.action == "rewrite"
    assert result.codes == {"mass_mail_visible_recipients"}
    assert evaluate(PACK, Draft(to=crowd[:4])).action == "deliver"
