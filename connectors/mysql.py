"""MySQL and MariaDB: the app ("mysql"), table and query sources, and the export destination.
Only what MySQL does differently from `connectors.sql` lives here.

Connections use PyMySQL with keyword arguments (no URL is built, so none can leak the password)
and a fixed session: strict SQL mode without ANSI_QUOTES or NO_BACKSLASH_ESCAPES (so quoting and
escaping mean what this module assumes), UTC time zone, and room for long GROUP_CONCATs.

Read only, in layers: connections never have CLIENT_MULTI_STATEMENTS (checked after connecting:
a second statement in one call is a syntax error, never run); a read-only connection (sources,
refresh queries, test_connection) sets `SET SESSION TRANSACTION READ ONLY` and the session's
statement time limit (MariaDB `max_statement_time`, MySQL `max_execution_time`) as it connects,
so even a statement after an implicit commit cannot write; and sources run in `START TRANSACTION
READ ONLY`, setting the limit again. MySQL commits implicitly before DDL, so user-written SQL must
also be a single SELECT (or WITH) without executable comments (`check_user_sql`), for a clear
refusal; source queries are moreover wrapped as derived tables, where DDL cannot appear.

MariaDB cannot reference an outer row inside a derived table and ignores ORDER BY inside one, so
query properties run once per key, exactly as written (`correlated_derived_tables = False`), and
ordered arrays are built with GROUP_CONCAT(... ORDER BY ...), which both servers support.
"""
from __future__ import annotations

import functools
import json
import re
import ssl
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from uuid import UUID

from connectors.base import ConnectorError, Option
from connectors.lazy import LazyModule
from connectors.registry import register
from connectors.sql import (
    Dialect,
    SqlApp,
    SqlDestination,
    SqlQuerySource,
    SqlTableSource,
    statement_timeout_of,
    timeout_option,
)
from connectors.sql import option_value as _get
from connectors.sql_text import Lexicon

pymysql = LazyModule("pymysql")

CONNECT_TIMEOUT = 10
SSL_MODES = (
    ("disable", "disable: no TLS"),
    ("require", "require: TLS, certificate not verified"),
    ("verify", "verify: TLS, certificate and host name verified"),
)
SESSION_SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)
# Server error codes (https://mariadb.com/kb/en/mariadb-error-codes/).
TRANSIENT_CODES = {1040, 1053, 1205, 1213, 1317, 2002, 2003, 2006, 2013, 2055}
TIMEOUT_CODES = {1969, 3024}
READ_ONLY_CODES = {1792, 1290}
RECORD_CODES = {1048, 1062, 1264, 1265, 1292, 1366, 1406, 1451, 1452, 3819, 4025}
DISCONNECT_CODES = {2006, 2013, 2055}


@functools.cache
def _field_types() -> dict[int, str]:
    """MySQL codes by result column type, for query sources (the catalog knows table columns)."""
    FIELD_TYPE = pymysql.constants.FIELD_TYPE
    return {
        FIELD_TYPE.TINY: "tinyint",
        FIELD_TYPE.SHORT: "smallint",
        FIELD_TYPE.INT24: "mediumint",
        FIELD_TYPE.LONG: "int",
        FIELD_TYPE.LONGLONG: "bigint",
        FIELD_TYPE.YEAR: "year",
        FIELD_TYPE.BIT: "bit",
        FIELD_TYPE.DECIMAL: "decimal",
        FIELD_TYPE.NEWDECIMAL: "decimal",
        FIELD_TYPE.FLOAT: "float",
        FIELD_TYPE.DOUBLE: "double",
        FIELD_TYPE.DATE: "date",
        FIELD_TYPE.NEWDATE: "date",
        FIELD_TYPE.DATETIME: "datetime",
        FIELD_TYPE.TIMESTAMP: "timestamp",
        FIELD_TYPE.TIME: "time",
        FIELD_TYPE.JSON: "json",
    }
_LEADING_NOISE = re.compile(r"^(\s+|--[^\n]*(\n|$)|#[^\n]*(\n|$)|/\*.*?\*/|\()*", re.S)
_READ_KEYWORDS = ("select", "with", "values", "table")
_DATE_TYPES = ("date", "datetime", "timestamp")


def _code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[1], str):
        return " ".join(args[1].split())
    return " ".join(str(exc).split()) or type(exc).__name__


