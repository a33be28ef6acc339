"""docs/guarantees.md keeps its word: every claim names a test, and every named test exists."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "guarantees.md"
CLAIM_SECTION = re.compile(r"^## \d+\. ")
REF = re.compile(r"^(tests/[\w/]+\.py)::([\w:]+)(\[[^\]]*\])?$")


def claims(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each bullet under a numbered `## N. ...` section."""
    out: list[tuple[int, str]] = []
    in_claims = False
    current: list | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            in_claims = bool(CLAIM_SECTION.match(line))
            current = None
            continue
        if not in_claims:
            continue
        if line.startswith("- "):
            current = [number, line[2:]]
            out.append(current)
        elif current is not None and line.startswith("  ") and line.strip():
            current[1] += " " + line.strip()
        else:
            current = None
    return [(n, t) for n, t in out]


def references(claim: str) -> list[str]:
    if "Test: " not in claim:
        return []
    return [r.strip() for r in claim.split("Test: ", 1)[1].split(",") if r.strip()]


def problems(text: str) -> list[str]:
    """Claims without a test, and references to tests that do not exist."""
    found = []
    for line, claim in claims(text):
        refs = references(claim)
        if not refs:
            found.append(f"line {line}: a claim without a Test: reference")
        for ref in refs:
            why = missing(ref)
            if why:
                found.append(f"line {line}: {ref}: {why}")
    return found


def missing(ref: str) -> str | None:
    match = REF.match(ref)
    if not match:
        return "not a tests/...py::name node id"
    path, names, _param = match.groups()
    if not (ROOT / path).is_file():
        return "no such file"
    module = importlib.import_module(path[:-3].replace("/", "."))
    target = module
    for name in names.split("::"):
        target = getattr(target, name, None)
        if target is None:
            return f"no {name!r} in {path}"
    if not names.split("::")[-1].startswith("test") or not callable(target):
        return "not a test function"
    return None


def test_every_claim_names_a_test_that_exists():
    text = DOC.read_text()
    assert len(claims(text)) >= 40  # the sections were found
    assert problems(text) == []


def test_the_checker_catches_a_claim_without_a_test_and_a_missing_test():
    text = "\n".join([
        "## 1. Delivery",
        "- Everything arrives.",
        "- Retries back off.",
        "  Test: tests/guarantees/test_guarantees.py::test_backoff_doubles_from_the_base_delay_per_attempt",
        "- A renamed test.",
        "  Test: tests/guarantees/test_guarantees.py::test_that_was_renamed, tests/nowhere.py::test_x",
        "- Parametrized.",
        "  Test: tests/api/test_permissions.py::test_every_bad_key_gets_the_same_401[revoked]",
        "## What is not promised",
        "- Exactly once everywhere.",
    ])
    assert problems(text) == [
        "line 2: a claim without a Test: reference",
        "line 5: tests/guarantees/test_guarantees.py::test_that_was_renamed: no 'test_that_was_renamed' in "
        "tests/guarantees/test_guarantees.py",
        "line 5: tests/nowhere.py::test_x: no such file",
    ]
