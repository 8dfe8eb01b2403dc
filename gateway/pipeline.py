"""The one walk a submission takes before the reply: parse, check the sender, evaluate the
policy, and build what the store must commit (archive record + queue entries). Shared by the
SMTP relay, `safeguard check` and the HTTP API.

Everything here is synchronous and CPU-bound: callers run it off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime
from functools import partial
from typing import Any

import jinja2

from gateway.chat import ChatMessage, passed_on_late
from gateway.directory.model import DirectoryView
from gateway.message.model import Message
from gateway.message.parse import MessageTooComplex, parse_chat, parse_message
from gateway.message.rewrite import hide_recipients
from gateway.notify.policy import changed_notice, deferral_notice, dsl_alert, policy_bounce
from gateway.notify.wording import Explained, explain
from gateway.policy.evaluate import Policy, strongest
from gateway.policy.retention import youngest_minor_born
from gateway.policy.types import Action, Verdict
from gateway.store.records import ArchiveRecord, QueueItem


@dataclass(frozen=True)
class Submission:
    """What the SMTP layer hands over: bytes and envelope, nothing interpreted."""

    queue_id: str
    raw: bytes
    envelope_from: str
    envelope_to: tuple[str, ...]
    received_at: datetime
    client_address: str = ""
    helo: str = ""
    auth_user: str | None = None  # the authenticated staff address; None from a trusted network
    tls: bool = False


@dataclass(frozen=True)
class Prepared:
    record: ArchiveRecord
    items: tuple[QueueItem, ...]
    reply: str  # what the client hears once the record is committed


class SubmissionRefused(Exception):
    """Refused before archiving (not ours to relay); `reply` is the SMTP answer."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _clean(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable() and ch not in "()[];\\")[:200]


def received_header(sub: Submission, hostname: str) -> bytes:
    """RFC 5321 §4.4 trace header; `with` names TLS and AUTH as RFC 3848 asks."""
    protocol = "ESMTP" + ("S" if sub.tls else "") + ("A" if sub.auth_user else "")
    helo = _clean(sub.helo) or "unknown"
    line = (
        f"Received: from {helo} ([{_clean(sub.client_address)}])\r\n"
        f"\tby {hostname} (Safeguard Gateway) with {protocol} id {sub.queue_id}"
    )
    if len(sub.envelope_to) == 1:
        line += f"\r\n\tfor <{_clean(sub.envelope_to[0])}>"
    line += f"; {format_datetime(sub.received_at)}\r\n"
    return line.encode("ascii", "replace")


def check_result(
    verdict: Verdict, explained: tuple[Explained, ...], *, sender_facing: bool
) -> dict[str, Any]:
    """The object `safeguard check --json` prints and the HTTP API answers with.

    `sender_facing` (the HTTP API: a chat tool shows it to the person writing): findings of
    urgent rules are left out, and the verdict is what the others make it, as in the mail a
    sender gets (`Pipeline._plan`). Otherwise `/api/v1/check` would tell anyone which words the
    lead watches for, without the lead hearing of it. The archive and the lead's alert keep
    them."""
    if sender_facing:
        explained = told_to_sender(explained)
        action = strongest(tuple(e.finding for e in explained))
        verdict = replace(
            verdict,
            action=action,
            findings=tuple(e.finding for e in explained),
            deliver_at=verdict.deliver_at if action is Action.DEFER else None,
        )
    payload = verdict.as_dict()
    payload["findings"] = [e.as_dict() for e in explained]
    # In monitor mode nothing is blocked or held: the verdict is what enforcing would have
    # done, and a chat tool that reads `mode` sends as usual.
    payload["mode"] = "monitor" if verdict.monitor else "enforce"
    return payload


def unknown_participants(chat: ChatMessage, view: DirectoryView) -> list[str]:
    """The participants the directory does not list (sorted): no check knows their age, so
    none of the rules for young people applies to them. Every participant, when a chat tool
    sends its own user ids rather than the directory's addresses."""
    return sorted(p for p in chat.participants if not view.knows(p))


def told_to_sender(explained: tuple[Explained, ...]) -> tuple[Explained, ...]:
    """What the sender may hear of: not findings of urgent rules, which alert the safeguarding
    lead; a sender told which words were watched for could avoid them (tipping off)."""
    return tuple(e for e in explained if not e.rule.urgent)


