"""DATA is read in pieces (`gateway.smtp.data`), not line by line as aiosmtpd reads it. For
any byte stream the answer must be aiosmtpd's own: the same message, the same refusal (500
for a long line, 552 for too much data), the end only at CRLF "." CRLF, and what follows the
end (a pipelined command) left for the next command."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP

from gateway.smtp.data import DataState, read_data

# sha256 of aiosmtpd 1.4.6's SMTP.smtp_DATA source
AIOSMTPD_SMTP_DATA = "3a33f30d3fd6d02f39c7d78a08288bffea9170525b62e2161568041ae7e018df"
LINE_LIMIT = SMTP.line_length_limit  # 1001; aiosmtpd's reader limit is the same
PIPELINED = b"QUIT\r\n"

LINES = [
    b"Subject: hi", b"", b"hello", b".", b"..", b". ", b".hidden", b"\n.\n", b"\r.\r", b".\n",
    b"\n.", b"a\rb", b"a\nb", b"\r", b"\n", b"\x00", b"\xff\xfe", b"end .", b"\r\n.\r",
    b"prose " * 12, b"more prose, " * 30,
]  # fmt: skip
LONG_LINES = [b"x" * 998, b"y" * 999, b"z" * 1000, b"w" * 1001, b"v" * 1002, b"u" * 1500]
SEPARATORS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n", b"\n\r\n"]
TERMINATORS = [b"\r\n.\r\n"] * 8 + [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b""]


class _Recorder:
    """What aiosmtpd's smtp_DATA needs of its protocol object, recording what it answers."""

    def __init__(self, reader: asyncio.StreamReader, size_limit: int | None) -> None:
        self._reader = reader
        self._writer = SimpleNamespace(close=lambda: None)
        self.transport = object()
        self.envelope = SimpleNamespace(rcpt_tos=["to@example.org"], content=None)
        self.data_size_limit = size_limit
        self.line_length_limit = LINE_LIMIT
        self._decode_data = False
        self.enable_SMTPUTF8 = True
        self._handle_hooks = {"DATA": None}
        self.event_handler = None
        self.replies: list[str] = []

    async def check_helo_needed(self) -> bool:
        return False

    async def check_auth_needed(self, command: str) -> bool:
        return False

    async def push(self, status: str) -> None:
        self.replies.append(status)

    async def _call_handler_hook(self, command: str) -> str:
        return "250 OK"

    def _set_post_data_state(self) -> None:
        pass


def _stream(rng: random.Random) -> bytes:
    pick = lambda: rng.choice(LONG_LINES if rng.random() < 0.03 else LINES)  # noqa: E731
    lines = [pick() for _ in range(rng.randint(0, 40))]
    body = b"".join(line + rng.choice(SEPARATORS) for line in lines)
    if rng.random() < 0.1:
        body = b"." + body  # a first line that starts with a dot, or is the end at once
    return body + rng.choice(TERMINATORS) + PIPELINED


async def _feed(reader: asyncio.StreamReader, data: bytes, cuts: list[int]) -> None:
    start = 0
    for cut in [*cuts, len(data)]:
        reader.feed_data(data[start:cut])
        start = cut
        await asyncio.sleep(0)
    reader.feed_eof()


async def _aiosmtpd(data: bytes, cuts: list[int], size_limit: int | None) -> tuple:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    feeding = asyncio.create_task(_feed(reader, data, cuts))
    protocol = _Recorder(reader, size_limit)
    try:
        await SMTP.smtp_DATA(protocol, "")  # type: ignore[arg-type]
    except asyncio.IncompleteReadError:
        return ("no end",)
    finally:
        await feeding
    reply = protocol.replies[-1][:3]
    state = {"250": DataState.NOMINAL, "500": DataState.TOO_LONG, "552": DataState.TOO_MUCH}
    content = getattr(protocol.envelope, "original_content", b"")
    return state[reply], content if reply == "250" else b"", await reader.read()


async def _ours(
    data: bytes, cuts: list[int], size_limit: int | None, *, hide_buffer: bool = False
) -> tuple:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    feeding = asyncio.create_task(_feed(reader, data, cuts))
    source = _Unbuffered(reader) if hide_buffer else reader
    try:
        read = await read_data(source, size_limit=size_limit, line_limit=LINE_LIMIT)  # type: ignore[arg-type]
    except asyncio.IncompleteReadError:
        return ("no end",)
    finally:
        await feeding
    return read.state, read.content, await reader.read()


