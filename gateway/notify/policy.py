"""Notices that follow a verdict: the bounce with its corrected draft, the deferral notice,
and the safeguarding lead's alert. Each is an ordinary message for the queue."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid

import jinja2

from gateway.message.model import Address
from gateway.message.model import Message as ParsedMessage
from gateway.message.rewrite import header_writable, hide_recipients, replace_headers
from gateway.notify.dsn import GENERATED_HEADER, RecipientStatus, attached_message, build_dsn
from gateway.notify.render import local_time
from gateway.notify.wording import Explained
from gateway.policy.types import Action, Organisation, Verdict
from gateway.search.labels import chat_told


@dataclass(frozen=True)
class Draft:
    raw: bytes
    fixes: tuple[str, ...]  # what the gateway changed, in words
    manual: tuple[str, ...]  # what only the sender can change
    left_out: tuple[str, ...] = ()  # who the draft does not go to, and why, in words

    @property
    def attached(self) -> bool:
        """Whether the bounce attaches it: the gateway changed something."""
        return bool(self.fixes or self.left_out)


def _format_addresses(addresses: Sequence[str]) -> str:
    return ", ".join(addresses)


def _left_out(explained: Sequence[Explained]) -> dict[str, str]:
    """The young people the draft cannot go to, each with what the bounce says of it: no
    consent (or, in bmt, no manager approval) on record. No added copy mends that, so a draft
    that kept them would be refused again for them."""
    out: dict[str, str] = {}
    for e in explained:
        f = e.finding
        if f.code == "no_consent" and f.action is Action.REJECT and f.recipient:
            name = f.params.get("young_person", {}).get("name") or f.recipient
            out.setdefault(f.recipient, e.left_out or f"{name} is left out of the draft.")
    return out


def corrected_draft(
    raw: bytes,
    message: ParsedMessage,
    explained: Sequence[Explained],
    colleague: Callable[[str], bool] = lambda address: False,
) -> Draft:
    """The sender's message with the safe corrections made: required copies added, outside
    recipients moved to Bcc (the organisation's staff, `colleague`, stay in To and Cc), and a
    young person with no consent on record left out (the draft goes to the others). Words
    (sign-offs, personal details) are left for the person to edit. Nobody left to send it
    to: no draft (nothing `attached`), the corrections to make by hand."""
    dropped = _left_out(explained)
    everyone = [a.email for a in (*message.to, *message.cc, *message.bcc)]
    if dropped and all(address in dropped for address in everyone):
        # Only young people who cannot be written to: no draft (a copy added for them would
        # be refused with them); the bounce's corrections are made by hand.
        blocking = (Action.REJECT, Action.DEFER)
        manual = [e.correction for e in explained if e.finding.action in blocking]
        return Draft(raw, (), tuple(dict.fromkeys(manual)))
    fixes: list[str] = []
    manual: list[str] = []
    add_cc: list[str] = []
    hide = False
    for e in explained:
        p = e.finding.params
        if e.finding.recipient in dropped:
            continue  # the draft does not go to them: a copy for them is not needed
        if e.finding.code == "missing_required_cc":
            options: list[str] = []
            if "guardian" in p["required"]:
                options += p["guardians"][:1]
            if not options and "school" in (*p["required"], *p["fallback"]):
                options += p["schools"][:1]
            if (
                not options
                and ("level2_staff" in (*p["required"], *p["fallback"]))
                and p["colleagues"]
            ):
                options.append(p["colleagues"][0]["email"])
            if options and options[0] not in add_cc:
                add_cc.append(options[0])
            elif not options:
                manual.append(e.correction)
        elif e.finding.code == "mass_mail_visible_recipients":
            hide = True
        elif e.finding.action in (Action.REJECT, Action.DEFER):
            manual.append(e.correction)
    draft = raw
    for address in add_cc:  # where it went: hidden with the rest unless a colleague
        fixes.append(f"{address} added in {'Bcc' if hide and not colleague(address) else 'Cc'}")
    if hide:
        # Colleagues stay in sight, but one To or Cc cannot carry (a non-ASCII local part)
        # goes in Bcc with the rest: the draft is sent by its headers.
        def shown(a: Address) -> bool:
            return colleague(a.email) and a.email not in dropped and header_writable(a)

        keep_to = [a for a in message.to if shown(a)]
        keep_cc = [a for a in message.cc if shown(a)]
        keep_cc += [a for a in map(Address, add_cc) if shown(a)]  # a colleague copied
        shown_or_dropped = {a.email for a in (*keep_to, *keep_cc)} | set(dropped)
        hidden = [e for e in dict.fromkeys(everyone + add_cc) if e not in shown_or_dropped]
        draft = hide_recipients(draft, keep_to, keep_cc)
        draft = replace_headers(draft, ["Bcc"], [("Bcc", _format_addresses(hidden))])
        fixes.append("outside recipients moved to Bcc")
    elif dropped:
        # Everyone else where they were (Bcc included: envelope-only recipients were the
        # sender's Bcc), the added copies in Cc. An address To or Cc cannot carry (a
        # non-ASCII local part) goes in Bcc: the draft is sent by its headers, and must
        # still reach them.
        keep_to = [a for a in message.to if a.email not in dropped]
        keep_cc = [a for a in message.cc if a.email not in dropped]
        keep_cc += [Address(e) for e in add_cc if e not in {a.email for a in keep_cc}]
        unwritable = [a.email for a in (*keep_to, *keep_cc) if not header_writable(a)]
        blind = [a.email for a in message.bcc if a.email not in dropped] + unwritable
        draft = hide_recipients(draft, keep_to, keep_cc)
        if blind:
            draft = replace_headers(draft, ["Bcc"], [("Bcc", _format_addresses(blind))])
    elif add_cc:
        existing = [a.email for a in message.cc]
        draft = replace_headers(draft, ["Cc"], [("Cc", _format_addresses(existing + add_cc))])
    # A fresh draft: mail clients open X-Unsent messages ready to send, with a new identity.
    draft = replace_headers(
        draft, ["Message-ID", "Date", "X-Unsent", "Received"], [("X-Unsent", "1")]
    )
    return Draft(
        draft,
        tuple(dict.fromkeys(fixes)),
        tuple(dict.fromkeys(manual)),
        tuple(dict.fromkeys(dropped.values())),
    )


def _context(
    message: ParsedMessage, explained: Sequence[Explained], org: Organisation, sent: datetime
) -> dict[str, object]:
    young = []
    seen = set()
    for e in explained:
        people = [e.finding.params.get("young_person"), *e.finding.params.get("young_people", ())]
        for person in people:
            if person and person["email"] not in seen:
                seen.add(person["email"])
                young.append(person)
    return {
        "subject": message.subject or "(no subject)",
        "recipients": [a.email for a in message.recipients],
        "sent": sent.astimezone(org.timezone),
        "explained": explained,
        "org": org,
        "young": young,
        "sender": message.sender.email or message.envelope_from,
    }


def policy_bounce(
    env: jinja2.Environment,
    *,
    hostname: str,
    raw: bytes,
    message: ParsedMessage,
    explained: Sequence[Explained],
    org: Organisation,
    sent: datetime,
    colleague: Callable[[str], bool] = lambda address: False,
) -> bytes:
    """RFC 3464 report: why, what to change (quoting the policy), corrected draft, original.
    `colleague`: whether an address may stay visible where mass mail's are moved to Bcc."""
    # The draft mends what refused the message, and makes the changes the gateway would make
    # on sending it (mass mail's Bcc): sent as it is, it goes as it stands.
    mended = (Action.REJECT, Action.REWRITE)
    draft = corrected_draft(
        raw,
        message,
        [e for e in explained if e.finding.action in mended] or explained,
        colleague,
    )
    context = _context(message, explained, org, sent) | {
        "draft_fixes": draft.fixes,
        "draft_attached": draft.attached,
        "left_out": draft.left_out,
        "manual": draft.manual,
        "blocking": [e for e in explained if e.finding.action is Action.REJECT],
        "others": [e for e in explained if e.finding.action is not Action.REJECT],
    }
    rejected = {e.finding.recipient for e in explained if e.finding.action is Action.REJECT}
    statuses = (
        [
            RecipientStatus(
                rcpt, "5.7.1", "550 5.7.1 held back by the organisation's safeguarding policy"
            )
            for rcpt in message.envelope_to
        ]
        if rejected
        else []
    )
    extra: list[Message] = []
    if draft.attached:
        extra.append(attached_message(draft.raw, "corrected-draft.eml"))
    return build_dsn(
        reporting_mta=hostname,
        sender=message.envelope_from,
        subject=f"Not sent: {message.subject or '(no subject)'}",
        text=env.get_template("notices/policy_bounce.txt.j2").render(context),
        html=env.get_template("notices/policy_bounce.html.j2").render(context),
        statuses=statuses,
        original=raw,
        arrival=sent,
        kind="policy-bounce",
        extra_parts=extra,
    )


def plain_notice(
    *,
    hostname: str,
    to: Sequence[str],
    subject: str,
    body: str,
    sent: datetime,
    kind: str,
    from_name: str,
) -> bytes:
    notice = EmailMessage(policy=email_policy.SMTP)
    notice["From"] = f"{from_name} <postmaster@{hostname}>"
    notice["To"] = ", ".join(to)
    notice["Subject"] = subject
    notice["Date"] = format_datetime(sent)
    notice["Message-ID"] = make_msgid(domain=hostname)
    notice["Auto-Submitted"] = "auto-generated"
    notice[GENERATED_HEADER] = kind
    notice.set_content(body, cte="quoted-printable")
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=email_policy.SMTP).flatten(notice)
    return buffer.getvalue()


