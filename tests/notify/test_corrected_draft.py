"""The corrected draft a bounce attaches: where it hides mass mail's recipients, the outside
addresses go to Bcc and colleagues (staff on the organisation's domains) stay in To and Cc,
as the gateway delivers such mail (bmt.toml's reading: "by moving external addresses to
BCC")."""

from __future__ import annotations

from email import message_from_bytes, policy

from gateway.notify.policy import corrected_draft
from gateway.policy.types import Action
from tests.policy.harness import Draft, domain, evaluate, pipeline
from tests.policy.test_tipping_off import _content, _prepare

PARENTS = tuple(f"parent{i}@parents.example" for i in range(6))


def test_the_corrected_draft_of_mass_mail_keeps_a_colleague_visible():
    """Sam's parent not copied (refused), and mass mail: the draft adds the parent and hides
    every outside address; the colleague in Cc stays in sight."""
    colleague = f"lee.mentor@{domain('teens-in-ai')}"
    # On the organisation's domain but not staff (a pupil's school account): hidden.
    not_staff = f"pupil.account@{domain('teens-in-ai')}"
    result = evaluate(
        "teens-in-ai",
        Draft(to=("sam.minor@home.example", *PARENTS), cc=(colleague, not_staff)),
    )
    actions = {e.finding.code: e.finding.action for e in result.explained}
    assert actions["missing_required_cc"] is Action.REJECT
    assert actions["mass_mail_visible_recipients"] is Action.REWRITE
    fixed = corrected_draft(
        result.raw, result.message, result.explained, pipeline("teens-in-ai")._colleague
    )
    draft = message_from_bytes(fixed.raw, policy=policy.default)
    assert draft["To"] == "undisclosed-recipients:;"
    assert draft["Cc"] == colleague
    hidden = {a.strip() for a in str(draft["Bcc"]).split(",")}
    assert hidden == {"sam.minor@home.example", *PARENTS, not_staff, "priya.shah@parents.example"}
    assert "outside recipients moved to Bcc" in fixed.fixes


def test_a_refused_mass_mail_s_bounce_attaches_a_draft_with_the_outside_addresses_hidden():
    """The bounce's draft, sent as it is, goes as the gateway would send it."""
    prepared = _prepare("teens-in-ai", Draft(to=("sam.minor@home.example", *PARENTS)))
    assert prepared.record.verdict == "reject"
    [bounce] = [i.content for i in prepared.items if i.kind == "bounce"]
    assert bounce is not None
    report = message_from_bytes(bounce, policy=policy.default)
    part = next(p for p in report.walk() if p.get_filename() == "corrected-draft.eml")
    draft = part.get_payload()[0]
    assert draft["To"] == "undisclosed-recipients:;" and draft["Cc"] is None
    assert "priya.shah@parents.example" in str(draft["Bcc"])  # the parent, added
    told = _content(prepared, "bounce")  # and the bounce says where the parent went
    assert "priya.shah@parents.example added in Bcc; outside recipients moved to Bcc" in told
