"""personal_contact_details: no personal mobile, email, social handle or home address.

Birmingham Museums Trust: “Do not let children, young people or vulnerable adults have your
personal contact details (mobile number, email or postal address) or have contact with them via
a personal social media account.” Brigantia: “Not share any personal information with a child or
young person, e.g. should not give their personal contact details to children and young people
including personal email, home or mobile telephone numbers, social media identities.” The Music
Works: “We will never reveal personal details of themselves or others in e-mail and social media
communication, or arrange to meet anyone without specific permission.”
"""

from __future__ import annotations

import pytest

from gateway.checks import personal_contact_details
from gateway.policy.types import Action, Finding
from tests.checks.conftest import (
    ADULT,
    GUARDIAN,
    MINOR,
    make_message,
    make_rule,
    organisation,
    parse_alternative,
    run,
)

BMT = (
    "Do not let children, young people or vulnerable adults have your personal contact details "
    "(mobile number, email or postal address) or have contact with them via a personal social "
    "media account."
)
BRIGANTIA = (
    "Not share any personal information with a child or young person, e.g. should not give their "
    "personal contact details to children and young people including personal email, home or "
    "mobile telephone numbers, social media identities."
)
MUSIC_WORKS = (
    "We will never reveal personal details of themselves or others in e-mail and social media "
    "communication, or arrange to meet anyone without specific permission."
)
SAM = {"name": "Sam Taylor", "email": MINOR, "category": "participant"}


def rule(kinds=None, *, policy=BMT):
    settings = {"kinds": kinds} if kinds is not None else {}
    return make_rule(
        personal_contact_details,
        settings,
        policy=policy,
        action=Action.REJECT,
        rule_id="no-personal-contact-details",
    )


def found(text: str = "", *, signature: str = "", kinds=None, org=None, **kwargs):
    """(kind, value) pairs found in a mail to Sam."""
    message = make_message(text, signature=signature, **kwargs)
    return [
        (f.params["kind"], f.params["value"])
        for f in run(personal_contact_details, message, rule(kinds), org)
    ]


# --- phone numbers ----------------------------------------------------------------------------


def test_do_not_let_children_have_your_personal_mobile_number():
    """BMT: “Do not let children ... have your personal contact details (mobile number, ...)”:
    the whole finding, with the number as written so the notice can say what to remove."""
    message = make_message("Hi Sam,\n\nIf you get lost, text me on 07700 900461.\n\nThanks,\nAlex")
    assert run(personal_contact_details, message, rule()) == [
        Finding(
            code="personal_contact_details",
            rule="no-personal-contact-details",
            action=Action.REJECT,
            recipient=MINOR,
            evidence="07700 900461",
            params={
                "kind": "phone",
                "value": "07700 900461",
                "where": "text",
                "young_person": SAM,
                "young_people": [SAM],
            },
        )
    ]


@pytest.mark.parametrize(
    "number",
    [
        "07700 900461",
        "07700900461",
        "07700-900-461",
        "07700.900.461",
        "(07700) 900461",
        "0770 090 0461",
        "+44 7700 900461",
        "+447700900461",
        "+44 (0)7700 900 461",
        "0044 7700 900461",
    ],
)
def test_a_mobile_is_found_by_its_shape_including_ofcoms_drama_range(number):
    """Seeds README: “Detect numbers by their shape, not only by whether a number library calls
    them valid: Ofcom's ranges reserved for fiction (e.g. 07700 900xxx) are what realistic test
    data uses.”"""
    assert found(f"My mobile is {number} if you need me.") == [("phone", number)]


def test_a_personal_mobile_in_the_signature_is_exactly_the_problem():
    """Brigantia: “... should not give their personal contact details ... including personal
    email, home or mobile telephone numbers ...”, wherever in the mail they are."""
    assert found(
        "See you Thursday.",
        signature="Dan Cole\nMusic Leader\nM: 07700 900461",
    ) == [("phone", "07700 900461")]