def _to_sender(
    env: jinja2.Environment,
    template: str,
    *,
    hostname: str,
    message: ParsedMessage,
    explained: Sequence[Explained],
    org: Organisation,
    sent: datetime,
    subject: str,
    kind: str,
    **extra: object,
) -> bytes:
    """A notice to the sender about their message, "SUBJECT: their subject"."""
    context = _context(message, explained, org, sent) | extra
    return plain_notice(
        hostname=hostname,
        to=[message.envelope_from],
        subject=f"{subject}: {message.subject or '(no subject)'}",
        body=env.get_template(template).render(context),
        sent=sent,
        kind=kind,
        from_name="Safeguard Gateway",
    )


def deferral_notice(
    env: jinja2.Environment,
    *,
    hostname: str,
    message: ParsedMessage,
    explained: Sequence[Explained],
    org: Organisation,
    sent: datetime,
    deliver_at: datetime,
    queue_id: str,
) -> bytes:
    return _to_sender(
        env,
        "notices/deferral.txt.j2",
        hostname=hostname,
        message=message,
        explained=explained,
        org=org,
        sent=sent,
        subject=f"Held until {local_time(deliver_at, org.timezone)}",
        kind="deferral",
        deliver_at=deliver_at.astimezone(org.timezone),
        queue_id=queue_id,
    )


