"""Calculated properties: one call cannot change another's result. Every call runs in a realm of
its own, so a record whose value breaks out of its quotes in a `{{{ }}}` placeholder changes
neither the built-ins later records use nor the runner that writes the results, and what runs
after the call returns (promise jobs, getters read while writing the result) keeps to the time
limit."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from connectors import calculated
from connectors.base import PropertySpec

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


class Records:
    """A RecordValues of fixed records: {key: {property key: [values]}}."""

    def __init__(self, records: dict[str, dict[str, list[Any]]]):
        self.records = records

    def keys(self, *, after, limit, equal_to=None):
        return list(enumerate(self.records, 1))

    def count(self):
        return len(self.records)

    def values(self, keys, property_keys):
        return {k: {"properties": self.records[k]} for k in keys if k in self.records}


def compute(records: dict[str, dict[str, list[Any]]], function: str) -> dict[Any, dict[str, Any]]:
    source = calculated.CalculatedSource({}, {})
    source.bind_records(Records(records))
    spec = PropertySpec(key="full_name", options={"customFunction": function})
    return source.aggregate(
        properties=[spec], key_column="id", key_property="id", keys=list(records)
    )


@needs_node
def test_a_value_breaking_out_of_its_quotes_cannot_change_other_records():
    evil = 'Mallory" + (String.prototype.trim = function () { return "PWNED" }, "") + "'
    out = compute(
        {
            "1": {"first": ["Alice"], "last": ["Smith"]},
            "2": {"first": [evil], "last": ["X"]},
            "3": {"first": ["Carol"], "last": ["Jones"]},
        },
        '() => "{{{ first }}} {{{ last }}}".trim()',
    )
    assert out["1"]["full_name"] == "Alice Smith"
    assert out["3"]["full_name"] == "Carol Jones"


@needs_node
def test_a_call_cannot_rewrite_the_results_of_the_batch():
    # The context's global was an object of the runner's realm: its constructor was the
    # runner's Object, and through it the runner's Array.prototype.join, which wrote the output.
    forge = (
        "() => { const A = this.constructor.keys({}).constructor;"
        ' A.prototype.join = function () { return \'[true,"F"],[true,"F"],[true,"F"]\' };'
        " return 'me' }"
    )
    results = calculated.run_functions(["() => 'alice'", forge, "() => 'carol'"])
    assert results[0] == (True, "alice") and results[2] == (True, "carol")
    assert results[1][0] is False


@needs_node
def test_globals_and_script_declarations_do_not_reach_the_next_call():
    results = calculated.run_functions(
        [
            "() => { globalThis.seen = 1; return 1 }",
            "() => typeof seen",
            "1; })(); let Math = { round: () => 999 }; (() => { return 1",
            "() => Math.round(1.4)",
        ]
    )
    assert results[1] == (True, "undefined")
    assert results[3] == (True, 1)


@needs_node
@pytest.mark.parametrize(
    "function",
    [
        "() => { Promise.resolve().then(() => { for (;;) {} }); return 1 }",
        "() => ({ get a() { for (;;) {} } })",
        "() => ({ toJSON() { for (;;) {} } })",
        "() => { throw new Proxy({}, { get() { for (;;) {} } }) }",
    ],
)
def test_work_after_the_call_returns_keeps_to_the_time_limit(function, monkeypatch):
    monkeypatch.setattr(calculated, "BATCH_TIMEOUT_SECONDS", 20)
    started = time.monotonic()
    results = calculated.run_functions([function, "() => 2"])
    assert time.monotonic() - started < 15
    assert results[0][0] is False and "timed out" in results[0][1]
    assert results[1] == (True, 2)


@needs_node
def test_a_forged_result_text_is_refused_and_values_still_round_trip():
    results = calculated.run_functions(
        [
            '() => { JSON.stringify = () => \'[true,"a"],[true,"b"]\'; return 1 }',
            "() => 10n",
            "() => [1, { a: 2 }]",
            "() => undefined",
        ]
    )
    assert results == [
        (False, "returned a value that cannot be written as JSON"),
        (True, "10"),
        (True, [1, {"a": 2}]),
        (True, None),
    ]
