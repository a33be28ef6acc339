"""The shared columnar SQL connectors: table and query sources and a table destination.

Everything a SQL database connector does lives here, written once against a small `Dialect`
object; a dialect module (`connectors/sqlite.py`, `connectors/postgres.py`, `connectors/mysql.py`,
`connectors/duckdb.py`) holds only what differs: how to connect, transaction setup (read only,
statement timeout), catalog queries, a few spellings (case-insensitive LIKE, arrays, upsert), a
few capability flags (savepoints, outer references inside derived tables, connection reuse) and
the translation of driver errors into `ConnectorError`. A new SQL database takes one such module:
subclass `Dialect`, then declare the app, sources and destination as five small classes.

Rules kept throughout:

- Values always travel as bound parameters (`Frag` carries SQL text and its parameters in
  order); identifiers are quoted by the dialect and checked against the live columns first, so
  an unknown column is a permanent `ConnectorError` naming it, never an injection.
- Sources are read only, structurally: a source or app connection is opened read only (a
  read-only file, or a session whose default transaction is read only and whose statements are
  bounded by the app's statement timeout, `statementTimeout`, seconds, default 30); every driver
  runs one statement per call, so SQL cannot be stacked after a user query; and every source call
  runs in its own read-only transaction with the timeout. Checking a query's first word
  (`Dialect.check_user_sql`) only makes the refusal of a DROP read well.
- Work is set-based: a page is one SELECT, secondary-source aggregation is one statement per
  call, and an export batch is a handful of statements (`executemany`) in one transaction.
"""
from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from connectors.base import (
    AppConnector,
    Batch,
    Column,
    ConnectorError,
    DestinationConnector,
    ExportPayload,
    ExportResult,
    MappingOptions,
    Option,
    PropertySpec,
    SourceConnector,
    SyncOperations,
)
from connectors.sql_text import STANDARD, Lexicon, code_of, holds_several_statements

# --- filter operations --------------------------------------------------------------------

STRING_OPS = ("eq", "ne", "exists", "notExists", "substring", "notSubstring", "in", "gt", "gte", "lt", "lte")
ORDERED_OPS = ("eq", "ne", "exists", "notExists", "gt", "gte", "lt", "lte", "in")
BOOLEAN_OPS = ("eq", "ne", "exists", "notExists")
OPS_BY_TYPE = {
    "string": STRING_OPS,
    "integer": ORDERED_OPS,
    "float": ORDERED_OPS,
    "date": ORDERED_OPS,
    "boolean": BOOLEAN_OPS,
}
# Older spellings users' config files still carry.
FILTER_OP_ALIASES = {
    "equals": "eq",
    "does not equal": "ne",
    "does not exist": "notExists",
    "not exists": "notExists",
    "greater than": "gt",
    "greater than or equal to": "gte",
    "less than": "lt",
    "less than or equal to": "lte",
    "contains": "substring",
    "does not contain": "notSubstring",
}
_COMPARISON = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

# --- aggregation methods ------------------------------------------------------------------

AGGREGATION_METHODS = ("exact", "average", "count", "sum", "min", "max", "most_recent", "least_recent")
AGGREGATION_ALIASES = {
    "avg": "average",
    "most recent value": "most_recent",
    "least recent value": "least_recent",
    "most recent": "most_recent",
    "least recent": "least_recent",
    "mostrecent": "most_recent",
    "leastrecent": "least_recent",
}
_SQL_AGGREGATES = {"average": "AVG", "count": "COUNT", "sum": "SUM", "min": "MIN", "max": "MAX"}

DEFAULT_STATEMENT_TIMEOUT = 30.0
IN_CHUNK = 1000  # keys per IN (...) list

_MUSTACHE = re.compile(r"(?P<q>'?)\{\{\{?\s*(?P<name>[^{}\s]+)\s*\}?\}\}(?P=q)")
_CANONICAL_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$")
_DATE_LIKE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


# The longest statementTimeout an app may set (seconds); 0 means no limit.
MAX_STATEMENT_TIMEOUT = 86_400.0


def statement_timeout_problem(raw: Any) -> str | None:
    """Why `raw` is not a statementTimeout (a number of seconds from 0, no limit, to a day)."""
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return f"statementTimeout {raw!r} is not a number of seconds."
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_STATEMENT_TIMEOUT:
        return f"statementTimeout must be from 0 (no limit) to {MAX_STATEMENT_TIMEOUT:g} seconds, not {raw!r}."
    return None


def statement_timeout_of(options: dict[str, Any]) -> float | None:
    """Seconds a source statement may run: the app option statementTimeout (default 30; 0: no
    limit). A value that is not a number from 0 to a day (NaN, infinity, negative: stored
    before the option was checked) is a permanent ConnectorError, never "no limit"."""
    raw = option_value(options, "statementTimeout", DEFAULT_STATEMENT_TIMEOUT)
    problem = statement_timeout_problem(raw)
    if problem:
        raise ConnectorError(problem, permanent=True)
    seconds = float(raw)
    return seconds if seconds > 0 else None


def normalize_aggregation(value: Any) -> str:
    """Our name for an aggregation method, accepting Grouparoo's spellings ("most recent value")."""
    text = str(value or "exact").strip()
    method = AGGREGATION_ALIASES.get(text.lower(), text.lower().replace(" ", "_"))
    if method not in AGGREGATION_METHODS:
        raise ConnectorError(
            f"Unknown aggregation method {text!r} (one of {', '.join(AGGREGATION_METHODS)}).",
            permanent=True,
        )
    return method


# --- SQL fragments ------------------------------------------------------------------------


class Frag:
    """SQL text with its bound parameters, in textual order; fragments concatenate with `+`."""

    __slots__ = ("sql", "params")

    def __init__(self, sql: str = "", params: Iterable[Any] = ()):
        self.sql = sql
        self.params = list(params)

    def __add__(self, other: Frag | str) -> Frag:
        if isinstance(other, str):
            return Frag(self.sql + other, self.params)
        return Frag(self.sql + other.sql, self.params + other.params)

    def __radd__(self, other: str) -> Frag:
        return Frag(other + self.sql, self.params)

    @staticmethod
    def join(sep: str, parts: Iterable[Frag | str]) -> Frag:
        out = Frag()
        for i, part in enumerate(parts):
            out = (out + sep + part) if i else out + part
        return out

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Frag({self.sql!r}, {self.params!r})"


def jsonable(value: Any) -> Any:
    """A JSON-serialisable form of a key or watermark that the same database compares correctly
    when it comes back as a bound parameter (ISO strings for dates, str for Decimal/UUID)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def key_norm(value: Any) -> Any:
    """A comparable form of a key, so a database's 5 matches the engine's "5" or Decimal("5.0")."""
    # Fast paths for the usual keys (ints, and their text), each equal to the general form below.
    cls = value.__class__
    if cls is int:
        return str(value)
    if cls is str and value.isdigit() and value.isascii() and (value[0] != "0" or len(value) == 1):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        try:
            dec = Decimal(str(value)).normalize()
        except InvalidOperation:
            return str(value)
        return format(dec, "f")
    if isinstance(value, str):
        # Only canonical numbers ("5", "-2.50") meet numeric keys; "05" stays a distinct text key.
        if _CANONICAL_NUMBER.match(value):
            return format(Decimal(value).normalize(), "f")
        return value
    return str(jsonable(value))


def infer_type(values: Iterable[Any]) -> str:
    """Our column type ("integer", "float", "boolean", "date", "string") from sample values, for
    columns whose database type is unknown (SQLite expressions, untyped columns)."""
    seen: set[str] = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            seen.add("boolean")
        elif isinstance(value, int):
            seen.add("integer")
        elif isinstance(value, float | Decimal):
            seen.add("float")
        elif isinstance(value, datetime | date):
            seen.add("date")
        elif isinstance(value, str) and _DATE_LIKE.match(value):
            seen.add("date")
        else:
            seen.add("string")
    if len(seen) == 1:
        return seen.pop()
    if seen == {"integer", "float"}:
        return "float"
    return "string"


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` moved by whole calendar months, the day clamped to the target month's length."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def relative_moment(spec: dict[str, Any], now: datetime | None = None) -> datetime:
    """now ± {"number", "unit", "direction"} as an aware UTC datetime."""
    now = now or datetime.now(UTC)
    try:
        number = int(spec.get("number") or 0)
    except (TypeError, ValueError):
        raise ConnectorError(f"Relative match number {spec.get('number')!r} is not a whole number.", permanent=True) from None
    unit = str(spec.get("unit") or "days").lower()
    sign = 1 if str(spec.get("direction") or "subtract").lower() == "add" else -1
    if unit in ("day", "days"):
        return now + sign * timedelta(days=number)
    if unit in ("week", "weeks"):
        return now + sign * timedelta(weeks=number)
    months = {"month": 1, "months": 1, "quarter": 3, "quarters": 3, "year": 12, "years": 12}.get(unit)
    if months is None:
        raise ConnectorError(f"Unknown relative match unit {unit!r}.", permanent=True)
    return add_months(now, sign * number * months)


def coerce_match(value: Any, column_type: str) -> Any:
    """A filter's text match as the Python value to bind for a column of `column_type`."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if column_type == "boolean":
        lowered = text.lower()
        if lowered in ("true", "t", "1", "yes", "y"):
            return True
        if lowered in ("false", "f", "0", "no", "n"):
            return False
        return value
    if column_type in ("integer", "float"):
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return value
    return value


