"""The archive's search language, parsed into an AST; pure (the store compiles and runs it)."""

from __future__ import annotations

from gateway.search.query import QueryError, is_whole_address, parse

__all__ = ["QueryError", "is_whole_address", "parse"]