def test_the_organisations_own_numbers_are_not_personal():
    """README: “The organisation's own numbers and addresses are not personal.” (compared as
    E.164, so any spelling of the number matches)."""
    assert (
        found(
            "Ring the office on 0121 348 8014 (or +44 121 3488014), or the duty mobile "
            "+44 7700 900999.",
            signature="Youth Arts Trust\nT: 0121 348 8014\nM: 07700 900 999",
        )
        == []
    )


def test_a_work_landline_is_not_personal_but_a_home_number_is():
    """“home or mobile telephone numbers”: a landline counts only when it is said to be home."""
    assert found("Call reception on 0121 496 0731 or the booking line 0300 123 4567.") == []
    assert found("My home number is 0121 496 0731.") == [("phone", "0121 496 0731")]


@pytest.mark.parametrize(
    "text",
    [
        "The session is at 10:30 on 14/03/2026 in room 0712.",
        "Invoice 07700 2026 is paid; Ref: 07700900461; order no. 07700 900462.",
        "Tickets cost £07.99 or £12.50.",
        "ISBN 978-0-7700-9004-6, page 077.",
        "Call 0800 123 4567 (freephone) or 0300 123 4567.",
        "Tel: 0121 496 0000 x2231, Fax: 0121 496 0999",
        "Scores: 07 7009 00461 12",
    ],
)
def test_times_dates_references_prices_and_room_numbers_are_not_phone_numbers(text):
    assert found(text, kinds=["phone"]) == []


def test_one_finding_per_distinct_number():
    assert found("Text me on 07700 900461.", signature="M: +44 7700 900461\nAlt: 07700 900462") == [
        ("phone", "07700 900461"),
        ("phone", "07700 900462"),
    ]


def test_a_span_claimed_by_an_email_address_is_not_also_a_phone_number_however_many_there_are():
    """Each scanner sees only text no earlier scanner claimed: digits inside a webmail address
    stay part of it, and a long list of numbers is each reported once."""
    numbers = [f"07700 900{n:03d}" for n in range(400, 600)]
    text = "Mine: 07700900123@gmail.com. Also " + ", ".join(numbers)
    assert found(text) == [("email", "07700900123@gmail.com")] + [("phone", n) for n in numbers]


def test_a_foreign_mobile_counts_too():
    assert found("My Irish mobile is +353 87 123 4567.") == [("phone", "+353 87 123 4567")]


@pytest.mark.parametrize(
    "text",
    [
        "We have your emergency contact as your mum on 07700 900321.",
        "Your number: 07700 900321.",
        "Can you check your mum's mobile, 07700 900321, is still right?",
        "I'll ring your dad (07700 900321) to confirm.",
        "Your home number is 0121 496 0731 on our records.",
    ],
)
def test_the_recipients_own_number_confirmed_back_is_not_the_senders_personal_detail(text):
    """BMT: “Do not let children ... have your personal contact details (mobile number, ...)”:
    a review found “We have your emergency contact as your mum on 07700 900321”, to Sam with
    his mum copied, refused. A number introduced as the recipient's own or their family's is
    not the sender's to withhold."""
    assert found(text, kinds=["phone"]) == []


@pytest.mark.parametrize(
    "text",
    [
        "Call me on 07700 900321.",
        "If your bus is late, call me on 07700 900321.",
        "For your trip, text 07700 900321.",
        "I'm your emergency contact: 07700 900321.",
        "Save this in your phone: 07700 900321.",
        "Save my number as your emergency contact: 07700 900321.",
        "Call your mum or me on 07700 900321.",
        # A review: "your contact" is whom to contact, the sender on a trip letter.
        "Your contact number is 07700 900321.",
        "Any problems, your contact is 07700 900321 (text only)",
        "Add it as your emergency contact - 07700 900321",
        "Your contact details: 07700 900321",
    ],
)
def test_a_number_near_your_is_still_the_senders_unless_it_is_introduced_as_the_recipients(text):
    """BMT: “Do not let children ... have your personal contact details (mobile number, ...)”:
    only “your mum on”, “your number is” and the like, with nothing between, and the sender not
    speaking of themself, read as the recipient's own."""
    assert found(text, kinds=["phone"]) == [("phone", "07700 900321")]


