"""What user-written SQL (a source query, a query property, an App Refresh Query) says outside
its string literals and comments, so a check can look at its own words: a `;` between two
statements, `INTO OUTFILE` written as `INTO/**/OUTFILE`, a function name in quotes.

This is not what keeps sources read only (the read-only session, one statement per call and
the statement timeout do, see connectors/sql.py); it turns away, with a clear message, what a
database would otherwise let a too-powerful role do from inside a SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lexicon:
    """How a dialect spells literals, quoted identifiers and comments."""

    string_quotes: str = "'"  # characters that open a string literal
    identifier_quotes: str = '"'  # characters that open a quoted identifier (closed by the same)
    backslash_escapes: bool = False  # a backslash escapes the next character inside a string
    dollar_quotes: bool = False  # PostgreSQL's $tag$ ... $tag$ strings
    hash_comments: bool = False  # MySQL's `# ...` comments
    dash_comment_needs_space: bool = False  # MySQL: `--` opens a comment only before a space
    nested_comments: bool = False  # PostgreSQL's /* /* */ */
    escape_string_prefix: bool = False  # PostgreSQL's E'...': backslash escapes after an E


STANDARD = Lexicon()


def code_of(sql: str, lexicon: Lexicon = STANDARD) -> str:
    """`sql` with every string literal and comment blanked (replaced by spaces, so positions
    keep), and every quoted identifier reduced to its name between spaces (`"lo_export"(` reads
    ` lo_export (`). A literal or comment left open runs to the end of the text."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in lexicon.string_quotes:
            end = _string_end(sql, i, c, lexicon.backslash_escapes or _escape_prefixed(sql, i, lexicon))
            out.append(" " * (end - i))
            i = end
        elif c in lexicon.identifier_quotes:
            end = _string_end(sql, i, c, False)
            out.append(" " + sql[i + 1 : end - 1].replace(c, " ") + " ")
            i = end
        elif _dash_comment(sql, i, lexicon) or (lexicon.hash_comments and c == "#"):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif sql.startswith("/*", i):
            end = _comment_end(sql, i, lexicon.nested_comments)
            out.append(" " * (end - i))
            i = end
        elif c == "$" and lexicon.dollar_quotes and (tag := _dollar_tag(sql, i)):
            close = sql.find(tag, i + len(tag))
            end = n if close < 0 else close + len(tag)
            out.append(" " * (end - i))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def holds_several_statements(code: str) -> bool:
    """A `;` between statements (trailing semicolons end the only one)."""
    return ";" in code.rstrip().rstrip(";").rstrip()


def _escape_prefixed(sql: str, i: int, lexicon: Lexicon) -> bool:
    """An E'...' string: the quote follows an E that does not end a longer word."""
    if not lexicon.escape_string_prefix or i == 0 or sql[i - 1] not in "eE":
        return False
    return i == 1 or not (sql[i - 2].isalnum() or sql[i - 2] in "_$")


def _dash_comment(sql: str, i: int, lexicon: Lexicon) -> bool:
    if not sql.startswith("--", i):
        return False
    if not lexicon.dash_comment_needs_space:
        return True
    # MySQL: a space or any control character (MariaDB takes \x01 and DEL too).
    return i + 2 >= len(sql) or sql[i + 2].isspace() or ord(sql[i + 2]) < 32 or sql[i + 2] == "\x7f"


def _string_end(sql: str, start: int, quote: str, backslash: bool) -> int:
    """The index after the literal opened at `start` (a doubled quote stays inside)."""
    i, n = start + 1, len(sql)
    while i < n:
        c = sql[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _comment_end(sql: str, start: int, nested: bool) -> int:
    depth, i, n = 0, start, len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth = depth + 1 if nested or depth == 0 else depth
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth <= 0:
                return i
        else:
            i += 1
    return n


def _dollar_tag(sql: str, start: int) -> str | None:
    """`$tag$` (or `$$`) opening a dollar-quoted string at `start`, else None (`$1` is a
    parameter)."""
    end = sql.find("$", start + 1)
    if end < 0:
        return None
    tag = sql[start + 1 : end]
    # PostgreSQL's identifier characters: letters, digits (not first), `_`, and any non-ASCII
    # character at all (`$×$` opens a string there).
    def ident(ch: str, first: bool) -> bool:
        return ch == "_" or not ch.isascii() or (ch.isalpha() if first else ch.isalnum())

    if tag and not (ident(tag[0], True) and all(ident(ch, False) for ch in tag)):
        return None
    return sql[start : end + 1]
