"""What a bounce says when a young person has no consent on record: what the pack asks for,
in its own words, and who the message may go to instead, as the message stands.

From a review of the bounce: it said "You can write to <guardians> instead." when those
guardians were already recipients, and "There is no parental consent or manager approval on
record" in every pack, though only Birmingham Museums Trust's policy asks for a manager's
approval ("Direct email or DM contact with children under 18 should only be with the approval
of your manager")."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.notify.policy import corrected_draft
from gateway.notify.render import environment_for
from gateway.notify.wording import explain
from tests.notify.test_corrected_draft import NORA, _prepare
from tests.policy.harness import Draft, domain, evaluate, pipeline
from tests.policy.test_tipping_off import _content

NORA_S_PARENT = "n.parent@parents.example"


def _bounce(pack: str, *cc: str) -> str:
    return _content(_prepare(pack, Draft(to=(NORA,), cc=cc)), "bounce")


def test_a_parent_already_copied_is_not_suggested_as_someone_to_write_to_instead():
    """ "It should not suggest writing to someone the message already goes to": Nora's parent
    is copied, so the message may go to them without her."""
    told = _bounce("teens-in-ai", NORA_S_PARENT, f"lee.mentor@{domain('teens-in-ai')}")
    assert f"You can write to {NORA_S_PARENT} instead" not in told
    assert (
        f"Remove Nora from the recipients and it can go to {NORA_S_PARENT}, who is already "
        "among them." in told
    )


def test_a_parent_not_copied_is_still_suggested_instead():
    told = _bounce("thread-and-press", f"lee.mentor@{domain('thread-and-press')}")
    assert f"You can write to {NORA_S_PARENT} instead." in told
    assert "already among them" not in told


@pytest.mark.parametrize("pack", ["teens-in-ai", "thread-and-press"])
def test_packs_that_ask_parents_say_consent_not_manager_approval(pack: str):
    """Teens in AI: "Parents will be asked to give their approval"; Thread and Press: "we would
    only do so with parents permission". Neither asks for a manager's approval."""
    told = _bounce(pack, NORA_S_PARENT, f"lee.mentor@{domain(pack)}")
    assert "There is no parental consent on record for contacting Nora Noconsent (14)" in told
    assert "manager" not in told


def test_bmt_says_manager_approval():
    """Birmingham Museums Trust: "Direct email or DM contact with children under 18 should only
    be with the approval of your manager", as the pack's own wording says it
    (templates/packs/bmt/)."""
    told = _bounce("bmt", NORA_S_PARENT)
    assert "There is no manager approval on record for contacting Nora Noconsent (14)" in told
    assert "until your manager's approval is recorded" in told
    assert "Ask your manager for approval" in told
    assert "parental consent" not in told
    assert "it can go to n.parent@parents.example, who is already among them" in told


def test_a_site_s_own_no_consent_wording_without_a_left_out_line_still_gets_one(
    tmp_path: Path,
):
    """A site's no_consent.j2 written before the draft left anyone out: the bounce still says
    who the draft leaves out."""
    findings = tmp_path / "findings"
    findings.mkdir()
    (findings / "no_consent.j2").write_text(
        "{% macro explanation() %}No consent for {{ p.young_person.name }}.{% endmacro %}\n"
        "{% macro correction() %}Ask first.{% endmacro %}\n"
    )
    env = environment_for("teens-in-ai", tmp_path)
    org = pipeline("teens-in-ai").organisation
    result = evaluate("teens-in-ai", Draft(to=("sam.minor@home.example", NORA)))
    explained = [explain(env, e.finding, e.rule, org, "reject") for e in result.explained]
    assert "No consent for Nora Noconsent." in [e.explanation for e in explained]
    draft = corrected_draft(result.raw, result.message, explained)
    assert draft.left_out == ("Nora Noconsent is left out of the draft.",)
