"""Calculated properties have memory limits: Node.js runs with a capped heap and address space,
and a result larger than MAX_RESULT_BYTES leaves its record without a value (counted, as a call
that throws is)."""

from __future__ import annotations

import logging

import pytest

from connectors import calculated
from connectors.base import ConnectorError
from tests.connectors.test_calculated_isolation import compute, needs_node


@needs_node
def test_a_result_over_the_size_limit_gives_its_record_no_value(caplog):
    function = '() => "{{{ first }}}" === "big" ? "x".repeat(70000) : "{{{ first }}}"'
    with caplog.at_level(logging.WARNING, logger="connectors.calculated"):
        out = compute({"1": {"first": ["Alice"]}, "2": {"first": ["big"]}}, function)
    assert out == {"1": {"full_name": "Alice"}}
    assert "no value for 1 of 2 records" in caplog.text
    assert f"larger than {calculated.MAX_RESULT_BYTES} bytes" in caplog.text


@needs_node
def test_a_result_just_under_the_limit_is_kept():
    out = compute({"1": {"first": ["a"]}}, '() => "x".repeat(60000)')
    assert out["1"]["full_name"] == "x" * 60000


@needs_node
def test_a_batch_past_the_heap_limit_fails_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(calculated, "MAX_HEAP_MB", 64, raising=False)
    monkeypatch.setattr(calculated, "CALL_TIMEOUT_MS", 20000)
    hog = "() => { const a = []; for (let i = 0; i < 2e7; i++) a.push({ i }); return a.length }"
    with pytest.raises(ConnectorError, match="ran out of memory: a batch may use 64 MB"):
        compute({"1": {"first": ["a"]}}, hog)


@needs_node
def test_memory_outside_the_heap_is_capped_too():
    hog = "() => new Uint8Array(3 * 1024 * 1024 * 1024).length"
    with pytest.raises(ConnectorError, match="failed for every record.*allocation failed"):
        compute({"1": {"first": ["a"]}}, hog)
