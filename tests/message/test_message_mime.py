"""Body text and attachments from MIME structures."""

from __future__ import annotations

import base64
import sys
from concurrent.futures import ThreadPoolExecutor

from gateway.message import Attachment
from gateway.message.text import crude_html_text, html_to_text
from tests.message.support import parse

PDF = base64.b64encode(b"%PDF-1.4 fake" * 10).decode()
PNG = base64.b64encode(b"\x89PNG fake").decode()
SWITCH_INTERVAL = sys.getswitchinterval()


def test_alternative_prefers_plain_text() -> None:
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Content-Type: multipart/alternative; boundary="alt"

        --alt
        Content-Type: text/plain; charset=utf-8

        Plain words.
        --alt
        Content-Type: text/html; charset=utf-8

        <p>HTML words.</p>
        --alt--
        """
    )
    assert message.new_text == "Plain words."
    assert message.attachments == ()
    # What the HTML says and the plain part does not is kept for the checks: clients show it.
    assert message.alternative_text == "HTML words."


def test_html_only_mail_is_converted() -> None:
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Content-Type: text/html; charset=utf-8

        <html><head><style>p { color: red }</style></head><body>
        <p>Hello <b>Bob</b>,</p><p>see you &amp; the team at 4.</p>
        </body></html>
        """
    )
    assert message.new_text == "Hello Bob,\n\nsee you & the team at 4."
    assert message.defects == ()