def changed_notice(
    env: jinja2.Environment,
    *,
    hostname: str,
    message: ParsedMessage,
    explained: Sequence[Explained],
    org: Organisation,
    sent: datetime,
) -> bytes:
    """To the sender of mass mail sent with the outside addresses hidden: what was changed,
    and how to send it so next time. Their Sent folder shows every address in To; without
    this they would not know the recipients saw otherwise."""
    return _to_sender(
        env,
        "notices/changed.txt.j2",
        hostname=hostname,
        message=message,
        explained=explained,
        org=org,
        sent=sent,
        subject="Sent with the addresses hidden",
        kind="changed",
    )


def held_cancelled_notice(
    env: jinja2.Environment,
    *,
    hostname: str,
    org: Organisation,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    sent: datetime,
    cancelled: datetime,
    cancelled_by: str,
    note: str,
    queue_id: str,
) -> bytes:
    """To the sender of a held message a safeguarding lead cancelled."""
    context = {
        "subject": subject or "(no subject)",
        "recipients": recipients,
        "sent": sent.astimezone(org.timezone),
        "cancelled": cancelled.astimezone(org.timezone),
        "cancelled_by": cancelled_by,
        "note": note,
        "queue_id": queue_id,
        "org": org,
    }
    return plain_notice(
        hostname=hostname,
        to=[sender],
        subject=f"Not sent: {subject or '(no subject)'}",
        body=env.get_template("notices/held_cancelled.txt.j2").render(context),
        sent=cancelled,
        kind="held-cancelled",
        from_name="Safeguard Gateway",
    )


def _outcome(verdict: Verdict, channel: str, org: Organisation) -> str:
    """What became of the message, as its alert tells the lead: above all, whether it is on
    its way to the young person and whether there is still time to stop it."""
    if channel != "email":
        # The chat tool sends its own messages: the gateway only answered it.
        until = local_time(verdict.deliver_at, org.timezone) if verdict.deliver_at else ""
        return chat_told(verdict.action.value, until)
    if verdict.monitor:
        return "sent on (monitor mode: the policy is recorded, not enforced)"
    if verdict.action is Action.DEFER and verdict.deliver_at is not None:
        held = local_time(verdict.deliver_at, org.timezone)
        return (
            f"held, not sent yet: it goes on {held} unless a safeguarding lead cancels it "
            "first (Held mail, in the console)"
        )
    return {
        Action.REJECT: "refused: not sent to anyone; its sender was told what to change",
        Action.REWRITE: "sent on, with its recipients' addresses hidden (Bcc)",
    }.get(verdict.action, "sent on to its recipients; flagged for your review")


def dsl_alert(
    env: jinja2.Environment,
    *,
    hostname: str,
    message: ParsedMessage,
    explained: Sequence[Explained],
    org: Organisation,
    sent: datetime,
    queue_id: str,
    verdict: Verdict,
    subject: str | None = None,
    received: datetime | None = None,
) -> bytes:
    """`subject`: the message's as the archive (and so the console) names it, where that is not
    its own (a chat message has none). `received`: when the gateway received it, if that is
    not `sent` (a chat tool passes on late what it held during an outage): the console lists
    and searches messages by that date."""
    context = _context(message, explained, org, sent) | {
        "subject": subject or message.subject or "(no subject)",
        "received": received.astimezone(org.timezone) if received is not None else None,
        "queue_id": queue_id,
        "outcome": _outcome(verdict, message.channel, org),
        # Who it goes to, as the envelope says (a Cc header naming a parent who was not sent
        # it would tell the lead the parent was copied).
        "recipients": list(message.envelope_to) or [a.email for a in message.recipients],
    }
    if not context["young"]:
        context["young"] = [
            {"email": e.finding.recipient} for e in explained if e.finding.recipient
        ]
    return plain_notice(
        hostname=hostname,
        to=list(org.dsl),
        subject=f"Safeguarding alert: message from {context['sender']} ({queue_id})",
        body=env.get_template("notices/dsl_alert.txt.j2").render(context),
        # Dated when it was written: one dated months back sorts out of sight in a mailbox.
        sent=received or sent,
        kind="dsl-alert",
        from_name="Safeguard Gateway",
    )
