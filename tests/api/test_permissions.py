"""Every endpoint: no key, an unknown, revoked or expired key -> 401 (one body); a key without
the endpoint's topic -> 403; a read-only key on a write -> 403; the right key -> success."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from core import models as m
from core.api.exceptions import UNAUTHENTICATED_MESSAGE
from core.choices import ApiTopic
from core.services.api_keys import api_key_revoke
from tests.api.endpoints import ENDPOINTS

pytestmark = pytest.mark.django_db

UNAUTHENTICATED = {"message": UNAUTHENTICATED_MESSAGE}


def test_the_table_covers_every_operation_of_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == {e.id for e in ENDPOINTS}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_denied(endpoint, world, client_for, keys):
    response = endpoint.call(client_for(None), world)
    assert response.status_code == 401, response.content
    assert response.json() == UNAUTHENTICATED
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    others = [t for t in ApiTopic.values if t != endpoint.topic]
    response = endpoint.call(client_for(keys.make(read=others, write=others)), world)
    assert response.status_code == 403, response.content
    assert endpoint.topic in response.json()["message"]

    if endpoint.is_write:
        response = endpoint.call(client_for(keys.make(read=[endpoint.topic])), world)
        assert response.status_code == 403, response.content
    else:
        response = endpoint.call(client_for(keys.make(write=[endpoint.topic])), world)
        assert response.status_code == 403, response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_allowed(endpoint, world, client_for, keys):
    flags = {"write": [endpoint.topic]} if endpoint.is_write else {"read": [endpoint.topic]}
    response = endpoint.call(client_for(keys.make(**flags)), world)
    assert response.status_code == endpoint.ok, response.content


@pytest.mark.parametrize("case", ["unknown", "wrong secret", "revoked", "expired", "garbage", "empty"])
def test_every_bad_key_gets_the_same_401(case, world, client_for, keys):
    key = keys.make(all_read=True)
    api_key = m.ApiKey.objects.get(prefix=key[4:12])
    if case == "unknown":
        key = "grp_00000000." + key.split(".", 1)[1]
    elif case == "wrong secret":
        key = key[:-3] + ("aaa" if not key.endswith("aaa") else "bbb")
    elif case == "revoked":
        api_key_revoke(api_key=api_key)
    elif case == "expired":
        m.ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif case == "garbage":
        key = "not-a-key"
    if case == "empty":
        response = client_for(None, HTTP_AUTHORIZATION="Bearer").get("/api/v1/models/")
    else:
        response = client_for(key).get("/api/v1/models/")
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED


def test_x_api_key_header_works_too(world, client_for, keys):
    key = keys.make(read=["models"])
    response = client_for(None, HTTP_X_API_KEY=key).get("/api/v1/models/")
    assert response.status_code == 200
    assert client_for(None, HTTP_X_API_KEY="grp_x.y").get("/api/v1/models/").status_code == 401
