"""The archive's search language, parsed into an AST; pure (the store compiles and runs it)."""

from __future__ import annotations

from gateway.search.query import QueryError, parse

__all__ = ["QueryError", "parse"]