class _Unbuffered:
    """A reader without asyncio's private `_buffer`, as a later Python might have it."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.readuntil = reader.readuntil
        self.readexactly = reader.readexactly
        self.read = reader.read


def _compare(
    data: bytes, cuts: list[int], size_limit: int | None, *, hide_buffer: bool = False
) -> tuple[tuple, tuple]:
    async def both() -> tuple[tuple, tuple]:
        return await _aiosmtpd(data, cuts, size_limit), await _ours(
            data, cuts, size_limit, hide_buffer=hide_buffer
        )

    return asyncio.run(both())


@pytest.mark.parametrize(
    ("data", "content"),
    [
        (b".\r\n" + PIPELINED, b""),
        (b"hello\r\n.\r\n" + PIPELINED, b"hello\r\n"),
        (b"..dot\r\n.x\r\n.\r\n" + PIPELINED, b".dot\r\nx\r\n"),
        (b"a\n.\nb\r\n.\r\n" + PIPELINED, b"a\n.\nb\r\n"),  # <LF>.<LF> is data, not the end
        (b"a\r.\rb\r\n.\r\n" + PIPELINED, b"a\r.\rb\r\n"),
    ],
)
def test_fixed_streams(data: bytes, content: bytes):
    theirs, ours = _compare(data, [], None)
    assert ours == theirs == (DataState.NOMINAL, content, PIPELINED)


def test_a_long_line_and_too_much_data_are_refused_as_aiosmtpd_refuses_them():
    long_line = b"x" * 1500 + b"\r\n.\r\n" + PIPELINED
    assert _compare(long_line, [], None)[1] == (DataState.TOO_LONG, b"", PIPELINED)
    big = b"".join(b"y" * 100 + b"\r\n" for _ in range(50)) + b".\r\n" + PIPELINED
    theirs, ours = _compare(big, [700, 2100], 2000)
    assert ours == theirs == (DataState.TOO_MUCH, b"", PIPELINED)


def test_a_line_end_split_between_pieces_is_still_a_line_end():
    """Lines of 600 bytes, the reader's buffer cut just after a CR: the CR ends one piece and
    the LF begins the next, and neither line is too long."""
    data = b"".join(b"a" * 600 + b"\r\n" for _ in range(4)) + b".\r\n" + PIPELINED
    cut = data.index(b"\r\n", 700) + 5  # the reader keeps 4 bytes back: the piece ends at CR
    theirs, ours = _compare(data, [cut], None)
    assert ours == theirs == (DataState.NOMINAL, data[: -len(b".\r\n" + PIPELINED)], PIPELINED)


def test_generated_streams_fed_whole_agree_with_aiosmtpd():
    rng = random.Random(5)
    for _ in range(3000):
        data = _stream(rng)
        size_limit = rng.choice([None, None, 3000, 1200])
        theirs, ours = _compare(data, [], size_limit)
        assert ours == theirs, data


def test_generated_streams_in_pieces_agree_with_aiosmtpd():
    """Arriving in pieces, cut anywhere (inside a CRLF, inside the end sequence). Which of two
    refusals comes first may then depend on where the pieces fall, in aiosmtpd as here, so
    only the refusal itself is compared."""
    rng = random.Random(6)
    for _ in range(3000):
        data = _stream(rng)
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 6))))
        size_limit = rng.choice([None, None, 3000, 1200])
        theirs, ours = _compare(data, cuts, size_limit)
        if theirs[0] in (DataState.TOO_LONG, DataState.TOO_MUCH):
            assert ours[0] in (DataState.TOO_LONG, DataState.TOO_MUCH), (data, cuts)
            assert ours[1:] == theirs[1:], (data, cuts)
        else:
            assert ours == theirs, (data, cuts)


def test_without_asyncios_private_buffer_the_reader_still_agrees_with_aiosmtpd():
    """`read_data` looks into StreamReader's private `_buffer`; a reader without one (a
    later Python) must still read every stream right, only more slowly."""
    rng = random.Random(8)
    for _ in range(1000):
        data = _stream(rng)
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 6))))
        theirs, ours = _compare(data, cuts, None, hide_buffer=True)
        assert ours == theirs, (data, cuts)


def test_the_override_still_matches_aiosmtpds_data_command():
    """GatewaySMTP.smtp_DATA restates aiosmtpd 1.4.6's (replies, limits, hooks) around
    `read_data`. A new aiosmtpd that changes its DATA must be read again before this passes."""
    source = inspect.getsource(SMTP.smtp_DATA).encode()
    assert hashlib.sha256(source).hexdigest() == AIOSMTPD_SMTP_DATA, (
        "aiosmtpd's smtp_DATA changed: compare it with GatewaySMTP.smtp_DATA and "
        "gateway/smtp/data.py, then update AIOSMTPD_SMTP_DATA"
    )


def test_a_body_of_bare_crs_is_read_in_large_pieces(monkeypatch: pytest.MonkeyPatch):
    """Each piece ending in CR is compared with what follows it without taking a few bytes at
    a time (taking them made such a body cost ~100x aiosmtpd's CPU and ~4x its memory)."""
    from gateway.smtp import data as data_module

    pieces = []
    add = data_module._Lines.add
    monkeypatch.setattr(
        data_module._Lines, "add", lambda self, piece: (pieces.append(piece), add(self, piece))
    )
    body = (b"\r" * 999 + b"\r\n") * 1000
    stream = body + b".\r\n" + PIPELINED
    cuts = list(range(65536, len(stream), 65536))
    theirs, ours = _compare(stream, cuts, None)
    assert ours == theirs == (DataState.NOMINAL, body, PIPELINED)
    assert len(pieces) < 1000  # one per reader buffer or so, not one per 4 bytes
