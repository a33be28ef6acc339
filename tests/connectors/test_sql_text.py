"""User-written SQL read outside its literals and comments (connectors/sql_text.py), and what the
dialects turn away with it: a second statement however it is hidden, MySQL's INTO however it is
spelled, PostgreSQL's functions that act outside the read-only transaction (large objects,
dblink, server files) however they are quoted."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError
from connectors.mysql import MYSQL
from connectors.postgres import POSTGRES
from connectors.sql_text import Lexicon, code_of, holds_several_statements
from connectors.sqlite import SQLITE

PG = POSTGRES.lexicon
MY = MYSQL.lexicon


@pytest.mark.parametrize(
    ("sql", "lexicon", "code"),
    [
        ("SELECT 'a;b' AS x", Lexicon(), "SELECT " + " " * 5 + " AS x"),
        ("SELECT 1 -- ; DROP\n", Lexicon(), "SELECT 1          \n"),
        ('SELECT "lo_export"(1)', PG, "SELECT  lo_export (1)"),
        ("SELECT $q$ ; $q$ , $1", PG, "SELECT " + " " * 9 + " , $1"),
        ("SELECT /* a /* b */ ; */ 1", PG, "SELECT                   1"),
        ("SELECT E'\\'' , x", PG, "SELECT E" + " " * 4 + " , x"),
        ("SELECT 'it\\'s' INTO", MY, "SELECT         INTO"),
        ("SELECT 1--1 INTO x", MY, "SELECT 1--1 INTO x"),
        ("SELECT 1 # c\nINTO", MY, "SELECT 1    \nINTO"),
    ],
)
def test_code_of_blanks_literals_and_comments(sql, lexicon, code):
    assert code_of(sql, lexicon) == code


def test_trailing_semicolons_end_the_only_statement():
    assert not holds_several_statements("SELECT 1 ;; \n")
    assert holds_several_statements("SELECT 1; SELECT 2")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS id) AS _a; COMMIT; DROP TABLE t; SELECT * FROM (SELECT 1 AS id",
        "SELECT lo_from_bytea(0, 'x')::text AS id",
        "SELECT lo_import('/etc/hostname') AS id",
        "SELECT pg_catalog.lo_export(1, '/tmp/x') AS id",
        'SELECT "lo_export"(1, \'/tmp/x\') AS id',
        "SELECT E'\\'' AS a, lo_export(1, '/tmp/x') AS id --'",
        "SELECT dblink_exec('dbname=x', 'DROP TABLE t') AS id",
        "SELECT pg_read_file('/etc/passwd') AS id",
        "SELECT pg_file_write('/tmp/x', 'y', false) AS id",
        "SELECT pg_terminate_backend(1) AS id",
        'SELECT U&"lo\\005fexport"(1, \'/tmp/x\') AS id',
        # found in the second review round:
        "SELECT id, $×$'$×$ AS a, dblink_exec('dbname=x', 'DROP TABLE t') AS d, '' AS c FROM users",
        "SELECT query_to_xml('SELECT dblink_exec(''dbname=x'', ''DROP TABLE t'')', true, false, '') AS id",
        "SELECT ts_stat('SELECT to_tsvector(lo_from_bytea(0, ''x'')::text)') AS id",
        "SELECT set_config('standard_conforming_strings', 'off', false) AS id",
    ],
)
def test_postgresql_refuses_what_acts_outside_the_transaction(sql):
    with pytest.raises(ConnectorError) as refused:
        POSTGRES.check_user_sql(sql)
    assert refused.value.permanent


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM t WHERE note = 'lo_export(1)'",
        "SELECT $$ dblink_exec( $$ AS id",
        "SELECT id /* lo_import( */ FROM t",
        "SELECT id, local_total FROM t;",
        "SELECT count(*) AS lo_count FROM t",
    ],
)
def test_postgresql_accepts_those_words_as_data(sql):
    POSTGRES.check_user_sql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT email FROM users WHERE id = 1 INTO/**/OUTFILE '/tmp/x'",
        "SELECT email FROM users INTO\nDUMPFILE '/tmp/x'",
        "SELECT 1--1 INTO OUTFILE '/tmp/x'",
        "SELECT MAX(id) FROM users INTO @v",
        "SELECT LOAD_FILE('/etc/passwd')",
        "SELECT `load_file`('/etc/passwd')",
        "SELECT 1; SELECT 2",
        # found in the second review round:
        "SELECT email FROM users --\x01 '\nINTO OUTFILE \"/tmp/x\" -- '",
        "SELECT email FROM users --\x7f '\nINTO OUTFILE \"/tmp/x\" -- '",
        "SELECT 1.5INTO OUTFILE '/tmp/x'",
        "SELECT 1e1INTO OUTFILE '/tmp/x'",
    ],
)
def test_mysql_refuses_into_and_server_files(sql):
    with pytest.raises(ConnectorError):
        MYSQL.check_user_sql(sql)


def test_mysql_accepts_into_as_data():
    MYSQL.check_user_sql("SELECT id FROM t WHERE note = 'put it into outfile' -- into\n")
    MYSQL.check_user_sql('SELECT "into" AS word FROM t # INTO OUTFILE\n')


def test_every_dialect_refuses_a_second_statement_with_a_clear_message():
    for dialect in (POSTGRES, MYSQL, SQLITE):
        with pytest.raises(ConnectorError, match="one statement"):
            dialect.check_user_sql("SELECT 1 AS id; DELETE FROM t")
        dialect.check_user_sql("SELECT ';' AS id;")
