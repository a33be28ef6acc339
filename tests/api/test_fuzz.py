"""Schema-driven fuzzing: for every operation of the OpenAPI schema, Hypothesis generates
requests (path ids, query parameters and JSON bodies drawn from the schema's own types, mixed
with junk) and sends them with an all-topics key into the shop world. No response may be a 500,
and every error must be the API's JSON error body.

Deterministic (derandomized, fixed example count, no shrinking replays against a changed
database) and bounded: 20 requests per operation.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

SCHEMA = None
EXAMPLES = 20


def schema() -> dict[str, Any]:
    global SCHEMA
    if SCHEMA is None:
        SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
    return SCHEMA


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema()["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


junk_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
huge_ints = st.integers(min_value=-(2**70), max_value=2**70)
json_scalars = st.one_of(st.none(), st.booleans(), huge_ints, st.floats(allow_nan=False), junk_text)
junk_json = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(junk_text, inner, max_size=3)),
    max_leaves=6,
)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = schema()["components"]["schemas"][name]
    return node


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy:
    """Values of an OpenAPI schema node, with some junk of the wrong type mixed in."""
    node = resolve(node)
    if "allOf" in node:
        return from_schema(node["allOf"][0], depth)
    if "oneOf" in node or "anyOf" in node:
        return st.one_of([from_schema(n, depth) for n in node.get("oneOf", node.get("anyOf"))])
    kind = node.get("type")
    if "enum" in node:
        good = st.sampled_from([v for v in node["enum"] if v is not None] or [""])
    elif kind == "object" or "properties" in node:
        props = node.get("properties", {})
        writable = {k: v for k, v in props.items() if not resolve(v).get("readOnly")}
        if depth > 2 or not writable:
            good = st.dictionaries(junk_text, json_scalars, max_size=3)
        else:
            required = [k for k in node.get("required", []) if k in writable]
            good = st.fixed_dictionaries(
                {k: from_schema(writable[k], depth + 1) for k in required},
                optional={k: from_schema(v, depth + 1) for k, v in writable.items() if k not in required},
            )
    elif kind == "array":
        good = st.lists(from_schema(node.get("items", {}), depth + 1), max_size=3)
    elif kind == "integer":
        good = st.one_of(st.integers(min_value=-2, max_value=40), huge_ints)
    elif kind == "number":
        good = st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "boolean":
        good = st.booleans()
    elif node.get("format") == "date-time":
        good = st.one_of(st.datetimes().map(lambda d: d.isoformat()), junk_text)
    elif kind == "string":
        good = st.one_of(junk_text, st.sampled_from(["sqlite", "ready", "email", "users", "1"]))
    else:
        good = junk_json
    if node.get("nullable"):
        good = st.one_of(st.none(), good)
    return st.one_of(good, good, good, json_scalars) if depth else good


def query_value(node: dict[str, Any]) -> st.SearchStrategy:
    node = resolve(node.get("schema", {}))
    if "enum" in node:
        base = st.sampled_from([str(v) for v in node["enum"] if v is not None] or [""])
    elif node.get("type") == "integer":
        base = st.one_of(st.integers(-2, 40), huge_ints).map(str)
    elif node.get("type") == "boolean":
        base = st.sampled_from(["true", "false", "True", "0"])
    elif node.get("format") == "date-time":
        base = st.datetimes().map(lambda d: d.isoformat())
    else:
        base = st.sampled_from(["email", "ltv", "user_id", "1", "ada@example.com", "id", "-id"])
    return st.one_of(base, base, junk_text)


def request_strategy(method: str, path: str, operation: dict[str, Any]) -> st.SearchStrategy:
    existing = st.integers(1, 8)  # the world's rows have small ids: reach real objects often
    ids = st.one_of(existing, existing, existing, huge_ints,
                    st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True))
    params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
    query = st.fixed_dictionaries({}, optional={p["name"]: query_value(p) for p in params})
    body_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    body = st.one_of(from_schema(body_schema), from_schema(body_schema), junk_json) if body_schema \
        else st.one_of(st.none(), junk_json)
    return st.fixed_dictionaries({"id": ids, "query": query, "body": body})


# pytest-django has set Django up before collection: the schema can be built at import.
OPERATIONS = [(method, path) for method, path, _ in operations()]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=lambda v: v)
def test_no_operation_answers_500(method, path, world, full):
    operation = schema()["paths"][path][method.lower()]

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request_strategy(method, path, operation))
    def check(req: dict[str, Any]) -> None:
        url = path.replace("{id}", quote(str(req["id"]), safe=""))
        kwargs: dict[str, Any] = {}
        if method == "GET":
            response = full.get(url, req["query"])
        else:
            if req["query"]:
                url += "?" + "&".join(f"{quote(k)}={quote(str(v))}" for k, v in req["query"].items())
            if req["body"] is not None:
                kwargs = {"data": json.dumps(req["body"]), "content_type": "application/json"}
            response = getattr(full, method.lower())(url, **kwargs)
        detail = f"{method} {url} {kwargs.get('data', req['query'])!r} -> {response.status_code} {response.content[:300]!r}"
        assert response.status_code < 500, detail
        if response.status_code >= 400:
            assert "message" in response.json(), detail

    check()