def test_the_recipients_own_number_does_not_excuse_the_senders_in_the_same_mail():
    assert found("We have your mum on 07700 900321. If you are late, text me on 07700 900461.") == [
        ("phone", "07700 900461")
    ]


# --- email addresses --------------------------------------------------------------------------


def test_do_not_let_children_have_your_personal_email():
    """BMT: “... personal contact details (mobile number, email or postal address)”."""
    assert found("Email me at jo.smith@gmail.com or jo@hotmail.co.uk over half term.") == [
        ("email", "jo.smith@gmail.com"),
        ("email", "jo@hotmail.co.uk"),
    ]


@pytest.mark.parametrize(
    "address",
    [
        "sam@outlook.com",
        "sam@live.co.uk",
        "sam@yahoo.co.uk",
        "sam@icloud.com",
        "sam@me.com",
        "sam@aol.com",
        "sam@protonmail.com",
        "sam@gmx.co.uk",
        "sam@btinternet.com",
        "sam@sky.com",
        "sam@googlemail.com",
    ],
)
def test_webmail_addresses_look_personal(address):
    assert found(f"Write to {address}.", kinds=["email"]) == [("email", address)]


def test_a_partner_organisations_work_address_is_not_personal():
    """Only addresses that look personal are flagged: a museum partner's work address is how
    the organisation's work is done."""
    assert found("Please send your photos to learning@partner-museum.example.") == []


def test_our_own_addresses_and_people_already_in_the_conversation_are_not_personal():
    """The organisation's domains, and the parent already copied in, are not personal details."""
    assert (
        found(
            f"I've copied your mum ({GUARDIAN}); write to dana.lee@youth.example or me at "
            "alex.teacher@youth.example. Sam, your own sam.minor@home.example is on file.",
            cc=(GUARDIAN,),
        )
        == []
    )


def test_an_address_introduced_as_personal_is_flagged_whatever_its_domain():
    assert found("My personal email is alex@teacher-family.example.") == [
        ("email", "alex@teacher-family.example")
    ]


def test_a_spelled_out_webmail_address_is_found():
    assert found("You can reach me on alex dot t at gmail dot com") == [
        ("email", "alex dot t at gmail dot com")
    ]


# --- social media -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Snapchat: alex.t99", "Snapchat: alex.t99"),
        ("my insta is @alex_teaches", "my insta is @alex_teaches"),
        ("find me at instagram.com/alex.teaches", "instagram.com/alex.teaches"),
        ("https://www.tiktok.com/@alexteaches", "https://www.tiktok.com/@alexteaches"),
        ("message me on wa.me/447700900461", "wa.me/447700900461"),
        ("Add me on Snapchat if that's easier", "Add me on Snapchat"),
        ("Whatsapp me when you're there", "Whatsapp me"),
        ("I'm on Discord as alex#1234", "alex#1234"),
        ("Follow @alex_t_music for the new tracks", "@alex_t_music"),
        # The invitation is part of the passage to remove, not only the handle after it.
        ("Follow me on Instagram: @alex_t_99", "Follow me on Instagram: @alex_t_99"),
        ("add me on snap - alex.t99", "add me on snap - alex.t99"),
    ],
)
def test_or_have_contact_with_them_via_a_personal_social_media_account(text, value):
    """BMT: “... or have contact with them via a personal social media account.”"""
    assert found(text) == [("social", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Follow us on Instagram @youtharts for the photos.",
        "See instagram.com/youtharts_trust for the gallery.",
        "@Sam could you bring the register on Thursday?",
        "Meet @ 5pm by the stage door, or @10:30 on Friday.",
        "Instagram is a great place to share your work.",
        "Discord: the server link is on the learning platform.",
        "Ticket#1234 has been resolved.",
    ],
)
def test_the_organisations_accounts_mentions_and_times_are_not_personal_handles(text):
    assert found(text, kinds=["social"]) == []


