"""The corrected draft a bounce attaches: where it hides mass mail's recipients, the outside
addresses go to Bcc and colleagues (staff on the organisation's domains) stay in To and Cc,
as the gateway delivers such mail (bmt.toml's reading: "by moving external addresses to
BCC")."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from functools import partial

from gateway.message.rewrite import replace_headers
from gateway.notify.policy import corrected_draft
from gateway.pipeline import Prepared, Submission
from gateway.policy.types import Action
from tests.policy.harness import Draft, domain, evaluate, pipeline
from tests.policy.test_tipping_off import _content

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
    p = pipeline("teens-in-ai")
    fixed = corrected_draft(
        result.raw, result.message, result.explained, partial(p._colleague, p.directory())
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
    draft = _draft_of(prepared)
    assert draft["To"] == "undisclosed-recipients:;" and draft["Cc"] is None
    assert "priya.shah@parents.example" in str(draft["Bcc"])  # the parent, added
    told = _content(prepared, "bounce")  # and the bounce says where the parent went
    assert "priya.shah@parents.example added in Bcc; outside recipients moved to Bcc" in told
    # A review: "Nothing has been delivered to anyone" sat beside "The gateway has done this
    # for you: each person still receives the message", read as if it had gone out.
    flat = " ".join(told.split())
    assert "Put the outside recipients in Bcc: then each person receives it" in flat
    assert "has done this for you" not in flat


# "Parents will be asked to give their approval for us to communicate with their children
# through social media or by any other means of communication" (teens-in-ai, parental-approval)
# and "If staff need to contact children via email, we would only do so with parents
# permission" (thread-and-press, parents-permission): no added copy mends a young person with
# no consent on record, so the draft leaves them out. A review found the draft kept them, and
# was itself refused when sent as it was.
NORA = "nora.noconsent@home.example"  # 14, no consent on record; n.parent@parents.example
SAM = "sam.minor@home.example"  # 15, consent on record; priya.shah@parents.example


def _submit(pack: str, raw: bytes, envelope_to: tuple[str, ...], at: str) -> Prepared:
    p = pipeline(pack)
    return p.prepare(
        Submission(
            queue_id="Q1",
            raw=raw,
            envelope_from=f"alex.teacher@{domain(pack)}",
            envelope_to=envelope_to,
            received_at=datetime.fromisoformat(at).replace(tzinfo=p.organisation.timezone),
        )
    )


def _prepare(pack: str, draft: Draft) -> Prepared:
    return _submit(pack, draft.raw(domain(pack)), (*draft.to, *draft.cc, *draft.bcc), draft.at)


def _draft_of(prepared: Prepared) -> EmailMessage:
    [bounce] = [i.content for i in prepared.items if i.kind == "bounce"]
    assert bounce is not None
    report = message_from_bytes(bounce, policy=policy.default)
    part = next(p for p in report.walk() if p.get_filename() == "corrected-draft.eml")
    attached = part.get_payload()[0]
    assert isinstance(attached, EmailMessage)
    return attached


def _addresses(draft: EmailMessage, *fields: str) -> list[str]:
    values = [str(v) for field in fields for v in draft.get_all(field, [])]
    return [a for _, a in getaddresses(values) if a]  # not "undisclosed-recipients:;"


def _send_as_it_is(pack: str, draft: EmailMessage, at: str) -> Prepared:
    """The draft opened and sent unchanged: a mail client sends Bcc in the envelope only."""
    raw = replace_headers(draft.as_bytes(policy=policy.SMTP), ["Bcc"], [])
    return _submit(pack, raw, tuple(_addresses(draft, "To", "Cc", "Bcc")), at)


def test_the_draft_leaves_out_a_young_person_with_no_consent_and_says_so():
    """Sam and Nora, Sam's parent copied: the draft goes to Sam, his parent and the colleague;
    Nora is left out (her parent is not added for her), and the bounce says so beside the
    draft. Sent as it is, it is not refused."""
    draft = Draft(
        to=(SAM, NORA), cc=("priya.shah@parents.example", f"lee.mentor@{domain('teens-in-ai')}")
    )
    prepared = _prepare("teens-in-ai", draft)
    assert prepared.record.verdict == "reject"
    fixed = _draft_of(prepared)
    assert _addresses(fixed, "To") == [SAM]
    assert _addresses(fixed, "Cc") == [
        "priya.shah@parents.example",
        f"lee.mentor@{domain('teens-in-ai')}",
    ]
    assert NORA not in str(fixed) and "n.parent@parents.example" not in str(fixed)
    told = _content(prepared, "bounce")
    assert "Nora Noconsent is left out of the draft: no consent is on record." in told
    assert _send_as_it_is("teens-in-ai", fixed, draft.at).record.verdict == "deliver"


def test_the_draft_that_leaves_someone_out_keeps_an_address_to_cannot_carry_in_bcc():
    """A review: rebuilding To and Cc dropped an address with a non-ASCII local part, which a
    plain header cannot carry; the draft is sent by its headers, so it would not reach them."""
    other = "zoë.friend@parents.example"
    draft = Draft(to=(SAM, NORA), cc=("priya.shah@parents.example", other))
    prepared = _prepare("teens-in-ai", draft)
    assert prepared.record.verdict == "reject"
    fixed = _draft_of(prepared)
    assert other not in _addresses(fixed, "To", "Cc")
    assert other in str(fixed["Bcc"])


def test_the_draft_of_refused_mass_mail_hides_the_parents_and_leaves_out_the_young_person():
    """Mass mail with Nora among the recipients: the draft adds Sam's parent where the rest
    are, in Bcc (the review's "adds parents visibly in Cc" no longer holds since af40428), and
    leaves Nora out. Sent as it is, it is not refused."""
    colleague = f"lee.mentor@{domain('teens-in-ai')}"
    draft = Draft(to=(SAM, NORA, *PARENTS), cc=(colleague,))
    prepared = _prepare("teens-in-ai", draft)
    assert prepared.record.verdict == "reject"
    fixed = _draft_of(prepared)
    assert fixed["To"] == "undisclosed-recipients:;"
    assert _addresses(fixed, "Cc") == [colleague]
    assert set(_addresses(fixed, "Bcc")) == {SAM, *PARENTS, "priya.shah@parents.example"}
    assert NORA not in str(fixed) and "n.parent@parents.example" not in str(fixed)
    told = _content(prepared, "bounce")
    assert "priya.shah@parents.example added in Bcc; outside recipients moved to Bcc" in told
    # A review: "Nothing has been delivered to anyone" sat beside "The gateway has done this
    # for you: each person still receives the message", read as if it had gone out.
    flat = " ".join(told.split())
    assert "Put the outside recipients in Bcc: then each person receives it" in flat
    assert "has done this for you" not in flat
    assert "Nora Noconsent is left out of the draft: no consent is on record." in told
    assert _send_as_it_is("teens-in-ai", fixed, draft.at).record.verdict != "reject"


def test_the_draft_says_what_bmt_needs_on_record_when_it_leaves_someone_out():
    """Birmingham Museums Trust: "Direct email or DM contact with children under 18 should only
    be with the approval of your manager". Wes on placement with his parent copied, and Nora:
    the draft goes to Wes and his parent, and says no manager approval is on record for Nora."""
    draft = Draft(to=("wes.student@home.example", NORA), cc=("w.parent@parents.example",))
    prepared = _prepare("bmt", draft)
    assert prepared.record.verdict == "reject"
    fixed = _draft_of(prepared)
    assert _addresses(fixed, "To", "Cc") == ["wes.student@home.example", "w.parent@parents.example"]
    told = _content(prepared, "bounce")
    assert "Nora Noconsent is left out of the draft: no manager approval is on record." in told
    assert _send_as_it_is("bmt", fixed, draft.at).record.verdict == "deliver"


def test_a_message_to_her_and_her_parent_has_a_draft_to_the_parent_alone():
    """Nora with her parent and a colleague copied (thread-and-press): the message may go to
    her parent without her; the draft is that message, and it is not refused."""
    colleague = f"lee.mentor@{domain('thread-and-press')}"
    draft = Draft(to=(NORA,), cc=("n.parent@parents.example", colleague))
    prepared = _prepare("thread-and-press", draft)
    assert prepared.record.verdict == "reject"
    fixed = _draft_of(prepared)
    assert _addresses(fixed, "To", "Cc", "Bcc") == ["n.parent@parents.example", colleague]
    assert _send_as_it_is("thread-and-press", fixed, draft.at).record.verdict == "deliver"


def test_a_message_to_her_alone_has_no_draft_rather_than_one_refused_again():
    """Nora alone, nobody copied (teens-in-ai also asks for her parent): adding her parent
    would not mend it, and without Nora there is nobody to send it to. No draft: the sender
    makes the changes by hand."""
    prepared = _prepare("teens-in-ai", Draft(to=(NORA,)))
    assert prepared.record.verdict == "reject"
    [bounce] = [i.content for i in prepared.items if i.kind == "bounce"]
    assert bounce is not None and b"corrected-draft.eml" not in bounce
    told = _content(prepared, "bounce")
    assert "Please make the changes above yourself and send the message again." in told
    assert "left out of the draft" not in told


def test_a_refused_mass_mail_s_correction_does_not_promise_a_draft():
    """What to change is worded apart from the draft: when nobody is left to send a draft to
    (only young people with no consent on record), none is attached, and the correction must
    not point to "the corrected draft attached" (left alone in session 25's note)."""
    nobody = Draft(to=(NORA, *PARENTS))
    result = evaluate("teens-in-ai", nobody)
    [mass] = [e for e in result.explained if e.finding.code == "mass_mail_visible_recipients"]
    assert result.verdict.action is Action.REJECT
    assert "attached" not in mass.correction
    assert mass.correction.startswith("Put the outside recipients in Bcc: then each person")


def test_the_draft_of_mass_mail_keeps_a_colleague_to_cannot_carry_in_bcc():
    """A review: the Bcc fix for an address To and Cc cannot carry (a non-ASCII local part) was
    made where the draft leaves someone out, not where it hides mass mail's addresses: there a
    colleague so named was kept "in sight" in a To that could not carry them, and lost."""
    staff_domain = domain("teens-in-ai")
    colleague = f"zoë.mentor@{staff_domain}"
    result = evaluate("teens-in-ai", Draft(to=(SAM, *PARENTS), cc=(colleague,)))
    fixed = corrected_draft(
        result.raw,
        result.message,
        result.explained,
        lambda address: address.endswith(f"@{staff_domain}"),  # staff, as the directory says
    )
    draft = message_from_bytes(fixed.raw, policy=policy.default)
    assert colleague not in _addresses(draft, "To", "Cc")
    assert colleague in str(draft["Bcc"])
