"""PostgreSQL: the app ("postgres"), table and query sources, and the export destination.
Only what PostgreSQL does differently from `connectors.sql` lives here.

Connections use psycopg 3 with keyword arguments (no DSN string is ever built, so none can leak
the password). psycopg sends Python str parameters as `unknown`, so a watermark or cursor that
came back as an ISO string compares with a timestamptz column exactly.

Read only, in layers (none of them a look at the query's text):
- One statement per call: every statement goes the extended query protocol (`_Cursor`), which
  PostgreSQL refuses to give two statements. (psycopg would send a statement without parameters
  the simple way, where `SELECT 1; COMMIT; DROP TABLE t` runs all three.)
- Read-only connections (sources, refresh queries, test_connection) start their session with
  `default_transaction_read_only=on` and the app's `statement_timeout`; every source transaction
  also begins with `SET TRANSACTION READ ONLY` and sets the timeout again. A query cannot make its
  own transaction read-write (PostgreSQL refuses once the transaction has read anything).
- A query may still lift the session's timeout (`set_config('statement_timeout', '0', false)`)
  for the statements after it; a client-side timer cancels any statement of a read-only
  connection that runs BACKSTOP_GRACE seconds past the timeout.

Dates PostgreSQL has and Python has not (`infinity`, `-infinity`, years past 9999 or before 1)
are read as their text (`_Cursor.fetchall`), so the value is flagged on its record instead of
failing the batch.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from connectors.base import ConnectorError, Option
from connectors.registry import register
from connectors.sql import (
    Dialect,
    Frag,
    SqlApp,
    SqlDestination,
    SqlQuerySource,
    SqlTableSource,
    key_norm,
    statement_timeout_of,
    timeout_option,
)
from connectors.sql import option_value as _get
from connectors.sql_text import Lexicon

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CONNECT_TIMEOUT = 10
# Seconds past the statement timeout after which the client cancels a statement itself.
BACKSTOP_GRACE = 5.0
DATE_TYPES = ("date", "timestamp", "timestamptz")


class _Connection(psycopg.Connection):
    """A psycopg connection carrying its statement backstop (seconds; None: no backstop)."""

    backstop: float | None = None


class _Cursor(psycopg.Cursor):
    """A cursor that runs exactly one statement per execute(), and cancels a statement of a
    read-only connection that outlives the connection's backstop.

    psycopg sends a statement without parameters with the simple query protocol, which runs
    every statement of a `;`-separated string. Forcing the extended protocol (as psycopg itself
    does for `stream()`) makes PostgreSQL refuse a second statement ("cannot insert multiple
    commands into a prepared statement"). tests/connectors/test_sql_read_only.py proves it, so
    a psycopg release that changes `_execute_send` fails there rather than in production."""

    def _execute_send(self, query: Any, *, force_extended: bool = False, binary: bool | None = None) -> None:
        super()._execute_send(query, force_extended=True, binary=binary)

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None) -> Any:
        seconds = getattr(self.connection, "backstop", None)
        if not seconds:
            return super().execute(query, params, prepare=prepare, binary=binary)
        timer = threading.Timer(seconds, self._cancel)
        timer.daemon = True
        timer.start()
        try:
            return super().execute(query, params, prepare=prepare, binary=binary)
        finally:
            timer.cancel()

    # Dates Python cannot hold make psycopg raise DataError while loading a row. Only then, the
    # cursor's date loaders become lenient (psycopg reloads the result it holds, keeping the
    # position) and the fetch is tried again: rows without such dates cost nothing extra.
    def fetchone(self) -> Any:
        return self._with_lenient_dates(super().fetchone)

    def fetchmany(self, size: int = 0) -> list[Any]:
        return self._with_lenient_dates(super().fetchmany, size)

    def fetchall(self) -> list[Any]:
        return self._with_lenient_dates(super().fetchall)

    def _with_lenient_dates(self, fetch: Any, *args: Any) -> Any:
        try:
            return fetch(*args)
        except psycopg.DataError:
            if not self._read_dates_leniently():
                raise
            return fetch(*args)

    def _read_dates_leniently(self) -> bool:
        """Make this cursor's date loaders lenient; False when they already were."""
        if getattr(self, "_lenient_dates", False):
            return False
        self._lenient_dates = True
        for name in DATE_TYPES:
            oid = self.adapters.types[name].oid
            self.adapters.register_loader(oid, _lenient_loader(self.adapters.get_loader(oid, Format.TEXT)))
        return True

    def _cancel(self) -> None:
        try:
            self.connection.cancel_safe(timeout=5)
        except Exception:  # the statement may be over, or the server gone: nothing to cancel
            pass


def _lenient_loader(base: type[Loader]) -> type[Loader]:
    """A text loader of a date type that hands back PostgreSQL's text where `base` cannot make
    a Python value (`infinity`, years past 9999 or before 1); core.values then flags it on its
    record with the reason."""

    class LenientLoader(Loader):
        def __init__(self, oid: int, context: Any = None):
            super().__init__(oid, context)
            self._base = base(oid, context)

        def load(self, data: Any) -> Any:
            try:
                return self._base.load(data)
            except psycopg.DataError:
                return bytes(data).decode("utf-8", "replace")

    LenientLoader.__name__ = f"Lenient{base.__name__}"
    return LenientLoader


# Functions a SELECT can call that act outside the read-only transaction for a powerful role:
# large objects (lo_import/lo_export read and write server files), dblink (another session,
# which may write), the server's files, other backends, configuration, WAL and replication
# slots, session-level advisory locks; functions that run SQL passed as text.
_SIDE_EFFECT_FUNCTIONS = re.compile(
    r"\b(lo_\w+|lowrite|loread|dblink\w*|pg_(?:read|read_binary|stat)_file|pg_ls_\w+|pg_file_\w+"
    r"|pg_(?:terminate|cancel)_backend|pg_reload_conf|pg_rotate_logfile\w*|pg_switch_wal|pg_promote"
    r"|pg_create_restore_point|pg_logical_emit_message|pg_\w*replication_\w+|pg_(?:try_)?advisory_lock\w*"
    # ... and functions that run SQL given as text (which the check cannot read), and
    # set_config, which could change how the next query's text is read.
    r"|query_to_xml\w*|cursor_to_xml\w*|ts_stat|ts_rewrite|set_config)\s*\(",
    re.I,
)


_FLOAT_TYPES = ("double precision", "real", "float8", "float4")


class PostgresDialect(Dialect):
    name = "PostgreSQL"
    placeholder = "%s"
    driver_errors = (psycopg.Error,)
    lexicon = Lexicon(dollar_quotes=True, nested_comments=True, escape_string_prefix=True)

    def forbidden_in_query(self, code: str) -> str | None:
        if re.search(r"\bu&", code, re.I):
            return "Unicode-escaped names and strings (U&'...', U&\"...\") are not accepted in queries."
        found = _SIDE_EFFECT_FUNCTIONS.search(code)
        if found:
            return (
                f"{found.group(1)}() is not allowed in a source query: it acts outside the "
                "read-only transaction (give source apps a read-only role: docs/connectors.md)."
            )
        return None

    def quote(self, ident: str) -> str:
        return super().quote(ident).replace("%", "%%")  # statements always carry parameters

    def escape_sql_text(self, sql: str) -> str:
        return sql.replace("%", "%%")

    def _regclass(self, options: dict[str, Any], table: str) -> str:
        """The qualified name as text for to_regclass() (a parameter: no % doubling)."""
        return f"{Dialect.quote(self, _get(options, 'schema', 'public'))}.{Dialect.quote(self, table)}"

    def connect(self, options: dict[str, Any], *, read_only: bool) -> Any:
        host = str(_get(options, "host", "localhost"))
        try:
            port = int(_get(options, "port", 5432))
        except (TypeError, ValueError):
            raise ConnectorError(f"Port {options.get('port')!r} is not a number.", permanent=True) from None
        kwargs: dict[str, Any] = {
            "host": host,
            "port": port,
            "dbname": _get(options, "database"),
            "user": _get(options, "user"),
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "grouparoo",
        }
        password = _get(options, "password")
        if password is not None:
            kwargs["password"] = str(password)
        if _get(options, "sslmode"):
            kwargs["sslmode"] = options["sslmode"]
        timeout = statement_timeout_of(options) if read_only else None
        try:
            conn = _Connection.connect(**kwargs, cursor_factory=_Cursor)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()).rsplit(" failed: ", 1)[-1].removeprefix("FATAL: ").strip()
            permanent = any(
                s in reason for s in ("does not exist", "authentication failed", "password", "pg_hba.conf", "SSL")
            )
            raise self.connect_error(host, port, reason, password=password, permanent=permanent) from None
        schema = str(_get(options, "schema", "public"))
        path = Dialect.quote(self, schema) + ("" if schema == "public" else ", public")
        conn.execute("SELECT set_config('search_path', %s, false)", [path])
        if read_only:
            # The session itself is read only and bounded, whatever a transaction does. (Set
            # here rather than as libpq `options`, which PgBouncer refuses by default.)
            conn.execute("SELECT set_config('default_transaction_read_only', 'on', false)")
            # The check of user SQL reads strings as standard ones (backslash literal).
            conn.execute("SELECT set_config('standard_conforming_strings', 'on', false)")
            if timeout:
                conn.execute("SELECT set_config('statement_timeout', %s, false)", [str(int(timeout * 1000))])
        conn.commit()
        conn.backstop = timeout + BACKSTOP_GRACE if timeout else None
        return conn

    def begin(self, conn: Any, *, read_only: bool, timeout: float | None) -> None:
        if read_only:
            conn.execute("SET TRANSACTION READ ONLY")
        if timeout:
            # For the session (not only this transaction), so a query that lifted it in an
            # earlier transaction does not carry that into this one.
            conn.execute("SELECT set_config('statement_timeout', %s, false)", [str(int(timeout * 1000))])

    def keyed_statements(self, cur: Any) -> None:
        # A first sync fills the destination's tables faster than autovacuum analyzes them.
        # With no statistics, 1,000 keys in an `= ANY(...)` list are estimated at most of the
        # table and PostgreSQL scans it: at N = 1,000,000 the group-row lookups scanned
        # customer_groups 1,000 times, 19.6 s of the destination's CPU. Every statement of an
        # export batch reads by key (or reads its own temporary table), so the transaction asks
        # for index scans wherever there is an index; a table without one is still scanned.
        # The penalty that steers the planner away from scans also lifts a plan that has to
        # scan (the temporary table of an upsert) over jit_above_cost, and compiling it cost
        # more than running it (50 ms of a 25 ms statement): no JIT for these statements.
        cur.execute("SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)")

    def server_description(self, conn: Any, options: dict[str, Any]) -> str:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        database, user, powerful = conn.execute(
            "SELECT current_database(), current_user, rolsuper"
            " OR pg_has_role(current_user, 'pg_write_server_files', 'MEMBER')"
            " OR pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER')"
            " FROM pg_catalog.pg_roles WHERE rolname = current_user"
        ).fetchone()
        text = f"Connected to PostgreSQL {version}, database {database}"
        if powerful:
            text += (
                f". Note: {user} is a superuser (or may write server files); sources are safer "
                "with a read-only role (docs/connectors.md)"
            )
        return text

    def table_ref(self, options: dict[str, Any], table: str) -> str:
        return f"{self.quote(_get(options, 'schema', 'public'))}.{self.quote(table)}"

    def table_columns(self, cur: Any, options: dict[str, Any], table: str) -> list[tuple[str, str | None]]:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
            " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [self._regclass(options, table)],
        )
        return [tuple(row) for row in cur.fetchall()]

    def has_unique_index(self, cur: Any, options: dict[str, Any], table: str, column: str) -> bool:
        cur.execute(
            "SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indnkeyatts = 1"
            " AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = %s",
            [self._regclass(options, table), column],
        )
        return cur.fetchone() is not None

    def description_types(self, cur: Any) -> list[str | None]:
        types = cur.connection.adapters.types
        return [getattr(types.get(d.type_code), "name", None) for d in cur.description]

    def like_sql(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT) ILIKE %s ESCAPE '\\'"

    def aggregate_sql(self, function: str, value: str, db_type: str | None) -> str:
        # Binary floats are added as numeric (each as its shortest decimal text), so 0.1 + 0.2
        # is 0.3; numeric columns are exact already.
        if function in ("SUM", "AVG") and (db_type or "").lower() in _FLOAT_TYPES:
            return f"{function}(CAST({value} AS numeric))"
        return super().aggregate_sql(function, value, db_type)

    def array_agg_sql(self, value: str, order: str) -> str:
        return f"array_agg({value} ORDER BY {order})"

    def array_subquery_sql(self, select_sql: str, column: str) -> str:
        return f"ARRAY({select_sql})"

    def keys_relation(self, keys: Sequence[Any]) -> Frag:
        # A typed array, so `column = _keys._k` compares like with like.
        if all(isinstance(k, bool) for k in keys):
            array_type = "boolean[]"
        elif all(isinstance(k, int) and not isinstance(k, bool) and -(2**63) <= k < 2**63 for k in keys):
            array_type = "bigint[]"
        elif all(isinstance(k, int | float | Decimal) and not isinstance(k, bool) for k in keys):
            array_type = "numeric[]"
        else:
            array_type, keys = "text[]", [str(k) for k in keys]
        return Frag(f"SELECT unnest(CAST(%s AS {array_type}))", [list(keys)])

    @staticmethod
    def _all_ints(values: Sequence[Any]) -> bool:
        return all(type(v) is int and -(2**63) <= v < 2**63 for v in values)

    def in_frag(self, column_sql: str, values: Sequence[Any]) -> str:
        # Integer keys travel as one array (no statement with thousands of placeholders to
        # parse); others keep their placeholders, so the server still coerces each literal.
        if self._all_ints(values):
            return f"{column_sql} = ANY(CAST(%s AS bigint[]))"
        return super().in_frag(column_sql, values)

    def in_params(self, values: Sequence[Any]) -> list[Any]:
        if self._all_ints(values):
            return ["{" + ",".join(str(v) for v in values) + "}"]
        return list(values)

    # Batches at least this large are written with COPY; smaller ones (and the record-by-record
    # retry after a rejected value) row by row.
    COPY_MIN_ROWS = 20

    def bulk_upsert(
        self, cur: Any, table_sql: str, columns: Sequence[str], key: str, update: Sequence[str], rows: list[list[Any]]
    ) -> None:
        """COPY into a temporary table shaped like the target, then one INSERT ... ON CONFLICT;
        or, when no row of the batch's keys exists yet (a first sync), COPY straight into the
        target, as a plain load would (a key that appears meanwhile sends the batch the first
        way)."""
        if len(rows) < self.COPY_MIN_ROWS:
            return super().bulk_upsert(cur, table_sql, columns, key, update, rows)
        # One statement cannot touch a row twice: of equal keys the last wins, as row by row.
        last = {key_norm(row[0]): row for row in rows}
        rows = list(last.values())
        cols = ", ".join(columns)
        if not self._any_key_exists(cur, table_sql, key, [row[0] for row in rows]):
            cur.execute("SAVEPOINT grouparoo_load")
            try:
                with cur.copy(f"COPY {table_sql} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            except errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT grouparoo_load")  # written meanwhile: upsert
            except BaseException:
                cur.execute("ROLLBACK TO SAVEPOINT grouparoo_load")
                raise
            else:
                cur.execute("RELEASE SAVEPOINT grouparoo_load")
                return
        temp = "grouparoo_upsert"
        cur.execute(f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {cols} FROM {table_sql} WITH NO DATA")
        with cur.copy(f"COPY {temp} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        action = "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update) if update else "NOTHING"
        cur.execute(f"INSERT INTO {table_sql} ({cols}) SELECT {cols} FROM {temp} ON CONFLICT ({key}) DO {action}")
        cur.execute(f"DROP TABLE {temp}")

    def _any_key_exists(self, cur: Any, table_sql: str, key: str, keys: list[Any]) -> bool:
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            sql = f"SELECT 1 FROM {table_sql} WHERE {self.in_frag(key, chunk)} LIMIT 1"
            if cur.execute(sql, self.in_params(chunk)).fetchone() is not None:
                return True
        return False

    def bulk_insert(self, cur: Any, table_sql: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
        if len(rows) < self.COPY_MIN_ROWS:
            return super().bulk_insert(cur, table_sql, columns, rows)
        with cur.copy(f"COPY {table_sql} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def adapt_value(self, value: Any, column_type: str | None) -> Any:
        t = (column_type or "").lower()
        if t in ("json", "jsonb"):
            return Jsonb(value)
        if isinstance(value, dict):
            return Jsonb(value)
        if isinstance(value, list) and not t.endswith("]"):
            return json.dumps(value, default=str)
        if value is not None and not isinstance(value, str) and _is_text_type(t):
            # psycopg binds Python numbers as numeric types: a text key column needs text.
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return str(value)
        return value

    def value_passthrough(self, column_type: str | None) -> frozenset[type]:
        t = (column_type or "").lower()
        if t in ("json", "jsonb") or t.endswith("]"):
            return frozenset()
        if _is_text_type(t):
            return frozenset((str, type(None)))
        return frozenset((str, type(None), int, float))

    def translate_error(self, exc: BaseException, *, timeout: float | None) -> ConnectorError:
        sqlstate = getattr(exc, "sqlstate", None) or ""
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        if not primary:
            lines = str(exc).strip().splitlines()
            primary = lines[0] if lines else type(exc).__name__
        if isinstance(exc, errors.UndefinedTable):
            name = primary.split('"')[1] if primary.count('"') >= 2 else primary
            return ConnectorError(f'table "{name}" does not exist', permanent=True)
        if isinstance(exc, errors.QueryCanceled):
            limit = f" of {timeout:g} s" if timeout else ""
            return ConnectorError(f"The query was cancelled after the statement timeout{limit}.")
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return ConnectorError(f"Sources are read-only: PostgreSQL refused a write ({primary}).", permanent=True)
        if self.is_disconnect(exc):
            return ConnectorError(f"Lost the connection to PostgreSQL: {primary}")
        permanent = sqlstate[:2] in ("0A", "22", "23", "25", "28", "2B", "3D", "3F", "42", "44", "P0")
        return ConnectorError(f"PostgreSQL error: {primary}", permanent=permanent)

    def is_record_error(self, exc: BaseException) -> bool:
        return (getattr(exc, "sqlstate", None) or "")[:2] in ("22", "23")

    def is_type_mismatch(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) in ("42883", "42804")

    def is_disconnect(self, exc: BaseException) -> bool:
        sqlstate = getattr(exc, "sqlstate", None)
        return isinstance(exc, psycopg.OperationalError) and (sqlstate is None or sqlstate.startswith("08"))


POSTGRES = PostgresDialect()


@register
class PostgresApp(SqlApp):
    key = "postgres"
    label = "PostgreSQL"
    dialect = POSTGRES
    options = (
        Option("host", "Host", required=True, default="localhost"),
        Option("port", "Port", type="number", default=5432),
        Option("database", "Database", required=True),
        Option("user", "User", required=True),
        Option("password", "Password", type="secret"),
        Option("schema", "Schema", default="public", help_text="Tables are read from and written to this schema."),
        Option("sslmode", "SSL mode", type="choice", choices=tuple((m, m) for m in SSL_MODES)),
        timeout_option(),
    )


@register
class PostgresTableSource(SqlTableSource):
    key = "postgres-table"
    app_key = "postgres"
    label = "PostgreSQL table"
    aliases = ("postgres-import-table", "postgres-table-import")
    dialect = POSTGRES


@register
class PostgresQuerySource(SqlQuerySource):
    key = "postgres-query"
    app_key = "postgres"
    label = "PostgreSQL query"
    aliases = ("postgres-import-query", "postgres-query-import")
    dialect = POSTGRES


@register
class PostgresDestination(SqlDestination):
    key = "postgres-export"
    app_key = "postgres"
    label = "PostgreSQL table export"
    aliases = ("postgres-export-records",)
    dialect = POSTGRES


def _is_text_type(column_type: str) -> bool:
    return column_type in ("text", "citext", "name") or column_type.startswith(("character", "varchar", "char"))