def _one_line(explained: tuple[Explained, ...]) -> str:
    first = explained[0]
    text = f"{first.explanation} {first.correction}"
    more = f" (+{len(explained) - 1} more)" if len(explained) > 1 else ""
    return " ".join(text.split())[:400] + more


class Pipeline:
    def __init__(
        self,
        *,
        hostname: str,
        policy: Policy,
        directory: Callable[[], DirectoryView],
        templates: jinja2.Environment,
    ) -> None:
        self.hostname = hostname
        self.policy = policy
        self.directory = directory
        self.templates = templates
        self._rules = {rule.id: rule for rule in policy.pack.rules}

    def _colleague(self, view: DirectoryView, address: str) -> bool:
        """An address mass mail's rewrite leaves in sight: a member of staff on the
        organisation's own domains ("moving external addresses to BCC"), copied for
        accountability. Not a young person's school-domain account, nor a shared mailbox.
        `view`: the directory the message was judged against, not a newer one."""
        return self.organisation.is_internal(address) and view.staff_member(address) is not None

    @property
    def organisation(self):
        return self.policy.pack.organisation

    def sender_allowed(self, address: str, auth_user: str | None) -> bool:
        """Staff send as themselves; a trusted network only as the organisation's domains."""
        address = address.strip().lower()
        if auth_user is not None:
            return address == auth_user.lower()
        return address == "" or self.organisation.is_internal(address)

    def parse(self, sub: Submission) -> Message:
        try:
            return parse_message(
                sub.raw,
                envelope_from=sub.envelope_from,
                envelope_to=sub.envelope_to,
                sent_at=sub.received_at,
            )
        except MessageTooComplex as exc:
            raise SubmissionRefused(f"554 5.6.0 Message content rejected: {exc}") from None

    def evaluate(
        self, message: Message, raw: bytes, at: datetime, view: DirectoryView | None = None
    ) -> tuple[Verdict, tuple[Explained, ...]]:
        """`view`: the directory to judge against (the one now, if not given)."""
        # No exemption for the gateway's own notices (a header anyone can forge): they go to
        # staff, so they pass; and a null-sender message is never answered with another notice.
        verdict = self.policy.evaluate(message, view or self.directory(), at)
        # Every finding comes from one of the pack's rules (a crashed check included); worded
        # for who the message goes to (a parent already copied is not one to write to instead).
        receiving = [a.email for a in message.receiving]
        explained = tuple(
            explain(
                self.templates,
                f,
                self._rules[f.rule],
                self.organisation,
                verdict.action.value,
                receiving,
                message.channel,
            )
            for f in verdict.findings
        )
        return verdict, explained

    def prepare(self, sub: Submission) -> Prepared:
        message = self.parse(sub)
        header_from = message.sender.email if message.sender.email != message.envelope_from else ""
        if header_from and not self.sender_allowed(header_from, sub.auth_user):
            owner = sub.auth_user or "this network"
            raise SubmissionRefused(
                f"550 5.7.1 From: <{header_from}> is not an address {owner} may send as"
            )
        # One view of the directory for the whole message: the verdict, who stays in sight in
        # mass mail and the record agree even if the directory is replaced meanwhile.
        view = self.directory()
        verdict, explained = self.evaluate(message, sub.raw, sub.received_at, view)

        prefix = received_header(sub, self.hostname)
        message_id = message.message_id
        if message_id is None:
            # Submission servers add what a client left out (RFC 6409 §8); search needs an id.
            message_id = f"{sub.queue_id}@{self.hostname}"
            prefix += f"Message-ID: <{message_id}>\r\n".encode()
        if message.date is None:
            prefix += f"Date: {format_datetime(sub.received_at)}\r\n".encode()

        items, reply, stored_verdict = self._plan(sub, message, verdict, explained, prefix, view)
        record = self._record(
            sub,
            message,
            verdict,
            explained,
            view,
            stored_verdict=stored_verdict,
            message_id=message_id,
            # Only a client-supplied Message-ID identifies a resend of the same message.
            dedupe=message.message_id is not None,
        )
        return Prepared(record, tuple(items), reply)

    def check_chat(
        self, chat: ChatMessage
    ) -> tuple[Message, Verdict, tuple[Explained, ...], list[str]]:
        """A chat message judged as of its `sent_at`, exactly as mail to the same people, and
        the participants the directory it was judged against does not list."""
        view = self.directory()
        return *self._check_chat(chat, view), unknown_participants(chat, view)

    def _check_chat(
        self, chat: ChatMessage, view: DirectoryView
    ) -> tuple[Message, Verdict, tuple[Explained, ...]]:
        message = parse_chat(
            channel=chat.channel,
            sender=chat.sender,
            participants=chat.participants,
            text=chat.text,
            sent_at=chat.sent_at,
            message_id=chat.rfc822_id,
        )
        verdict, explained = self.evaluate(message, b"", chat.sent_at, view)
        return message, verdict, explained

    def prepare_chat(
        self,
        chat: ChatMessage,
        *,
        queue_id: str,
        received_at: datetime,
        client_address: str,
        auth_user: str,
    ) -> tuple[Prepared, Verdict, tuple[Explained, ...], list[str]]:
        """What `/api/v1/messages` commits: the message archived (a resend with the same
        channel, message id and content only once), and an alert to the safeguarding lead for
        an urgent finding. The chat tool delivers the message itself, so nothing else is
        queued; the API's answer says what the policy found, and which participants the
        directory does not list."""
        view = self.directory()
        message, verdict, explained = self._check_chat(chat, view)
        # The alert names it as the archive and the console do, and says when it was received
        # if the tool passed it on late (held during an outage): the console lists it by that.
        late = passed_on_late(chat.sent_at, received_at)
        items = self._alerts(
            message,
            verdict,
            explained,
            queue_id,
            chat.sent_at,
            subject=chat.subject,
            received=received_at if late else None,
        )
        sub = Submission(
            queue_id=queue_id,
            raw=chat.as_rfc822(),
            envelope_from=chat.sender,
            envelope_to=chat.participants,
            received_at=received_at,
            client_address=client_address,
            auth_user=auth_user,
        )
        record = self._record(
            sub,
            message,
            verdict,
            explained,
            view,
            stored_verdict=verdict.action.value,
            message_id=chat.rfc822_id,
            dedupe=True,
            dedupe_on=chat.dedupe_on,
            subject=chat.subject,
            conversation=chat.conversation,
        )
        unknown = unknown_participants(chat, view)
        return Prepared(record, tuple(items), ""), verdict, explained, unknown

    def _record(
        self,
        sub: Submission,
        message: Message,
        verdict: Verdict,
        explained: tuple[Explained, ...],
        view: DirectoryView,
        *,
        stored_verdict: str,
        message_id: str,
        dedupe: bool,
        dedupe_on: str | None = None,
        subject: str | None = None,
        conversation: str | None = None,
    ) -> ArchiveRecord:
        evaluation = {
            "pack": self.policy.pack.name,
            "evaluated": list(verdict.evaluated),
            "hits": list(verdict.hits),
            "deliver_at": verdict.deliver_at.isoformat() if verdict.deliver_at else None,
            "defects": list(message.defects),
        }
        if conversation is not None:
            evaluation["conversation"] = conversation
        return ArchiveRecord(
            queue_id=sub.queue_id,
            received_at=sub.received_at,
            raw=sub.raw,
            verdict=stored_verdict,
            channel=message.channel,
            client_address=sub.client_address,
            helo=sub.helo,
            auth_user=sub.auth_user,
            envelope_from=sub.envelope_from,
            envelope_to=sub.envelope_to,
            from_addr=message.sender.email,
            to_addrs=tuple(a.email for a in message.to),
            cc_addrs=tuple(a.email for a in message.cc),
            bcc_addrs=tuple(a.email for a in message.bcc),
            subject=message.subject if subject is None else subject,
            message_id=message_id,
            body_text="\n\n".join(filter(None, (message.new_text, message.alternative_text))),
            mode=self.policy.mode,
            findings=tuple(
                e.finding.as_dict()
                | {
                    "explanation": e.explanation,
                    "correction": e.correction,
                    # The console asks before telling the sender a held message was cancelled.
                    "urgent": e.rule.urgent,
                }
                for e in explained
            ),
            evaluation=evaluation,
            dedupe=dedupe,
            dedupe_on=dedupe_on,
            youngest_minor_born=youngest_minor_born(
                (
                    message.sender.email,
                    message.envelope_from,
                    *message.envelope_to,
                    *(a.email for a in message.recipients),
                ),
                view,
                sub.received_at.astimezone(self.organisation.timezone).date(),
            ),
        )

    def _alerts(
        self,
        message: Message,
        verdict: Verdict,
        explained: tuple[Explained, ...],
        queue_id: str,
        sent: datetime,
        *,
        subject: str | None = None,
        received: datetime | None = None,
    ) -> list[QueueItem]:
        """The safeguarding lead's alert, when a finding's rule is urgent (`dsl_alert`'s
        `subject` and `received`)."""
        org = self.organisation
        urgent = tuple(e for e in explained if e.rule.urgent)
        if not (urgent and org.dsl):
            return []
        return [
            QueueItem(
                kind="alert",
                mail_from="",
                recipients=org.dsl,
                content=dsl_alert(
                    self.templates,
                    hostname=self.hostname,
                    message=message,
                    explained=urgent,
                    org=org,
                    sent=sent,
                    queue_id=queue_id,
                    verdict=verdict,
                    subject=subject,
                    received=received,
                ),
            )
        ]

    def _plan(
        self,
        sub: Submission,
        message: Message,
        verdict: Verdict,
        explained: tuple[Explained, ...],
        prefix: bytes,
        view: DirectoryView,
    ) -> tuple[list[QueueItem], str, str]:
        """Queue entries and SMTP reply for a verdict. Monitor mode records, never enforces."""
        org = self.organisation
        accepted = f"250 2.0.0 Ok: queued as {sub.queue_id}"
        deliver = QueueItem(
            kind="deliver", mail_from=sub.envelope_from, recipients=sub.envelope_to, prefix=prefix
        )
        items = self._alerts(message, verdict, explained, sub.queue_id, sub.received_at)
        action = verdict.action
        if verdict.monitor:
            return [deliver, *items], accepted, action.value
        told = told_to_sender(explained)
        # A sender we cannot write to (outside the organisation, or the null sender) hears
        # "no" in the session; their own server tells them.
        can_notify = bool(sub.envelope_from) and org.is_internal(sub.envelope_from)
        if action is Action.REJECT:
            if org.reject_in_session or not can_notify:
                rejected = tuple(e for e in told if e.finding.action is Action.REJECT)
                raise_reply = f"550 5.7.1 {_one_line(rejected)}"
                return items, raise_reply, action.value
            items.append(
                QueueItem(
                    kind="bounce",
                    mail_from="",
                    recipients=(sub.envelope_from,),
                    content=policy_bounce(
                        self.templates,
                        hostname=self.hostname,
                        raw=sub.raw,
                        message=message,
                        explained=told,
                        org=org,
                        sent=sub.received_at,
                        colleague=partial(self._colleague, view),
                    ),
                )
            )
            return items, accepted, action.value
        content = None
        if any(e.finding.action is Action.REWRITE for e in explained):
            shown = partial(self._colleague, view)
            content = hide_recipients(
                sub.raw,
                keep_to=[a for a in message.to if shown(a.email)],
                keep_cc=[a for a in message.cc if shown(a.email)],
            )
        not_before = verdict.deliver_at if action is Action.DEFER else None
        items.insert(
            0,
            QueueItem(
                kind="deliver",
                mail_from=sub.envelope_from,
                recipients=sub.envelope_to,
                prefix=prefix,
                content=content,
                not_before=not_before,
            ),
        )
        notice = None
        changed = [e for e in told if e.finding.action is Action.REWRITE]
        if action is Action.REWRITE and changed and can_notify:
            notice = changed_notice(
                self.templates,
                hostname=self.hostname,
                message=message,
                explained=changed,
                org=org,
                sent=sub.received_at,
            )
        elif action is Action.DEFER and not_before is not None and can_notify:
            notice = deferral_notice(
                self.templates,
                hostname=self.hostname,
                message=message,
                explained=told,
                org=org,
                sent=sub.received_at,
                deliver_at=not_before,
                queue_id=sub.queue_id,
            )
        if notice is not None:  # to the sender, from the null sender: never answered
            items.append(
                QueueItem(
                    kind="notice", mail_from="", recipients=(sub.envelope_from,), content=notice
                )
            )
        return items, accepted, action.value
