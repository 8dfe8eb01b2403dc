"""The console marks, in the message text, the passage each finding quotes (its evidence)."""

from __future__ import annotations

from gateway.web.highlight import find_marks, highlighted


def test_a_sign_off_line_is_marked_and_a_screen_reader_hears_why():
    text = "Hi Sam,\n\nSee you Thursday x\nAlex"
    marks = find_marks(text, [("informal_sign_off", "See you Thursday x")])
    shown = str(highlighted(text, marks))
    assert (
        '<mark class="finding" data-code="informal_sign_off">See you Thursday x</mark>'
        '<span class="visually-hidden"> (flagged: informal sign-off)</span>'
    ) in shown


def test_several_sign_off_lines_joined_by_a_slash_are_each_marked():
    text = "Love you lots\nthanks xx\nMiss B"
    marks = find_marks(text, [("informal_sign_off", "Love you lots / thanks xx")])
    assert [text[m.start : m.end] for m in marks] == ["Love you lots", "thanks xx"]


def test_evidence_is_found_whatever_its_line_breaks_and_case():
    text = "you can ring me on\n07700   900123 any time"
    marks = find_marks(text, [("personal_contact_details", "07700 900123")])
    assert [text[m.start : m.end] for m in marks] == ["07700   900123"]
    marks = find_marks("KEEP THIS BETWEEN US", [("risk_language", "keep this between us")])
    assert len(marks) == 1


def test_a_single_character_or_absent_evidence_marks_nothing():
    """A kiss 'x' alone would mark every x in the message; a sending time is not in the text."""
    text = "Next week: box sets and extra tax forms x"
    assert find_marks(text, [("informal_sign_off", "x"), ("out_of_hours", "Sunday 10:15")]) == []


def test_overlapping_evidence_is_one_mark_and_the_text_is_escaped():
    text = "<b>Hi</b> meet me alone after class"
    marks = find_marks(text, [("risk_language", "me alone"), ("risk_language", "alone after")])
    assert [text[m.start : m.end] for m in marks] == ["me alone after"]
    shown = str(highlighted(text, marks))
    assert shown.startswith("&lt;b&gt;Hi&lt;/b&gt; meet <mark") and "<b>" not in shown


def test_one_passage_quoted_by_two_findings_names_both_and_an_ellipsis_is_not_looked_for():
    text = "Text me on 07700 900123, just between us."
    marks = find_marks(
        text,
        [
            ("personal_contact_details", "07700 900123"),
            ("risk_language", "…me on 07700 900123, just"),
            ("risk_language", "just between us"),
        ],
    )
    assert [(text[m.start : m.end], m.codes) for m in marks] == [
        ("me on 07700 900123, just between us", ("risk_language", "personal_contact_details"))
    ]
    assert "(flagged: risk language, personal contact details)" in highlighted(text, marks)


def test_a_curly_apostrophe_in_the_text_matches_a_straight_one_in_the_phrase():
    marks = find_marks("Don’t tell your mum", [("risk_language", "don't tell")])
    assert len(marks) == 1


def test_every_finding_code_and_verdict_has_words_on_the_console():
    """The console shows people words, not codes, for every code a search can name."""
    from gateway.search.labels import FINDING_LABELS, VERDICT_LABELS
    from gateway.search.query import FINDING_CODES, VERDICTS

    assert set(FINDING_LABELS) == set(FINDING_CODES)
    assert set(VERDICT_LABELS) == set(VERDICTS)
