"""The fast path for `<local@domain>` in MAIL FROM / RCPT TO answers exactly what aiosmtpd's
own parser answers, for every input it takes; everything else still goes to that parser."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator

import pytest
from aiosmtpd import smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp.handler import _SIMPLE_PATH, GatewaySMTP


class _Handler:
    pass


@pytest.fixture(scope="module")
def protocols() -> Iterator[tuple[GatewaySMTP, SMTP]]:
    loop = asyncio.new_event_loop()
    try:
        yield GatewaySMTP(_Handler(), loop=loop), SMTP(_Handler(), loop=loop)
    finally:
        loop.close()


def _answer(protocol: SMTP, arg: str) -> object:
    try:
        return protocol._getaddr(arg)
    except Exception as exc:  # aiosmtpd's parser can raise on odd input; so must we, then
        return type(exc)


ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
piece = st.text(alphabet=ATEXT + '."()[]\\:;@ \t<>,ü', min_size=0, max_size=8)
atom = st.text(alphabet=ATEXT, min_size=1, max_size=6)
dotted = st.lists(atom, min_size=1, max_size=3).map(".".join)
suffix = st.sampled_from(
    ["", " SIZE=10", "  BODY=8BITMIME", "\tNOTIFY=NEVER", ">", "x", " (c) A=1"]
)


@settings(max_examples=3000, deadline=None)
@given(local=st.one_of(dotted, piece), domain=st.one_of(dotted, piece), rest=suffix)
def test_fast_path_answers_as_aiosmtpd_does(
    protocols: tuple[GatewaySMTP, SMTP], local: str, domain: str, rest: str
):
    fast, slow = protocols
    for arg in (f"<{local}@{domain}>{rest}", f"<{local}>{rest}", f" <{local}@{domain}>"):
        assert _answer(fast, arg) == _answer(slow, arg), arg


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("<alex.teacher@safe.example>", ("alex.teacher@safe.example", "")),
        ("<a+b@x.example> SIZE=5120", ("a+b@x.example", "SIZE=5120")),
        ("<1234p@volunteers.example>", ("1234p@volunteers.example", "")),
    ],
)
def test_common_addresses_skip_the_header_parser(
    protocols: tuple[GatewaySMTP, SMTP],
    monkeypatch: pytest.MonkeyPatch,
    arg: str,
    expected: tuple[str, str],
):
    def refuse(_value: str) -> None:
        raise AssertionError("the RFC 5322 parser was called")

    monkeypatch.setattr(aiosmtpd_smtp, "get_angle_addr", refuse)
    assert _SIMPLE_PATH.match(arg)
    assert protocols[0]._getaddr(arg) == expected


def test_a_local_part_over_the_limit_is_refused_as_before():
    loop = asyncio.new_event_loop()
    try:
        fast, slow = GatewaySMTP(_Handler(), loop=loop), SMTP(_Handler(), loop=loop)
        fast.local_part_limit = slow.local_part_limit = 64  # a class attribute in aiosmtpd
        for arg in (f"<{'a' * 65}@safe.example>", f"<{'a' * 64}@safe.example>"):
            assert _SIMPLE_PATH.match(arg)
            assert fast._getaddr(arg) == slow._getaddr(arg)
        assert fast._getaddr(f"<{'a' * 65}@safe.example>") == (None, None)
    finally:
        loop.close()


@pytest.mark.parametrize(
    "arg", ['<"quoted"@safe.example>', "<@route:a@b.example>", "< a@b.example>", "<a..b@c>"]
)
def test_anything_unusual_goes_to_aiosmtpd(protocols: tuple[GatewaySMTP, SMTP], arg: str):
    assert _SIMPLE_PATH.match(arg) is None or arg == "<a..b@c>"
    assert _answer(protocols[0], arg) == _answer(protocols[1], arg)
