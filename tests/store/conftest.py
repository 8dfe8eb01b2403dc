from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gateway.store.db import make_engine
from gateway.store.migrate import upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated archive on each database (SQLite, PostgreSQL), disposed afterwards."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