# --- postal addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "My address is 12 Acacia Avenue, Birmingham B15 2TT, if you want to drop it off.",
            "12 Acacia Avenue, Birmingham B15 2TT",
        ),
        ("I live at 4 Elm Close, Stroud GL5 1AA.", "4 Elm Close, Stroud GL5 1AA"),
        ("Come to 45 Station Road, Stroud GL5 3AP on Saturday.", "45 Station Road, Stroud GL5 3AP"),
    ],
)
def test_we_will_never_reveal_personal_details_such_as_a_home_address(text, value):
    """The Music Works: “We will never reveal personal details of themselves or others in
    e-mail ...”; BMT: “(mobile number, email or postal address)”."""
    assert found(text) == [("address", value)]


@pytest.mark.parametrize(
    "text",
    [
        "The workshop is at Thimble Hall, 45 Station Road, Stroud GL5 3AP.",
        "Birmingham Museum & Art Gallery, Chamberlain Square, Birmingham B3 3DH",
        "Room B1, 2nd floor; Year 10 group.",
        "I live in Birmingham and work at the museum.",
    ],
)
def test_venues_and_rooms_are_not_home_addresses(text):
    assert found(text, kinds=["address"]) == []


ACACIA = "14 Acacia Avenue, Birmingham B13 9QT"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (f"Drop the form at my house, {ACACIA}.", ACACIA),
        (f"Or you can post it to my house: {ACACIA}", ACACIA),
        ("My flat is 2 Elm Close, Birmingham B13 9QT.", "2 Elm Close, Birmingham B13 9QT"),
        (f"Bring it to my place ({ACACIA}) on Sunday.", ACACIA),
        (f"Send it to me at home: {ACACIA}.", ACACIA),
        (f"Drop it at our house, {ACACIA}.", ACACIA),
    ],
)
def test_a_home_address_after_my_house_is_a_home_address(text, value):
    """BMT: “Do not let children, young people or vulnerable adults have your personal contact
    details (mobile number, email or postal address) ...”. A review found “Drop the form at my
    house, 14 Acacia Avenue, ...” delivered: “house” was read as a venue's name."""
    assert found(text) == [("address", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Meet at Museum House, 1 Chamberlain Square, Birmingham B3 3DH.",
        "The showcase is at Soho House, 56 Dean Street, London W1D 3SF.",
        "I left my notes at my house. The workshop is at Thimble Hall, 45 Station Road, "
        "Stroud GL5 3AP.",
    ],
)
def test_a_venue_named_house_is_still_not_a_home_address(text):
    """README: “The organisation's own numbers and addresses are not personal”, nor a venue's:
    “my house” introduces a home address only when the address follows it."""
    assert found(text, kinds=["address"]) == []


def test_the_organisations_address_in_the_signature_is_not_personal():
    """The Music Works' registered office appears in its footers: not a personal address."""
    signature = (
        "Paul\nThe Music Works, Box Hedge Cottage, Horsley, GL6 0PP\n12 High Street, GL6 0PP"
    )
    assert found("See you Saturday.", signature=signature) == []


def test_a_postcode_in_the_signature_counts_only_when_it_is_introduced_as_home():
    assert found("See you Saturday.", signature="Jo Cole\nHome: 12 Acacia Avenue, B15 2TT") == [
        ("address", "12 Acacia Avenue, B15 2TT")
    ]


def test_an_address_listed_as_the_organisations_own_is_not_personal():
    org = organisation(own_addresses=["Studio 3, 45 Station Road, Stroud GL5 3AP"])
    assert found("Come to 45 Station Road, Stroud GL5 3AP on Saturday.", org=org) == []


# --- scope and settings -----------------------------------------------------------------------


def test_only_the_kinds_the_pack_names_are_reported():
    """Teens in AI's pack names phone, email and social: a home address is not its concern."""
    text = "Text 07700 900461, email jo@gmail.com, snap: jo.c99, I live at 4 Elm Close, GL5 1AA."
    assert [kind for kind, _ in found(text)] == ["phone", "email", "social", "address"]
    assert [kind for kind, _ in found(text, kinds=["phone", "email", "social"])] == [
        "phone",
        "email",
        "social",
    ]


