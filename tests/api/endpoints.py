"""Every endpoint of the API with a call that succeeds in the `world` fixture: its method, path
template (as in the OpenAPI schema), topic, success status, and builders for its object id and
JSON body. `test_permissions.py` runs each against missing, unknown, revoked, expired and
under-privileged keys, and checks that the table covers the whole schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import models as m
from core.choices import ApiTopic, RunCreator, RunState
from core.services.api_keys import api_key_create
from tests.api.conftest import NEW_SECRET, World
from tests.factories import make_app, make_model, make_source

T = ApiTopic


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    topic: str
    ok: int
    obj: Callable[[World], int] | None = None
    body: Callable[[World], dict[str, Any]] | None = None
    write: bool | None = None  # None: by method (GET reads)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_write(self) -> bool:
        return self.method != "GET" if self.write is None else self.write

    def url(self, world: World) -> str:
        path = self.path
        if "{id}" in path:
            assert self.obj is not None, self.id
            path = path.replace("{id}", str(self.obj(world)))
        return path

    def call(self, client: Any, world: World) -> Any:
        url = self.url(world)
        body = self.body(world) if self.body else None
        return getattr(client, self.method.lower())(url, body, format="json") if body is not None \
            else getattr(client, self.method.lower())(url)


def crud(
    name: str,
    topic: str,
    *,
    obj: Callable[[World], int],
    spare: Callable[[World], int] | None,
    create: Callable[[World], dict] | None,
    put: Callable[[World], dict] | None,
    patch: Callable[[World], dict] | None,
) -> list[Endpoint]:
    base = f"/api/v1/{name}/"
    out = [Endpoint("GET", base, topic, 200), Endpoint("GET", base + "{id}/", topic, 200, obj)]
    if create:
        out.append(Endpoint("POST", base, topic, 201, body=create))
    if put:
        out.append(Endpoint("PUT", base + "{id}/", topic, 200, obj, put))
    if patch:
        out.append(Endpoint("PATCH", base + "{id}/", topic, 200, obj, patch))
    if spare:
        out.append(Endpoint("DELETE", base + "{id}/", topic, 204, spare))
    return out


def _props(w: World, key: str) -> int:
    return w.shop.props[key].pk


def _spare_key(w: World) -> int:
    api_key, _ = api_key_create(name=f"spare{m.ApiKey.objects.count()}")
    return api_key.pk


def _active_run(w: World) -> int:
    run, _ = m.Run.objects.get_or_create(
        source=w.shop.purchases, state=RunState.RUNNING, defaults={"creator_type": RunCreator.MANUAL}
    )
    return run.pk


def _spare_property(w: World) -> int:
    """A property nothing uses (deleting a used one is refused: test_usage.py)."""
    return m.Property.objects.create(
        model=w.shop.model, source=w.shop.users, key=f"spare{m.Property.objects.count()}",
        options={"column": "first_name"},
    ).pk


def _spare_group(w: World) -> int:
    return m.Group.objects.create(model=w.shop.model, name=f"spare{m.Group.objects.count()}").pk


def _fresh_source(w: World) -> m.Source:
    return make_source(app=w.shop.users.app, model=w.shop.model, type="sqlite-table",
                       options={"table": "purchases"})


ENDPOINTS: list[Endpoint] = [
    *crud(
        "models", T.MODELS, obj=lambda w: w.shop.model.pk, spare=lambda w: make_model().pk,
        create=lambda w: {"name": "accounts", "type": "account"},
        put=lambda w: {"name": "people", "type": "profile"},
        patch=lambda w: {"name": "people"},
    ),
    *crud(
        "apps", T.APPS, obj=lambda w: w.secret_app.pk, spare=lambda w: make_app().pk,
        create=lambda w: {"name": "warehouse", "type": "apitest", "options": {"host": "db"},
                          "secret_options": {"password": NEW_SECRET}},
        put=lambda w: {"name": "mailer", "type": "apitest", "options": {"host": "mail2"}},
        patch=lambda w: {"secret_options": {"password": NEW_SECRET}},
    ),
    Endpoint("POST", "/api/v1/apps/{id}/test/", T.APPS, 200, lambda w: w.secret_app.pk),
    *crud(
        "app-refresh-queries", T.APPS, obj=lambda w: w.refresh_query.pk,
        spare=lambda w: w.refresh_query.pk,
        create=lambda w: {"app": w.secret_app.pk, "query": "SELECT 1"},
        put=lambda w: {"app": w.shop.users.app_id, "query": "SELECT 2", "recurring_frequency": 120},
        patch=lambda w: {"recurring_frequency": 300},
    ),
    *crud(
        "sources", T.SOURCES, obj=lambda w: w.shop.users.pk, spare=lambda w: _fresh_source(w).pk,
        create=lambda w: {"name": "orders", "app": w.shop.users.app_id, "model": w.shop.model.pk,
                          "type": "sqlite-table", "options": {"table": "purchases"}},
        put=lambda w: {"name": "people", "app": w.shop.users.app_id, "model": w.shop.model.pk,
                       "type": "sqlite-table", "options": {"table": "users"}, "is_primary": True,
                       "mappings": [{"remote_key": "id", "property": _props(w, "user_id")}]},
        patch=lambda w: {"name": "people"},
    ),
    Endpoint("POST", "/api/v1/sources/{id}/preview/", T.SOURCES, 200, lambda w: w.shop.users.pk,
             lambda w: {"limit": 2}, write=False),
    Endpoint("GET", "/api/v1/sources/{id}/columns/", T.SOURCES, 200, lambda w: w.shop.users.pk),
    *crud(
        "properties", T.PROPERTIES, obj=lambda w: _props(w, "first_name"),
        spare=_spare_property,
        create=lambda w: {"source": w.shop.users.pk, "key": "nickname", "type": "string",
                          "options": {"column": "first_name"}},
        put=lambda w: {"source": w.shop.users.pk, "key": "first_name", "type": "string",
                       "options": {"column": "first_name"}, "filters": []},
        patch=lambda w: {"filters": [{"key": "first_name", "op": "ne", "match": "x"}]},
    ),
    *crud(
        "schedules", T.SCHEDULES, obj=lambda w: w.shop.users_schedule.pk,
        spare=lambda w: w.shop.purchases_schedule.pk,
        create=lambda w: {"source": _fresh_source(w).pk, "recurring": False},
        put=lambda w: {"source": w.shop.users.pk, "incremental": True,
                       "options": {"column": "updated_at"}, "filters": []},
        patch=lambda w: {"recurring": True, "recurring_frequency": 3600},
    ),
    Endpoint("POST", "/api/v1/schedules/{id}/run/", T.SCHEDULES, 202,
             lambda w: w.shop.users_schedule.pk, lambda w: {"full": True}),
    *crud("records", T.RECORDS, obj=lambda w: w.record.pk, spare=lambda w: w.record.pk,
          create=None, put=None, patch=None),
    Endpoint("POST", "/api/v1/records/import/", T.RECORDS, 200,
             body=lambda w: {"model": w.shop.model.pk, "property": "email", "value": "bob@example.com"}),
    Endpoint("POST", "/api/v1/records/{id}/export/", T.RECORDS, 200, lambda w: w.record.pk),
    Endpoint("GET", "/api/v1/records/{id}/imports/", T.IMPORTS, 200, lambda w: w.record.pk),
    Endpoint("GET", "/api/v1/records/{id}/exports/", T.EXPORTS, 200, lambda w: w.record.pk),
    *crud(
        "groups", T.GROUPS, obj=lambda w: w.shop.high_value.pk, spare=_spare_group,
        create=lambda w: {"model": w.shop.model.pk, "name": "Big spenders",
                          "rules": [{"property": _props(w, "total_spend"), "op": "gt", "match": "20"}]},
        put=lambda w: {"model": w.shop.model.pk, "name": "High value", "match_type": "any",
                       "rules": [{"property": _props(w, "ltv"), "op": "gt", "match": "100"}]},
        patch=lambda w: {"match_type": "any"},
    ),
    Endpoint("POST", "/api/v1/groups/{id}/recompute/", T.GROUPS, 202, lambda w: w.shop.high_value.pk),
    Endpoint("GET", "/api/v1/groups/{id}/members/", T.GROUPS, 200, lambda w: w.shop.high_value.pk),
    *crud(
        "destinations", T.DESTINATIONS, obj=lambda w: w.secret_destination.pk,
        spare=lambda w: w.secret_destination.pk,
        create=lambda w: {"name": "vip-list", "app": w.secret_app.pk, "model": w.shop.model.pk,
                          "type": "apitest-export", "options": {"list": "vip"},
                          "secret_options": {"token": NEW_SECRET},
                          "mappings": [{"property": _props(w, "email"), "remote_key": "email"}]},
        put=lambda w: {"name": "newsletter", "app": w.secret_app.pk, "model": w.shop.model.pk,
                       "type": "apitest-export", "options": {"list": "all"}, "mappings": [],
                       "group_memberships": []},
        patch=lambda w: {"sync_mode": "additive"},
    ),
    Endpoint("POST", "/api/v1/destinations/{id}/retry-failed/", T.DESTINATIONS, 202,
             lambda w: w.secret_destination.pk, lambda w: {}),
    *crud("runs", T.RUNS, obj=lambda w: w.run.pk, spare=None, create=None, put=None, patch=None),
    Endpoint("POST", "/api/v1/runs/{id}/stop/", T.RUNS, 200, _active_run),
    *crud("imports", T.IMPORTS, obj=lambda w: w.run.imports.get().pk, spare=None, create=None,
          put=None, patch=None),
    *crud("exports", T.EXPORTS, obj=lambda w: w.failed_export.pk, spare=None, create=None,
          put=None, patch=None),
    *crud(
        "api-keys", T.API_KEYS, obj=_spare_key, spare=_spare_key,
        # Within what a key holding only write on apiKeys may grant (tests/security/test_api_key_grants.py).
        create=lambda w: {"name": "reporting",
                          "permissions": [{"topic": "apiKeys", "read": False, "write": True}]},
        put=lambda w: {"name": "reporting", "permission_all_read": False, "permissions": []},
        patch=lambda w: {"expires_at": "2099-01-01T00:00:00Z"},
    ),
    Endpoint("POST", "/api/v1/api-keys/{id}/revoke/", T.API_KEYS, 200, _spare_key),
    *crud("settings", T.SETTINGS, obj=lambda w: w.setting.pk, spare=None, create=None,
          put=lambda w: {"value": "3"}, patch=lambda w: {"value": "4"}),
    Endpoint("GET", "/api/v1/status/", T.SYSTEM, 200),
]
