"""informal_sign_off: the closing of a message to a young person must be professional.

Teens in AI: “Emails should be signed off in a professional manner, avoiding the use of emoji’s
or symbols such as ‘kisses’ (‘X’s)”. Thread and Press: “Emails and contact will be signed off in
an an appropriate and formal manner”. Brigantia: “Be careful in their communications with
children/young people so as to avoid any possible misinterpretation.”
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gateway.checks import informal_sign_off
from gateway.policy.types import Action, Finding
from tests.checks.conftest import (
    ADULT,
    GUARDIAN,
    MINOR,
    make_message,
    make_rule,
    parse_alternative,
    run,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "signoff_corpus.csv"
TEENS_IN_AI = (
    "Emails should be signed off in a professional manner, avoiding the use of emoji’s or "
    "symbols such as ‘kisses’ (‘X’s)"
)
THREAD_AND_PRESS = "Emails and contact will be signed off in an an appropriate and formal manner"


def rule(**settings):
    return make_rule(
        informal_sign_off, settings, policy=TEENS_IN_AI, rule_id="professional-sign-off"
    )


def findings(text: str, **kwargs) -> list[Finding]:
    return run(informal_sign_off, make_message(text, **kwargs), rule())


def fires(text: str, **kwargs) -> bool:
    return bool(findings(text, **kwargs))


# --- the corpus -----------------------------------------------------------------------------


def _corpus() -> list[tuple[str, bool, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        return [
            (row["text"].replace("\\n", "\n"), row["label"] == "informal", row["note"])
            for row in csv.DictReader(handle)
        ]


def test_the_sign_off_corpus_is_classified_with_precision_and_recall_of_at_least_95_percent():
    """Every labelled ending in tests/data/signoff_corpus.csv, as the closing of a mail to Sam."""
    rows = _corpus()
    assert len(rows) >= 200
    false_positives, false_negatives = [], []
    true_positives = 0
    for text, informal, note in rows:
        found = fires(text)
        if found and informal:
            true_positives += 1
        elif found:
            false_positives.append((text, note, findings(text)[0].params["words"]))
        elif informal:
            false_negatives.append((text, note))
    flagged = true_positives + len(false_positives)
    positives = true_positives + len(false_negatives)
    precision = true_positives / flagged if flagged else 0.0
    recall = true_positives / positives if positives else 0.0
    details = "\n".join(
        [f"precision {precision:.3f}, recall {recall:.3f}"]
        + [f"  false positive: {t!r} ({n}) words={w}" for t, n, w in false_positives]
        + [f"  false negative: {t!r} ({n})" for t, n in false_negatives]
    )
    assert precision >= 0.95 and recall >= 0.95, details


# --- the policy sentences ---------------------------------------------------------------------


def test_emails_should_be_signed_off_in_a_professional_manner_avoiding_emojis_or_kisses():
    """Teens in AI: “... avoiding the use of emoji’s or symbols such as ‘kisses’ (‘X’s)”."""
    message = make_message("Hi Sam,\n\nGreat session today.\n\nSee you Thursday,\nAlex x 😊")
    assert run(informal_sign_off, message, rule()) == [
        Finding(
            code="informal_sign_off",
            rule="professional-sign-off",
            action=Action.FLAG,
            recipient=MINOR,
            evidence="Alex x 😊",
            params={
                "words": ["😊", "x"],
                "line": "Alex x 😊",
                "young_person": {"name": "Sam Taylor", "email": MINOR, "category": "participant"},
                "young_people": [{"name": "Sam Taylor", "email": MINOR, "category": "participant"}],
            },
        )
    ]


@pytest.mark.parametrize(
    ("closing", "words"),
    [
        ("Thanks! x", ["x"]),
        ("Sam x", ["x"]),
        ("Love, Jo xx", ["Love", "xx"]),
        ("xoxo", ["xoxo"]),
        ("Thanks hun X", ["hun", "X"]),
        ("Lots of love,\nAuntie Sue", ["Lots of love"]),
        ("Big hugs,\nMia", ["Big hugs"]),
        ("See you at rehearsal :)", [":)"]),
        ("Well done ;)", [";)"]),
        ("Thanks <3", ["<3"]),
        ("Ha, brilliant :D", [":D"]),
        ("Have fun :P", [":P"]),
        ("Gotta run, ttyl!", ["ttyl"]),
        ("cya tomorrow!", ["cya"]),
        ("Luv Sam", ["Luv"]),
    ],
)
def test_emails_and_contact_will_be_signed_off_in_an_appropriate_and_formal_manner(closing, words):
    """Thread and Press: “Emails and contact will be signed off in an an appropriate and formal
    manner”: the notice names exactly the words to take out."""
    rule_ = make_rule(
        informal_sign_off, policy=THREAD_AND_PRESS, action=Action.REJECT, rule_id="formal-sign-off"
    )
    [finding] = run(
        informal_sign_off, make_message(f"Hi Sam,\n\nThanks for today.\n\n{closing}"), rule_
    )
    assert finding.action is Action.REJECT
    assert finding.params["words"] == words


@pytest.mark.parametrize(
    "closing",
    [
        "Kind regards,\nMax X. Smith",
        "Regards,\nXander",
        "Best,\nJ",
        "See you at 10:30",
        "Please drop it in Box X at reception.",
        "We'll meet in Room 4X.",
        "This applies to Year X only.",
        "Timesheet xlsx attached.",
        "Sent from my iPhone",
        "Many thanks\nMs X. Patel",
        "Regards,\nJ. X. Okafor",
        "Reading: The Autobiography of Malcolm X",
        "Tel: 0121 496 0000 x2231",
        "Anyone scoring <3 on the quiz should redo section 2.",
        "Kind regards,\nDan Lovett",
        "Regards,\nLove Okonkwo",
        "I'd love to hear your ideas.\nBest wishes,\nPriya",
        "Please print on cyan card.",
        "Regards,\nGrace Darling",
        "Part II, section IV (see Appendix X)",
        "Cheers!",
        "Regards,\nAlex\n© 2026 Youth Arts Trust",
    ],
)
def test_an_x_that_is_an_initial_a_label_or_a_code_is_not_a_kiss(closing):
    """The reading of “symbols such as ‘kisses’ (‘X’s)”: an X that is an initial or part of a
    name, room or form, times, labels and roman numerals are not informal."""
    assert not fires(f"Hi Sam,\n\nNotes from today are attached.\n\n{closing}")


def test_only_the_closing_lines_are_read_not_the_body():
    """A smiley in the body of a long mail is not the sign-off (the policy is about sign-off)."""
    text = (
        "Hi Sam,\n\nThe quiz answers are :) easy this week.\nBring a pencil.\nRoom 4 again.\n"
        "Bus at 9.\nBring lunch.\n\nKind regards,\nAlex"
    )
    assert not fires(text)


def test_a_kiss_in_quoted_text_does_not_fire():
    """Sam's own “Thanks x”, quoted back in a reply, is not how the sender signed off."""
    message = make_message(
        "Hi Sam,\n\nYes, Thursday is fine.\n\nKind regards,\nAlex",
        quoted="> Thanks so much! See you Thursday x\n> Sam",
    )
    assert run(informal_sign_off, message, rule()) == []


