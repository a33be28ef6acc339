"""Typed values: parse what a source gave into the column its property type uses.

`coerce(type, raw)` returns the typed value or raises `ValueError` whose message is the reason
stored on the record property. Parsing happens while a batch is unpivoted in Python (one pass,
no per-row queries); the database then compares typed values only.

Normalised as Grouparoo normalised them, so destinations receive one form of each value:

- phone numbers: read with Google's libphonenumber (the `phonenumbers` package; Grouparoo used
  its JavaScript port) in the default country of the setting `records-default-country-code`
  when they have no international prefix, kept only when valid, and written in international
  format with spaces ("4128889999" in the US is "+1 412 888 9999"; an extension follows as
  " ext. 12");
- URLs: the scheme and host in lower case (they are case-insensitive; the path and query keep
  their case).

Where parsing differs from Grouparoo's on purpose (stricter numbers, more boolean spellings,
ISO 8601 dates), docs/config.md "Differences from Grouparoo" says what and why.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from core.choices import VALUE_KIND_BY_TYPE, PropertyType, ValueKind

MAX_EMAIL = 254  # RFC 5321's limit on a forward path
# NUL excluded: the import's fast path trusts a match (PostgreSQL text cannot hold NUL).
_EMAIL = re.compile(rf"^(?=.{{1,{MAX_EMAIL}}}$)[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
DEFAULT_COUNTRY = "US"  # Grouparoo's default of records-default-country-code
# Separators of a formatted phone number that become one space (libphonenumber-js's
# international separator style, which Grouparoo's formatInternational() used).
_PHONE_PUNCTUATION = re.compile(r"[\s\-‐-―−ー－/／.．()（）\[\]［］~⁓∼～]+")
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}
# Typed text is not indexed (a btree entry cannot exceed ~2.7 KB on PostgreSQL, and the index
# cost every text value a write): long text round-trips. A text value over 10 MB of UTF-8 is
# flagged (its raw text is kept in full). Unique values must fit `unique_value` (500 characters).
MAX_TEXT_BYTES = 10_000_000
MAX_UNIQUE_TEXT = 500
MAX_TEXT = 500  # characters that always fit both limits: the fast paths skip the byte count


def value_kind(property_type: str) -> str:
    return VALUE_KIND_BY_TYPE[property_type]


def _text(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, (dt.datetime, dt.date)):
        return raw.isoformat()
    text = str(raw)
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _number(raw: Any, *, integer: bool) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is a boolean, not a number")
    if isinstance(raw, (int, Decimal)):
        exact = Decimal(raw)
    elif isinstance(raw, float):
        exact = None
    else:
        text = _text(raw).strip()
        if _THOUSANDS.match(text):  # "1,234,567.89": thousands separators only
            text = text.replace(",", "")
        try:
            exact = Decimal(text)
        except (InvalidOperation, ValueError):
            raise ValueError(f"{_short(raw)} is not a number") from None
    if exact is not None:
        if exact.is_snan():
            raise ValueError(f"{_short(raw)} is not a number")
        if not exact.is_finite():
            raise ValueError(f"{_short(raw)} is not a finite number")
        if integer:
            if exact != exact.to_integral_value():
                raise ValueError(f"{_short(raw)} is not a whole number")
            if abs(exact) > 2**53:
                raise ValueError(f"{_short(raw)} is too large for an integer property")
        try:
            value = float(exact)
        except OverflowError:
            raise ValueError(f"{_short(raw)} is too large a number") from None
    else:
        value = float(raw)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{_short(raw)} is not a finite number")
    if integer and value != int(value):
        raise ValueError(f"{_short(raw)} is not a whole number")
    return value


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float, Decimal)) and raw in (0, 1):
        return bool(raw)
    text = _text(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{_short(raw)} is not a boolean (true/false)")


DATE_RANGE = "date properties hold years 1 to 9999"
_INFINITE = ("infinity", "+infinity", "-infinity")
_LONG_YEAR = re.compile(r"^\+?(\d{5,})-\d{1,2}-\d{1,2}")


def _outside_calendar(raw: Any, text: str) -> str | None:
    """The reason a date's text names a moment Python cannot hold (databases can: PostgreSQL's
    `infinity` and years up to 294276, DuckDB's too, BC dates), or None."""
    lowered = text.lower()
    if lowered in _INFINITE:
        return f"{_short(raw)} is an infinite date; {DATE_RANGE}"
    if lowered.endswith((" bc", "(bc)")):
        return f"{_short(raw)} is before year 1; {DATE_RANGE}"
    if _LONG_YEAR.match(text):
        return f"{_short(raw)} is after year 9999; {DATE_RANGE}"
    return None


