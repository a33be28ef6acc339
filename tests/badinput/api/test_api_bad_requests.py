"""API requests with wrong types, unknown fields, broken and huge bodies: each answered with a
4xx and the API's JSON error body naming the problem (never a 500), and nothing written."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from core import models as m

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (m.RecordModel, m.App, m.Source, m.Property, m.Group,
                                                     m.GroupRule, m.Destination, m.ApiKey, m.Run))


def send(client, method: str, path: str, body, content_type: str = "application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.generic(method, path, data, content_type=content_type)


def bodies(world):
    """(method, path, a valid body) per write endpoint family; tests break one thing in each."""
    shop = world.shop
    return {
        "model": ("POST", "/api/v1/models/", {"name": "accounts", "type": "account"}),
        "group": ("POST", "/api/v1/groups/", {
            "name": "Big", "model": shop.model.pk, "match_type": "all",
            "rules": [{"property": shop.props["ltv"].pk, "op": "gt", "match": "10"}]}),
        "property-patch": ("PATCH", f"/api/v1/properties/{shop.props['ltv'].pk}/", {"key": "ltv"}),
        "schedule-run": ("POST", f"/api/v1/schedules/{shop.users_schedule.pk}/run/", {"full": False}),
        "record-import": ("POST", "/api/v1/records/import/", {
            "model": shop.model.pk, "property": "user_id", "value": "2", "export": False}),
    }


@pytest.mark.parametrize("family", ["model", "group", "property-patch", "schedule-run", "record-import"])
def test_unknown_fields_are_refused_by_name_everywhere(world, full, family):
    method, path, body = bodies(world)[family]
    before = counts()
    response = send(full, method, path, {**body, "colour": "red"})
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["message"].startswith("colour: Unknown field (writable fields: ")
    assert list(payload["errors"]) == ["colour"]
    assert counts() == before


def test_an_unknown_field_in_a_nested_row_is_named_with_its_position(world, full):
    method, path, body = bodies(world)["group"]
    body["rules"][0]["operator"] = "gt"
    response = send(full, method, path, body)
    assert response.status_code == 400
    assert "rules.0.operator" in response.json()["errors"], response.json()
    assert not m.Group.objects.filter(name="Big").exists()


def test_read_only_fields_returned_by_a_get_may_be_sent_back(world, full):
    got = full.get(f"/api/v1/models/{world.shop.model.pk}/").json()
    response = send(full, "PUT", f"/api/v1/models/{world.shop.model.pk}/", {**got, "name": "clients"})
    assert response.status_code == 200, response.content
    assert m.RecordModel.objects.get(pk=world.shop.model.pk).name == "clients"


@pytest.mark.parametrize(
    "family, change, field",
    [
        ("model", {"type": ["profile"]}, "type"),
        ("model", {"name": {"first": "x"}}, "name"),
        ("model", {"name": True}, "name"),
        ("model", {"name": None}, "name"),
        ("group", {"model": "customers"}, "model"),
        ("group", {"rules": {"property": 1}}, "rules"),
        ("group", {"rules": ["gt 10"]}, "rules.0"),
        ("schedule-run", {"full": "perhaps"}, "full"),
        ("record-import", {"export": [1]}, "export"),
        ("record-import", {"model": 10**30}, "model"),
        ("record-import", {"value": "x" * 501}, "value"),
    ],
    ids=lambda v: json.dumps(v)[:30] if not isinstance(v, str) else v,
)
def test_values_of_the_wrong_type_are_refused_on_their_field(world, full, family, change, field):
    method, path, body = bodies(world)[family]
    before = counts()
    response = send(full, method, path, {**body, **change})
    assert response.status_code == 400, response.content
    payload = response.json()
    assert field in payload["errors"] or any(k.startswith(field) for k in payload["errors"]), payload
    assert payload["message"]
    assert counts() == before


@pytest.mark.parametrize(
    "raw, status, text",
    [
        ("{bad json", 400, "JSON parse error"),
        ('{"name": NaN, "type": "profile"}', 400, "JSON parse error"),
        (b'{"name": "\xff\xfe", "type": "profile"}', 400, "JSON parse error"),
        ("[1, 2]", 400, "Expected a dictionary"),
        ('"just a string"', 400, "Expected a dictionary"),
        ('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "nested too deeply"),
        ('{"name": "a\\u0000b", "type": "profile"}', 400, "Null characters are not allowed"),
        ('{"name": "\\ud800", "type": "profile"}', 400, "Surrogate characters are not allowed"),
    ],
    ids=["broken", "nan", "not-utf8", "list", "string", "deeply-nested", "nul", "lone-surrogate"],
)
def test_malformed_bodies_get_a_clear_400(world, full, raw, status, text):
    before = counts()
    response = send(full, "POST", "/api/v1/models/", raw)
    assert response.status_code == status, response.content
    assert text in response.json()["message"], response.json()
    assert counts() == before


def test_a_body_of_another_media_type_is_415(world, full):
    response = send(full, "POST", "/api/v1/models/", '{"name": "x", "type": "profile"}', content_type="text/plain")
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["message"]


@pytest.mark.parametrize("endpoint", ["/api/v1/models/", "/api/v1/records/import/"])
def test_a_20mb_body_is_refused_with_413_before_it_is_parsed(world, full, endpoint):
    huge = json.dumps({"name": "x" * (20 * 1024 * 1024), "type": "profile"})
    before = counts()
    response = send(full, "POST", endpoint, huge)
    assert response.status_code == 413, response.content[:200]
    message = response.json()["message"]
    assert f"larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes" in message
    assert counts() == before


def test_a_20mb_chunked_body_without_a_length_is_never_read_whole(world, full):
    """No Content-Length (chunked): the body is never read whole (DRF reads no body without a length;
    Django would stop one byte past the limit), and the answer is a 4xx, not a 500."""
    from io import BytesIO

    class Counting(BytesIO):
        read_bytes = 0

        def read(self, size=-1):
            chunk = super().read(size)
            Counting.read_bytes += len(chunk)
            return chunk

    before = counts()
    stream = Counting(b'{"name": "' + b"x" * (20 * 1024 * 1024) + b'", "type": "profile"}')
    response = full.generic("POST", "/api/v1/models/", b"", content_type="application/json",
                            **{"wsgi.input": stream, "CONTENT_LENGTH": ""})
    assert 400 <= response.status_code < 500, response.content[:200]
    assert counts() == before
    assert Counting.read_bytes <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 64 * 1024
