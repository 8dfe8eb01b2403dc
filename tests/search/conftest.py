from __future__ import annotations

# The relay's own fixture: a real gateway on a real port, per database (database_url).
from tests.relay.conftest import start_gateway

__all__ = ["start_gateway"]
