"""Scenarios for policy tests: a pack, a directory in the pack's domain, a draft, a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

from gateway.directory.model import Contact, DirectoryView, StaffMember
from gateway.message.model import Message
from gateway.message.parse import parse_message
from gateway.notify.render import environment_for
from gateway.notify.wording import Explained
from gateway.pipeline import Pipeline
from gateway.policy.evaluate import Policy
from gateway.policy.pack import load_pack
from gateway.policy.types import Verdict

MONDAY_10AM = "2026-11-23T10:00:00"


def directory(domain: str) -> DirectoryView:
    """The same cast in every organisation's domain. Ages are as on 23 November 2026."""
    staff = [
        StaffMember(f"alex.teacher@{domain}", "Alex Teacher", 1, date(2027, 9, 1), True, False),
        StaffMember(f"lee.mentor@{domain}", "Lee Mentor", 2, date(2027, 6, 30), True, False),
        StaffMember(f"dana.lee@{domain}", "Dana Lee", 3, date(2027, 3, 31), True, True),
        StaffMember(f"chris.lapsed@{domain}", "Chris Lapsed", 2, date(2026, 1, 31), True, False),
        StaffMember(f"jamie.nodbs@{domain}", "Jamie Nodbs", 1, date(2027, 9, 1), False, False),
        StaffMember(f"tara.today@{domain}", "Tara Today", 2, date(2026, 11, 23), True, False),
    ]
    contacts = [
        Contact(
            ("sam.minor@home.example",),
            "Sam Taylor",
            date(2011, 5, 4),
            "participant",
            ("priya.shah@parents.example",),
            ("head@school.example",),
            True,
        ),
        Contact(
            ("wes.student@home.example",),
            "Wes Student",
            date(2010, 2, 1),
            "work_experience",
            ("w.parent@parents.example",),
            ("placements@school.example",),
            True,
        ),
        Contact(
            ("wendy.alone@home.example",),
            "Wendy Alone",
            date(2010, 3, 1),
            "work_experience",
            (),
            (),
            True,
        ),
        Contact(
            ("vic.volunteer@home.example",),
            "Vic Volunteer",
            date(2009, 8, 8),
            "volunteer",
            ("v.parent@parents.example",),
            (),
            True,
        ),
        Contact(
            ("nora.noconsent@home.example",),
            "Nora Noconsent",
            date(2012, 1, 1),
            "participant",
            ("n.parent@parents.example",),
            (),
            False,
        ),
        Contact(
            ("leo.birthday@home.example",),
            "Leo Bennett",
            date(2009, 1, 15),
            "participant",
            ("l.parent@parents.example",),
            (),
            True,
        ),
        Contact(
            ("ada.adult@home.example",), "Ada Adult", date(2000, 1, 1), "participant", (), (), False
        ),
        Contact(
            ("enq.student@home.example",),
            "Enid Enquirer",
            date(2010, 6, 1),
            "work_experience_enquiry",
            ("e.parent@parents.example",),
            (),
            True,
        ),
    ]
    return DirectoryView(contacts, staff)


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    explained: tuple[Explained, ...]
    message: Message
    raw: bytes
    at: datetime

    @property
    def action(self) -> str:
        return self.verdict.action.value

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.verdict.findings}

    @property
    def rules(self) -> set[str]:
        return {f.rule for f in self.verdict.findings}

    def text(self) -> str:
        return "\n".join(f"{e.explanation} {e.correction}" for e in self.explained)


@cache
def pipeline(pack: str) -> Pipeline:
    """The pack, the cast below, and the pack's own wording (`templates/packs/NAME/`), as the
    gateway loads them."""
    loaded = load_pack(pack)
    view = directory(loaded.organisation.domains[0])
    return Pipeline(
        hostname="gateway.test",
        policy=Policy(loaded),
        directory=lambda: view,
        templates=environment_for(pack),
    )


def domain(pack: str) -> str:
    return pipeline(pack).organisation.domains[0]


@dataclass(frozen=True)
class Draft:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    body: str = "Hi,\n\nThe session moves to room 4 on Thursday.\n\nKind regards,\nAlex"
    subject: str = "Thursday's session"
    sender: str = "alex.teacher@{domain}"
    at: str = MONDAY_10AM
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self, dom: str) -> bytes:
        lines = [f"From: {self.sender.format(domain=dom)}", f"To: {', '.join(self.to)}"]
        if self.cc:
            lines.append(f"Cc: {', '.join(self.cc)}")
        lines += [
            f"Subject: {self.subject}",
            "Message-ID: <draft@test>",
            "Content-Type: text/plain; charset=utf-8",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n" + self.body.replace("\n", "\r\n") + "\r\n").encode()


def evaluate(pack: str, draft: Draft) -> Result:
    p = pipeline(pack)
    dom = domain(pack)
    zone = p.organisation.timezone
    moment = datetime.fromisoformat(draft.at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    raw = draft.raw(dom)
    message = parse_message(
        raw,
        envelope_from=draft.sender.format(domain=dom),
        envelope_to=[*draft.to, *draft.cc, *draft.bcc],
        sent_at=moment,
    )
    verdict, explained = p.evaluate(message, raw, moment)
    return Result(verdict, explained, message, raw, moment)
