"""The archive writer's statements on the driver's own cursor, where that is safe.

The archive writer inserts a handful of rows into four tables per commit. Through SQLAlchemy
Core each `Connection.execute` costs some 50-100 us of Python (statement cache lookup,
parameter processing row by row, a result object); on SQLite the new rows' ids have to be read
back with a second statement, and on PostgreSQL Core's many-row INSERT .. RETURNING is a new
statement text for each number of rows, which psycopg parses afresh and the server plans
afresh. Here each table's INSERT is compiled once per set of columns, in the driver's
positional form; each row is bound by the columns' own bind processors (what Core would do,
so the stored values are the same to the byte); and the rows go through the driver's cursor:
sqlite3's gives each row's id as it inserts it, psycopg's sends them as statements it has
the server prepare (one per table and set of parameter types).

On psycopg, `pipeline` sends every statement without waiting for its answer: a transaction's
writes then cost one round trip to the server, not one each (`Archive.write`). Another
PostgreSQL driver, or a psycopg whose libpq has no pipeline mode (before 14), keeps Core.
The drivers' errors are raised as SQLAlchemy's (`DBAPIError`), as through Core.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.exc import DBAPIError

Row = dict[str, object]
_Processor = Callable[[Any], Any] | None


class _Compiled:
    """One table's INSERT for one set of columns, in the driver's positional form."""

    def __init__(self, table: Table, names: tuple[str, ...], dialect: Dialect) -> None:
        compiled = (
            insert(table)
            .values({n: None for n in names})
            .compile(dialect=dialect, column_keys=list(names))
        )
        order = compiled.positiontup
        if order is None or sorted(order) != sorted(names):
            # Core would fill a column's Python-side default; here every row must carry it.
            missing = sorted(set(order or ()) - set(names))
            raise RuntimeError(f"{table.name}: rows lack the column(s) {missing} ({order})")
        self.sql = str(compiled)
        self.names = tuple(order)
        processors: list[_Processor] = [
            table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in self.names
        ]
        self._values = operator.itemgetter(*self.names)
        # Most columns (text, integers) have no processor: only the others are visited.
        self._processed = [(i, p) for i, p in enumerate(processors) if p is not None]

    def bind(self, row: Row) -> tuple[object, ...]:
        values = self._values(row)
        values = list(values) if len(self.names) > 1 else [values]
        # None goes through the processor too: JSON stores it as 'null', as Core does.
        for i, process in self._processed:
            values[i] = process(values[i])
        return tuple(values)


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _has_pipeline() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


class Bulk:
    """`insert` and `insert_ids` for `dialect`; every row of one call carries the same keys, and
    every column that has a default. Call them inside a transaction (`db.transaction`): on
    SQLite the driver's cursor would otherwise commit each row on its own."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.sqlite = dialect.name == "sqlite"
        self.psycopg = (
            dialect.name == "postgresql" and dialect.driver == "psycopg" and _has_pipeline()
        )
        # psycopg's cursor takes %s placeholders, where SQLAlchemy's psycopg dialect writes
        # %(name)s: the same dialect, positional, compiles the statements it is given.
        self._compiler: Dialect | None = (
            dialect
            if self.sqlite
            else type(dialect)(paramstyle="format")  # type: ignore[call-arg]
            if self.psycopg
            else None
        )
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._returning: dict[str, Any] = {}
        self._plain: dict[str, Any] = {}

    @contextmanager
    def _as_sqlalchemys(self) -> Iterator[None]:
        """The driver's errors raised as Core raises them (`IntegrityError`, ...)."""
        error = self.dialect.loaded_dbapi.Error
        try:
            yield
        except error as exc:
            raise DBAPIError.instance(None, None, exc, error, dialect=self.dialect) from exc

    def _statement(self, table: Table, rows: Sequence[Row]) -> _Compiled:
        assert self._compiler is not None
        names = tuple(rows[0])
        key = (table.name, names)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(table, names, self._compiler)
        return compiled

    def insert(self, conn: Connection, table: Table, rows: Sequence[Row]) -> None:
        if not rows:
            return
        if self._compiler is None:
            plain = self._plain.get(table.name)
            if plain is None:
                plain = self._plain[table.name] = insert(table)
            conn.execute(plain, list(rows))
            return
        statement = self._statement(table, rows)
        cursor = _driver(conn).cursor()
        try:
            with self._as_sqlalchemys():
                cursor.executemany(statement.sql, [statement.bind(row) for row in rows])
        finally:
            cursor.close()

    def insert_ids(self, conn: Connection, table: Table, rows: Sequence[Row]) -> list[int]:
        """Insert `rows`; their new ids (the table's `id`), in the order given."""
        if not rows:
            return []
        if not self.sqlite:
            returning = self._returning.get(table.name)
            if returning is None:
                returning = self._returning[table.name] = insert(table).returning(
                    table.c.id, sort_by_parameter_order=True
                )
            ids = list(conn.execute(returning, list(rows)).scalars())
        else:
            statement = self._statement(table, rows)
            cursor = _driver(conn).cursor()
            try:
                ids = []
                with self._as_sqlalchemys():
                    for row in rows:
                        cursor.execute(statement.sql, statement.bind(row))
                        ids.append(cursor.lastrowid)
            finally:
                cursor.close()
        if len(ids) != len(rows):  # pragma: no cover - the driver broke its contract
            raise RuntimeError(f"{table.name}: {len(ids)} ids for {len(rows)} rows")
        return ids

    # --- psycopg only ------------------------------------------------------------------------

    @contextmanager
    def pipeline(self, conn: Connection) -> Iterator[None]:
        """psycopg's pipeline mode until the end: statements (`insert`, `execute`) are sent
        without waiting for their answers; `fetch`, and the end, wait for every answer due
        (one round trip). The first error among them is raised there (or by a statement
        sent after it), as SQLAlchemy's `DBAPIError`; the transaction is then to roll back."""
        with self._as_sqlalchemys(), _driver(conn).pipeline():
            yield

    def execute(self, conn: Connection, sql: str, params: Sequence[object] = ()) -> None:
        """One statement on the driver's cursor."""
        cursor = _driver(conn).cursor()
        try:
            with self._as_sqlalchemys():
                cursor.execute(sql, params)
        finally:
            cursor.close()

    def fetch(
        self, conn: Connection, queries: Sequence[tuple[str, Sequence[object]]]
    ) -> list[list[tuple[Any, ...]]]:
        """Each query's rows; in a pipeline, all of them sent before the first answer is awaited."""
        driver = _driver(conn)
        cursors = [driver.cursor() for _ in queries]
        try:
            with self._as_sqlalchemys():
                for cursor, (sql, params) in zip(cursors, queries, strict=True):
                    cursor.execute(sql, params)
                return [cursor.fetchall() for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