def test_details_in_quoted_text_do_not_fire():
    message = make_message("Thanks Sam, see you then.", quoted="> my mum's number is 07700 900461")
    assert run(personal_contact_details, message, rule()) == []


def test_a_message_to_an_adult_does_not_fire():
    """The policy protects children and young people; mail to an adult contact is not covered."""
    assert found("Text me on 07700 900461.", to=(ADULT,), cc=()) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": ["phone"]}, "kind"),
        ({"kinds": ["phone", "fax"]}, "fax"),
        ({"kinds": []}, "kinds"),
        ({"kinds": "phone"}, "kinds"),
    ],
)
def test_bad_settings_name_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        personal_contact_details.parse_settings(settings)


def test_a_personal_mobile_shown_only_in_the_html_part_is_found():
    """BMT: “Do not let children, young people or vulnerable adults have your personal
    contact details (mobile number, ...)”: the HTML part is what most clients show."""
    message = parse_alternative(
        "Hi Sam,\r\nSee you on Thursday.\r\nAlex",
        "<p>Hi Sam,</p><p>See you on Thursday.</p><p>Text me on 07700 900123</p><p>Alex</p>",
    )
    [finding] = run(personal_contact_details, message, rule())
    assert finding.params["kind"] == "phone"


def test_a_work_address_in_a_richer_html_signature_is_not_personal():
    """The HTML part often carries a fuller signature than the plain one; as in a signature,
    an address there counts only when it is labelled as a home address."""
    message = parse_alternative(
        "Hi Sam,\r\nSee you on Thursday.\r\nAlex",
        "<p>Hi Sam,</p><p>See you on Thursday.</p><p>Alex</p>"
        "<p>Learning Team, 12 Chamberlain Street, Birmingham B3 3DH</p>",
    )
    assert "Chamberlain" in message.alternative_text
    assert run(personal_contact_details, message, rule()) == []
    # ... while one labelled as home, there too, is found.
    home = parse_alternative(
        "Hi Sam,\r\nSee you on Thursday.\r\nAlex",
        "<p>Hi Sam,</p><p>See you on Thursday.</p><p>Alex</p>"
        "<p>My home address: 14 Oakfield Road, Birmingham B29 7HH</p>",
    )
    [finding] = run(personal_contact_details, home, rule())
    assert finding.params["kind"] == "address"


def test_an_unlabelled_home_address_only_in_the_html_text_is_found():
    """BMT: “Do not let children ... have your personal contact details (... home address)”.
    Written into the HTML's text (which most clients show), not a signature below it, an
    address counts as it would in the plain text, labelled as home or not."""
    message = parse_alternative(
        "Hi Sam,\r\nSee you on Saturday.\r\nAlex",
        "<p>Hi Sam,</p><p>See you on Saturday, come round to 14 Oakfield Road, Birmingham"
        " B29 7HH.</p><p>Alex</p>",
    )
    [finding] = run(personal_contact_details, message, rule())
    assert finding.params["kind"] == "address"
    assert finding.params["where"] == "alternative"
    assert "Oakfield Road" in finding.params["value"]


def test_a_work_address_after_the_html_text_stays_signature_like_when_the_plain_part_says_more():
    """A plain part often carries what its HTML shows otherwise (link addresses, *emphasis*):
    the HTML's signature block is still told apart from its text."""
    for plain in (
        "Hi Sam,\r\nSee the plan <https://club.example/plan>.\r\nAlex",
        "Hi Sam,\r\nSee you *Thursday*.\r\nAlex",
    ):
        message = parse_alternative(
            plain,
            "<p>Hi Sam,</p><p>See the <a href='https://club.example/plan'>plan</a>, "
            "<b>Thursday</b>.</p><p>Alex</p>"
            "<p>Learning Team, 12 Chamberlain Street, Birmingham B3 3DH</p>",
        )
        assert "Chamberlain" in message.alternative_text
        assert run(personal_contact_details, message, rule()) == [], plain
