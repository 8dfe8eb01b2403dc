from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import Clock, SystemClock
from gateway.service import Gateway
from tests.support import RunningGateway, Sink, make_settings


@pytest.fixture
def start_gateway(
    tmp_path: Path, database_url: str, sink: Sink
) -> Iterator[Callable[..., RunningGateway]]:
    """Start a gateway relaying to the sink; keyword arguments override config sections."""
    running: list[RunningGateway] = []

    def start(
        upstream: str | None = None, clock: Clock | None = None, **sections: dict[str, Any]
    ) -> RunningGateway:
        settings = make_settings(tmp_path, database_url, upstream=upstream or sink.url, **sections)
        gateway = RunningGateway(Gateway(settings, clock=clock or SystemClock())).__enter__()
        running.append(gateway)
        return gateway

    yield start
    for gateway in reversed(running):
        gateway.__exit__(None, None, None)