def option_value(options: dict[str, Any], key: str, default: Any = None) -> Any:
    """options[key], or `default` when it is missing, None or blank (a blank admin field)."""
    value = options.get(key)
    return default if value is None or value == "" else value


_opt = option_value


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the dialect --------------------------------------------------------------------------


# Whitespace, comments and opening parentheses before a query's first word.
_LEADING_SQL_NOISE = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()*", re.S)
_QUERY_KEYWORDS = ("select", "with", "values", "table")


class Dialect:
    """What differs between SQL databases. The defaults are standard SQL (double-quoted
    identifiers, `?` parameters, `LIMIT`, `INSERT ... ON CONFLICT`, `VALUES` lists); a dialect
    module overrides only what its database spells differently."""

    name: ClassVar[str] = "SQL"
    placeholder: ClassVar[str] = "?"
    # The driver's base exception class(es); anything else propagates untouched.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    # SAVEPOINT / ROLLBACK TO SAVEPOINT inside a transaction. Without them a query property
    # whose key type the database rejects is not retried key by key, and an export batch cannot
    # isolate a failing record (SQL destinations need them).
    supports_savepoints: ClassVar[bool] = True
    # A subquery may reference a column of the outer query from inside a derived table
    # (`FROM (SELECT ... WHERE x = outer.k) AS t`). Where it may not (MariaDB), query properties
    # run once per key with the key bound, exactly as the user wrote them.
    correlated_derived_tables: ClassVar[bool] = True
    # Keep one connection per connector instance across calls. False: connect for each call and
    # close after it (embedded databases, whose open file would block writers elsewhere).
    persistent_connections: ClassVar[bool] = True

    # -- identifiers and raw SQL text
    def quote(self, ident: str) -> str:
        """A quoted identifier (embedded quotes doubled)."""
        return '"' + str(ident).replace('"', '""') + '"'

    def escape_sql_text(self, sql: str) -> str:
        """User-written SQL made safe to send with bound parameters (psycopg doubles `%`)."""
        return sql

    def check_user_sql(self, sql: str) -> None:
        """Raise a permanent ConnectorError for user-written SQL (a source query, a query
        property, an App Refresh Query) that is not a query. The read-only transaction is the
        guard; this only makes the refusal of a DROP or DELETE say so instead of failing as
        a syntax error inside the wrapping SELECT."""
        head = _LEADING_SQL_NOISE.sub("", str(sql or ""), count=1)
        word = head.split(None, 1)[0].lower() if head.strip() else ""
        if not word.startswith(_QUERY_KEYWORDS):
            shown = word.rstrip(";,")[:20].upper() or "nothing"
            raise ConnectorError(
                f"Only a query (SELECT, WITH, VALUES) can read a source; this one starts with {shown}.",
                permanent=True,
            )
        self.check_query_code(sql)

    def check_query_code(self, sql: str) -> None:
        """What every dialect checks in user-written SQL after its first word: one statement,
        and nothing `forbidden_in_query` turns away."""
        code = code_of(str(sql or ""), self.lexicon)
        if holds_several_statements(code):
            raise ConnectorError(
                "A source query is one statement; this one has a ';' between statements.", permanent=True
            )
        problem = self.forbidden_in_query(code)
        if problem:
            raise ConnectorError(problem, permanent=True)

    # How this database spells literals and comments (connectors/sql_text.py).
    lexicon: ClassVar[Lexicon] = STANDARD

    def forbidden_in_query(self, code: str) -> str | None:
        """Why user-written SQL may not run (`code`: its text outside literals and comments,
        sql_text.code_of), or None. For what a too-powerful database role could do from inside
        a SELECT (write server files, reach other databases); a read-only role is the real
        answer (docs/connectors.md)."""
        return None

    # -- connections and transactions
    def connect(self, options: dict[str, Any], *, read_only: bool) -> Any:
        """A DB-API connection, or ConnectorError (never containing a secret). Every dialect's
        connections run one statement per execute() (a second one is an error, never run).
        `read_only` (sources, apps' refresh queries and test_connection): the connection itself
        is read only — a read-only file, or a session whose transactions default to read only
        with the app's statement timeout set for the session — so no statement a query smuggles
        in can write, whatever the transaction does."""
        raise NotImplementedError

    def begin(self, conn: Any, *, read_only: bool, timeout: float | None) -> None:
        """Start a transaction; read only and bounded by `timeout` seconds when asked."""
        raise NotImplementedError

    def commit(self, conn: Any) -> None:
        conn.commit()

    def keyed_statements(self, cur: Any) -> None:
        """Called at the start of a destination's write transaction, whose every statement
        reads the destination's tables by key: a dialect whose planner may scan a table
        instead (statistics missing while a first sync fills it) says so here."""

    def rollback(self, conn: Any) -> None:
        conn.rollback()

    def server_description(self, conn: Any, options: dict[str, Any]) -> str:
        """The short success message of test_connection()."""
        raise NotImplementedError

    # -- catalog
    def table_ref(self, options: dict[str, Any], table: str) -> str:
        """The quoted (and, where the app says so, schema-qualified) name of `table`."""
        return self.quote(table)

    def table_columns(self, cur: Any, options: dict[str, Any], table: str) -> list[tuple[str, str | None]]:
        """[(column, database type or None)] of a table or view; [] when it does not exist."""
        raise NotImplementedError

    def has_unique_index(self, cur: Any, options: dict[str, Any], table: str, column: str) -> bool:
        """Whether `column` alone is the primary key or has a non-partial unique index."""
        raise NotImplementedError

    def description_types(self, cur: Any) -> list[str | None]:
        """Database type names of the last query's result columns (None where unknown)."""
        return [None for _ in cur.description]

    def classify_type(self, type_name: str | None) -> str | None:
        """Our column type for a database type: integer, float, boolean, date or string
        (None: unknown, infer from values)."""
        if not type_name:
            return None
        t = type_name.strip().lower()
        if t.endswith("]"):
            return "string"
        if t in ("bool", "boolean"):
            return "boolean"
        if "date" in t or "time" in t:
            return "date"
        if "interval" in t or "point" in t:
            return "string"
        if "int" in t or "serial" in t:
            return "integer"
        if re.search(r"real|floa|doub|numeric|decimal|money|number", t):
            return "float"
        return "string"

    # -- spellings
    def limit_sql(self) -> str:
        """A LIMIT taking one parameter."""
        return f"LIMIT {self.placeholder}"

    def limit_literal(self, n: int) -> str:
        return f"LIMIT {int(n)}"

    def like_sql(self, expr: str) -> str:
        """A case-insensitive LIKE of `expr` against one parameter, with `\\` as escape."""
        return f"{expr} LIKE {self.placeholder} ESCAPE '\\'"

    def date_expr(self, expr: str) -> str:
        """`expr` (a date column) as something that compares with date_param_sql()."""
        return expr

    def date_param_sql(self) -> str:
        return self.placeholder

    def date_param(self, moment: datetime) -> Any:
        """An aware UTC datetime as the parameter date_param_sql() expects."""
        return moment

    def aggregate_sql(self, function: str, value: str, db_type: str | None) -> str:
        """`function` (SUM, AVG, COUNT, MIN or MAX) over `value`, a column of database type
        `db_type` (None: unknown). A dialect makes SUM and AVG exact where its database adds
        binary floats: 0.1 + 0.2 is 0.3, and 509.17 stays 509.17, not 509.1700000000001."""
        return f"{function}({value})"

    def decode_number(self, value: Any) -> Any:
        """A SUM or AVG result as the driver returned it, as a Python number."""
        return value

    def array_agg_sql(self, value: str, order: str) -> str:
        """An aggregate collecting `value` ordered by `order` (the rows also arrive in order)."""
        raise NotImplementedError

    def array_subquery_sql(self, select_sql: str, column: str) -> str:
        """A scalar expression holding every `column` value of `select_sql` (rows in order)."""
        raise NotImplementedError

    def decode_array(self, value: Any) -> list[Any]:
        """The Python list of a value produced by array_agg_sql/array_subquery_sql."""
        return list(value) if value is not None else []

    def keys_relation(self, keys: Sequence[Any]) -> Frag:
        """A relation body with one column, one row per key (used as `WITH _keys(_k) AS (...)`)."""
        return Frag(
            "VALUES " + ", ".join(f"({self.placeholder})" for _ in keys),
            keys,
        )

    def upsert_sql(self, table_sql: str, columns: Sequence[str], key: str, update: Sequence[str]) -> str:
        """One parameterised row insert that updates `update` columns when `key` exists
        (does nothing when `update` is empty). Columns arrive quoted."""
        ph = ", ".join(self.placeholder for _ in columns)
        sql = f"INSERT INTO {table_sql} ({', '.join(columns)}) VALUES ({ph}) ON CONFLICT ({key}) DO "
        if not update:
            return sql + "NOTHING"
        return sql + "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)

    def bulk_upsert(
        self, cur: Any, table_sql: str, columns: Sequence[str], key: str, update: Sequence[str], rows: list[list[Any]]
    ) -> None:
        """Write many rows as upsert_sql would, row after row (the last of equal keys wins)."""
        cur.executemany(self.upsert_sql(table_sql, columns, key, update), rows)

    def bulk_insert(self, cur: Any, table_sql: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
        """Insert many rows known not to exist."""
        ph = ", ".join(self.placeholder for _ in columns)
        cur.executemany(f"INSERT INTO {table_sql} ({', '.join(columns)}) VALUES ({ph})", rows)

    def adapt_value(self, value: Any, column_type: str | None) -> Any:
        """A payload value as the driver should bind it into a column of `column_type`."""
        return value

    def in_frag(self, column_sql: str, values: Sequence[Any]) -> str:
        """`column IN (...)` for a chunk of key values, as SQL text for Frag(text, values)."""
        return f"{column_sql} IN ({', '.join(self.placeholder for _ in values)})"

    def in_params(self, values: Sequence[Any]) -> list[Any]:
        return list(values)

    def value_adapter(self, column_type: str | None) -> Callable[[Any], Any]:
        """adapt_value for one column type, as a function of the value alone (a batch adapts
        every value of a column the same way); a dialect may return a faster equivalent."""
        adapt = self.adapt_value
        return lambda value: adapt(value, column_type)

    def value_passthrough(self, column_type: str | None) -> frozenset[type]:
        """The classes whose values adapt_value returns unchanged for `column_type`: a batch
        binds those without calling the adapter (tests/connectors/test_sql_adapters.py checks
        the promise). None by default."""
        return frozenset()

    # -- errors
    def translate_error(self, exc: BaseException, *, timeout: float | None) -> ConnectorError:
        """A driver error as a ConnectorError with a clear, secret-free message."""
        return ConnectorError(f"{self.name} error: {exc}")

    def connect_error(self, host: str, port: int, reason: str, *, password: Any, permanent: bool) -> ConnectorError:
        """A failed connection as a ConnectorError: where, and the server's reason with the
        password masked should the driver have echoed it. Raise it `from None`, so the driver's
        exception (which may hold the connection parameters) is not carried along."""
        reason = " ".join(str(reason).split())
        if password:
            reason = reason.replace(str(password), "********")
        return ConnectorError(f"Could not connect to {self.name} at {host}:{port}: {reason}", permanent=permanent)

    def exact_eq(self, column_sql: str) -> str:
        """`column = <placeholder>` compared byte for byte (case and trailing spaces count), as
        SQL text; the group names of a groups table are compared so."""
        return f"{column_sql} = {self.placeholder}"

    def bulk_insert_missing(self, cur: Any, table_sql: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
        """Insert rows this connector found missing; a dialect whose unique indexes compare text
        more loosely than exact_eq treats a row its index calls a duplicate as present."""
        self.bulk_insert(cur, table_sql, columns, rows)

    def is_record_error(self, exc: BaseException) -> bool:
        """True when the error is about a row's data (a value the column rejects), so an export
        batch can isolate the failing records instead of failing whole."""
        return False

    def is_type_mismatch(self, exc: BaseException) -> bool:
        """True when a statement failed only because a bound key had the wrong type."""
        return False

    def is_disconnect(self, exc: BaseException) -> bool:
        """True when the connection is unusable after `exc` (it is then reopened)."""
        return False


# --- connection lifecycle -----------------------------------------------------------------


class SqlConnectionMixin:
    """One lazily opened connection per connector instance; one transaction per public call."""

    dialect: ClassVar[Dialect]
    read_only: ClassVar[bool] = True
    app_options: dict[str, Any]
    _conn: Any = None

    def statement_timeout(self) -> float | None:
        """Seconds a source statement may run (app option statementTimeout; 0 disables)."""
        return statement_timeout_of(self.app_options)

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.dialect.connect(self.app_options, read_only=self.read_only)
        return self._conn

    def close(self) -> None:
        """Release the connection. Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection must not mask the real error
                pass

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction (read only with a timeout for sources); commits on
        success, rolls back on any error, and turns driver errors into ConnectorError."""
        timeout = self.statement_timeout() if self.read_only else None
        conn = self._connection()
        try:
            self.dialect.begin(conn, read_only=self.read_only, timeout=timeout)
            cur = conn.cursor()
            yield cur
            self.dialect.commit(conn)
        except BaseException as exc:
            try:
                self.dialect.rollback(conn)
            except Exception:
                self.close()
            if self.dialect.driver_errors and isinstance(exc, self.dialect.driver_errors):
                if self.dialect.is_disconnect(exc):
                    self.close()
                raise self.dialect.translate_error(exc, timeout=timeout) from exc
            raise
        finally:
            if not self.dialect.persistent_connections:
                self.close()

    @staticmethod
    def execute(cur: Any, frag: Frag) -> Any:
        cur.execute(frag.sql, frag.params)
        return cur

    @staticmethod
    def fetch_dicts(cur: Any) -> list[dict[str, Any]]:
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class SqlApp(SqlConnectionMixin, AppConnector):
    """An SQL app: its options are the connection; test_connection() connects and describes."""

    dialect: ClassVar[Dialect]

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        errors = super().validate_options(options)
        if option_value(options, "statementTimeout") not in (None, ""):
            problem = statement_timeout_problem(option_value(options, "statementTimeout"))
            if problem:
                errors.setdefault("statementTimeout", problem)
        return errors

    def refresh_query(self, query: str) -> str | None:
        """Run an App Refresh Query read-only with the statement timeout, as a source query is
        run (a read-only connection, one statement); return the first column of the first row
        as text (dates in ISO 8601), None for no row or NULL."""
        self.dialect.check_user_sql(query)
        try:
            with self.transaction() as cur:
                cur.execute(query)
                row = cur.fetchone()
        finally:
            self.close()
        if not row or row[0] is None:
            return None
        value = row[0]
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    def test_connection(self) -> str:
        """Connect read-only and return e.g. "Connected to PostgreSQL 15.20, database shop".
        Raises ConnectorError (permanent for bad credentials or a missing database/file)."""
        conn = self.dialect.connect(self.app_options, read_only=True)
        try:
            return self.dialect.server_description(conn, self.app_options)
        except self.dialect.driver_errors as exc:
            raise self.dialect.translate_error(exc, timeout=None) from exc
        finally:
            try:
                conn.close()
            except Exception:
                pass


# --- sources ------------------------------------------------------------------------------


def timeout_option() -> Option:
    return Option(
        "statementTimeout",
        "Statement timeout (seconds)",
        type="number",
        default=DEFAULT_STATEMENT_TIMEOUT,
        help_text="Source queries are cancelled after this many seconds (0: no limit).",
    )


class SqlSource(SqlConnectionMixin, SourceConnector):
    """What table and query sources share: the relation they read (`relation()`), its columns,
    filters compiled to SQL, keyset-paged reads, counts and watermarks."""

    def __init__(self, app_options: dict[str, Any], source_options: dict[str, Any]):
        super().__init__(app_options, source_options)
        self._column_cache: dict[str, Column] | None = None
        self._db_types: dict[str, str | None] = {}  # column -> the database's type name

    # -- what a flavour provides
    def relation(self) -> str:
        """FROM-clause SQL of the rows this source reads (no parameters)."""
        raise NotImplementedError

    def describe(self, cur: Any) -> list[tuple[str, str | None]]:
        """[(column, database type or None)] of relation()."""
        self.execute(cur, Frag(f"SELECT * FROM {self.relation()} WHERE 1 = 0"))
        names = [d[0] for d in cur.description]
        cur.fetchall()
        return list(zip(names, self.dialect.description_types(cur), strict=True))

    # -- columns
    def columns(self, cur: Any) -> dict[str, Column]:
        """{name: Column} of the relation, typed (by values where the database does not say)."""
        if self._column_cache is None:
            described = self.describe(cur)
            types = {name: self.dialect.classify_type(t) for name, t in described}
            unknown = [name for name, t in types.items() if t is None]
            if unknown:
                sql = f"SELECT {', '.join(self.dialect.quote(n) for n in unknown)} FROM {self.relation()} {self.dialect.limit_sql()}"
                rows = self.execute(cur, Frag(sql, [100])).fetchall()
                for i, name in enumerate(unknown):
                    types[name] = infer_type(row[i] for row in rows)
            self._column_cache = {
                name: Column(name=name, type=t or "string", filter_ops=OPS_BY_TYPE[t or "string"])
                for name, t in types.items()
            }
            self._db_types = dict(described)
        return self._column_cache

    def column_sql(self, name: str, columns: dict[str, Column], what: str = "column") -> str:
        """The quoted identifier of a known column; unknown → permanent ConnectorError."""
        if name not in columns:
            raise ConnectorError(f'Unknown {what} "{name}" (the source has: {", ".join(columns) or "no columns"}).', permanent=True)
        return self.dialect.quote(name)

    # -- filters
    def filter_sql(self, spec: dict[str, Any], columns: dict[str, Column]) -> Frag:
        """One filter spec {"key", "op", "match", "relative_match"?} as a boolean SQL expression.

        The match is bound, typed by the column (numbers, booleans); "in" takes a comma list;
        substring is case-insensitive with LIKE wildcards taken literally; "ne" and
        "notSubstring" leave out rows where the column is NULL (`NULL <> x` is not true), as
        Grouparoo's sources and group rules on single values do: "notExists" selects those.
        A relative match compares the column with now ± the interval."""
        d, ph = self.dialect, self.dialect.placeholder
        key = str(spec.get("key") or "")
        col = self.column_sql(key, columns, "filter column")
        column = columns[key]
        raw_op = str(spec.get("op") or "")
        op = FILTER_OP_ALIASES.get(raw_op, raw_op)
        relative = spec.get("relative_match")
        if op not in STRING_OPS:
            raise ConnectorError(f'Unknown filter operation "{raw_op}" on column "{key}".', permanent=True)
        if op == "exists":
            return Frag(f"{col} IS NOT NULL")
        if op == "notExists":
            return Frag(f"{col} IS NULL")
        if relative:
            if op not in ("eq", "ne", "gt", "gte", "lt", "lte"):
                raise ConnectorError(f'Filter "{op}" cannot take a relative date (column "{key}").', permanent=True)
            moment = d.date_param(relative_moment(relative))
            lhs, rhs = d.date_expr(col), d.date_param_sql()
            return Frag(f"{lhs} {_COMPARISON[op]} {rhs}", [moment])
        if op not in column.filter_ops:
            raise ConnectorError(
                f'Filter "{op}" is not available on column "{key}" ({column.type}); '
                f"allowed: {', '.join(column.filter_ops)}.",
                permanent=True,
            )
        match = spec.get("match")
        if column.type == "date":
            lhs, rhs = d.date_expr(col), d.date_param_sql()
        else:
            lhs, rhs = col, ph
        if op in ("substring", "notSubstring"):
            text = str(match if match is not None else "")
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            like = d.like_sql(col)
            if op == "substring":
                return Frag(like, [pattern])
            return Frag(f"NOT ({like})", [pattern])
        if op == "in":
            items = [s.strip() for s in str(match if match is not None else "").split(",") if s.strip()]
            if not items:
                return Frag("1 = 0")
            values = [coerce_match(s, column.type) for s in items]
            return Frag(f"{lhs} IN ({', '.join(rhs for _ in values)})", values)
        value = coerce_match(match, column.type)
        return Frag(f"{lhs} {_COMPARISON[op]} {rhs}", [value])

    def where_sql(self, conditions: list[Frag]) -> Frag:
        return (Frag(" WHERE ") + Frag.join(" AND ", conditions)) if conditions else Frag()

    def base_conditions(
        self,
        columns: dict[str, Column],
        *,
        watermark_column: str | None,
        since: Any | None,
        filters: Iterable[dict[str, Any]],
    ) -> list[Frag]:
        conditions = [self.filter_sql(f, columns) for f in filters]
        if watermark_column and since is not None:
            wm = self.column_sql(watermark_column, columns, "watermark column")
            conditions.append(Frag(f"{wm} >= {self.dialect.placeholder}", [self.dialect.adapt_value(since, None)]))
        return conditions

    # -- SourceConnector
    def preview(self, limit: int = 10) -> list[dict[str, Any]]:
        """Up to `limit` rows of the relation, as read_batch returns them. Read only."""
        with self.transaction() as cur:
            self.columns(cur)  # a missing table fails here, with the same message everywhere
            self.execute(cur, Frag(f"SELECT * FROM {self.relation()} {self.dialect.limit_sql()}", [int(limit)]))
            return self.fetch_dicts(cur)

    def list_columns(self) -> list[Column]:
        """The relation's columns with our type (integer/float/boolean/date/string) and the
        filter operations each allows."""
        with self.transaction() as cur:
            return list(self.columns(cur).values())

    def read_batch(
        self,
        *,
        key_column: str,
        columns: list[str] | None,
        watermark_column: str | None,
        since: Any | None,
        after: Any | None,
        limit: int,
        filters: list[dict[str, Any]],
        distinct_keys: bool = False,
    ) -> Batch:
        """The next page ordered by key_column: `key > after`, `watermark >= since`, filters in
        the WHERE, NULL keys left out. The page never ends inside a run of rows sharing one key
        (it may then hold a few more than `limit` rows), so `after` loses nothing. The cursor is
        the last key in JSON form. Read only; safe to repeat."""
        limit = int(limit)
        if limit < 1:
            raise ConnectorError("read_batch limit must be at least 1.", permanent=True)
        ph = self.dialect.placeholder
        with self.transaction() as cur:
            cols = self.columns(cur)
            key = self.column_sql(key_column, cols, "key column")
            conditions = [Frag(f"{key} IS NOT NULL")]
            conditions += self.base_conditions(cols, watermark_column=watermark_column, since=since, filters=filters)
            if after is not None:
                conditions.append(Frag(f"{key} > {ph}", [self.dialect.adapt_value(after, None)]))
            where = self.where_sql(conditions)
            if distinct_keys:
                sql = Frag(f"SELECT {key} FROM {self.relation()}") + where
                sql += f" GROUP BY {key} ORDER BY {key} {self.dialect.limit_sql()}"
                rows = self.fetch_dicts(self.execute(cur, sql + Frag("", [limit])))
            else:
                wanted = list(dict.fromkeys([key_column, *(columns or [])])) if columns is not None else None
                select = ", ".join(self.column_sql(c, cols) for c in wanted) if wanted else "*"
                base = Frag(f"SELECT {select} FROM {self.relation()}")
                sql = base + where + f" ORDER BY {key} {self.dialect.limit_sql()}"
                rows = self.fetch_dicts(self.execute(cur, sql + Frag("", [limit + 1])))
                if len(rows) > limit:
                    peek, rows = rows[limit], rows[:limit]
                    last = rows[-1][key_column]
                    if peek[key_column] == last:
                        # The page edge falls inside one key's rows: finish that key.
                        rows = [r for r in rows if r[key_column] != last]
                        rest = base + self.where_sql([*conditions, Frag(f"{key} = {ph}", [last])])
                        rows += self.fetch_dicts(self.execute(cur, rest))
        cursor = jsonable(rows[-1][key_column]) if rows else None
        return Batch(rows=rows, cursor=cursor)

    def max_watermark(self, *, watermark_column: str, filters: list[dict[str, Any]]) -> Any | None:
        """MAX(watermark_column) over the filtered rows, JSON-serialisable (ISO strings for dates,
        str for decimals) in a form read_batch accepts back as `since`."""
        with self.transaction() as cur:
            cols = self.columns(cur)
            wm = self.column_sql(watermark_column, cols, "watermark column")
            where = self.where_sql(self.base_conditions(cols, watermark_column=None, since=None, filters=filters))
            row = self.execute(cur, Frag(f"SELECT MAX({wm}) FROM {self.relation()}") + where).fetchone()
        return jsonable(row[0]) if row else None

    def count(self, *, watermark_column: str | None, since: Any | None, filters: list[dict[str, Any]]) -> int:
        """How many rows match the filters (and `watermark >= since`)."""
        with self.transaction() as cur:
            cols = self.columns(cur)
            where = self.where_sql(self.base_conditions(cols, watermark_column=watermark_column, since=since, filters=filters))
            row = self.execute(cur, Frag(f"SELECT COUNT(*) FROM {self.relation()}") + where).fetchone()
        return int(row[0]) if row else 0

    # -- helpers for aggregate()
    @staticmethod
    def map_keys(keys: Sequence[Any]) -> dict[Any, Any]:
        """{normalised key: key as the caller gave it}, to key results the caller's way."""
        return {key_norm(k): k for k in keys}


class SqlTableSource(SqlSource):
    """A table (or view) read as rows; properties aggregate its rows per key."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("table", "Table", required=True, help_text="The table or view to read."),
    )
    property_options: ClassVar[tuple[Option, ...]] = (
        Option("column", "Column", required=True, help_text="The column holding the value."),
        Option(
            "aggregationMethod",
            "Aggregation method",
            type="choice",
            default="exact",
            choices=tuple((m, m.replace("_", " ")) for m in AGGREGATION_METHODS),
            help_text="How the rows of one record combine into the value.",
        ),
        Option("sortColumn", "Sort column", help_text="Orders rows for most/least recent (e.g. purchased_at)."),
    )

    def relation(self) -> str:
        table = _opt(self.source_options, "table")
        if not table:
            raise ConnectorError("The source has no table.", permanent=True)
        return self.dialect.table_ref(self.app_options, str(table))

    def describe(self, cur: Any) -> list[tuple[str, str | None]]:
        table = str(_opt(self.source_options, "table", ""))
        described = self.dialect.table_columns(cur, self.app_options, table)
        if not described:
            raise ConnectorError(f'table "{table}" does not exist', permanent=True)
        return described

    def aggregate(
        self, *, properties: list[PropertySpec], key_column: str, key_property: str, keys: list[Any]
    ) -> dict[Any, dict[str, Any]]:
        """All `properties` for all `keys` in ONE statement: rows of the batch's keys, each
        property's filter as a 0/1 flag; SQL aggregates grouped by key; exact/most/least recent
        pick the first row of a ROW_NUMBER() window per key; arrays aggregate every value,
        ordered by the sort column (newest first for most recent, as Grouparoo ranks only
        single values). Sums and averages add exact decimals (`Dialect.aggregate_sql`). As in
        Grouparoo, counts and sums of keys without rows are 0, and arrays []. Read only; safe
        to repeat."""
        keys = [k for k in keys if k is not None]
        if not properties or not keys:
            return {}
        d = self.dialect
        key_map = self.map_keys(keys)
        unique_keys = list(key_map.values())
        with self.transaction() as cur:
            cols = self.columns(cur)
            key = self.column_sql(key_column, cols, "key column")
            parts = _AggregateParts(src=[f"{key} AS _k"])
            for i, prop in enumerate(properties):
                self._aggregate_property(parts, i, prop, cols)
            in_list = Frag(d.in_frag(key, unique_keys), d.in_params(unique_keys))
            sql = Frag("WITH _src AS (SELECT ") + Frag.join(", ", parts.src) + f" FROM {self.relation()} WHERE " + in_list + ")"
            if parts.windows:
                sql += f", _win AS (SELECT _src.*, {', '.join(parts.windows)} FROM _src)"
            group_cols = "".join(f", {a}" for a in parts.aggregates)
            sql += f" SELECT _g._k, {', '.join(expr for _, _, expr in parts.outputs)}"
            sql += f" FROM (SELECT _k{group_cols} FROM _src GROUP BY _k) _g " + " ".join(parts.joins)
            rows = self.execute(cur, sql).fetchall()
        result: dict[Any, dict[str, Any]] = {}
        for row in rows:
            values: dict[str, Any] = {}
            for (prop, method, _), value in zip(parts.outputs, row[1:], strict=True):
                if method == "array":
                    value = d.decode_array(value)
                elif method == "count":
                    value = int(value or 0)
                elif method in ("sum", "average"):
                    value = _plain_decimal(d.decode_number(value))
                    if value is None and method == "sum":
                        value = 0
                if prop.is_array and method != "array":
                    value = [] if value is None else [value]
                values[prop.key] = value
            result[key_map.get(key_norm(row[0]), row[0])] = values
        # Keys without rows: counts and sums are 0 and arrays empty (other values stay missing = NULL).
        empty: dict[str, Any] = {}
        for prop, method, _ in parts.outputs:
            if method in ("count", "sum"):
                empty[prop.key] = [0] if prop.is_array else 0
            elif prop.is_array:
                empty[prop.key] = []
        if empty:
            for k in unique_keys:
                if k not in result:
                    result[k] = dict(empty)
        return result

    def _aggregate_property(self, parts: _AggregateParts, i: int, prop: PropertySpec, cols: dict[str, Column]) -> None:
        """Add property number `i` to the parts of aggregate()'s statement: its column, sort
        column and filter flag in _src, and the window, aggregate or join giving its value."""
        d = self.dialect
        method = normalize_aggregation(prop.options.get("aggregationMethod"))
        column = prop.options.get("column")
        if not column:
            raise ConnectorError(f'Property "{prop.key}" has no column.', permanent=True)
        parts.src.append(f"{self.column_sql(str(column), cols)} AS _c{i}")
        sort = prop.options.get("sortColumn")
        if method in ("most_recent", "least_recent") and not sort:
            raise ConnectorError(
                f'Property "{prop.key}": {method.replace("_", " ")} needs a sortColumn.', permanent=True
            )
        if sort:
            parts.src.append(f"{self.column_sql(str(sort), cols, 'sort column')} AS _s{i}")
        if prop.filters:
            cond = Frag.join(" AND ", [self.filter_sql(f, cols) for f in prop.filters])
            parts.src.append(Frag("CASE WHEN ") + cond + f" THEN 1 ELSE 0 END AS _f{i}")
        else:
            parts.src.append(f"1 AS _f{i}")
        nulls_last = "CASE WHEN {0} IS NULL THEN 1 ELSE 0 END, {0}"
        direction = "DESC" if method == "most_recent" else "ASC"
        if method in ("exact", "most_recent", "least_recent") and prop.is_array:
            order = (nulls_last.format(f"_s{i}") + f" {direction}, ") if sort else ""
            order += f"_c{i}"
            inner = f"SELECT _k, _c{i}{f', _s{i}' if sort else ''} FROM _src WHERE _f{i} = 1 AND _c{i} IS NOT NULL ORDER BY _k, {order}"
            parts.joins.append(
                f"LEFT JOIN (SELECT _k, {d.array_agg_sql(f'_c{i}', order)} AS _v FROM ({inner}) _o{i} GROUP BY _k) _a{i} ON _a{i}._k = _g._k"
            )
            parts.outputs.append((prop, "array", f"_a{i}._v"))
        elif method in ("exact", "most_recent", "least_recent"):
            order = f"_f{i} DESC"
            if sort:
                order += ", " + nulls_last.format(f"_s{i}") + " " + direction
            order += ", " + nulls_last.format(f"_c{i}")
            parts.windows.append(f"ROW_NUMBER() OVER (PARTITION BY _k ORDER BY {order}) AS _r{i}")
            parts.joins.append(
                f"LEFT JOIN (SELECT _k, _c{i} AS _v FROM _win WHERE _r{i} = 1 AND _f{i} = 1) _p{i} ON _p{i}._k = _g._k"
            )
            parts.outputs.append((prop, method, f"_p{i}._v"))
        else:
            value = f"CASE WHEN _f{i} = 1 THEN _c{i} END"
            call = d.aggregate_sql(_SQL_AGGREGATES[method], value, self._db_types.get(str(column)))
            parts.aggregates.append(f"{call} AS _g{i}")
            parts.outputs.append((prop, method, f"_g._g{i}"))


@dataclass
class _AggregateParts:
    """The pieces of SqlTableSource.aggregate()'s one statement, property by property."""

    src: list[Frag | str]
    windows: list[str] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    outputs: list[tuple[PropertySpec, str, str]] = field(default_factory=list)  # (spec, method, select expression)


def _plain_decimal(value: Any) -> Any:
    """A Decimal sum or average without trailing fractional zeros (Decimal('40.00') -> 40,
    Decimal('0.300000') -> 0.3, as Grouparoo's parseFloat showed them); anything else as is."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return value
    sign, digits, exponent = value.as_tuple()
    while exponent < 0 and digits[-1] == 0:  # exact: no context rounding
        digits, exponent = digits[:-1] or (0,), exponent + 1
    return Decimal((0 if digits == (0,) else sign, digits, exponent))


def render_query(template: str, key_property: str, key_sql: str) -> tuple[str, int]:
    """`template` with each {{{ key_property }}} (or {{ }}, optionally inside single quotes)
    replaced by `key_sql`; returns (sql, number of replacements). Other names are an error:
    only the record's key is available to a query property."""
    others: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        if match.group("name") != key_property:
            others.add(match.group("name"))
        return key_sql

    sql, count = _MUSTACHE.subn(replace, template)
    if others:
        raise ConnectorError(
            f"The query uses {', '.join('{{{ ' + n + ' }}}' for n in sorted(others))}; "
            f"only {{{{{{ {key_property} }}}}}} (the record's key) is available.",
            permanent=True,
        )
    return sql, count


def clean_query(sql: str) -> str:
    """A user query without trailing semicolons or whitespace (it is wrapped as a subquery)."""
    return re.sub(r"[\s;]+$", "", str(sql or "")).strip()


class SqlQuerySource(SqlSource):
    """The rows of a user SELECT, wrapped as a subquery; properties are user SELECTs returning
    one value per record key ({{{ key }}} becomes a bound parameter or the key column)."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("query", "Query", type="textarea", required=True, help_text="A SELECT returning the rows to import."),
    )
    property_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "query",
            "Query",
            type="textarea",
            required=True,
            help_text="A SELECT returning one value; {{{ key }}} is replaced by the record's key (bound).",
        ),
    )

    def __init__(self, app_options: dict[str, Any], source_options: dict[str, Any]):
        super().__init__(app_options, source_options)
        self._first_columns: dict[str, str] = {}

    def relation(self) -> str:
        query = clean_query(self.source_options.get("query"))
        if not query:
            raise ConnectorError("The source has no query.", permanent=True)
        if _MUSTACHE.search(query):
            raise ConnectorError("A source query cannot use {{{ }}} placeholders; only property queries can.", permanent=True)
        self.dialect.check_user_sql(query)
        return f"({self.dialect.escape_sql_text(query)}) AS _q"

    def _property_sql(self, prop: PropertySpec, key_property: str, key_sql: str) -> tuple[str, int]:
        if prop.filters:
            raise ConnectorError(f'Property "{prop.key}": query properties take no filters (put them in the query).', permanent=True)
        template = clean_query(prop.options.get("query"))
        if not template:
            raise ConnectorError(f'Property "{prop.key}" has no query.', permanent=True)
        self.dialect.check_user_sql(template)
        return render_query(self.dialect.escape_sql_text(template), key_property, key_sql)

    def _first_column(self, cur: Any, sql: str, placeholders: int) -> str:
        """The name of the first result column of a property query (what its value is)."""
        if sql not in self._first_columns:
            probe = Frag(f"SELECT * FROM ({sql}) AS _u WHERE 1 = 0", [None] * placeholders)
            self.execute(cur, probe)
            self._first_columns[sql] = cur.description[0][0]
            cur.fetchall()
        return self._first_columns[sql]

    def _value_sql(self, cur: Any, prop: PropertySpec, key_property: str, key_sql: str) -> tuple[str, int]:
        ph = self.dialect.placeholder
        probe_sql, probe_count = self._property_sql(prop, key_property, ph)
        first = self.dialect.quote(self._first_column(cur, probe_sql, probe_count))
        sql, count = self._property_sql(prop, key_property, key_sql)
        if prop.is_array:
            return self.dialect.array_subquery_sql(f"SELECT _u.{first} FROM ({sql}) AS _u", first), count
        return f"(SELECT _u.{first} FROM ({sql}) AS _u {self.dialect.limit_literal(1)})", count

    def aggregate(
        self, *, properties: list[PropertySpec], key_column: str, key_property: str, keys: list[Any]
    ) -> dict[Any, dict[str, Any]]:
        """Each property query for all `keys` in ONE statement: a keys relation (a typed array
        or a VALUES list of bound keys) with one correlated scalar subquery per property in
        which {{{ key_property }}} is the key. Where the database rejects the key's type there,
        falls back to one prepared execution per key with the key bound. Where the database
        cannot correlate into a derived table (`Dialect.correlated_derived_tables`), each query
        runs once per key as written, the key bound. Every key is in the result (None, or []
        for arrays, when its query returned no row). Read only, with the statement timeout;
        safe to repeat."""
        keys = [k for k in keys if k is not None]
        if not properties or not keys:
            return {}
        key_map = self.map_keys(keys)
        unique_keys = list(key_map.values())
        d = self.dialect
        with self.transaction() as cur:
            if not d.correlated_derived_tables:
                rows = self._rows_per_key(cur, properties, key_property, unique_keys)
            else:
                rows = self._rows_in_one_statement(cur, properties, key_property, unique_keys)
        result: dict[Any, dict[str, Any]] = {}
        for row in rows:
            values = {}
            for prop, value in zip(properties, row[1:], strict=True):
                values[prop.key] = d.decode_array(value) if prop.is_array else value
            result[key_map.get(key_norm(row[0]), row[0])] = values
        return result

    def _rows_in_one_statement(
        self, cur: Any, properties: list[PropertySpec], key_property: str, keys: list[Any]
    ) -> list[tuple[Any, ...]]:
        d = self.dialect
        exprs = [self._value_sql(cur, p, key_property, "_keys._k") for p in properties]
        sql = Frag("WITH _keys(_k) AS (") + d.keys_relation(keys) + ")"
        sql += f" SELECT _keys._k, {', '.join(e for e, _ in exprs)} FROM _keys"
        if not d.supports_savepoints:
            return [tuple(r) for r in self.execute(cur, sql).fetchall()]
        self.execute(cur, Frag("SAVEPOINT grouparoo_keys"))
        try:
            rows = [tuple(r) for r in self.execute(cur, sql).fetchall()]
            self.execute(cur, Frag("RELEASE SAVEPOINT grouparoo_keys"))
        except d.driver_errors as exc:
            if not d.is_type_mismatch(exc):
                raise
            self.execute(cur, Frag("ROLLBACK TO SAVEPOINT grouparoo_keys"))
            per_key = [self._value_sql(cur, p, key_property, d.placeholder) for p in properties]
            one = f"SELECT {', '.join(e for e, _ in per_key)}"
            n = sum(c for _, c in per_key)
            rows = []
            for k in keys:
                rows.append((k, *self.execute(cur, Frag(one, [k] * n)).fetchone()))
        return rows

    def _rows_per_key(
        self, cur: Any, properties: list[PropertySpec], key_property: str, keys: list[Any]
    ) -> list[tuple[Any, ...]]:
        """Each property's query exactly as written (so its ORDER BY and LIMIT hold) once per
        key, the key bound: the first column of the first row, or of every row for arrays."""
        ph = self.dialect.placeholder
        rendered = [self._property_sql(p, key_property, ph) for p in properties]
        rows: list[tuple[Any, ...]] = []
        for k in keys:
            values: list[Any] = []
            for prop, (sql, count) in zip(properties, rendered, strict=True):
                found = self.execute(cur, Frag(sql, [k] * count)).fetchall()
                if prop.is_array:
                    values.append([r[0] for r in found])
                else:
                    values.append(found[0][0] if found else None)
            rows.append((k, *values))
        return rows


# --- destination --------------------------------------------------------------------------


class _Groups(NamedTuple):
    """The groups table's settings: table, key and name columns, and (owner column, this
    destination's owner value) when rows carry their writer."""

    table: str
    key: str
    name: str
    owned: tuple[str, str] | None

    def columns(self) -> list[str]:
        return [self.key, self.name, *(self.owned[:1] if self.owned else ())]


class _Item:
    """One payload planned for writing."""

    __slots__ = ("index", "payload", "key", "old_key", "values", "delete", "groups", "old_groups")

    def __init__(self, index: int, payload: ExportPayload, key: Any, old_key: Any, values: dict[str, Any], delete: bool):
        self.index = index
        self.payload = payload
        self.key = key
        self.old_key = old_key
        self.values = values
        # delete: the row goes (sync mode), or only this destination's group rows do.
        self.delete = delete
        # Group names as the groups table holds them: the record's now (none once it leaves),
        # and the ones this destination wrote before, the only ones it may remove.
        self.groups = frozenset() if payload.to_delete else frozenset(map(str, payload.new_groups))
        self.old_groups = frozenset(map(str, payload.old_groups))


class SqlDestination(SqlConnectionMixin, DestinationConnector):
    """Upserts records into a table keyed by `primaryKey`, and keeps one row per (record, group)
    in an optional groups table. Grouparoo's postgres destination options."""

    read_only: ClassVar[bool] = False
    options: ClassVar[tuple[Option, ...]] = (
        Option("table", "Table", required=True, help_text="The table records are written to."),
        Option("primaryKey", "Primary key column", required=True, help_text="Unique column matching the mapped key."),
        Option("groupsTable", "Groups table", help_text="Optional table holding one row per (record, group)."),
        Option("groupForeignKey", "Group foreign key", help_text="Column of the groups table holding the record's primary key."),
        Option("groupColumnName", "Group name column", help_text="Column of the groups table holding the group name."),
        Option(
            "groupOwnerColumnName",
            "Group owner column",
            help_text="Optional text column of the groups table naming the destination that wrote a row; "
            "recommended when several destinations or people share the groups table.",
        ),
        Option(
            "groupOwner",
            "Group owner",
            help_text="The value this destination writes in the owner column and the only rows it changes; "
            "unique per destination (e.g. its name). Needed with a group owner column.",
        ),
    )

    def _settings(self) -> tuple[str, str, _Groups | None]:
        table = _opt(self.destination_options, "table")
        pk = _opt(self.destination_options, "primaryKey")
        if not table or not pk:
            raise ConnectorError("The destination needs a table and a primaryKey.", permanent=True)
        groups_table = _opt(self.destination_options, "groupsTable")
        if not groups_table:
            return str(table), str(pk), None
        fk = _opt(self.destination_options, "groupForeignKey")
        name = _opt(self.destination_options, "groupColumnName")
        if not fk or not name:
            raise ConnectorError("A groupsTable needs groupForeignKey and groupColumnName.", permanent=True)
        owner_column = _opt(self.destination_options, "groupOwnerColumnName")
        owner = _opt(self.destination_options, "groupOwner")
        if owner_column and not owner:
            raise ConnectorError("A groupOwnerColumnName needs a groupOwner value.", permanent=True)
        owned = (str(owner_column), str(owner)) if owner_column else None
        return str(table), str(pk), _Groups(str(groups_table), str(fk), str(name), owned)

    def mapping_options(self) -> MappingOptions:
        """primaryKey is required; the known fields are the live table's columns with our types
        (none when the table does not exist yet)."""
        table, pk, _ = self._settings()
        with self.transaction() as cur:
            described = self.dialect.table_columns(cur, self.app_options, table)
        known = tuple((name, self.dialect.classify_type(t) or "any") for name, t in described)
        return MappingOptions(required=((pk, "any"),), known=known, allow_any=False)

    def _columns(self, cur: Any, table: str) -> dict[str, str | None]:
        described = self.dialect.table_columns(cur, self.app_options, table)
        if not described:
            raise ConnectorError(f'table "{table}" does not exist', permanent=True)
        return dict(described)

    def export_batch(self, exports: list[ExportPayload], *, operations: SyncOperations) -> list[ExportResult]:
        """Write a batch in one transaction and return one result per payload, in order.

        Rows are upserted by primaryKey (`INSERT ... ON CONFLICT`), or only updated when
        operations.create is False (a missing row is then skipped). to_delete removes the row
        when operations.delete; otherwise the leaving record is written like any other, with its
        current values and no groups. A changed key moves the row (or drops the old one when the
        new exists and deleting is allowed).

        Group rows: the table may be shared (other destinations, people, other tools), so an
        export removes only rows this destination wrote, its old_groups minus its new_groups,
        and adds the new_groups the table lacks (one SELECT): rows of other names are never
        touched. Repeating a payload changes nothing: idempotent. A value a column rejects fails
        that record only (the batch is retried record by record inside savepoints); a missing
        table fails the whole batch."""
        if not exports:
            return []
        table, pk, groups = self._settings()
        results: list[ExportResult | None] = [None] * len(exports)
        with self.transaction() as cur:
            self.dialect.keyed_statements(cur)
            columns = self._columns(cur, table)
            if pk not in columns:
                raise ConnectorError(f'primary key column "{pk}" does not exist in table "{table}"', permanent=True)
            if not self.dialect.has_unique_index(cur, self.app_options, table, pk):
                raise ConnectorError(
                    f'column "{pk}" of table "{table}" has no unique index or primary key; '
                    f"upserts need one (CREATE UNIQUE INDEX ON {table} ({pk})).",
                    permanent=True,
                )
            if groups:
                group_columns = self._columns(cur, groups.table)
                for col in groups.columns():
                    if col not in group_columns:
                        raise ConnectorError(f'column "{col}" does not exist in groups table "{groups.table}"', permanent=True)
            items: list[_Item] = []
            adapters = {c: self.dialect.value_adapter(t) for c, t in columns.items()}
            plain = {c: self.dialect.value_passthrough(t) for c, t in columns.items()}
            for index, payload in enumerate(exports):
                item = self._plan(index, payload, operations, table, pk, columns, adapters, plain)
                if isinstance(item, ExportResult):
                    results[index] = item
                else:
                    items.append(item)
            skipped: set[int] = set()
            if items:
                self.execute(cur, Frag("SAVEPOINT grouparoo_batch"))
                try:
                    skipped = self._apply(cur, items, operations, table, pk, columns, groups)
                    self.execute(cur, Frag("RELEASE SAVEPOINT grouparoo_batch"))
                except self.dialect.driver_errors as exc:
                    if not self.dialect.is_record_error(exc):
                        raise
                    # Some value was rejected: redo record by record to fail only those.
                    self.execute(cur, Frag("ROLLBACK TO SAVEPOINT grouparoo_batch"))
                    for item in items:
                        self.execute(cur, Frag("SAVEPOINT grouparoo_record"))
                        try:
                            skipped |= self._apply(cur, [item], operations, table, pk, columns, groups)
                            self.execute(cur, Frag("RELEASE SAVEPOINT grouparoo_record"))
                        except self.dialect.driver_errors as record_exc:
                            if not self.dialect.is_record_error(record_exc):
                                raise
                            self.execute(cur, Frag("ROLLBACK TO SAVEPOINT grouparoo_record"))
                            message = self.dialect.translate_error(record_exc, timeout=None).message
                            results[item.index] = ExportResult(item.payload.export_id, success=False, error=message)
            for item in items:
                if results[item.index] is None:
                    results[item.index] = ExportResult(item.payload.export_id, success=True, skipped=item.index in skipped)
        return [r for r in results if r is not None]

    def _plan(
        self,
        index: int,
        payload: ExportPayload,
        operations: SyncOperations,
        table: str,
        pk: str,
        columns: dict[str, str | None],
        adapters: dict[str, Callable[[Any], Any]],
        plain: dict[str, frozenset[type]],
    ) -> _Item | ExportResult:
        key = payload.new_properties.get(pk)
        old_key = payload.old_properties.get(pk)
        if old_key is not None:
            old_key = self.dialect.adapt_value(old_key, columns.get(pk))
        # A leaving record is deleted (sync mode), or else updated with its current values; one
        # that has no key any more can only lose its group rows where it was.
        if payload.to_delete and (operations.delete or key is None):
            key = None if key is None else self.dialect.adapt_value(key, columns.get(pk))
            if key is None and old_key is None:
                return ExportResult(payload.export_id, success=True, skipped=True)
            return _Item(index, payload, key if key is not None else old_key, old_key, {}, delete=True)
        if key is None:
            return ExportResult(
                payload.export_id, success=False, error=f'The record has no value for the primary key column "{pk}".', level="info"
            )
        unknown = [c for c in payload.new_properties if c not in columns]
        if unknown:
            return ExportResult(
                payload.export_id,
                success=False,
                error=", ".join(f'unknown column "{c}" in table "{table}"' for c in unknown),
            )
        values = {
            c: v if v.__class__ in plain[c] else adapters[c](v)
            for c, v in payload.new_properties.items()
            if c != pk
        }
        for c in payload.old_properties:
            if c != pk and c not in payload.new_properties and c in columns:
                values[c] = None  # a property no longer mapped or no longer set is cleared
        return _Item(index, payload, self.dialect.adapt_value(key, columns[pk]), old_key, values, delete=False)

    def _existing(self, cur: Any, table_sql: str, pk_sql: str, keys: list[Any]) -> set[Any]:
        found: set[Any] = set()
        d = self.dialect
        for chunk in _chunks(list({key_norm(k): k for k in keys}.values())):
            sql = Frag(f"SELECT {pk_sql} FROM {table_sql} WHERE {d.in_frag(pk_sql, chunk)}", d.in_params(chunk))
            found |= {key_norm(r[0]) for r in self.execute(cur, sql).fetchall()}
        return found

    def _delete_in(self, cur: Any, table_sql: str, column_sql: str, keys: list[Any]) -> None:
        d = self.dialect
        for chunk in _chunks(list({key_norm(k): k for k in keys}.values())):
            self.execute(cur, Frag(f"DELETE FROM {table_sql} WHERE {d.in_frag(column_sql, chunk)}", d.in_params(chunk)))

    def _apply(
        self,
        cur: Any,
        items: list[_Item],
        ops: SyncOperations,
        table: str,
        pk: str,
        columns: dict[str, str | None],
        groups: _Groups | None,
    ) -> set[int]:
        """Apply planned items with a fixed number of statements; return the skipped indexes."""
        d, ph, q = self.dialect, self.dialect.placeholder, self.dialect.quote
        t, k = d.table_ref(self.app_options, table), q(pk)
        moved = [it for it in items if it.old_key is not None and key_norm(it.old_key) != key_norm(it.key)]
        existing: set[Any] = set()
        if moved or not ops.create:
            existing = self._existing(cur, t, k, [it.key for it in items] + [it.old_key for it in moved])

        # Key changes: move the old row to the new key, or drop it when the new key already has a row.
        moves: list[tuple[Any, Any]] = []
        drops: list[Any] = []
        for it in moved:
            old_n, new_n = key_norm(it.old_key), key_norm(it.key)
            if old_n not in existing:
                continue
            if new_n not in existing and not it.delete:
                moves.append((it.key, it.old_key))
                existing.discard(old_n)
                existing.add(new_n)
            elif ops.delete or it.delete:
                drops.append(it.old_key)
        if moves:
            cur.executemany(f"UPDATE {t} SET {k} = {ph} WHERE {k} = {ph}", moves)

        # Deletions (when allowed); group rows are diffed below.
        delete_keys = [it.key for it in items if it.delete and ops.delete] + drops
        if delete_keys:
            self._delete_in(cur, t, k, delete_keys)

        # Writes, grouped by the set of columns so each group is one executemany.
        skipped: set[int] = set()
        writes = [it for it in items if not it.delete]
        if not ops.create:
            skipped = {it.index for it in writes if key_norm(it.key) not in existing}
            writes = [it for it in writes if it.index not in skipped]
        by_columns: dict[tuple[str, ...], list[_Item]] = {}
        sorted_columns: dict[tuple[str, ...], tuple[str, ...]] = {}  # payloads share a few key orders
        for it in writes:
            names = tuple(it.values)
            cols = sorted_columns.get(names)
            if cols is None:
                cols = sorted_columns[names] = tuple(sorted(names))
            by_columns.setdefault(cols, []).append(it)
        for cols, group in by_columns.items():
            quoted = [q(c) for c in cols]
            if ops.create:
                if len(cols) > 1:
                    get = itemgetter(*cols)
                    rows = [[it.key, *get(it.values)] for it in group]
                else:
                    rows = [[it.key, *(it.values[c] for c in cols)] for it in group]
                d.bulk_upsert(cur, t, [k, *quoted], k, quoted if ops.update else [], rows)
            elif cols and ops.update:
                sets = ", ".join(f"{c} = {ph}" for c in quoted)
                cur.executemany(f"UPDATE {t} SET {sets} WHERE {k} = {ph}", [[*(it.values[c] for c in cols), it.key] for it in group])

        if groups:
            self._write_groups(cur, items, writes, skipped, groups)
        return skipped

    def _write_groups(
        self, cur: Any, items: list[_Item], writes: list[_Item], skipped: set[int], groups: _Groups
    ) -> None:
        """Group rows of a batch, in three statements: one SELECT of the rows the written keys
        have, one DELETE per row this destination wrote and the record no longer has (its old
        groups minus its new ones, at its key and, when the key changed, at the old key: those
        rows move with the record), one insert of the rows the written keys lack. Rows of other
        names, written by other destinations, people or tools, are never removed. With an owner
        column every statement is restricted to this destination's rows, so a row another writer
        made with the same key and name is neither adopted nor removed; without one such a row
        counts as present and goes when the record leaves this destination's group."""
        d, ph = self.dialect, self.dialect.placeholder
        g, fk, gname = d.table_ref(self.app_options, groups.table), d.quote(groups.key), d.quote(groups.name)
        mine, mine_params = "", []
        if groups.owned:
            mine, mine_params = f" AND {d.exact_eq(d.quote(groups.owned[0]))}", [groups.owned[1]]
        # The last payload of a key wins, as if the batch's payloads were sent one by one.
        wanted: dict[Any, tuple[Any, frozenset[str]]] = {key_norm(it.key): (it.key, it.groups) for it in writes}
        removals: dict[tuple[Any, str], tuple[Any, str]] = {}
        for it in items:
            if not it.old_groups:
                continue
            for key in {key_norm(k): k for k in (it.key, it.old_key) if k is not None}.values():
                n = key_norm(key)
                if n in wanted:
                    keep = wanted[n][1]
                elif it.index in skipped:  # not created (enrich): only its lost groups go
                    keep = it.groups
                else:  # deleted, or leaving without a key
                    keep = frozenset()
                for name in it.old_groups - keep:
                    removals[(n, name)] = (key, name)
        have: dict[Any, set[str]] = {}
        for chunk in _chunks([key for key, _ in wanted.values()]):
            sql = Frag(f"SELECT {fk}, {gname} FROM {g} WHERE {d.in_frag(fk, chunk)}{mine}", [*d.in_params(chunk), *mine_params])
            for row_key, name in self.execute(cur, sql).fetchall():
                have.setdefault(key_norm(row_key), set()).add(str(name))
        none: frozenset[str] = frozenset()
        additions = [(key, name) for n, (key, names) in wanted.items() for name in sorted(names - have.get(n, none))]
        if removals:
            rows = [[*r, *mine_params] for r in removals.values()]
            cur.executemany(f"DELETE FROM {g} WHERE {fk} = {ph} AND {d.exact_eq(gname)}{mine}", rows)
        if additions:
            owner_cols = [d.quote(groups.owned[0])] if groups.owned else []
            d.bulk_insert_missing(cur, g, [fk, gname, *owner_cols], [[*a, *mine_params] for a in additions])
