"""The bounce a member of staff reads: rendered in a real browser, at desktop and phone width."""

from __future__ import annotations

import os
import shutil
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from gateway.notify.policy import policy_bounce
from tests.browser import browser_page
from tests.policy.harness import Draft, evaluate, pipeline

# `SAFEGUARD_SCREENSHOTS=1 make test` refreshes the README's picture.
README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "bounce.png"


@pytest.fixture
def bounce_html() -> str:
    draft = Draft(
        to=("sam.minor@home.example",),
        cc=("lee.mentor@teensinai.example",),
        body="Hi Sam,\n\nGreat work today! See you Thursday x\n\nAlex",
    )
    result = evaluate("teens-in-ai", draft)
    p = pipeline("teens-in-ai")
    report = policy_bounce(
        p.templates,
        hostname="gateway.test",
        raw=result.raw,
        message=result.message,
        explained=result.explained,
        org=p.organisation,
        sent=result.at,
    )
    parsed = message_from_bytes(report, policy=policy.default)
    html = next(part for part in parsed.walk() if part.get_content_type() == "text/html")
    return html.get_content()


@pytest.mark.parametrize("width", [1024, 375])
def test_the_html_bounce_renders_readably_at_desktop_and_phone_width(bounce_html, tmp_path, width):
    page_file = tmp_path / "bounce.html"
    page_file.write_text(bounce_html, encoding="utf-8")
    with browser_page(width=width) as page:
        page.goto(page_file.as_uri())
        # Nothing overflows sideways: no horizontal scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        card = page.evaluate("document.querySelector('body > div').getBoundingClientRect().width")
        assert 300 <= card <= 700
        text = page.inner_text("body")
        assert "Your message was not sent" in text
        assert "priya.shah@parents.example" in text
        assert "parents need to be copied at all times" in text
        shot = tmp_path / f"bounce-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if width == 1024 and os.environ.get("SAFEGUARD_SCREENSHOTS") == "1":
        README_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, README_SHOT)
