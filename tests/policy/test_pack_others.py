"""The Music Works, Brigantia Learning Trust and the default pack."""

from __future__ import annotations

from tests.policy.harness import Draft, evaluate


def test_music_works_when_sending_emails_to_groups_of_people_we_use_bcc():
    """'When sending emails to groups of people, we'll use the 'BCC' facility to avoid sharing
    e-mail addresses.'"""
    three = tuple(f"member{i}@elsewhere.example" for i in range(3))
    assert evaluate("music-works", Draft(to=three)).action == "rewrite"
    assert evaluate("music-works", Draft(to=three[:2])).action == "deliver"


def test_music_works_we_only_use_tmw_email_accounts_to_contact_customers():
    """'We'll only use TMW e-mail accounts to contact customers.'"""
    result = evaluate(
        "music-works", Draft(to=("sam.minor@home.example",), sender="alex@gmail.example")
    )
    assert result.codes == {"sender_not_permitted"}
    assert result.action == "reject"


def test_brigantia_flags_but_never_blocks_contact_outside_trust_systems():
    result = evaluate(
        "brigantia", Draft(to=("sam.minor@home.example",), sender="alex@gmail.example")
    )
    assert result.action == "flag"


def test_brigantia_flags_grooming_language_to_a_pupil_of_18_or_over_too():
    """'Be careful in their communications with children/young people so as to avoid any
    possible misinterpretation': the policy speaks of pupils and learners, never of under-18s.
    A review found "Let's keep this between us... You looked gorgeous" to an 18-year-old
    sixth-former delivered with no finding."""
    body = "Hi Ada,\n\nLet's keep this between us. You looked gorgeous at prom.\n\nAlex"
    result = evaluate("brigantia", Draft(to=("ada.adult@home.example",), body=body))
    assert result.action == "flag"
    assert "risk_language" in result.codes


def test_default_pack_requires_a_guardian_with_school_or_level_2_fallback():
    assert evaluate("default", Draft(to=("sam.minor@home.example",))).action == "reject"
    copied = Draft(to=("sam.minor@home.example",), cc=("priya.shah@parents.example",))
    assert evaluate("default", copied).action == "deliver"
    fallback = Draft(to=("wendy.alone@home.example",), cc=("lee.mentor@safe.example",))
    assert evaluate("default", fallback).action == "deliver"
