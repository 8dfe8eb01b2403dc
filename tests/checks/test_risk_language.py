"""risk_language: secrecy and grooming indicators, flagged to the safeguarding lead at once.

BMT: “When using Direct Messaging, do not say anything that you would not say in the open.”,
“Do not develop inappropriate relationships with children, young people and vulnerable
adults.”, “Do not make sarcastic, insensitive, derogatory or sexually suggestive comments or
gestures to or in front of children and young people.”, “Never be alone with child online.”
Brigantia: “Ensure that all communications are transparent and open to scrutiny.” Teens in AI:
“Should not communicate with young people via personal accounts or private messages.”,
“Staff and young people must not engage in ‘sexting’ or send pictures to anyone that are
obscene, indecent or menacing.”
"""

from __future__ import annotations

import dataclasses
import random
import re
import tomllib
from pathlib import Path

import pytest

from gateway.checks import risk_language
from gateway.checks._text import normalise, whole_words
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

ALL = [
    "secrecy",
    "meeting_alone",
    "private_channels",
    "photos",
    "gifts",
    "appearance",
    "relationship",
]
SAM = {"name": "Sam Taylor", "email": MINOR, "category": "participant"}
DM_IN_THE_OPEN = (
    "When using Direct Messaging, do not say anything that you would not say in the open."
)


def rule(categories=None):
    settings = {"categories": categories} if categories is not None else {}
    return make_rule(risk_language, settings, policy=DM_IN_THE_OPEN, rule_id="risk-language")


def categories_found(text: str, *, subject: str = "Thursday", **kwargs) -> list[str]:
    message = make_message(text, subject=subject, **kwargs)
    return [f.params["category"] for f in run(risk_language, message, rule())]


def test_when_using_direct_messaging_do_not_say_anything_you_would_not_say_in_the_open():
    """BMT: a request for secrecy is exactly what one would not say in the open. The finding
    quotes the passage with context and names the category for the safeguarding lead."""
    text = (
        "Hi Sam,\n\nGreat work at rehearsal today, you were brilliant on the solo. Don’t tell "
        "your   mum\nI said so, it's our little secret until the show.\n\nAlex"
    )
    message = make_message(text, channel="dm")
    [finding] = run(risk_language, message, rule(["secrecy", "photos"]))
    description = risk_language.load_categories()["secrecy"].description
    assert finding == Finding(
        code="risk_language",
        rule="risk-language",
        action=Action.FLAG,
        recipient=MINOR,
        evidence=(
            "…work at rehearsal today, you were brilliant on the solo. Don't tell your mum I "
            "said so, it's our little secret until the show."
        ),
        params={
            "category": "secrecy",
            "description": description,
            "phrase": "Don't tell your mum",
            "young_person": SAM,
            "young_people": [SAM],
        },
    )


@pytest.mark.parametrize(
    ("category", "sentence"),
    [
        ("secrecy", "Please delete our messages once you've read them, nobody needs to know."),
        ("meeting_alone", "Why not come round to mine after the session, just the two of us?"),
        ("private_channels", "It's easier to chat if you add me on Snapchat instead."),
        ("photos", "Send me a selfie in your new kit when you get home."),
        ("gifts", "I'll buy you a new phone if you keep up the practice."),
        ("appearance", "You looked gorgeous at the concert last night."),
        ("relationship", "You're so mature for your age, not like the others."),
        # Missed before a review of the packs read them out (2026-12-07).
        ("photos", "Could you send me some more pictures of yourself?"),
        ("photos", "Can you send a couple of pics of yourself"),
        ("secrecy", "Let's keep this chat between the two of us"),
        ("secrecy", "Delete this after reading, ok?"),
    ],
)
def test_each_category_fires_on_a_realistic_sentence(category, sentence):
    """Brigantia: “Ensure that all communications are transparent and open to scrutiny.” Each
    watch-list category, in a mail a DSL would want to see at once."""
    assert categories_found(f"Hi Sam,\n\n{sentence}\n\nAlex") == [category]


