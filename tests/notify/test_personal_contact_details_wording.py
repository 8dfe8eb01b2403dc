"""What a bounce says about a personal contact detail: the passage to remove, quoted whole, and
for a phone number, what to do when it is in fact the organisation's.

Birmingham Museums Trust: “Do not let children, young people or vulnerable adults have your
personal contact details (mobile number, email or postal address) or have contact with them
via a personal social media account.” From a review of the bounce as each organisation's lead:
a work mobile in a signature was refused with no word on how the organisation's own numbers
are told apart, and a social handle's correction read “Remove Follow me on Instagram”."""

from __future__ import annotations

import re

from tests.policy.harness import Draft
from tests.policy.test_tipping_off import _content, _prepare

SAM = "sam.minor@home.example"
SAM_S_MUM = "priya.shah@parents.example"


def _bounce(body: str) -> str:
    prepared = _prepare("bmt", Draft(to=(SAM,), cc=(SAM_S_MUM,), body=body))
    assert prepared.record.verdict == "reject"
    return _content(prepared, "bounce")


def test_a_work_mobile_in_a_signature_is_refused_and_the_bounce_says_how_to_list_it():
    """A number labelled “Work mobile” is not let through on its label (a private mobile can be
    labelled so): the bounce says that the organisation's own numbers are listed in
    `[organisation] own_phone_numbers`, as rules/README.md names the setting."""
    told = _bounce(
        "Hi Sam,\n\nSee you on Thursday.\n\nKind regards,\nAlex\n"
        "-- \nAlex Teacher\nLearning Officer\nWork mobile: 07700 900555"
    )
    assert (
        "What to change: Remove “07700 900555” from your signature and give the organisation's "
        "own phone number instead. If it is a phone the organisation gave you, not your own, ask "
        "your IT admin to add the number to the organisation's own numbers ([organisation] "
        "own_phone_numbers in gateway.toml) so it is not flagged again." in told
    )


def test_each_kind_of_detail_is_quoted_whole_with_a_correction_that_reads_as_a_sentence():
    told = _bounce(
        "Hi Sam,\n\nFollow me on Instagram: @alex_t_99 for the photos. Drop the form at my "
        "house, 14 Acacia Avenue, Birmingham B13 9QT, or email it to alex.t@gmail.com.\n\n"
        "Kind regards,\nAlex"
    )
    corrections = re.findall(r"What to change: ([^\r\n]*)", told)
    assert corrections == [
        "Remove “Follow me on Instagram: @alex_t_99” and keep in touch through the "
        "organisation's email or its own accounts instead.",
        "Remove “14 Acacia Avenue, Birmingham B13 9QT” and give the organisation's address "
        "instead. If it is one of the organisation's own addresses, ask your IT admin to add it "
        "to the organisation's addresses ([organisation] own_addresses in gateway.toml) so it is "
        "not flagged again.",
        "Remove “alex.t@gmail.com” and give your work email address instead.",
    ]
    assert "The message shares what looks like a personal social media account: “Follow me" in told
    assert "own_phone_numbers" not in told


def test_confirming_the_parents_own_number_to_them_is_not_refused():
    """“We have your emergency contact as your mum on 07700 900321”, with the mum copied, is
    the family's own number: the review found it refused with “give the organisation's own
    contact details instead”."""
    prepared = _prepare(
        "bmt",
        Draft(
            to=(SAM,),
            cc=(SAM_S_MUM,),
            body="Hi Sam,\n\nWe have your emergency contact as your mum on 07700 900321.\n\n"
            "Kind regards,\nAlex",
        ),
    )
    assert prepared.record.verdict == "deliver"