def test_the_signature_block_is_not_read_as_a_sign_off():
    """Phone and address lines after “-- ” are another check's business."""
    message = make_message(
        "Hi Sam,\n\nSee you Thursday.\n\nKind regards,\nAlex",
        signature="Alex Teacher\nRoom 4X, Studio X\nM: 07700 900461 x12",
    )
    assert run(informal_sign_off, message, rule()) == []


def test_a_message_to_an_adult_does_not_fire():
    """The policy is about emails to children and young people."""
    assert not fires("Hi Ada,\n\nLovely to see you.\n\nLove, Alex xx", to=(ADULT,), cc=())


def test_a_message_to_a_parent_only_does_not_fire():
    assert not fires("Hi Priya,\n\nSam did well.\n\nThanks x", to=(GUARDIAN,), cc=())


def test_a_sender_whose_name_is_love_is_not_signing_off_with_love():
    """Directory name check: a staff member called Love signs with her name."""
    message = make_message(
        "Hi Sam,\n\nSee you soon.\n\nBest wishes,\nLove Okonkwo",
        sender="love.okonkwo@youth.example",
        sender_name="",
    )
    assert run(informal_sign_off, message, rule()) == []


def test_extra_words_from_the_pack_are_informal_too():
    """`extra_words`: further closings an organisation treats as informal."""
    rule_ = make_rule(informal_sign_off, {"extra_words": ["laters", "peace out"]})
    [finding] = run(informal_sign_off, make_message("Hi Sam,\n\nDone!\n\nPeace out,\nAlex"), rule_)
    assert finding.params["words"] == ["Peace out"]
    assert run(informal_sign_off, make_message(), rule_) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"extra_word": ["laters"]}, "extra_word"),
        ({"extra_words": "laters"}, "extra_words"),
        ({"extra_words": [""]}, "extra_words"),
    ],
)
def test_bad_settings_name_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        informal_sign_off.parse_settings(settings)