@pytest.mark.parametrize(
    "sentence",
    [
        "Please send me your homework photo by Friday.",
        "Send a photo of your artwork for the exhibition wall.",
        "Send me a photo you took of the exhibit.",
        "Follow us on Instagram for the gallery photos.",
        "We'll buy pizza for the whole group.",
        "Let me send you the link, and I'll get you the form tomorrow.",
        "The portrait looks stunning and your body of work is growing.",
        "Thinking of you and your family; we miss you at choir.",
        "If you received this in error, please delete this message and notify the sender.",
        "The minibus will pick you up at 9.",
        "Come in your pyjamas for the museum sleepover!",
        "Relax your lips on the mouthpiece; your body is your instrument.",
        "Our art-history talk visits the nudes gallery.",
        "If you're hot, open a window; you're pretty close to the fire exit.",
        "We use the WhatsApp group for trip updates.",
        "Your private lesson and one-to-one session are on Tuesday.",
        "Send me a couple of photos of your model for the display.",
        "Between the two of us we can finish the set by Friday.",
        "Please read this after reading the risk assessment.",
    ],
)
def test_the_false_positive_notes_legitimate_mail_does_not_fire(sentence):
    """The data file's false_positive_notes: ordinary teaching, museum and youth-work mail."""
    assert categories_found(f"Hi Sam,\n\n{sentence}\n\nKind regards,\nAlex") == []


def test_the_evidence_quotes_the_passage_in_its_paragraph_never_the_whole_body():
    """The alert goes to the DSL, not the archive: it quotes about 60 characters either side
    of the match, within the paragraph, and nothing from the paragraphs around it."""
    text = (
        "Hi Sam,\n\nThe answer to question 3 is 42.\n\nThis is our little secret, ok?\n\n"
        "The bus leaves at 9 from the front of the museum, so please be there by quarter to and "
        "bring a packed lunch.\n\nKind regards,\nAlex"
    )
    [finding] = run(risk_language, make_message(text), rule(["secrecy"]))
    assert finding.evidence == "This is our little secret, ok?"
    long = "word " * 40 + "our little secret " + "word " * 40
    [finding] = run(risk_language, make_message(long), rule(["secrecy"]))
    assert finding.evidence.startswith("…") and finding.evidence.endswith("…")
    assert 120 <= len(finding.evidence) <= 160


def test_phrases_read_whole_words_case_and_apostrophes_loosely():
    """Curly apostrophes read as straight, line breaks as spaces, and a missing apostrophe
    still matches; but a phrase inside a longer word does not."""
    assert categories_found("DONT TELL\nANYONE about this") == ["secrecy"]
    assert categories_found("Ask the darlingtons for the hunting horn.") == []


def test_the_subject_is_read_too():
    assert categories_found("See attached.", subject="our little secret") == ["secrecy"]


def test_one_finding_per_category_however_many_phrases_hit():
    text = "Don't tell anyone. Keep this between us. It's our secret. Send me a selfie."
    assert categories_found(text) == ["secrecy", "photos"]


def test_quoted_text_in_a_reply_does_not_fire():
    """A young person's own words quoted back must not raise an alert about the sender."""
    message = make_message(
        "Hi Sam,\n\nThat's fine, see you Thursday.\n\nAlex",
        quoted="> pls dont tell my mum I missed the bus, it's our little secret",
        is_reply=True,
    )
    assert run(risk_language, message, rule()) == []


def test_quote_marks_in_a_fresh_message_do_not_hide_the_senders_words():
    """Not a reply (no In-Reply-To or References): "> " lines are the sender's own text."""
    message = make_message(
        "Hi Sam,\n\nSee you Thursday.\n\nAlex",
        quoted="> don't tell your mum about our chats, it's our little secret",
    )
    assert [f.params["category"] for f in run(risk_language, message, rule())] == ["secrecy"]


def test_the_signature_and_disclaimer_block_is_not_read():
    message = make_message(
        "Hi Sam,\n\nSee you Thursday.\n\nAlex",
        signature="Alex Teacher\nPlease delete this email once you've read it if sent in error.",
    )
    assert run(risk_language, message, rule()) == []


