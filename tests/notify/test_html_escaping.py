"""HTML notices carry text from outside (subjects, names, addresses, a remote server's reply):
it is shown as text, never run as markup."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.export import cover_page
from gateway.notify.render import NOTICE_TEMPLATES, make_environment

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_every_html_notice_is_autoescaped():
    env = make_environment()
    html = [name for name in NOTICE_TEMPLATES if name.endswith(".html.j2")]
    assert html
    for name in [*html, "notices/export_cover.html.j2"]:
        assert env.get_template(name).environment.autoescape(name), name
    assert not env.autoescape("notices/policy_bounce.txt.j2")
    assert not env.autoescape("findings/missing_required_cc.j2")


def test_an_export_cover_shows_a_hostile_subject_as_text_and_runs_nothing():
    """The cover of a child's history is opened by a lead or an investigator: a subject a
    sender wrote must not run there (and the page allows no script at all)."""
    render = cover_page(
        make_environment(),
        contact="sam.minor@home.example",
        name="Sam <b>Taylor</b>",
        organisation="Safe Example",
        exported_by="dana.lee@safe.example",
        at=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
        query="contact:sam.minor@home.example",
    )
    page = render(
        [
            {
                "date": "2026-12-01T10:00:00+00:00",
                "from": "alex.teacher@safe.example",
                "to": "sam.minor@home.example",
                "cc": "",
                "subject": f"Hi {HOSTILE}",
                "verdict": "deliver",
                "findings": "risk_language",
                "sha256": "0" * 64,
                "date_local": "01 Dec 2026 10:00",
                "outcome": "Delivered 01 Dec 2026 10:00",
                "reviews": f"01 Dec 2026 11:00 dana.lee@safe.example: No concern: {HOSTILE}",
            }
        ]
    )
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
