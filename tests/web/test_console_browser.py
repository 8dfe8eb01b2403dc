"""The console in headless Chromium (Debian's, driven by Playwright), as a safeguarding lead
uses it: sign in, search, open a message with its finding marked, review it, release held mail,
cancel held mail that alerted them without tipping off its sender,
export a young person's history; and a member of staff who is not a lead is turned away.

With SAFEGUARD_SCREENSHOTS=1 the screenshots go to docs/console/ (the README shows them);
otherwise to the test's temporary folder."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from tests.browser import browser_page
from tests.web.conftest import DSL, PARENT, PASSWORD, SAM, SATURDAY, TEACHER, Console
from tests.web.test_console import SECRECY, flagged

pytestmark = pytest.mark.slow
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = DOCS if os.environ.get("SAFEGUARD_SCREENSHOTS") == "1" else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/signin")
    page.get_by_label("Work e-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_safeguarding_lead_works_through_the_console(
    console: Console, shots: Path, tmp_path: Path
):
    archive_id = flagged(console)
    console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    console.clock.moment = SATURDAY  # the held message waits for Monday morning
    base = console.base
    with browser_page(1280, 900) as page:
        # A member of staff who is not a safeguarding lead is turned away, and told why.
        sign_in(page, base, TEACHER)
        assert "not a safeguarding lead" in page.get_by_role("alert").inner_text()
        page.screenshot(path=str(shots / "signin-refused.png"))

        sign_in(page, base, DSL)
        page.wait_for_url(base + "/review")
        assert page.get_by_role("heading", level=1).inner_text() == "Review queue"
        assert page.get_by_role("link", name="Room change").is_visible()
        page.screenshot(path=str(shots / "review-queue.png"), full_page=True)

        page.get_by_role("link", name="Search").click()
        page.get_by_label("Words, phrases or query").fill("room")
        page.get_by_label("Flag").select_option("informal_sign_off")
        page.get_by_role("button", name="Search").click()
        results = page.get_by_role("table")
        assert "Room change" in results.inner_text() and "Weekend" not in results.inner_text()
        page.screenshot(path=str(shots / "search.png"), full_page=True)

        page.get_by_role("link", name="Room change").click()
        page.wait_for_url(f"{base}/messages/{archive_id}")
        mark = page.locator('mark[data-code="informal_sign_off"]')
        assert mark.inner_text() == "See you there x" and mark.is_visible()
        page.screenshot(path=str(shots / "message.png"), full_page=True)

        # Escalated without a note: not saved, and said so beside the form, choice kept.
        page.get_by_label("Concern — escalated").check()
        page.get_by_role("button", name="Save review").click()
        assert "Say in the note" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("Concern — escalated").is_checked()
        page.get_by_label("No concern").check()
        page.get_by_label("Note").fill("Spoke to Alex: professional sign-offs only.")
        page.get_by_role("button", name="Save review").click()
        assert "Your review was saved" in page.get_by_role("status").inner_text()
        assert "Spoke to Alex" in page.locator("#reviews").inner_text()

        page.get_by_role("link", name="Held mail").click()
        assert page.get_by_role("link", name="Weekend").is_visible()
        page.screenshot(path=str(shots / "held.png"), full_page=True)
        page.get_by_role("button", name="Release now: Weekend").click()
        assert "Released" in page.get_by_role("status").inner_text()
        assert "No mail is held" in page.content()

        page.goto(f"{base}/contacts/{SAM}")
        assert page.get_by_role("heading", level=1).inner_text() == "Sam Taylor"
        page.screenshot(path=str(shots / "contact.png"), full_page=True)
        with page.expect_download() as info:
            page.get_by_role("button", name=re.compile("Export this person")).click()
        saved = tmp_path / "history.zip"
        info.value.save_as(saved)
        with zipfile.ZipFile(saved) as bundle:
            manifest = json.loads(bundle.read("manifest.json"))
            assert "cover.html" in bundle.namelist()
        assert len(manifest) == 2

        page.get_by_role("link", name="Audit log").click()
        assert "Exported" in page.get_by_role("table").inner_text()
        page.screenshot(path=str(shots / "audit.png"), full_page=True)

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r".*/signin$"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_lead_cancels_held_mail_that_alerted_them_and_its_sender_is_not_told(
    console: Console, shots: Path
):
    """ "The sender is not told of an urgent alert": on the message's page the box that would
    tell its sender starts unticked, says why, and a cancel leaves it so."""
    alerted = console.send(SATURDAY, to=[SAM], cc=[PARENT], subject="Secret", body=SECRECY)
    console.clock.moment = SATURDAY
    with browser_page(1280, 900) as page:
        sign_in(page, console.base, DSL)
        page.wait_for_url(console.base + "/review")
        page.goto(f"{console.base}/messages/{alerted}")
        box = page.get_by_label(f"Tell {TEACHER} it was not sent")
        assert not box.is_checked()
        assert "could tip off its sender" in page.locator(".held").inner_text()
        page.screenshot(path=str(shots / "held-alerted.png"), full_page=True)
        page.get_by_label(re.compile(r"^Note \(optional\)")).fill("Escalated to the LADO.")
        page.get_by_role("button", name="Cancel: do not send it").click()
        status = page.get_by_role("status").inner_text()
        assert "Cancelled" in status and "Its sender has not been told" in status
        assert "never sent" in page.content()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_page_works_from_the_keyboard_and_a_screen_reader(console: Console):
    """Each form field has a label a screen reader reads; the first Tab reaches "Skip to the
    content"; each page has one h1; and axe-core (the accessibility engine, WCAG 2.1 A and AA
    rules: labels, headings, landmarks, colour contrast) finds nothing on any page."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    archive_id = flagged(console)
    console.send(
        SATURDAY, to=[SAM], cc=[PARENT], subject="Weekend", body="Hi Sam,\n\nRoom 4 on Monday.\n"
    )
    # And one that alerted the lead: its "tell the sender" box starts unticked, with why.
    alerted = console.send(SATURDAY, to=[SAM], cc=[PARENT], subject="Secret", body=SECRECY)
    console.clock.moment = SATURDAY  # so that held mail has a row, with its buttons
    with browser_page() as page:
        sign_in(page, console.base, DSL)
        page.wait_for_url(console.base + "/review")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
        for path in (
            "/audit",
            "/review",
            "/search?q=room",
            f"/messages/{archive_id}",
            f"/messages/{alerted}",
            "/held",
            f"/contacts/{SAM}",
        ):
            page.goto(console.base + path)
            unlabelled = page.evaluate(
                """() => [...document.querySelectorAll('input, select, textarea')]
                    .filter(e => e.type !== 'hidden')
                    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                    .map(e => e.name)"""
            )
            assert unlabelled == [], path
            assert page.locator("h1").count() == 1, path
            found = axe.run(page, options={"runOnly": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]})
            problems = [
                (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
                for v in found.response["violations"]
            ]
            assert problems == [], path
        page.get_by_role("button", name="Sign out").click()  # to the sign-in page
        page.wait_for_url(re.compile(r".*/signin$"))
        rules = {"runOnly": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
        assert axe.run(page, options=rules).response["violations"] == []
        # The engine does run inside the console's Content-Security-Policy: a field without a
        # label, added here, is found.
        page.evaluate("document.querySelector('form').appendChild(document.createElement('input'))")
        found = axe.run(page, options=rules).response["violations"]
        assert [v["id"] for v in found] == ["label"]
