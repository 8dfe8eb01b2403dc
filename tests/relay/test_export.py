"""Exports for a parent's request or an investigation: messages exactly as received, with a
manifest of hashes, a cover page for one person's history, and an audit row."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import mailbox
import re
import zipfile

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from tests.relay.test_relay import send
from tests.support import Sink


def _message(n: int, cc: str | None) -> bytes:
    lines = ["From: alex.teacher@safe.example", "To: sam.minor@home.example"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines += [
        f"Subject: Update {n}",
        f"Message-ID: <export-{n}@safe.example>",
        "",
        f"From the start: update number {n}.",
        ">From a quoted line",
        "Kind regards,",
        "Alex",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def archived(archived_gateway):
    _, config, sent = archived_gateway
    return config, sent


@pytest.fixture
def archived_gateway(start_gateway, sink: Sink, tmp_path):
    gateway = start_gateway()
    sent = {}
    for n in range(4):
        cc = "priya.shah@parents.example" if n % 2 == 0 else "jordan.ellis@safe.example"
        raw = _message(n, cc)
        send(gateway.port, raw, rcpts=["sam.minor@home.example", cc])
        sent[f"export-{n}@safe.example"] = raw
    sink.handler.wait_for(4)
    config = tmp_path / "export.toml"
    url = gateway.gateway.engine.url.render_as_string(hide_password=False)
    config.write_text(f'[database]\nurl = "{url}"\n')
    return gateway, config, sent


def _run(config, *args):
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_a_persons_whole_history_as_eml_zip_with_manifest_and_cover(archived, tmp_path):
    config, sent = archived
    out = tmp_path / "priya.zip"
    result = _run(
        config,
        "export",
        "--contact",
        "Priya.Shah@parents.example",
        "--format",
        "eml-zip",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "Exported 2 messages" in result.output
    assert f"SHA-256 of priya.zip: {hashlib.sha256(out.read_bytes()).hexdigest()}" in result.output
    with zipfile.ZipFile(out) as bundle:
        names = bundle.namelist()
        manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode())))
        assert json.loads(bundle.read("manifest.json"))[0]["sha256"] == manifest[0]["sha256"]
        cover = bundle.read("cover.html").decode()
        for row in manifest:
            raw = bundle.read(row["file"])
            assert hashlib.sha256(raw).hexdigest() == row["sha256"]
            assert raw in sent.values()  # exactly as received
    assert [r["subject"] for r in manifest] == ["Update 0", "Update 2"]  # oldest first
    assert "priya.shah@parents.example" in cover and "Update 2" in cover
    assert "messages/000001-" in names[0]


def test_mbox_export_round_trips_every_message(archived, tmp_path):
    config, sent = archived
    out = tmp_path / "sam.mbox"
    result = _run(config, "export", "to:sam.minor@home.example", "--format", "mbox", "-o", str(out))
    assert result.exit_code == 0, result.output
    box = mailbox.mbox(str(out))
    # mboxrd: a reader removes one ">" from every ">...From " line (Python's mailbox does not).
    got = [re.sub(rb"(?m)^>(>*From )", rb"\1", m.as_bytes()).replace(b"\n", b"\r\n") for m in box]
    box.close()
    assert len(got) == 4
    for message in got:
        assert message in sent.values()
    manifest = json.loads((tmp_path / "sam.mbox.manifest.json").read_text())
    assert len(manifest) == 4


def test_exporting_is_audited_and_needs_a_real_dsl_for_as(archived, tmp_path):
    config, _ = archived
    refused = _run(
        config,
        "export",
        "from:alex.teacher@safe.example",
        "--format",
        "mbox",
        "-o",
        str(tmp_path / "x.mbox"),
        "--as",
        "alex.teacher@safe.example",
    )
    assert refused.exit_code == 2
    assert "not a safeguarding lead" in refused.output
    assert not (tmp_path / "x.mbox").exists()
    _run(
        config,
        "export",
        "from:alex.teacher@safe.example",
        "--format",
        "mbox",
        "-o",
        str(tmp_path / "y.mbox"),
    )
    audit = _run(config, "audit", "--json")
    actions = [row["action"] for row in json.loads(audit.output)]
    assert actions[:2] == ["export", "export_refused"]


def test_an_existing_file_is_never_overwritten(archived, tmp_path):
    config, _ = archived
    out = tmp_path / "keep.mbox"
    out.write_text("precious")
    result = _run(config, "export", "verdict:deliver", "--format", "mbox", "-o", str(out))
    assert result.exit_code == 2 and out.read_text() == "precious"


def test_a_persons_history_covers_every_address_the_directory_has_for_them(
    start_gateway, sink: Sink, tmp_path
):
    """Mia writes from home and from school (two addresses on one contacts.csv row): asked
    for either address, her history holds the mail to both."""
    gateway = start_gateway()
    addresses = ["mia.jones@home.example", "mia.jones@pupils.school.example"]
    for n, address in enumerate(addresses):
        raw = (
            f"From: alex.teacher@safe.example\r\nTo: {address}\r\n"
            f"Cc: dave.jones@home.example\r\nSubject: To Mia {n}\r\n"
            f"Message-ID: <mia-{n}@safe.example>\r\n\r\nRoom 4.\r\nKind regards,\r\nAlex\r\n"
        ).encode()
        send(gateway.port, raw, rcpts=[address, "dave.jones@home.example"])
    other = (
        b"From: alex.teacher@safe.example\r\nTo: someone@else.example\r\n"
        b"Subject: Update for someone else\r\nMessage-ID: <other@safe.example>\r\n\r\nHi\r\n"
    )
    send(gateway.port, other, rcpts=["someone@else.example"])
    sink.handler.wait_for(3)
    config = tmp_path / "export.toml"
    url = gateway.gateway.engine.url.render_as_string(hide_password=False)
    config.write_text(f'[database]\nurl = "{url}"\n')
    out = tmp_path / "mia.zip"
    result = _run(
        config, "export", "--contact", addresses[1], "--format", "eml-zip", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "Exported 2 messages" in result.output
    with zipfile.ZipFile(out) as bundle:
        cover = bundle.read("cover.html").decode()
    assert addresses[0] in cover and addresses[1] in cover
    narrowed = _run(
        config,
        "export",
        "--contact",
        addresses[0],
        "subject:1",
        "--format",
        "eml-zip",
        "-o",
        str(tmp_path / "one.zip"),
    )
    assert "Exported 1 message " in narrowed.output
    # An OR in QUERY stays inside its own brackets: it narrows Mia's history, never widens it
    # to other people's mail.
    widened = _run(
        config,
        "export",
        "--contact",
        addresses[0],
        "OR",
        "subject:Update",
        "--format",
        "eml-zip",
        "-o",
        str(tmp_path / "or.zip"),
    )
    assert "someone" not in widened.output
    if widened.exit_code == 0:
        with zipfile.ZipFile(tmp_path / "or.zip") as bundle:
            assert len(json.loads(bundle.read("manifest.json"))) <= 2
    else:
        assert widened.exit_code == 2 and "query" in widened.output
    bad = _run(config, "export", "--contact", "mia jones@x", "--format", "mbox", "-o", "x")
    assert bad.exit_code == 2 and "is not an e-mail address" in bad.output


def _all_delivered(engine) -> bool:
    from sqlalchemy import select

    from gateway.store.schema import queue

    with engine.connect() as conn:
        states = conn.execute(select(queue.c.status).where(queue.c.kind == "deliver")).scalars()
        return all(state == "delivered" for state in states)


def _review_first_message(engine, note: str) -> None:
    from datetime import UTC, datetime

    from gateway.store.messages import archive_id_for
    from gateway.store.reviews import ReviewStore

    archive_id = archive_id_for(engine, _queue_ids(engine)[0])
    ReviewStore(engine).add(
        archive_id,
        reviewer="dana.lee@safe.example",
        outcome="escalated",
        note=note,
        at=datetime(2026, 12, 7, 15, 30, tzinfo=UTC),
    )


def _queue_ids(engine) -> list[str]:
    from sqlalchemy import select

    from gateway.store.schema import archive

    with engine.connect() as conn:
        return list(conn.execute(select(archive.c.queue_id).order_by(archive.c.id)).scalars())


@pytest.fixture
def referral(archived_gateway):
    """The archive of `archived`, its deliveries recorded, and the first message reviewed."""
    import time

    gateway, config, sent = archived_gateway
    engine = gateway.gateway.engine
    deadline = time.monotonic() + 10
    while not _all_delivered(engine):
        assert time.monotonic() < deadline, "deliveries not recorded"
        time.sleep(0.05)
    _review_first_message(engine, "Spoke to Sam's mother; LADO informed")
    return config, sent


def _export_sam(config, out, *extra):
    result = _run(
        config, "export", "--contact", "sam.minor@home.example", "--format", "eml-zip",
        "-o", str(out), *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as bundle:
        manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode())))
        return manifest, bundle.read("cover.html").decode()


def test_a_referral_export_says_whether_each_message_reached_the_child_and_carries_the_reviews(
    referral, tmp_path
):
    """A review of the export for a referral: it lacked "the lead's review notes and
    escalation; whether the message reached the child; the console's wording instead of raw
    codes; local times (it gives UTC)"."""
    config, _ = referral
    manifest, cover = _export_sam(config, tmp_path / "referral.zip", "--with-reviews")
    assert len(manifest) == 4
    assert all(row["outcome"].startswith("Delivered ") for row in manifest)
    assert all(re.fullmatch(r"\d\d \w{3} \d{4} \d\d:\d\d", row["date_local"]) for row in manifest)
    assert manifest[0]["reviews"] == (
        "07 Dec 2026 15:30 dana.lee@safe.example: Concern — escalated: "
        "Spoke to Sam's mother; LADO informed"
    )
    assert [row["reviews"] for row in manifest[1:]] == ["", "", ""]
    assert "What became of it" in cover and "Delivered " in cover
    assert "Concern — escalated" in cover and "LADO informed" in cover
    assert (
        "Europe/London" in cover
        and "reviews of these messages, and their notes, are included" in cover
    )
    assert "<td>Sent, nothing found<" in cover and "<td>deliver" not in cover  # not codes