def test_a_signature_disclaimer_paragraph_is_not_read_for_secrecy():
    """Confidentiality notices ("don't show this to anyone", "delete it") are boilerplate."""
    message = make_message(
        "Hi Sam,\n\nSee you Thursday.\n\nAlex",
        signature=(
            "Alex Teacher | Programme Lead\n\n"
            "This email and any attachments are confidential. If you are not the intended\n"
            "recipient, don't show this to anyone: delete it and tell the sender.\n\n"
            "Registered charity no. 1234567"
        ),
    )
    assert run(risk_language, message, rule()) == []


def test_text_below_a_signature_line_is_read():
    """Everything below a "-- " line is taken as the signature; writing there must not hide
    "it's our little secret" from the check, nor may a word like "confidential"."""
    for signature in (
        "Alex\n\nPS delete our messages tonight, it's our little secret x",
        "Alex\n\nPS keep this confidential, it's our little secret x",
        "Alex\nPS delete our messages tonight, it's our little secret x\nThis email is private.",
    ):
        message = make_message("Hi Sam,\n\nSee you Thursday.", signature=signature)
        hits = run(risk_language, message, rule())
        assert [f.params["category"] for f in hits] == ["secrecy"], signature


def test_a_disclaimer_paragraph_is_still_read_for_everything_but_secrecy():
    """Wording a paragraph like a notice hides no more than its secrecy phrases."""
    message = make_message(
        "Hi Sam,\n\nSee you Thursday.",
        signature=(
            "Alex\n\nIf you are not the intended recipient, delete this. "
            "Send me a selfie tonight, just for me."
        ),
    )
    assert [f.params["category"] for f in run(risk_language, message, rule())] == ["photos"]


def test_a_message_to_an_adult_does_not_fire():
    """The rules protect children and young people: mail to an adult is not scanned."""
    assert categories_found("Just between us, the budget is tight.", to=(ADULT,), cc=()) == []
    assert categories_found("Just between us, Sam did well.", to=(GUARDIAN,), cc=()) == []


def test_only_the_packs_categories_are_scanned():
    """Teens in AI's 'no-sexting' rule names photos and appearance only."""
    message = make_message("Don't tell anyone, but you look stunning. Send me a selfie!")
    hits = run(risk_language, message, rule(["photos", "appearance"]))
    assert [f.params["category"] for f in hits] == ["photos", "appearance"]


def test_every_category_of_the_data_file_is_known_and_compiles():
    assert sorted(risk_language.load_categories()) == sorted(ALL)


def test_an_unknown_category_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown category 'grooming'.*known: appearance"):
        risk_language.parse_settings({"categories": ["secrecy", "grooming"]})


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"category": ["secrecy"]}, "category"), ({"categories": "secrecy"}, "categories")],
)
def test_bad_settings_name_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        risk_language.parse_settings(settings)