def test_html_reply_blockquote_is_quoted() -> None:
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Content-Type: text/html; charset=utf-8

        <div>Yes, 4pm.</div>
        <div class="gmail_quote">On Mon, 4 Mar 2024 at 08:12, Bob &lt;bob@example.org&gt; wrote:<br>
        <blockquote class="gmail_quote">Can we meet at 4pm?<br>Bob</blockquote></div>
        """
    )
    assert message.new_text == "Yes, 4pm."
    assert message.quoted_text == (
        "On Mon, 4 Mar 2024 at 08:12, Bob <bob@example.org> wrote:\n> Can we meet at 4pm?\n> Bob"
    )


def test_html_nested_beyond_the_parser_depth_is_not_lost() -> None:
    # libxml2 drops text nested more than 255 elements deep; a browser would show it.
    hidden = "meet me after school " * 20
    message = parse(
        "From: alice@example.org\nContent-Type: text/html\n\n" + "<div>" * 400 + hidden + "\n"
    )
    assert "meet me after school" in message.new_text
    assert "HTML body only partly convertible; tags stripped instead" in message.defects


def test_attachments_are_listed_with_decoded_size() -> None:
    message = parse(
        f"""
        From: alice@example.org
        To: bob@example.org
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: multipart/related; boundary="rel"

        --rel
        Content-Type: text/html; charset=utf-8

        <p>Photo below</p><img src="cid:p1">
        --rel
        Content-Type: image/png
        Content-ID: <p1>
        Content-Transfer-Encoding: base64

        {PNG}
        --rel--
        --mix
        Content-Type: application/pdf; name="kit list.pdf"
        Content-Disposition: attachment; filename="kit list.pdf"
        Content-Transfer-Encoding: base64

        {PDF}
        --mix
        Content-Type: text/plain; charset=utf-8
        Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.txt

        not body text
        --mix
        Content-Type: text/calendar; charset=utf-8
        Content-Disposition: attachment; filename="=?utf-8?q?tr=C3=AFp?=.ics"

        BEGIN:VCALENDAR
        --mix--
        """
    )
    assert message.new_text == "Photo below"
    assert message.attachments == (
        Attachment(None, "image/png", len(b"\x89PNG fake")),
        Attachment("kit list.pdf", "application/pdf", len(b"%PDF-1.4 fake" * 10)),
        Attachment("café.txt", "text/plain", len(b"not body text")),
        Attachment("trïp.ics", "text/calendar", len(b"BEGIN:VCALENDAR")),
    )
    assert message.defects == ()


def test_every_inline_text_part_of_a_mixed_message_is_body_text() -> None:
    # Mail readers show inline parts one after another; so must the checks see them.
    message = parse(
        """
        From: alice@example.org
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: text/plain

        First part.
        --mix
        Content-Type: image/jpeg
        Content-Disposition: inline

        xxxx
        --mix
        Content-Type: text/plain
        Content-Disposition: inline

        Second part.
        --mix--
        """
    )
    assert message.new_text == "First part.\n\nSecond part."
    assert [a.content_type for a in message.attachments] == ["image/jpeg"]


def test_forwarded_message_goes_to_quoted_text() -> None:
    message = parse(
        f"""
        From: alice@example.org
        To: bob@example.org
        Subject: Fwd: kit
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: text/plain

        See the message below.
        --mix
        Content-Type: message/rfc822
        Content-Disposition: attachment; filename="kit.eml"

        From: Carol <carol@example.org>
        To: alice@example.org
        Subject: Kit list
        Date: Mon, 4 Mar 2024 08:00:00 +0000
        Content-Type: multipart/mixed; boundary="inner"

        --inner
        Content-Type: text/plain

        Boots and gloves.
        --inner
        Content-Type: application/pdf
        Content-Disposition: attachment; filename="list.pdf"
        Content-Transfer-Encoding: base64

        {PDF}
        --inner--
        --mix--
        """
    )
    assert message.new_text == "See the message below."
    assert message.quoted_text == (
        "From: Carol <carol@example.org>\n"
        "Date: Mon, 4 Mar 2024 08:00:00 +0000\n"
        "Subject: Kit list\n"
        "To: alice@example.org\n\n"
        "Boots and gloves."
    )
    kinds = [(a.filename, a.content_type) for a in message.attachments]
    assert kinds == [("kit.eml", "message/rfc822"), ("list.pdf", "application/pdf")]
    assert message.attachments[0].size > 100


def test_a_forwarded_messages_html_is_read_when_it_says_more() -> None:
    """What the HTML of a forwarded message says beyond its plain part is what the young
    person is shown: it is read with the forwarded text, not skipped."""
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Subject: Fwd: hello
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: text/plain

        Passing this on.
        --mix
        Content-Type: message/rfc822

        From: Carol <carol@example.org>
        Subject: hello
        Content-Type: multipart/alternative; boundary="alt"

        --alt
        Content-Type: text/plain

        Hello.
        --alt
        Content-Type: text/html

        <p>Hello. Don't tell your parents, it's our little secret.</p>
        --alt--
        --mix--
        """
    )
    assert "Hello." in message.quoted_text
    assert "our little secret" in message.quoted_text
    same = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Subject: Fwd: hello
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: message/rfc822

        From: Carol <carol@example.org>
        Content-Type: multipart/alternative; boundary="alt"

        --alt
        Content-Type: text/plain

        Hello there.
        --alt
        Content-Type: text/html

        <p>Hello <b>there</b>.</p>
        --alt--
        --mix--
        """
    )
    assert same.quoted_text.count("Hello") == 1  # an HTML saying the same is not read twice


def test_inline_forward_is_not_an_attachment() -> None:
    message = parse(
        """
        From: alice@example.org
        Content-Type: multipart/mixed; boundary="mix"

        --mix
        Content-Type: text/plain

        FYI
        --mix
        Content-Type: message/rfc822

        From: carol@example.org
        Subject: hello

        Forwarded words.
        --mix--
        """
    )
    assert message.new_text == "FYI"
    assert message.quoted_text.endswith("Forwarded words.")
    assert message.attachments == ()


def test_charsets_and_transfer_encodings() -> None:
    latin = parse(
        b"From: a@example.org\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait=\r\n ok\r\n"
    )
    assert latin.new_text == "Café au lait ok"
    undeclared = parse(b"From: a@example.org\r\n\r\nna\xc3\xafve\r\n")
    assert undeclared.new_text == "naïve"
    assert undeclared.defects == ()
    mislabelled = parse(
        b"From: a@example.org\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        b"na\xc3\xafve caf\xe9\r\n"
    )
    assert mislabelled.new_text == "naÃ¯ve café"  # not UTF-8 as a whole: Windows-1252
    b64 = parse(
        b"From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode("žluťoučký".encode())
    )
    assert b64.new_text == "žluťoučký"


def test_single_part_non_text_message_is_an_attachment() -> None:
    message = parse(
        f"""
        From: alice@example.org
        Content-Type: application/pdf
        Content-Transfer-Encoding: base64

        {PDF}
        """
    )
    assert message.new_text == ""
    assert message.attachments == (Attachment(None, "application/pdf", len(b"%PDF-1.4 fake" * 10)),)


def test_html_conversion_is_thread_safe() -> None:
    # Parsing runs in a thread pool. inscriptis' default profile shares one "body" element
    # whose output canvas threads overwrite (1 text in 2000 came out wrong, measured).
    sys.setswitchinterval(1e-6)
    try:
        documents = [f"document {i} text" for i in range(500)]
        with ThreadPoolExecutor(8) as pool:
            texts = list(pool.map(lambda html: html_to_text(html)[0], documents))
    finally:
        sys.setswitchinterval(SWITCH_INTERVAL)
    assert texts == documents


def test_an_outlook_html_part_saying_what_the_plain_part_says_leaves_nothing_over() -> None:
    # Outlook's style sheet and Office tags are layout, not words the reader sees.
    message = parse(
        """
        From: alice@example.org
        To: bob@example.org
        Content-Type: multipart/alternative; boundary="alt"

        --alt
        Content-Type: text/plain; charset=utf-8

        Hi Bob,
        See you at 4.
        --alt
        Content-Type: text/html; charset=utf-8

        <html><head><style>p.MsoNormal {margin:0cm}</style><!--[if gte mso 9]><xml>
        <o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]--></head>
        <body><p class=MsoNormal>Hi Bob,<o:p></o:p></p><p class=MsoNormal>See you at 4.</p>
        </body></html>
        --alt--
        """
    )
    assert message.alternative_text == ""
    # ... and the cheap comparison sees that without laying the HTML out (no "style>" left).
    assert crude_html_text("<style>p {}</style ><p>Hi Bob,</p>") == "Hi Bob,"


def test_a_layout_table_reads_cell_by_cell_not_line_by_line() -> None:
    # As a grid, "our little" and "secret" would sit on lines shared with the next column.
    text, _ = html_to_text(
        "<table><tr><td>Remember this is our little<br>secret, keep it<br>between us.</td>"
        "<td>Events:<br>Science club<br>Robotics</td></tr></table>"
    )
    assert text.split("\n") == [
        "Remember this is our little",
        "secret, keep it",
        "between us. Events:",
        "Science club",
        "Robotics",
    ]
