"""Bad input never crashes the policy stage: every message gets a verdict or a clear refusal.

Runs 2,000 examples per property here; `FUZZ_EXAMPLES=10000 make test` for a longer run.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.config import OrganisationSettings
from gateway.directory_source import demo_view
from gateway.notify.render import make_environment
from gateway.pipeline import Pipeline, Submission, SubmissionRefused
from gateway.policy.evaluate import Policy
from gateway.policy.pack import load_pack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SEED = (
    b"From: Alex Teacher <alex.teacher@safe.example>\r\nTo: Sam <sam.minor@home.example>\r\n"
    b"Cc: jordan.ellis@safe.example\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nHi Sam, see you at 10:30 x\r\n"
    b"On Mon, Sam wrote:\r\n> ok\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>Sam</b></p>\r\n"
    b"--b--\r\n"
)


@cache
def pipeline() -> Pipeline:
    pack = load_pack(
        "teens-in-ai",
        site=OrganisationSettings(
            domains=("safe.example",), overrides={"dsl": ["dsl@safe.example"]}
        ),
    )
    view = demo_view(AT)
    return Pipeline(
        hostname="fuzz.test",
        policy=Policy(pack),
        directory=lambda: view,
        templates=make_environment(),
    )


def _prepare(raw: bytes, rcpts: list[str]) -> None:
    sub = Submission(
        queue_id="FUZZ",
        raw=raw,
        envelope_from="alex.teacher@safe.example",
        envelope_to=tuple(rcpts),
        received_at=AT,
        auth_user="alex.teacher@safe.example",
    )
    try:
        prepared = pipeline().prepare(sub)
    except SubmissionRefused as refused:
        assert refused.reply[:1] == "5" and refused.reply[4:5].isdigit()
        return
    assert prepared.record.verdict in {"deliver", "flag", "rewrite", "defer", "reject"}
    assert prepared.reply.startswith(("250 ", "550 5.7.1"))


RCPTS = st.lists(
    st.sampled_from(
        [
            "sam.minor@home.example",
            "priya.shah@parents.example",
            "jordan.ellis@safe.example",
            "x@elsewhere.example",
        ]
    ),
    min_size=1,
    max_size=4,
    unique=True,
)
# No "explain" phase: tracing every line of the pipeline makes a failure take minutes to report.
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(raw=st.binary(max_size=4000), rcpts=RCPTS)
def test_arbitrary_bytes_get_a_verdict_or_a_clear_refusal(raw: bytes, rcpts: list[str]):
    _prepare(raw, rcpts)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 12))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "flip", "repeat"]))
        chunk = draw(
            st.sampled_from(
                [
                    b"\x00",
                    b"\r",
                    b"\n",
                    b"\r\n.\r\n",
                    b"--b",
                    b"=?x?q?",
                    b"\xff\xfe",
                    b"\r\n\t" * 50,
                    b"boundary=",
                    b"<",
                    b">",
                    b"x",
                ]
            )
        )
        if action == "insert":
            data[position:position] = chunk
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif action == "flip" and position < len(data):
            data[position] ^= draw(st.integers(1, 255))
        else:
            data[position:position] = chunk * draw(st.integers(2, 200))
    return bytes(data)


@FAST
@given(raw=mutated(), rcpts=RCPTS)
def test_mutated_messages_get_a_verdict_or_a_clear_refusal(raw: bytes, rcpts: list[str]):
    _prepare(raw, rcpts)


def test_deep_nesting_and_huge_headers_are_refused_cleanly():
    deep = b"MIME-Version: 1.0\r\n" + b"".join(
        f'Content-Type: multipart/mixed; boundary="{i}"\r\n\r\n--{i}\r\n'.encode()
        for i in range(500)
    )
    _prepare(deep, ["sam.minor@home.example"])
    huge = b"X-Long: " + b"a" * 200_000 + b"\r\nSubject: s\r\n\r\nbody\r\n"
    _prepare(huge, ["sam.minor@home.example"])
    endless = b"Subject: s\r\n" + b"\tcontinued\r\n" * 20_000 + b"\r\nbody\r\n"
    _prepare(endless, ["sam.minor@home.example"])
