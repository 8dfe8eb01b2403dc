"""`safeguard_cpu_seconds_total{part="policy"}` counts the policy stage's CPU on both paths:
inline for small messages, and in a worker thread for large ones, including one whose
evaluation outlasts `parse_timeout` (the session answers 451 and the thread works on)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from gateway.metrics import CPU_SECONDS, Metrics
from gateway.pipeline import Prepared, Submission
from gateway.smtp.handler import INLINE_LIMIT, RelayHandler
from tests.support import make_settings

POLICY = (("part", "policy"),)


class _BusyPipeline:
    """Stands in for the policy stage: burns `seconds` of CPU, then fails as a refusal would
    not (the result is never used here)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def prepare(self, submission: Submission) -> Prepared:
        start = time.thread_time()
        while time.thread_time() - start < self.seconds:
            pass
        raise AssertionError("not reached in time")


def _handler(tmp_path, seconds: float, executor, parse_timeout: float) -> RelayHandler:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'a.db'}",
        upstream="maildir:///" + str(tmp_path / "maildir"),
        server={"parse_timeout": parse_timeout},
    )
    return RelayHandler(
        settings=settings,
        pipeline=_BusyPipeline(seconds),  # type: ignore[arg-type]
        writer=None,  # type: ignore[arg-type]
        authenticator=None,  # type: ignore[arg-type]
        limiter=None,  # type: ignore[arg-type]
        clock=None,  # type: ignore[arg-type]
        executor=executor,
        metrics=Metrics(),
    )


def _submission(size: int) -> Submission:
    return Submission(
        queue_id="Q1",
        raw=b"x" * size,
        envelope_from="a@safe.example",
        envelope_to=("b@safe.example",),
        received_at=datetime.now(UTC),
    )


def _policy_cpu(handler: RelayHandler) -> float:
    return handler.metrics.snapshot().get(CPU_SECONDS, {}).get(POLICY, 0.0)


@pytest.mark.parametrize("size", [100, INLINE_LIMIT + 1])
def test_the_policy_stage_cpu_is_counted_inline_and_in_a_thread(tmp_path, size):
    with ThreadPoolExecutor(1) as executor:
        handler = _handler(tmp_path, 0.05, executor, parse_timeout=30)

        async def run() -> None:
            with pytest.raises(AssertionError):
                await handler._prepare(_submission(size))
            await asyncio.sleep(0.05)  # the thread's count reaches the loop

        asyncio.run(run())
    assert _policy_cpu(handler) >= 0.05


def test_cpu_spent_after_the_evaluation_timed_out_is_still_counted(tmp_path):
    with ThreadPoolExecutor(1) as executor:
        handler = _handler(tmp_path, 0.4, executor, parse_timeout=0.1)

        async def run() -> None:
            with pytest.raises(TimeoutError):
                await handler._prepare(_submission(INLINE_LIMIT + 1))
            assert _policy_cpu(handler) == 0.0  # answered; the thread is still at work
            for _ in range(100):
                await asyncio.sleep(0.05)
                if _policy_cpu(handler):
                    break

        asyncio.run(run())
    assert _policy_cpu(handler) >= 0.4