def test_an_export_for_the_family_leaves_the_leads_reviews_out_and_says_so(referral, tmp_path):
    config, _ = referral
    manifest, cover = _export_sam(config, tmp_path / "family.zip")
    assert [row["reviews"] for row in manifest] == ["", "", "", ""]
    assert "LADO" not in cover and "escalated" not in cover
    assert "reviews and notes are not included in this export" in cover
    # Without the watch list's findings "nothing found" could be false: every one is "Sent".
    assert "<td>Sent<" in cover and "nothing found" not in cover
    audit = json.loads(_run(config, "audit", "--json").output)
    assert audit[0]["action"] == "export" and audit[0]["detail"]["reviews"] is False


@pytest.mark.parametrize(
    ("verdict", "entries", "said"),
    [
        ("reject", [], "Refused: not sent (its sender was told why)"),
        ("deliver", [("delivered", 0)], "Delivered 07 Dec 2026 09:05"),
        ("defer", [("queued", 600)], "Waiting until 07 Dec 2026 09:10"),
        ("defer", [("cancelled", 600)], "Cancelled 07 Dec 2026 09:05, never sent"),
        ("flag", [("failed", 0)], "Could not be delivered (07 Dec 2026 09:05)"),
        (
            "deliver",
            [("delivered", 0), ("queued", 0)],
            "Delivered 07 Dec 2026 09:05 (to a@x.example); waiting to be sent (to a@x.example)",
        ),
        ("deliver", [], "No delivery recorded"),
        # Monitor mode: the policy would have refused it, and it was delivered all the same.
        ("reject", [("delivered", 0)], "Delivered 07 Dec 2026 09:05"),
    ],
)
def test_an_export_says_what_became_of_each_message(verdict, entries, said):
    """Whether the message reached the child, in the console's words and local time."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from gateway.export import outcome

    created = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    rows = [
        SimpleNamespace(
            status=status,
            recipients=["a@x.example"],
            created_at=created,
            next_attempt_at=created + timedelta(seconds=later),
            finished_at=created + timedelta(minutes=5),
            last_error=None,
        )
        for status, later in entries
    ]
    assert outcome(verdict, rows, ZoneInfo("Europe/London")) == said


def test_an_option_after_the_double_dash_is_refused_not_exported_as_words(archived, tmp_path):
    """After `--` every word is the query: `--as` there would export as the local user."""
    config, _ = archived
    out = tmp_path / "x.mbox"
    result = _run(
        config, "export", "--format", "mbox", "-o", str(out), "--",
        "-flag:no_consent", "--as", "dana.lee@safe.example",
    )  # fmt: skip
    assert result.exit_code == 2 and not out.exists()
    assert "--as after -- is read as words of the query" in result.output


def test_a_mistyped_contact_is_not_reported_as_a_history_with_no_messages(archived, tmp_path):
    """A review: `export --contact sam.minr@...` said "Exported 0 messages", exit 0, and a
    typo in a subject access request looked like a child with no mail."""
    config, _ = archived
    out = tmp_path / "typo.zip"
    result = _run(
        config, "export", "--contact", "sam.minr@home.example", "--format", "eml-zip",
        "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0
    assert "sam.minr@home.example is not in the directory and no archived message" in (
        result.output
    )


def test_the_audit_log_says_which_export_carried_the_leads_notes(referral, tmp_path):
    config, _ = referral
    _export_sam(config, tmp_path / "with.zip", "--with-reviews")
    _export_sam(config, tmp_path / "without.zip")
    lines = _run(config, "audit", "--action", "export").output.splitlines()[1:]
    assert [line.endswith("[with the leads' reviews and notes]") for line in lines] == [
        False,
        True,
    ]


def test_a_chat_message_is_said_to_be_sent_by_the_chat_tool():
    from zoneinfo import ZoneInfo

    from gateway.export import outcome

    said = outcome("flag", [], ZoneInfo("Europe/London"), channel="teams")
    assert said == "The gateway told the chat tool it may send it, so it has most likely been sent."
    # A review: one the tool was told not to send read as if it had gone out.
    refused = outcome("reject", [], ZoneInfo("Europe/London"), channel="teams")
    assert refused == (
        "The gateway told the chat tool not to send it; the chat tool may have sent it anyway."
    )


def test_an_export_without_the_leads_notes_leaves_the_watch_list_out(
    start_gateway, sink: Sink, tmp_path
):
    """A member of staff's subject access request is answered without the leads' notes: it
    must not tell them that the watch list caught them ("a sender shown which words are
    watched for could avoid them"); the referral's export keeps every finding."""
    # Open every day: sent after 18:00 (or on a bank holiday) it would be out of hours too.
    always = "Mon-Sun 00:00-24:00"
    gateway = start_gateway(
        policy={"pack": "default"},
        organisation={"domains": ["safe.example"], "office_hours": always, "bank_holidays": ""},
    )
    config = tmp_path / "export.toml"
    url = gateway.gateway.engine.url.render_as_string(hide_password=False)
    config.write_text(f'[database]\nurl = "{url}"\n[policy]\npack = "default"\n')
    secret = (
        b"From: alex.teacher@safe.example\r\nTo: sam.minor@home.example\r\n"
        b"Cc: priya.shah@parents.example\r\nSubject: Trip\r\n"
        b"Message-ID: <export-secret@safe.example>\r\n\r\n"
        b"Hi Sam,\r\n\r\nKeep this our little secret, don't tell your parents.\r\n\r\n"
        b"Kind regards,\r\nAlex\r\n"
    )
    send(gateway.port, secret, rcpts=["sam.minor@home.example", "priya.shah@parents.example"])
    sink.handler.wait_for(2)  # the message, and the lead's alert
    rows = {}
    for notes in (False, True):
        out = tmp_path / f"sam-{notes}.zip"
        extra = ("--with-reviews",) if notes else ()
        manifest, cover = _export_sam(config, out, *extra)
        [rows[notes]] = [r for r in manifest if r["subject"] == "Trip"]
        assert ("Risk language" in cover) is notes
        # A review: the family's copy said "Sent, nothing found" of the grooming message.
        assert ("nothing found" in cover) is False
        # The pack's organisation name, as the console gives it, when the site sets none.
        assert '<p class="meta">Safeguard Gateway baseline · every message' in cover
    assert rows[True]["verdict"] == "flag" and "risk_language" in rows[True]["findings"]
    assert rows[False]["verdict"] == "deliver" and "risk_language" not in rows[False]["findings"]


def test_an_export_names_a_recipient_upstream_refused():
    """Whether the child received it: a delivery that reached the parent and was refused for
    the child says so, whether refused at once (the entry keeps the error) or after a retry
    (the entry kept only those still to try)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from gateway.export import outcome

    at = datetime(2026, 12, 7, 9, 5, tzinfo=UTC)
    both = ("sam.minor@home.example", "priya.shah@parents.example")
    refused_at_once = SimpleNamespace(
        status="delivered",
        recipients=list(both),
        created_at=at,
        next_attempt_at=at,
        finished_at=at,
        last_error="sam.minor@home.example: 550 5.1.1 no such user",
    )
    said = outcome("deliver", [refused_at_once], ZoneInfo("Europe/London"), envelope_to=both)
    assert said == (
        "Delivered 07 Dec 2026 09:05, refused for some: "
        "sam.minor@home.example: 550 5.1.1 no such user"
    )
    after_a_retry = SimpleNamespace(
        status="delivered",
        recipients=["priya.shah@parents.example"],
        created_at=at,
        next_attempt_at=at,
        finished_at=at,
        last_error=None,
    )
    said = outcome("deliver", [after_a_retry], ZoneInfo("Europe/London"), envelope_to=both)
    assert said == (
        "Delivered 07 Dec 2026 09:05; not delivered to sam.minor@home.example (refused upstream)"
    )


def test_a_chat_message_the_tool_was_told_not_to_send_is_not_called_refused_on_the_cover():
    """A review: the console says "Chat tool told not to send" (the child may have received
    it all the same), while the export's cover still said "Refused"."""
    from datetime import UTC, datetime

    from gateway.export import cover_page
    from gateway.notify.render import make_environment

    row = {
        "date_local": "01 Dec 2026 10:00",
        "from": "alex.teacher@safe.example",
        "to": "sam.minor@home.example",
        "cc": "",
        "subject": "whatsapp message in conversation c-9",
        "verdict": "reject",
        "findings": "",
        "sha256": "0" * 64,
        "outcome": "The gateway told the chat tool not to send it.",
        "reviews": "",
        "channel": "whatsapp",
    }
    for with_reviews in (True, False):
        page = cover_page(
            make_environment(),
            contact="sam.minor@home.example",
            name="Sam Taylor",
            organisation="Safe Example",
            exported_by="dana.lee@safe.example",
            at=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
            query="contact:sam.minor@home.example",
            with_reviews=with_reviews,
        )([row])
        assert "<td>Chat tool told not to send" in page and "Refused" not in page