def test_a_kiss_only_the_html_part_shows_fires():
    """Teens in AI: “... avoiding the use of emoji’s or symbols such as ‘kisses’ (‘X’s)”: the
    HTML is what most clients show, whatever the plain part says."""
    message = parse_alternative(
        "Hi Sam,\r\nGreat session today.\r\nAlex",
        "<p>Hi Sam,</p><p>Great session today.</p><p>Love Alex xx</p>",
    )
    [finding] = run(informal_sign_off, message, rule())
    assert finding.params["line"] == "Love Alex xx"


def test_an_html_part_closing_like_the_plain_part_does_not_fire():
    message = parse_alternative(
        "Hi Sam,\r\nGreat session today.\r\nKind regards,\r\nAlex",
        "<p>Hi Sam,</p><p>Great session today.</p><p>Kind regards,<br>Alex</p>",
    )
    assert run(informal_sign_off, message, rule()) == []


def test_emoji_only_the_html_part_shows_fire():
    """Teens in AI: “... avoiding the use of emoji’s ...”: an emoji is a difference too."""
    message = parse_alternative(
        "Hi Sam,\r\nGreat session today.\r\nAlex",
        "<p>Hi Sam,</p><p>Great session today.</p><p>Alex 😘😘</p>",
    )
    [finding] = run(informal_sign_off, message, rule())
    assert "😘" in finding.params["words"]


@pytest.mark.parametrize(
    ("text", "informal"),
    [
        ("Your print won first prize 🎉\n\nKind regards,\nAlex Teacher", False),
        ("Your print won first prize 🎉\nKind regards, Alex Teacher", False),
        ("Your print won first prize\n\nKind regards 😊\nAlex", True),
        ("See you Thursday 😊\nBest wishes,\nAlex x", True),
        ("Great work today x\n\nThanks,\nAlex", True),
    ],
)
def test_a_formal_closing_starts_the_sign_off(text, informal):
    """Thread and Press: “Emails and contact will be signed off in an appropriate and formal
    manner”. The sign-off is the closing and what follows it: an emoji in the message's last
    words above “Kind regards” is not an informal sign-off (a review found it refused). “Thanks”
    does not start a formal one."""
    assert fires(f"Hi Sam,\n\n{text}") is informal


@pytest.mark.parametrize(
    "text",
    [
        "Love you lots xx\nKind regards\nMr Smith",
        "Miss you loads hun xxx 😘😘\nBest wishes,\nAlex",
        "Love, Alex xx\nRegards",
        "See you Thursday babe xx\nregards to your mum\nAlex",
        "Can't wait 😘\nKind regards,\nAlex",
    ],
)
def test_kisses_endearments_and_hearts_above_a_formal_closing_still_count(text):
    """A review found these missed when everything above "Kind regards" was set aside: only an
    emoji ending the message's last words is, and not a kiss or a heart."""
    assert fires(f"Hi Sam,\n\n{text}")


@pytest.mark.parametrize(
    ("closing", "sender_name", "informal"),
    [
        ("Thanks,\nAlex X", "Alex Teacher", True),
        ("Kind regards,\nAlex X", "Alex Teacher", True),
        ("Kind regards,\nJo X", "Jo Xu", False),  # her initial
        ("Kind regards,\nSam X", "Alex Teacher", False),  # not the sender's name: an initial
        ("Reading: The Autobiography of Malcolm X", "Alex Teacher", False),
    ],
)
def test_a_capital_x_after_the_sender_s_own_name_is_a_kiss(closing, sender_name, informal):
    """“avoiding the use of emoji's or symbols such as 'kisses' ('X's)”: a review found
    "Thanks, Alex X" from Alex Teacher passed as if X were an initial. After the sender's own
    name, an X is an initial only if one of their other names starts with it."""
    text = f"Hi Sam,\n\nNotes from today are attached.\n\n{closing}"
    assert fires(text, sender_name=sender_name) is informal
