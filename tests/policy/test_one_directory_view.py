"""A message is judged against one view of the directory, from its verdict to its record."""

from __future__ import annotations

from datetime import datetime

from gateway.directory.model import DirectoryView
from gateway.notify.render import make_environment
from gateway.pipeline import Pipeline, Submission
from gateway.policy.evaluate import Policy
from gateway.policy.pack import load_pack
from tests.policy.harness import MONDAY_10AM, directory


def test_mass_mail_keeps_in_sight_the_staff_of_the_directory_it_was_judged_against():
    """Mass mail keeps staff visible ("by moving external addresses to BCC"): whether a
    colleague is staff is read from the same directory as the verdict, not from one imported
    while the message was being judged."""
    pack = load_pack("default")
    dom = pack.organisation.domains[0]
    judged = directory(dom)
    # The next import no longer lists the colleague as staff.
    newer = DirectoryView(judged.contacts, [])
    views = iter([judged])
    asked = []

    def current():
        asked.append(1)
        return next(views, newer)

    pipeline = Pipeline(
        hostname="gateway.test",
        policy=Policy(pack),
        directory=current,
        templates=make_environment(),
    )
    outside = [f"visitor{n}@elsewhere.example" for n in range(30)]
    colleague = f"lee.mentor@{dom}"
    raw = (
        f"From: alex.teacher@{dom}\r\nTo: {', '.join(outside)}\r\nCc: {colleague}\r\n"
        "Subject: Open day\r\nMessage-ID: <open-day@test>\r\n\r\n"
        "Hello all,\r\n\r\nThe open day is on Saturday.\r\n\r\nKind regards,\r\nAlex\r\n"
    ).encode()
    prepared = pipeline.prepare(
        Submission(
            queue_id="Q1",
            raw=raw,
            envelope_from=f"alex.teacher@{dom}",
            envelope_to=(*outside, colleague),
            received_at=datetime.fromisoformat(MONDAY_10AM).replace(
                tzinfo=pack.organisation.timezone
            ),
        )
    )
    assert len(asked) == 1
    [deliver] = [item for item in prepared.items if item.kind == "deliver"]
    assert deliver.content is not None
    headers = deliver.content.split(b"\r\n\r\n", 1)[0].decode()
    assert f"Cc: {colleague}" in headers
    assert "visitor0@elsewhere.example" not in headers
