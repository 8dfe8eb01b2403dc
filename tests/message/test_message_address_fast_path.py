"""Everyday mailboxes ("Alex Teacher <alex@example.org>") are read by one pattern, not by
`email.utils.getaddresses`. Whatever the input, a mailbox the pattern reads must come out as
getaddresses gives it; anything else must be left to getaddresses."""

from __future__ import annotations

import random
import time
from email.utils import getaddresses

import pytest

from gateway.message.addresses import parse_address_list, plain_mailbox

PIECES = [
    "alex", "Alex", "Teacher", "o'neil", "a.b", ".", "..", "-", "_", "+tag", "=?utf-8?q?Zo=C3=AB?=",
    "example.org", "x", "1", "@", "<", ">", '"', "\\", " ", "  ", "\t", "(", ")", "(c)", ",", ":",
    ";", "[", "]", "[1.2.3.4]", "ë", "\r\n", "\n", "{", "`", "~", "=", "?",
]  # fmt: skip


def _plain_like(rng: random.Random) -> str:
    """Mostly the everyday forms, with a piece of noise now and then."""
    atom = lambda: "".join(rng.choice(PIECES[:12]) for _ in range(rng.randint(1, 3)))  # noqa: E731
    address = f"{atom()}@{atom()}"
    name = " ".join(atom() for _ in range(rng.randint(0, 3)))
    space = lambda: rng.choice(["", " ", "  ", "\t"])  # noqa: E731
    forms = [
        f"{space()}{address}{space()}",
        f"{space()}{name}{space()}<{address}>{space()}",
        f'{space()}"{name}{rng.choice(PIECES)}"{space()}<{address}>{space()}',
    ]
    text = rng.choice(forms)
    if rng.random() < 0.3:
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(PIECES) + text[at:]
    return text


def _noise(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


@pytest.mark.parametrize(
    "segment",
    [
        "alex@example.org",
        "  alex@example.org\t",
        "Alex Teacher <alex@example.org>",
        "Alex J. Teacher <a@b.c>",
        "Ann O'Neil <a@b.c>",
        '"Teacher, Alex" <a@b.c>',
        '"Alex  T" <a@b.c>',
        '"" <a@b.c>',
        "<a@b.c>",
        "Alex.<a@b>",
        "=?utf-8?q?Zo=C3=AB?= <zoe@example.org>",
        "Alex  Teacher <a@b.c>",  # two spaces: getaddresses folds them
        "a..b@c",
        "a@b.c (Alex)",
        "Zoë <a@b>",
        "a@[1.2.3.4]",
        "Alex <a@b.c",
    ],
)
def test_fixed_cases_agree_with_getaddresses(segment: str):
    plain = plain_mailbox(segment)
    if plain is not None:
        assert [plain] == getaddresses([segment])


def test_generated_segments_agree_with_getaddresses():
    rng = random.Random(20261205)
    read = 0
    for n in range(30_000):
        segment = _plain_like(rng) if n % 3 else _noise(rng)
        plain = plain_mailbox(segment)
        if plain is None:
            continue
        read += 1
        assert [plain] == getaddresses([segment]), repr(segment)
    assert read > 3_000  # the everyday forms are in fact taken by the pattern


def test_everyday_headers_are_read_by_the_pattern():
    assert plain_mailbox("Alex Teacher <alex@example.org>") == ("Alex Teacher", "alex@example.org")
    assert plain_mailbox('"Teacher, Alex" <a@b.c>') == ("Teacher, Alex", "a@b.c")
    assert plain_mailbox(" sam.minor@home.example ") == ("", "sam.minor@home.example")
    addresses, defects = parse_address_list("Alex <ALEX@Example.org>, sam@home.example", "To")
    assert [(a.name, a.email) for a in addresses] == [
        ("Alex", "alex@example.org"),
        ("", "sam@home.example"),
    ] and not defects


@pytest.mark.parametrize(
    "segment",
    [
        " " * 100_000,
        "a " * 50_000,
        "a " * 50_000 + "<a@b",
        "a." * 50_000 + "<",
        '"' + "a" * 100_000,
    ],
)
def test_a_long_segment_that_is_no_mailbox_fails_fast(segment: str):
    """The pattern is possessive: no split of a long run is tried twice (10 s before)."""
    start = time.process_time()
    assert plain_mailbox(segment) is None
    assert time.process_time() - start < 0.5
