"""API keys at rest: the api-key table holds a keyed hash and a visible prefix, never the key or
its secret part (read straight from the table, not through the model); the hash is not itself a
key; and every kind of bad key — wrong, unknown, revoked, expired — gets the same 401 body through
either header, while a valid key without the topic's permission gets 403."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core import models as m
from core.api.exceptions import UNAUTHENTICATED_MESSAGE
from core.services.api_keys import (
    api_key_create,
    api_key_hash,
    api_key_revoke,
    api_key_set_permissions,
)

pytestmark = pytest.mark.django_db


def table_rows() -> list[tuple[str, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(m.ApiKey._meta.db_table)}")
        return [tuple(str(v) for v in row) for row in cursor.fetchall()]


def client(**headers) -> APIClient:
    c = APIClient()
    c.credentials(**headers)
    return c


def test_the_table_holds_a_hash_and_never_the_key():
    _, full = api_key_create(name="full", permission_all_read=True, permission_all_write=True)
    response = client(HTTP_AUTHORIZATION=f"Bearer {full}").post(
        "/api/v1/api-keys/", {"name": "made-by-api", "permissions": [{"topic": "records", "read": True}]},
        format="json")
    assert response.status_code == 201
    keys = [full, response.json()["key"]]
    rows = table_rows()
    assert len(rows) == 2
    for key in keys:
        prefix, secret = key[len("grp_"):].split(".", 1)
        assert len(secret) >= 32
        row = next(r for r in rows if prefix in r)
        assert api_key_hash(key) in row
        for value in row:
            assert key not in value and secret not in value
    # the stored hash is not a key
    stored = m.ApiKey.objects.get(name="full").hashed_key
    for forged in (stored, f"grp_{full[4:12]}.{stored}"):
        assert client(HTTP_AUTHORIZATION=f"Bearer {forged}").get("/api/v1/models/").status_code == 401


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_every_bad_key_is_refused_alike_and_a_weak_key_is_forbidden(header):
    def use(key):
        value = f"Bearer {key}" if header == "HTTP_AUTHORIZATION" else key
        return client(**{header: value}).get("/api/v1/models/")

    def fresh(**fields):
        api_key, key = api_key_create(name=f"k{m.ApiKey.objects.count()}", permission_all_read=True, **fields)
        return api_key, key

    good_row, good = fresh()
    assert use(good).status_code == 200
    revoked_row, revoked = fresh()
    api_key_revoke(api_key=revoked_row)
    _, expired = fresh(expires_at=timezone.now() - timedelta(seconds=1))
    bad = {
        "wrong secret": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "unknown prefix": "grp_ffffffff." + good.split(".", 1)[1],
        "revoked": revoked,
        "expired": expired,
        "not a key": "hunter2",
    }
    bodies = set()
    for case, key in bad.items():
        response = use(key)
        assert response.status_code == 401, case
        bodies.add(response.content)
    assert bodies == {use("grp_00000000.x").content}
    assert m.ApiKey.objects.get(pk=good_row.pk).revoked_at is None  # the good key still works
    assert UNAUTHENTICATED_MESSAGE.encode() in bodies.pop()

    weak_row, weak = api_key_create(name="weak")
    api_key_set_permissions(api_key=weak_row, read=["records"], write=[])
    assert use(weak).status_code == 403
    assert client(**{header: f"Bearer {weak}" if header == "HTTP_AUTHORIZATION" else weak}).get(
        "/api/v1/records/").status_code == 200
