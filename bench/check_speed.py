"""How long the policy takes per message: parse + every rule of a pack, as `safeguard check`
and the relay run them. Target (issue 3): median under 5 ms over 1,000 varied messages.

    .venv/bin/python bench/check_speed.py [--pack teens-in-ai] [--messages 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from gateway.config import OrganisationSettings
from gateway.directory.csvfile import (
    DEMO_CONTACTS_CSV,
    DEMO_STAFF_CSV,
    read_contacts_csv,
    read_staff_csv,
)
from gateway.directory.model import DirectoryView
from gateway.message.parse import parse_message
from gateway.notify.render import make_environment
from gateway.pipeline import Pipeline
from gateway.policy.evaluate import Policy
from gateway.policy.pack import load_pack

OPENINGS = ["Hi {name},", "Dear {name},", "Hello {name}!", "{name} -"]
BODIES = [
    "The session moves to room 4 on Thursday. Please bring your laptop and charger.",
    "Thanks for your work on the project plan; the mentors were impressed.",
    "Here is the reading list for next week. Let me know if the links do not open.",
    "Please remember the permission slip for the museum visit on Friday at 10:30.",
    "Can you send me your homework photo by Monday? The upload page is on the portal.",
    "Great effort today, see you next week.",
]
CLOSINGS = [
    "Kind regards,\nAlex",
    "Best wishes,\nAlex Teacher",
    "Thanks!\nAlex x",
    "See you soon 😊",
    "Regards,\nAlex\nProgramme Lead\n0121 496 0000",
    "Cheers,\nAlex",
    "Love, Alex xx",
]
QUOTED = "\n\nOn Mon, 23 Nov 2026 at 09:12, {name} <{email}> wrote:\n> Thanks, see you then!\n> x"


def messages(count: int, view: DirectoryView, seed: int = 7) -> list[tuple[bytes, list[str]]]:
    rng = random.Random(seed)
    contacts = list(view.contacts)
    staff = [s.email for s in view.staff]
    out = []
    for n in range(count):
        group = rng.sample(contacts, k=rng.choice([1, 1, 1, 2, 6]))
        to = [c.email for c in group]
        cc = []
        if rng.random() < 0.6:
            cc += [g for c in group for g in c.guardian_emails][:2]
        if rng.random() < 0.5:
            cc.append(rng.choice(staff))
        name = group[0].name.split()[0]
        body = "\n\n".join(
            [rng.choice(OPENINGS).format(name=name), rng.choice(BODIES), rng.choice(CLOSINGS)]
        )
        if rng.random() < 0.4:
            body += QUOTED.format(name=group[0].name, email=group[0].email)
        headers = ["From: Alex Teacher <alex.teacher@safe.example>", f"To: {', '.join(to)}"]
        if cc:
            headers.append(f"Cc: {', '.join(cc)}")
        headers += [
            f"Subject: Message {n}",
            f"Message-ID: <bench-{n}@safe.example>",
            "Content-Type: text/plain; charset=utf-8",
        ]
        raw = ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n").encode()
        out.append((raw, to + cc))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack", default="teens-in-ai")
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    view = DirectoryView(
        read_contacts_csv(DEMO_CONTACTS_CSV, today=start.date()), read_staff_csv(DEMO_STAFF_CSV)
    )
    pack = load_pack(args.pack, site=OrganisationSettings(domains=("safe.example",)))
    pipeline = Pipeline(
        hostname="bench", policy=Policy(pack), directory=lambda: view, templates=make_environment()
    )
    corpus = messages(args.messages, view)
    for raw, rcpts in corpus[:50]:  # warm up: imports, regex caches, templates
        msg = parse_message(
            raw, envelope_from="alex.teacher@safe.example", envelope_to=rcpts, sent_at=start
        )
        pipeline.evaluate(msg, raw, start)
    timings, verdicts = [], {}
    for n, (raw, rcpts) in enumerate(corpus):
        at = start + timedelta(minutes=37 * n)  # spread over days, nights and weekends
        began = time.perf_counter()
        msg = parse_message(
            raw, envelope_from="alex.teacher@safe.example", envelope_to=rcpts, sent_at=at
        )
        verdict, _ = pipeline.evaluate(msg, raw, at)
        timings.append((time.perf_counter() - began) * 1000)
        verdicts[verdict.action.value] = verdicts.get(verdict.action.value, 0) + 1
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"pack {args.pack}: {len(timings)} messages, {len(pack.rules)} rules")
    print(f"median {statistics.median(timings):.3f} ms, p95 {p95:.3f} ms, max {timings[-1]:.3f} ms")
    print(f"verdicts: {dict(sorted(verdicts.items()))}")
    print("target: median < 5 ms:", "MET" if statistics.median(timings) < 5 else "NOT MET")


if __name__ == "__main__":
    main()