def _datetime(raw: Any) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, dt.date):
        value = dt.datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        try:
            seconds = float(raw)
        except OverflowError:
            raise ValueError(f"{_short(raw)} is not a date") from None
        if abs(seconds) > 1e11:  # epoch milliseconds, as JavaScript sources write them
            seconds /= 1000
        try:
            value = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{_short(raw)} is not a date") from None
    else:
        text = _text(raw).strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _datetime(Decimal(text))
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
        except ValueError:
            reason = _outside_calendar(raw, text)
            raise ValueError(reason or f"{_short(raw)} is not a date (ISO 8601 or epoch expected)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise ValueError(f"{_short(raw)} is outside years 1 to 9999 in UTC; {DATE_RANGE}") from None


def default_country() -> str:
    """The region phone numbers without an international prefix are read in: the setting
    `records-default-country-code` (reads the database), or US when it names no region."""
    from core.settings_registry import setting_value

    code = setting_value("records-default-country-code").strip().upper()
    return code if country_problem(code) is None else DEFAULT_COUNTRY


def country_problem(code: str) -> str | None:
    """Why `code` is not a region phone numbers can be read in (ISO 3166 alpha-2), or None."""
    import phonenumbers

    if code.strip().upper() in phonenumbers.SUPPORTED_REGIONS:
        return None
    return f"must be a two-letter country code such as US, GB or FR, not {code!r}"


def _phone(raw: Any, country: str) -> str:
    import phonenumbers

    # A number column's 4128889999.0 (or DECIMAL 4128889999.00) is the digits 4128889999.
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        raw = int(raw)
    elif isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        raw = int(raw)
    text = _text(raw).strip()
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{_short(raw)} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        where = "" if text.startswith("+") else f" in {country} (the default country)"
        raise ValueError(f"{_short(raw)} is not a valid phone number{where}")
    extension, number.extension = number.extension, None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    formatted = _PHONE_PUNCTUATION.sub(" ", formatted).strip()
    return f"{formatted} ext. {extension}" if extension else formatted


def _url(raw: Any) -> str:
    text = _text(raw).strip()
    parts = urlsplit(text)
    prefix = f"{parts.scheme}://{parts.netloc}"
    # (urlsplit drops tabs, line breaks and control characters: a text holding them in its
    # scheme or host does not start with what urlsplit read, and is no URL.)
    if parts.scheme not in ("http", "https") or not parts.hostname or text[: len(prefix)].lower() != prefix.lower():
        raise ValueError(f"{_short(raw)} is not an http(s) URL")
    _check_size(text)
    # Scheme and host are case-insensitive: one form of them (user info kept as given).
    userinfo, at, hostport = parts.netloc.rpartition("@")
    return f"{parts.scheme.lower()}://{userinfo}{at}{hostport.lower()}{text[len(prefix):]}"


def _check_size(text: str) -> None:
    if len(text) > MAX_TEXT:
        size = len(text.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise ValueError(f"is too long: {size:,} bytes of text (at most {MAX_TEXT_BYTES:,})")


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def coerce(property_type: str, raw: Any, *, country: str | None = None) -> Any:
    """Parse `raw` for `property_type`. Returns None for None/empty; raises ValueError(reason).
    country: the region phone numbers without a prefix are read in (None: the setting, read
    from the database; a batch resolves it once, see SourcePlan)."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw == "":
        return None
    if property_type == PropertyType.STRING:
        text = _text(raw)
        _check_size(text)
        return text
    if property_type == PropertyType.EMAIL:
        text = _text(raw).strip()
        if len(text) > MAX_EMAIL:
            raise ValueError(f"is longer than {MAX_EMAIL} characters, too long for an email address")
        if not _EMAIL.match(text):
            raise ValueError(f"{_short(raw)} is not an email address")
        return text
    if property_type == PropertyType.PHONE_NUMBER:
        return _phone(raw, country or default_country())
    if property_type == PropertyType.URL:
        return _url(raw)
    if property_type == PropertyType.INTEGER:
        return _number(raw, integer=True)
    if property_type == PropertyType.FLOAT:
        return _number(raw, integer=False)
    if property_type == PropertyType.BOOLEAN:
        return _boolean(raw)
    if property_type == PropertyType.DATE:
        return _datetime(raw)
    raise ValueError(f"unknown property type {property_type!r}")


def raw_text(raw: Any) -> str | None:
    """The raw value as stored (text), for display and for invalid values."""
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):
        return raw.isoformat()
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**53:
        return str(int(raw))
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    # Never raises: a NUL (which PostgreSQL text cannot hold) is kept visible as U+FFFD.
    return str(raw).replace("\x00", "\ufffd")


def canonical(property_type: str, value: Any) -> str | None:
    """Canonical text of a typed value: unique identifiers and export snapshots use it."""
    if value is None:
        return None
    kind = value_kind(property_type)
    if kind == ValueKind.NUMBER:
        if property_type == PropertyType.INTEGER or value == int(value):
            return str(int(value))
        return repr(float(value))
    if kind == ValueKind.DATETIME:
        return value.astimezone(dt.UTC).isoformat()
    if kind == ValueKind.BOOLEAN:
        return "true" if value else "false"
    return str(value)


def export_value(property_type: str, value: Any) -> Any:
    """JSON-ready value for export snapshots: numbers stay numbers, dates become ISO strings."""
    if value is None:
        return None
    if property_type == PropertyType.INTEGER:
        return int(value)
    if property_type == PropertyType.DATE:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:  # SQLite hands back naive UTC
                value = value.replace(tzinfo=dt.UTC)
            return value.astimezone(dt.UTC).isoformat()
        return value
    if property_type == PropertyType.BOOLEAN:
        return bool(value)
    return value


def coerce_match(property_type: str, match: str, *, many: bool = False) -> Any:
    """Parse a group rule's or filter's match value for the property type (list for `in`)."""
    if many:
        parts = [p.strip() for p in match.split(",") if p.strip()]
        if not parts:
            raise ValueError("'is one of' needs at least one value")
        return [coerce_match(property_type, p) for p in parts]
    try:
        if property_type in (PropertyType.EMAIL, PropertyType.PHONE_NUMBER, PropertyType.URL):
            return match  # comparing text; a partial email is a fine match value
        return coerce(property_type, match)
    except ValueError as exc:
        raise ValueError(f"{match!r} does not suit this {property_type} property: {exc}") from None