def test_a_broken_data_file_is_reported_with_its_category(tmp_path: Path):
    bad = tmp_path / "risk_language.toml"
    bad.write_text(
        '[category.secrecy]\ndescription = "x"\nphrases = ["a"]\npatterns = ["(unclosed"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"\[category.secrecy\]: pattern '\(unclosed'"):
        risk_language.load_categories(bad)
    bad.write_text('[category.secrecy]\ndescription = "x"\nphrase = ["a"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown key"):
        risk_language.load_categories(bad)


def _plain_scan(category: str) -> re.Pattern[str]:
    """The reference reading of the data file: one case-insensitive search over the text."""
    raw = tomllib.loads(risk_language.DATA_FILE.read_text(encoding="utf-8"))["category"][category]
    phrases = whole_words(normalise(p).lower() for p in raw["phrases"])
    return re.compile("|".join([phrases, *(f"(?:{p})" for p in raw.get("patterns", []))]), re.I)


def _samples() -> list[str]:
    data = tomllib.loads(risk_language.DATA_FILE.read_text(encoding="utf-8"))["category"]
    around = [("Hi Sam, ", "."), ("(", ")"), ("“", "” she said"), ("😊", "!"), ("well-", "s ok")]
    samples = []
    for i, phrase in enumerate(p for c in data.values() for p in c["phrases"]):
        before, after = around[i % len(around)]
        text = phrase.replace("*", "mum")
        text = [text, text.upper(), text.replace("'", "’"), text.replace("'", "")][i % 4]
        samples.append(f"{before}{text}{after}")
    samples += [
        "what r u wearing tonight?",
        "is ur mum home tonight",
        "topup your phone",
        "I will buy you a drink",
        "carry on this chat on snap",
        "We really love you",
        "delete them once you've read them",
        "meet me alone after",
        "send some pics of yourself",
    ]
    return samples


def test_the_word_index_finds_exactly_what_a_plain_scan_of_the_data_finds():
    """Speed must not change the reading: for every phrase of the data file (in varied case,
    apostrophes and surroundings) the indexed search agrees with a plain regex scan."""
    categories = risk_language.load_categories()
    references = {name: _plain_scan(name) for name in categories}
    disagreements = []
    for sample in _samples():
        matching, split, words = risk_language.prepare(sample)
        for name, category in categories.items():
            indexed = category.search(matching, words, split) is not None
            plain = references[name].search(normalise(sample)) is not None
            if indexed != plain:
                disagreements.append((name, sample, indexed, plain))
    assert disagreements == []


def test_what_only_the_html_alternative_says_is_read_too():
    """Brigantia: “Ensure that all communications are transparent and open to scrutiny.” Most
    mail clients show the HTML part, so an innocent plain part cannot hide what it says."""
    message = parse_alternative(
        "Hi Sam,\r\nSee you on Thursday.\r\nAlex",
        "<p>Hi Sam,</p><p>See you on Thursday.</p>"
        "<p style='color:#fff'>Don't tell your mum, it's our little secret.</p><p>Alex</p>",
    )
    [finding] = run(risk_language, message, rule(["secrecy"]))
    assert "our little secret" in finding.evidence


def test_an_html_alternative_saying_what_the_plain_part_says_adds_nothing():
    """An ordinary client's two parts agree, and the young person's own words quoted in a
    reply's HTML are theirs, not the sender's."""
    message = parse_alternative(
        "Hi Sam,\r\nSee you on Thursday &  bring the form.\r\nAlex",
        "<html><head><style>p {margin:0}</style></head><body><p>Hi&nbsp;Sam,</p>"
        "<p>See you on <b>Thursday</b> &amp; bring the form.</p><p>Alex</p>"
        "<blockquote>Can I tell my mum about the secret party?</blockquote></body></html>",
        reply=True,
    )
    assert message.alternative_text == ""
    assert run(risk_language, message, rule()) == []


@pytest.mark.parametrize(
    "text",
    [
        "Remember: don't tell anyone your password, not even a friend.",
        "Do not tell anybody your PIN or your login.",
        "Everyone who completes the survey gets £5 phone credit.",
    ],
)
def test_e_safety_advice_and_survey_incentives_are_not_risk_language(text):
    """The data's false-positive notes: e-safety advice ('don't tell anyone your password')
    and an organisation's own incentives ('phone credit for the survey') are ordinary mail."""
    assert categories_found(text) == []


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Don't tell anyone, ok? See you Saturday.", "secrecy"),
        ("dont tell anyone about our chat", "secrecy"),
        ("Don't tell anyone your mum would be cross.", "secrecy"),
        ("I'll send you some phone credit tonight.", "gifts"),
        ("I'll top up your phone if you help me.", "gifts"),
    ],
)
def test_secrecy_and_personal_gifts_are_still_found(text, category):
    """Brigantia: “Ensure that all communications are transparent and open to scrutiny.”
    Narrowing the lists for advice and incentives must not open a gap."""
    assert category in categories_found(text)


def test_a_phrase_in_one_column_of_an_html_layout_is_found():
    """Brigantia: “Ensure that all communications are transparent and open to scrutiny.”
    Newsletter-style mail is laid out in tables; a phrase split over lines of one column must
    not be lost among the next column's lines."""
    message = parse_alternative(
        "",
        "<table><tr><td>Well done today.<br>This is our little<br>secret, ok?</td>"
        "<td>Events:<br>Science club<br>Robotics</td></tr></table>",
    )
    assert [f.params["category"] for f in run(risk_language, message, rule())] == ["secrecy"]


def test_the_same_words_reordered_in_the_plain_part_do_not_hide_the_html():
    """Brigantia: “Ensure that all communications are transparent and open to scrutiny.” A
    plain part holding the HTML's words in another order must not excuse what the HTML says."""
    message = parse_alternative(
        "Please tell your mum about the trip. Don't forget your kit.",
        "<p>Don't tell your mum about the trip.</p>",
    )
    assert [f.params["category"] for f in run(risk_language, message, rule())] == ["secrecy"]


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Don't tell anyone your pinky promise about us.", "secrecy"),
        ("Don't show your mum your login, ok?", "secrecy"),
        ("Don't tell anyone their password but tell me yours.", "secrecy"),
        ("Want me to get you phone credit?", "gifts"),
        ("I'll sort you out with some phone credit.", "gifts"),
        ("Here's £10 phone credit from me.", "gifts"),
    ],
)
def test_the_exceptions_for_advice_and_incentives_are_narrow(text, category):
    """Brigantia: “Ensure that all communications are transparent and open to scrutiny.” Only
    'don't tell anyone your password' (and the like) is advice; only an organisation's
    incentive is not a gift from the adult."""
    assert category in categories_found(text)