class MysqlDialect(Dialect):
    name = "MySQL"
    placeholder = "%s"
    @property
    def driver_errors(self) -> tuple[type[BaseException], ...]:  # type: ignore[override]
        return (pymysql.err.MySQLError,)
    correlated_derived_tables = False

    # -- identifiers and raw SQL text
    def quote(self, ident: str) -> str:
        # PyMySQL formats every statement that carries parameters, so `%` is doubled.
        return "`" + str(ident).replace("`", "``").replace("%", "%%") + "`"

    def escape_sql_text(self, sql: str) -> str:
        return sql.replace("%", "%%")

    def check_user_sql(self, sql: str) -> None:
        """One SELECT (or WITH/VALUES/TABLE) statement, no executable comments, no INTO
        OUTFILE/DUMPFILE: MySQL would commit before DDL even in a read-only transaction."""
        text = str(sql or "")
        if re.search(r"/\*[M]?!", text):
            raise ConnectorError("MySQL executable comments (/*! ... */) are not allowed in queries.", permanent=True)
        head = _LEADING_NOISE.sub("", text, count=1).lower()
        if not head.startswith(_READ_KEYWORDS):
            raise ConnectorError("Only SELECT queries are allowed (MySQL runs other statements outside the read-only transaction).", permanent=True)
        self.check_query_code(text)

    # ANSI_QUOTES is off in our sessions: "..." is a string, `...` an identifier.
    lexicon = Lexicon(
        string_quotes="'\"", identifier_quotes="`", backslash_escapes=True, hash_comments=True,
        dash_comment_needs_space=True,
    )

    def forbidden_in_query(self, code: str) -> str | None:
        # INTO writes a file on the server (OUTFILE, DUMPFILE) or session variables; LOAD_FILE
        # reads the server's files; GET_LOCK holds a lock for the session.
        # A number may run straight into the keyword (`1.5INTO`): only a letter, `_` or `$`
        # before it makes it part of a name.
        if re.search(r"(?<![^\W\d])(?<!\$)into(?![\w$])", code, re.I):
            return "SELECT ... INTO is not allowed in queries (it writes files or variables)."
        found = re.search(r"\b(load_file|get_lock|sys_exec|sys_eval)\s*\(", code, re.I)
        if found:
            return f"{found.group(1).upper()}() is not allowed in queries."
        return None

    # -- connections and transactions
    def connect(self, options: dict[str, Any], *, read_only: bool) -> Any:
        host = str(_get(options, "host", "localhost"))
        try:
            port = int(_get(options, "port", 3306))
        except (TypeError, ValueError):
            raise ConnectorError(f"Port {options.get('port')!r} is not a number.", permanent=True) from None
        password = _get(options, "password")
        kwargs: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": _get(options, "user"),
            "password": "" if password is None else str(password),
            "database": _get(options, "database"),
            "charset": "utf8mb4",
            "connect_timeout": CONNECT_TIMEOUT,
            "autocommit": False,
            # No CLIENT_MULTI_STATEMENTS (nor LOCAL_FILES): one statement per call.
            "client_flag": 0,
            "local_infile": False,
            "init_command": (
                f"SET SESSION sql_mode = '{SESSION_SQL_MODE}', time_zone = '+00:00',"
                " group_concat_max_len = 67108864"
            ),
        }
        sslmode = _get(options, "sslmode", "disable")
        if sslmode in ("require", "verify"):
            context = ssl.create_default_context()
            if sslmode == "require":
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            kwargs["ssl"] = context
        timeout = statement_timeout_of(options) if read_only else None
        if timeout:
            # A client-side backstop should the server not enforce its limit.
            kwargs["read_timeout"] = timeout + 30
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.err.MySQLError as exc:
            permanent = _code(exc) not in TRANSIENT_CODES
            raise self.connect_error(host, port, _message(exc), password=password, permanent=permanent) from None
        if conn.client_flag & pymysql.constants.CLIENT.MULTI_STATEMENTS:
            conn.close()  # a PyMySQL that turns it on by default: refuse rather than stack
            raise ConnectorError("The MySQL connection allows several statements per call; refusing it.", permanent=True)
        conn.grouparoo_mariadb = "mariadb" in conn.get_server_info().lower()
        if read_only:
            try:
                with conn.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION READ ONLY")
                    self._limit_statements(cur, conn, timeout)
            except pymysql.err.MySQLError as exc:
                conn.close()
                raise self.translate_error(exc, timeout=None) from None
        return conn

    @staticmethod
    def _limit_statements(cur: Any, conn: Any, timeout: float | None) -> None:
        """The session's statement time limit (0: none)."""
        if conn.grouparoo_mariadb:
            cur.execute("SET SESSION max_statement_time = %s", [float(timeout or 0)])
        else:
            cur.execute("SET SESSION max_execution_time = %s", [int((timeout or 0) * 1000)])

    def begin(self, conn: Any, *, read_only: bool, timeout: float | None) -> None:
        with conn.cursor() as cur:
            if read_only:
                self._limit_statements(cur, conn, timeout)
            cur.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")

    def server_description(self, conn: Any, options: dict[str, Any]) -> str:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), DATABASE()")
            version, database = cur.fetchone()
            cur.execute("SHOW GRANTS")
            grants = " ".join(str(row[0]) for row in cur.fetchall()).upper()
        product = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        number = re.sub(r"^5\.5\.5-", "", version).split("-")[0]
        text = f"Connected to {product} {number}, database {database}"
        if re.search(r"\b(ALL PRIVILEGES|FILE|SUPER)\b[^`]*\bON \*\.\*", grants):
            text += (
                ". Note: this user may write server files (FILE or all privileges); sources are "
                "safer with a read-only user (docs/connectors.md)"
            )
        return text

    # -- catalog
    def table_columns(self, cur: Any, options: dict[str, Any], table: str) -> list[tuple[str, str | None]]:
        cur.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            [table],
        )
        return [(name, type_) for name, type_ in cur.fetchall()]

    def has_unique_index(self, cur: Any, options: dict[str, Any], table: str, column: str) -> bool:
        cur.execute(
            "SELECT INDEX_NAME FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND NON_UNIQUE = 0"
            " GROUP BY INDEX_NAME HAVING COUNT(*) = 1 AND MAX(COLUMN_NAME) = %s AND MAX(SUB_PART) IS NULL",
            [table, column],
        )
        return cur.fetchone() is not None

    def description_types(self, cur: Any) -> list[str | None]:
        out: list[str | None] = []
        for d in cur.description:
            name = _field_types().get(d[1])
            if name in ("tinyint", "bit") and d[3] == 1:
                name += "(1)"  # BOOLEAN is tinyint(1)
            out.append(name or "varchar")
        return out

    def classify_type(self, type_name: str | None) -> str | None:
        if not type_name:
            return None
        t = type_name.strip().lower()
        if t.startswith(("tinyint(1)", "bit(1)", "bool")):
            return "boolean"
        if t.startswith(("enum", "set", "json", "binary", "varbinary", "blob", "char", "varchar", "text")):
            return "string"
        if t.startswith("year"):
            return "integer"
        if t == "time" or t.startswith("time("):
            return "string"  # a time of day, not a date
        return super().classify_type(t)

    # -- spellings
    def like_sql(self, expr: str) -> str:
        # Backslash is MySQL's default LIKE escape (and `'\'` would not even parse here).
        return f"LOWER(CAST({expr} AS CHAR)) LIKE LOWER(%s)"

    def aggregate_sql(self, function: str, value: str, db_type: str | None) -> str:
        # DOUBLE columns are added as DECIMAL (each value as its shortest decimal text), so
        # 0.1 + 0.2 is 0.3; DECIMAL sums are exact already, but their average keeps only 4
        # more decimals than the column (div_precision_increment): averaged as DECIMAL(65, 30)
        # it keeps 30. FLOAT (single precision) holds 0.1 as 0.100000001490116... itself, so
        # casting would not help it. DECIMAL(65, 30) holds 35 integer digits and 30 decimals:
        # beyond (1e40, or a 1e-20 whose digits go past the 30th decimal) the cast saturates
        # or rounds, so such groups are added as doubles. Both sides become text, as CASE
        # would otherwise turn the decimal into a double; decode_number reads it back.
        t = (db_type or "").lower()
        if function in ("SUM", "AVG") and t.startswith(("double", "real")):
            fits = f"SUM(ABS({value})) < 1e34 AND COALESCE(MIN(NULLIF(ABS({value}), 0)), 1) >= 1e-13"
            exact = f"CAST({function}(CAST({value} AS DECIMAL(65, 30))) AS CHAR)"
            return f"CASE WHEN {fits} THEN {exact} ELSE CAST({function}({value}) AS CHAR) END"
        digits = re.match(r"(?:decimal|numeric)\((\d+)(?:,\s*(\d+))?\)", t)
        if function == "AVG" and digits and int(digits[1]) - int(digits[2] or 0) <= 35:
            return f"AVG(CAST({value} AS DECIMAL(65, 30)))"
        return super().aggregate_sql(function, value, db_type)

    def decode_number(self, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.decode()
        return Decimal(value) if isinstance(value, str) else value

    def array_agg_sql(self, value: str, order: str) -> str:
        # JSON_ARRAYAGG takes no ORDER BY on MySQL; GROUP_CONCAT does, on both servers.
        return f"CONCAT('[', GROUP_CONCAT(JSON_ARRAY({value}) ORDER BY {order} SEPARATOR ','), ']')"

    def decode_array(self, value: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, bytes | str):
            return [item[0] for item in json.loads(value)]
        return list(value)

    def upsert_sql(self, table_sql: str, columns: Any, key: str, update: Any) -> str:
        ph = ", ".join(self.placeholder for _ in columns)
        sql = f"INSERT INTO {table_sql} ({', '.join(columns)}) VALUES ({ph}) ON DUPLICATE KEY UPDATE "
        if not update:
            return sql + f"{key} = {key}"
        return sql + ", ".join(f"{c} = VALUES({c})" for c in update)

    def exact_eq(self, column_sql: str) -> str:
        # Text columns usually have a case-insensitive, PAD SPACE collation ('vip' = 'VIP ');
        # as bytes the comparison is exact.
        return f"CAST({column_sql} AS BINARY) = CAST(%s AS BINARY)"

    def bulk_insert_missing(self, cur: Any, table_sql: str, columns: Any, rows: list[list[Any]]) -> None:
        # A unique index under such a collation holds 'VIP' as 'vip': that row is then present
        # (kept, never changed), rather than a "Duplicate entry" failing the record for good.
        cur.executemany(self.upsert_sql(table_sql, columns, columns[0], []), rows)

    def adapt_value(self, value: Any, column_type: str | None) -> Any:
        t = (column_type or "").lower()
        if isinstance(value, list | dict):
            return json.dumps(value, default=str)
        if isinstance(value, UUID):
            return str(value)
        if t.startswith(_DATE_TYPES) and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value  # the server says what is wrong with it
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if t.startswith("date") and not t.startswith("datetime") and isinstance(value, datetime):
            return value.date()
        if value is not None and not isinstance(value, str) and _is_text_type(t):
            # MySQL compares text with numbers numerically ('05' = 5): a text key needs text.
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return value.isoformat() if isinstance(value, date | dtime) else str(value)
        return value

    # -- errors
    def translate_error(self, exc: BaseException, *, timeout: float | None) -> ConnectorError:
        code, message = _code(exc), _message(exc)
        if code == 1146:
            missing = re.search(r"Table '(?:[^'.]*\.)?([^']*)' doesn't exist", message)
            name = missing.group(1) if missing else message
            return ConnectorError(f'table "{name}" does not exist', permanent=True)
        if code in TIMEOUT_CODES or (code == 1317 and timeout):
            limit = f" of {timeout:g} s" if timeout else ""
            return ConnectorError(f"The query was cancelled after the statement timeout{limit}.")
        if code in READ_ONLY_CODES:
            return ConnectorError(f"Sources are read-only: MySQL refused a write ({message}).", permanent=True)
        if self.is_disconnect(exc):
            return ConnectorError(f"Lost the connection to MySQL: {message}")
        return ConnectorError(f"MySQL error: {message}", permanent=code not in TRANSIENT_CODES)

    def is_record_error(self, exc: BaseException) -> bool:
        return _code(exc) in RECORD_CODES or isinstance(exc, pymysql.err.DataError)

    def is_disconnect(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.InterfaceError) or (
            isinstance(exc, pymysql.err.OperationalError) and _code(exc) in DISCONNECT_CODES
        )


MYSQL = MysqlDialect()


@register
class MysqlApp(SqlApp):
    key = "mysql"
    label = "MySQL / MariaDB"
    aliases = ("mariadb",)
    dialect = MYSQL
    options = (
        Option("host", "Host", required=True, default="localhost"),
        Option("port", "Port", type="number", default=3306),
        Option("database", "Database", required=True),
        Option("user", "User", required=True),
        Option("password", "Password", type="secret"),
        Option("sslmode", "TLS", type="choice", choices=SSL_MODES, default="disable"),
        timeout_option(),
    )


@register
class MysqlTableSource(SqlTableSource):
    key = "mysql-table"
    app_key = "mysql"
    label = "MySQL table"
    aliases = ("mysql-import-table", "mysql-table-import")
    dialect = MYSQL


@register
class MysqlQuerySource(SqlQuerySource):
    key = "mysql-query"
    app_key = "mysql"
    label = "MySQL query"
    aliases = ("mysql-import-query", "mysql-query-import")
    dialect = MYSQL


@register
class MysqlDestination(SqlDestination):
    key = "mysql-export"
    app_key = "mysql"
    label = "MySQL table export"
    aliases = ("mysql-export-records",)
    dialect = MYSQL


def _is_text_type(column_type: str) -> bool:
    return column_type.startswith(("char", "varchar", "text", "tinytext", "mediumtext", "longtext"))
