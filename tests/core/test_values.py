"""core.values: parsing source values into typed columns, canonical text, and rule match values.

`coerce` returns the typed value (None for None / "") or raises ValueError whose message is the
reason stored on the record property. Tests marked xfail(strict=True) state the behaviour we
expect where the current code is wrong (reported to the owner of core/values.py); they start
failing loudly once fixed, so the marker can be removed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.choices import PropertyType
from core.values import MAX_TEXT, MAX_TEXT_BYTES, canonical, coerce, coerce_match

UTC = dt.UTC
T = PropertyType


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- empty values


@pytest.mark.parametrize("property_type", T.values)
@pytest.mark.parametrize("raw", [None, ""])
def test_none_and_empty_string_are_no_value_for_every_type(property_type, raw):
    assert coerce(property_type, raw) is None


def test_unknown_type_is_a_reason_not_a_crash():
    with pytest.raises(ValueError, match="unknown property type 'colour'"):
        coerce("colour", "red")


# --------------------------------------------------------------------------- text types


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Alice", "Alice"),
        ("  padded  ", "  padded  "),  # strings are kept verbatim
        ("Zoë 🚀 日本", "Zoë 🚀 日本"),
        ("x' OR 1=1 --", "x' OR 1=1 --"),
        (b"caf\xc3\xa9", "café"),
        (42, "42"),
        (1.5, "1.5"),
        (dt.date(2024, 1, 31), "2024-01-31"),
        (at(2024, 1, 31, 10), "2024-01-31T10:00:00+00:00"),
        ("x" * MAX_TEXT, "x" * MAX_TEXT),
    ],
)
def test_string_accepts_text_and_stringifies_other_values(raw, expected):
    assert coerce(T.STRING, raw) == expected


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("a\x00b", "contains a NUL character"),
        ("x" * (MAX_TEXT_BYTES + 1), f"is too long: {MAX_TEXT_BYTES + 1:,} bytes of text (at most {MAX_TEXT_BYTES:,})"),
    ],
)
def test_string_rejects_nul_and_overlong_text(raw, reason):
    with pytest.raises(ValueError) as exc:
        coerce(T.STRING, raw)
    assert str(exc.value) == reason


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann@Example.COM  ", "Ann@Example.COM"),  # stripped, case kept
        ("d.o'neil+tag@sub.example.ie", "d.o'neil+tag@sub.example.ie"),
        ("üser@exämple.de", "üser@exämple.de"),
    ],
)
def test_email_valid(raw, expected):
    assert coerce(T.EMAIL, raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "ann",
        "ann@example",
        "@example.com",
        "ann@@example.com",
        "a b@example.com",
        "ann@ex ample.com",
    ],
)
def test_email_invalid_says_why(raw):
    with pytest.raises(ValueError) as exc:
        coerce(T.EMAIL, raw)
    assert str(exc.value) == f"{raw!r} is not an email address"


@pytest.mark.parametrize(
    "raw, country, expected",
    [
        ("4128889999", "US", "+1 412 888 9999"),  # Grouparoo's own example
        ("(412) 888-9999", "US", "+1 412 888 9999"),
        (" 1 (412) 888-9999 ", "US", "+1 412 888 9999"),
        ("+1.412.888.9999", "FR", "+1 412 888 9999"),  # a prefix wins over the default country
        ("412-888-9999 x12", "US", "+1 412 888 9999 ext. 12"),
        ("020 7946 0958", "GB", "+44 20 7946 0958"),
        ("00 44 20 7946 0958", "FR", "+44 20 7946 0958"),
        ("+33 1 42 68 53 00", "US", "+33 1 42 68 53 00"),
        (4128889999, "US", "+1 412 888 9999"),
        (4128889999.0, "US", "+1 412 888 9999"),  # a float or DECIMAL source column
        (Decimal("4128889999.00"), "US", "+1 412 888 9999"),
    ],
)
def test_phone_numbers_are_stored_in_one_international_form(raw, country, expected):
    """As Grouparoo (libphonenumber, formatInternational): whatever the spelling, destinations
    receive the international format, groups of digits separated by spaces."""
    assert coerce(T.PHONE_NUMBER, raw, country=country) == expected


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("5", "is not a phone number"),  # Grouparoo's example
        ("12345", "is not a valid phone number in US (the default country)"),
        ("555-0100", "is not a valid phone number in US (the default country)"),
        ("+1 555 0100", "is not a valid phone number"),
        ("+", "is not a phone number"),
        ("() - . /", "is not a phone number"),
        ("phone: 5550100", "is not a valid phone number in US (the default country)"),
        (4128889999.5, "is not a valid phone number in US (the default country)"),
    ],
)
def test_phone_number_invalid_says_why(raw, reason):
    with pytest.raises(ValueError) as exc:
        coerce(T.PHONE_NUMBER, raw, country="US")
    assert str(exc.value) == f"{raw!r} {reason}"


@pytest.mark.django_db
def test_phone_numbers_without_a_prefix_are_read_in_the_default_country_setting():
    from core.models import Setting
    from core.settings_registry import setting_problem

    assert coerce(T.PHONE_NUMBER, "4128889999") == "+1 412 888 9999"  # Grouparoo's default: US
    with pytest.raises(ValueError, match="in US"):
        coerce(T.PHONE_NUMBER, "020 7946 0958")
    Setting.objects.update_or_create(plugin="core", key="records-default-country-code", defaults={"value": "gb"})
    assert coerce(T.PHONE_NUMBER, "020 7946 0958") == "+44 20 7946 0958"
    assert coerce(T.PHONE_NUMBER, "+1 412 888 9999") == "+1 412 888 9999"
    assert setting_problem("records-default-country-code", "XX") is not None
    assert setting_problem("records-default-country-code", "FR") is None
    Setting.objects.filter(key="records-default-country-code").update(value="Narnia")  # not through a check
    assert coerce(T.PHONE_NUMBER, "4128889999") == "+1 412 888 9999"  # falls back to US


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://example.com", "https://example.com"),
        ("http://Example.org/B?q=1%20x", "http://example.org/B?q=1%20x"),
        (" https://exämple.de/ü ", "https://exämple.de/ü"),
        ("https://u:p@h:8080/p#f", "https://u:p@h:8080/p#f"),
        ("HTTPS://Grouparoo.com/Picture", "https://grouparoo.com/Picture"),  # Grouparoo: .../picture
        ("https://User:PW@WWW.Example.COM:8443/A?B=C#D", "https://User:PW@www.example.com:8443/A?B=C#D"),
    ],
)
def test_url_valid_scheme_and_host_in_lower_case(raw, expected):
    assert coerce(T.URL, raw) == expected


@pytest.mark.parametrize(
    "raw", ["example.com", "ftp://example.com", "http://", "javascript:alert(1)", "https:/x"]
)
def test_url_invalid_says_why(raw):
    with pytest.raises(ValueError) as exc:
        coerce(T.URL, raw)
    assert str(exc.value) == f"{raw!r} is not an http(s) URL"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("42", 42.0),
        (" 42 ", 42.0),
        ("-7", -7.0),
        ("5.0", 5.0),
        ("1e3", 1000.0),
        (42, 42.0),
        (5.0, 5.0),
        (Decimal("12"), 12.0),
        (2**53, float(2**53)),
        (-(2**53), float(-(2**53))),
        ("١٢٣", 123.0),  # Unicode decimal digits are digits
        ("１２３", 123.0),
    ],
)
def test_integer_valid(raw, expected):
    value = coerce(T.INTEGER, raw)
    assert value == expected and isinstance(value, float)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("abc", "'abc' is not a number"),
        ("0x10", "'0x10' is not a number"),
        ("   ", "'   ' is not a number"),
        ("5.5", "'5.5' is not a whole number"),
        (5.5, "5.5 is not a whole number"),
        ("NaN", "'NaN' is not a finite number"),
        (float("nan"), "nan is not a finite number"),
        ("sNaN", "'sNaN' is not a number"),
        ("Infinity", "'Infinity' is not a finite number"),
        ("1e400", "'1e400' is too large for an integer property"),
        (2**53 + 2, f"{2**53 + 2} is too large for an integer property"),
        ("-1e20", "'-1e20' is too large for an integer property"),
        (True, "True is a boolean, not a number"),
        (False, "False is a boolean, not a number"),
    ],
)
def test_integer_invalid_says_why(raw, reason):
    with pytest.raises(ValueError) as exc:
        coerce(T.INTEGER, raw)
    assert str(exc.value) == reason


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1.5", 1.5),
        ("-0.25", -0.25),
        (".5", 0.5),
        ("3", 3.0),
        ("1e308", 1e308),
        ("1e-300", 1e-300),
        (Decimal("0.1"), 0.1),
        (1e300, 1e300),
        ("1,000.25", 1000.25),  # thousands separators with a decimal point
    ],
)
def test_float_valid(raw, expected):
    assert coerce(T.FLOAT, raw) == expected


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("one", "'one' is not a number"),
        ("1,5", "'1,5' is not a number"),  # a decimal comma is not guessed
        ("1e309", "'1e309' is not a finite number"),
        ("-inf", "'-inf' is not a finite number"),
        (float("inf"), "inf is not a finite number"),
        (float("nan"), "nan is not a finite number"),
        (True, "True is a boolean, not a number"),
    ],
)
def test_float_invalid_says_why(raw, reason):
    with pytest.raises(ValueError) as exc:
        coerce(T.FLOAT, raw)
    assert str(exc.value) == reason


@pytest.mark.parametrize("property_type", [T.INTEGER, T.FLOAT, T.DATE])
def test_huge_python_ints_give_a_reason_not_an_overflow_error(property_type):
    with pytest.raises(ValueError):
        coerce(property_type, 10**400)


@pytest.mark.parametrize("raw", [2**53 + 1, "9007199254740993"])
def test_integers_that_a_float_cannot_hold_exactly_are_rejected(raw):
    with pytest.raises(ValueError):
        coerce(T.INTEGER, raw)


@pytest.mark.parametrize("raw", ["1.000,50", "1,2.5"])
def test_ambiguous_separators_are_rejected_not_misread(raw):
    with pytest.raises(ValueError):
        coerce(T.FLOAT, raw)


# --------------------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    "raw", [True, 1, 1.0, Decimal(1), "true", "TRUE", " t ", "1", "yes", "Y", "on"]
)
def test_boolean_true(raw):
    assert coerce(T.BOOLEAN, raw) is True


@pytest.mark.parametrize("raw", [False, 0, 0.0, "false", "F", "0", "no", "n", " OFF "])
def test_boolean_false(raw):
    assert coerce(T.BOOLEAN, raw) is False


@pytest.mark.parametrize("raw", ["maybe", 2, -1, "2", "ja", "   ", "truee"])
def test_boolean_invalid_says_why(raw):
    with pytest.raises(ValueError) as exc:
        coerce(T.BOOLEAN, raw)
    assert str(exc.value) == f"{raw!r} is not a boolean (true/false)"


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2024-01-31", at(2024, 1, 31)),
        ("2024-01-31T10:00:00", at(2024, 1, 31, 10)),  # naive is UTC
        ("2024-01-31 10:00:00", at(2024, 1, 31, 10)),
        ("2024-01-31T10:00:00Z", at(2024, 1, 31, 10)),
        ("2024-01-31 10:00:00 UTC", at(2024, 1, 31, 10)),
        ("2024-01-31T10:00:00+02:00", at(2024, 1, 31, 8)),
        ("2024-01-31T10:00:00+05:30", at(2024, 1, 31, 4, 30)),
        ("2023-12-31T23:59:59.999999Z", at(2023, 12, 31, 23, 59, 59, 999999)),
        (dt.date(2024, 1, 31), at(2024, 1, 31)),
        (dt.datetime(2024, 1, 31, 10), at(2024, 1, 31, 10)),  # naive datetime is UTC
        (
            dt.datetime(2024, 1, 31, 10, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            at(2024, 1, 31, 15),
        ),
    ],
)
def test_date_parses_iso_8601_to_aware_utc(raw, expected):
    value = coerce(T.DATE, raw)
    assert value == expected
    assert value.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (1706659200, at(2024, 1, 31)),  # epoch seconds
        ("1706659200", at(2024, 1, 31)),
        ("1706659200.5", at(2024, 1, 31, 0, 0, 0, 500000)),
        (1706659200000, at(2024, 1, 31)),  # epoch milliseconds, as JavaScript writes them
        ("1706659200000", at(2024, 1, 31)),
        (Decimal("1706659200123"), at(2024, 1, 31, 0, 0, 0, 123000)),
        (0, at(1970, 1, 1)),
        (-1, at(1969, 12, 31, 23, 59, 59)),
        ("-14182940", at(1969, 7, 20, 20, 17, 40)),
        # The seconds/milliseconds cut-off is |x| > 1e11: seconds up to year 5138, and
        # milliseconds from 1973-03-03 on. Earlier millisecond values read as seconds.
        (99_999_999_999, at(5138, 11, 16, 9, 46, 39)),
        (100_000_000_001, at(1973, 3, 3, 9, 46, 40, 1000)),
    ],
)
def test_date_epoch_seconds_and_milliseconds(raw, expected):
    assert coerce(T.DATE, raw) == expected


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("not a date", "'not a date' is not a date (ISO 8601 or epoch expected)"),
        ("2024-02-30", "'2024-02-30' is not a date (ISO 8601 or epoch expected)"),
        ("31/01/2024", "'31/01/2024' is not a date (ISO 8601 or epoch expected)"),
        ("   ", "'   ' is not a date (ISO 8601 or epoch expected)"),
        (True, "True is not a date (ISO 8601 or epoch expected)"),
        (float("nan"), "nan is not a date"),
        (float("inf"), "inf is not a date"),
        (1e20, "1e+20 is not a date"),
    ],
)
def test_date_invalid_says_why(raw, reason):
    with pytest.raises(ValueError) as exc:
        coerce(T.DATE, raw)
    assert str(exc.value) == reason


def test_long_reasons_are_shortened():
    with pytest.raises(ValueError) as exc:
        coerce(T.INTEGER, "x" * 500)
    assert len(str(exc.value)) < 100 and "..." in str(exc.value)


# --------------------------------------------------------------------------- canonical


@pytest.mark.parametrize(
    "property_type, value, expected",
    [
        (T.INTEGER, 5.0, "5"),
        (T.INTEGER, -7.0, "-7"),
        (T.INTEGER, float(2**53), "9007199254740992"),
        (T.FLOAT, 3.0, "3"),
        (T.FLOAT, 0.1, "0.1"),
        (T.FLOAT, -0.25, "-0.25"),
        (T.FLOAT, -0.0, "0"),
        (T.BOOLEAN, True, "true"),
        (T.BOOLEAN, False, "false"),
        (T.DATE, at(2024, 1, 31, 10), "2024-01-31T10:00:00+00:00"),
        (
            T.DATE,
            dt.datetime(2024, 1, 31, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-01-31T10:00:00+00:00",
        ),
        (T.STRING, "Zoë", "Zoë"),
        (T.EMAIL, "Ann@Example.com", "Ann@Example.com"),
        (T.URL, "https://example.com", "https://example.com"),
        (T.PHONE_NUMBER, "+1 555 0100", "+1 555 0100"),
    ],
)
def test_canonical_text(property_type, value, expected):
    assert canonical(property_type, value) == expected


@pytest.mark.parametrize("property_type", T.values)
def test_canonical_of_none_is_none(property_type):
    assert canonical(property_type, None) is None


@pytest.mark.parametrize(
    "property_type, raw_a, raw_b",
    [
        (T.INTEGER, "5", 5),
        (T.INTEGER, "5.0", "5"),
        (T.FLOAT, "1.50", 1.5),
        (T.DATE, "2024-01-31T10:00:00+02:00", "2024-01-31T08:00:00Z"),
        (T.DATE, 1706659200, "2024-01-31"),
        (T.BOOLEAN, "yes", True),
    ],
)
def test_equal_values_have_equal_canonical_text(property_type, raw_a, raw_b):
    """Unique identifiers compare canonical text, so spellings of one value must agree."""
    assert canonical(property_type, coerce(property_type, raw_a)) == canonical(
        property_type, coerce(property_type, raw_b)
    )


# --------------------------------------------------------------------------- coerce_match


@pytest.mark.parametrize(
    "property_type, match, expected",
    [
        (T.STRING, "Alice", "Alice"),
        (T.EMAIL, "@example", "@example"),  # partial text is a fine match value
        (T.PHONE_NUMBER, "555", "555"),
        (T.URL, "example.com", "example.com"),
        (T.INTEGER, "5", 5.0),
        (T.FLOAT, "1.5", 1.5),
        (T.BOOLEAN, "true", True),
        (T.BOOLEAN, "no", False),
        (T.DATE, "2024-01-31", at(2024, 1, 31)),
        (T.DATE, "1706659200000", at(2024, 1, 31)),
    ],
)
def test_coerce_match_parses_for_the_type(property_type, match, expected):
    assert coerce_match(property_type, match) == expected


@pytest.mark.parametrize(
    "property_type, match, expected",
    [
        (T.STRING, "a, b ,c", ["a", "b", "c"]),
        (T.STRING, "a,,b, ", ["a", "b"]),
        (T.INTEGER, "1, 2,3", [1.0, 2.0, 3.0]),
        (T.DATE, "2024-01-31, 1706659200", [at(2024, 1, 31), at(2024, 1, 31)]),
    ],
)
def test_coerce_match_many_splits_on_commas(property_type, match, expected):
    assert coerce_match(property_type, match, many=True) == expected


@pytest.mark.parametrize(
    "property_type, match, many, message",
    [
        (T.INTEGER, "abc", False, "'abc' does not suit this integer property: 'abc' is not a number"),
        (
            T.INTEGER,
            "5.5",
            False,
            "'5.5' does not suit this integer property: '5.5' is not a whole number",
        ),
        (
            T.BOOLEAN,
            "maybe",
            False,
            "'maybe' does not suit this boolean property: 'maybe' is not a boolean (true/false)",
        ),
        (
            T.DATE,
            "soon",
            False,
            "'soon' does not suit this date property: 'soon' is not a date (ISO 8601 or epoch expected)",
        ),
        (
            T.FLOAT,
            "NaN",
            False,
            "'NaN' does not suit this float property: 'NaN' is not a finite number",
        ),
        (T.INTEGER, "1,x", True, "'x' does not suit this integer property: 'x' is not a number"),
        (T.STRING, " , ", True, "'is one of' needs at least one value"),
    ],
)
def test_coerce_match_rejects_values_that_do_not_suit(property_type, match, many, message):
    with pytest.raises(ValueError) as exc:
        coerce_match(property_type, match, many=many)
    assert str(exc.value) == message