def test_skipping_phrases_whose_inner_words_are_absent_changes_no_match():
    """The index's second step (a phrase is only tried where the text holds its inner words)
    must find the same first match as trying every phrase at every first word. Texts are made
    of the data file's own words in varied spellings, so that most phrases nearly match."""
    categories = risk_language.load_categories()
    data = tomllib.loads(risk_language.DATA_FILE.read_text(encoding="utf-8"))["category"]
    vocabulary = sorted({w for c in data.values() for p in c["phrases"] for w in p.split()})
    vocabulary += ["you'll", "you're", "present,", "dont", "'cause", "e-mail", "(photo)", "x"]
    rng = random.Random(3)
    texts = [" ".join(rng.choices(vocabulary, k=rng.randint(2, 40))) for _ in range(3000)]
    texts += _samples()
    for text in texts:
        variant = [text, text.replace("'", "’"), text.replace("'", ""), text.upper()][len(text) % 4]
        matching, split, words = risk_language.prepare(variant)
        for category in categories.values():
            found = category.search(matching, words, split)
            every = dataclasses.replace(category, needs={}).search(matching, words, split)
            assert (found and found.span()) == (every and every.span()), (category.name, variant)


@pytest.mark.parametrize(
    "written",
    [
        "our little ѕеcrеt",  # Cyrillic ѕ and е among Latin letters
        "our little ꜱᴇᴄʀᴇᴛ",  # small capitals
        "our little ｓｅｃｒｅｔ",  # full-width
        "our little 𝐬𝐞𝐜𝐫𝐞𝐭",  # mathematical bold
        "our little Ⓢⓔⓒⓡⓔⓣ",  # circled
    ],
)
def test_letters_that_look_latin_are_read_as_latin(written: str):
    """“Do not say anything that you would not say in the open”: a phrase written in letters
    that only look like ours is the same phrase to a child. The evidence quotes it as written,
    so that the console can mark it in the message."""
    text = f"Hi Sam,\n\nThis is {written}, ok?\n\nAlex"
    [finding] = run(risk_language, make_message(text), rule(["secrecy"]))
    assert written in finding.evidence


def test_invisible_characters_do_not_hide_a_phrase_from_the_check():
    """A zero-width space or a soft hyphen inside a word shows nothing to the child, in the
    plain text or as an HTML entity; the check reads the word whole."""
    plain = "Hi Sam,\n\nThis is our little se\u200bcret, don\u00adt t\u200dell your mum.\n\nAlex"
    html = "<p>Hi Sam,</p><p>This is our little se&#8203;cret, don&shy;t tell your mum.</p>"
    message = parse_alternative(plain, html)
    assert "our little secret, dont tell your mum" in message.new_text
    [finding] = run(risk_language, message, rule(["secrecy"]))
    assert "our little secret" in finding.evidence
