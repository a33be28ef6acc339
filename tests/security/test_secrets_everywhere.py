"""No secret leaves the server. One journey sets known secrets (a PostgreSQL app password, a
MariaDB password, a webhook signing secret and Authorization header, the credentials of two
webhook URLs — user info and query tokens —, two API keys, and the server's own SECRET_KEY and
FIELD_ENCRYPTION_KEYS) and drives the product through the admin (app created in its add form,
every page of every object), the API (apps, destinations and key created, every list and detail
read, a failing connection test), a run (`run_schedule`, which signs and delivers to two local
webhook receivers that echo back everything they received, headers included, as rejection
reasons and as a 422 body), a run whose connection fails, task queue rows, and
`config_export`. Then every output is searched for every secret: all log records at DEBUG
(SQL included), command output, admin HTML, API bodies and headers, run/export errors, django-q
task arguments (OrmQ, Task, Schedule), exported files, and every row of every table at rest."""
from __future__ import annotations

import base64
import io
import json
import logging
import traceback
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from core import models as m
from core.choices import DestinationCollection, PropertyType, RunState
from core.services.api_keys import api_key_create
from tests.admin.forms import form_data, page_errors

pytestmark = pytest.mark.django_db

PG_PASSWORD = "pg-Pa55-secret-Z1q9"
MY_PASSWORD = "my-Wr0ng-Pa55-K7v"
HOOK_SECRET = "whsec-Sign-9Jq2xT"
HOOK_AUTH = "Bearer hook-Auth-4Lm8R"
HOOK_TOKEN = "hook-Query-T0k3n-8Pz"
ECHO_USER, ECHO_PASS, ECHO_KEY, ECHO_SIG = "echo-Us3r-5Tq", "echo-Pa55-2Wx", "echo-Api-K3y-6Yn", "echo-S1g-3Rv"
LOGGERS = ("", "django", "django.db.backends", "django.request", "django.server", "httpx", "httpcore", "psycopg",
           "pymysql", "django-q", "django_q", "core", "connectors")


class Outputs:
    """Every text the product produced, by where it came from."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, text: object) -> None:
        self.items.append((where, text if isinstance(text, str) else repr(text)))

    def response(self, where: str, response) -> None:
        self.add(where, response.content.decode("utf-8", "replace"))
        self.add(f"{where} (headers)", str(dict(response.headers)))


@pytest.fixture
def pg_source(scratch_pg):
    with psycopg.connect(scratch_pg["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id integer PRIMARY KEY, email text, updated_at timestamptz)")
        conn.execute("INSERT INTO customers VALUES (1, 'a@example.com', now()), (2, 'b@example.com', now())")
    return scratch_pg


@pytest.fixture
def capture_everything(caplog):
    """Every log record of every logger at DEBUG, SQL statements with their parameters too."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    forced = connection.force_debug_cursor
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = forced


def secrets_of(*api_keys: str) -> dict[str, str]:
    found = {"postgres password": PG_PASSWORD, "mysql password": MY_PASSWORD, "webhook secret": HOOK_SECRET,
             "webhook authorization": HOOK_AUTH.split(" ", 1)[1], "SECRET_KEY": settings.SECRET_KEY, "API_KEY_PEPPER": settings.API_KEY_PEPPER,
             "webhook URL token": HOOK_TOKEN, "webhook URL user": ECHO_USER, "webhook URL password": ECHO_PASS,
             "webhook URL api_key": ECHO_KEY, "webhook URL sig": ECHO_SIG,
             "webhook URL Basic credentials": base64.b64encode(f"{ECHO_USER}:{ECHO_PASS}".encode()).decode()}
    for i, key in enumerate(settings.FIELD_ENCRYPTION_KEYS if isinstance(settings.FIELD_ENCRYPTION_KEYS, list | tuple)
                            else str(settings.FIELD_ENCRYPTION_KEYS).split(",")):
        found[f"FIELD_ENCRYPTION_KEYS[{i}]"] = key.strip()
    for i, key in enumerate(api_keys):
        found[f"API key {i}"] = key
        found[f"API key {i} secret part"] = key.split(".", 1)[1]
    return found


def echo_everything(request):
    """A receiver that sends back all it received (request line, headers, body): as the reason of
    every record's rejection in a 200 answer, or, on /echo, as a 422 body."""
    from werkzeug.wrappers import Response

    seen = f"{request.method} {request.full_path} {request.url} {dict(request.headers)} {request.get_data(as_text=True)}"
    if request.path == "/echo":
        return Response(seen, status=422)
    ids = [r["export_id"] for r in json.loads(request.get_data()).get("records", [])]
    return Response(json.dumps({"rejected": [{"export_id": i, "reason": seen} for i in ids]}), status=200)


def test_no_secret_appears_in_any_output(admin_client, pg_source, scratch_mysql, httpserver, settings, tmp_path,
                                         capture_everything, monkeypatch,
                                         django_capture_on_commit_callbacks):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True  # the receiver is on loopback
    out = Outputs()
    pg = {k: pg_source[k] for k in ("host", "port", "user", "database")}

    # --- admin: the PostgreSQL app is created in its add form, password included ------------------
    add = reverse("admin:core_app_add")
    data = form_data(admin_client.get(add, {"type": "postgres"}), "app_form")
    data.update(name="shop", type="postgres", opt_host=pg["host"], opt_port=str(pg["port"]),
                opt_database=pg["database"], opt_user=pg["user"], opt_password=PG_PASSWORD)
    response = admin_client.post(add, data)
    assert response.status_code == 302, page_errors(response)
    out.response("admin add app", response)
    shop = m.App.objects.get(name="shop")
    assert shop.secret_options == {"password": PG_PASSWORD}

    model = m.RecordModel.objects.create(name="customers")
    source = m.Source.objects.create(name="customers", app=shop, model=model, type="postgres-table",
                                     options={"table": "customers"}, is_primary=True)
    pk = m.Property.objects.create(model=model, source=source, key="customer_id", type=PropertyType.INTEGER,
                                   unique=True, is_primary_key=True, options={"column": "id"})
    email = m.Property.objects.create(model=model, source=source, key="email", type=PropertyType.EMAIL,
                                      options={"column": "email"})
    m.SourceMapping.objects.create(source=source, remote_key="id", property=pk)
    schedule = m.Schedule.objects.create(source=source, options={"column": "updated_at"})

    # --- API: a bootstrap key creates a key, the webhook app and its destination ---------------------
    _, bootstrap = api_key_create(name="bootstrap", permission_all_read=True, permission_all_write=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {bootstrap}")
    created = api.post("/api/v1/api-keys/", {"name": "reporting",
                                             "permissions": [{"topic": "records", "read": True, "write": False}]},
                       format="json")
    assert created.status_code == 201
    reporting = created.json()["key"]
    hook_url = httpserver.url_for(f"/hook?token={HOOK_TOKEN}&page=1")
    echo_url = httpserver.url_for(f"/echo?api_key={ECHO_KEY}&sig={ECHO_SIG}").replace(
        "http://", f"http://{ECHO_USER}:{ECHO_PASS}@")
    httpserver.expect_request("/hook", method="POST").respond_with_handler(echo_everything)
    httpserver.expect_request("/echo", method="POST").respond_with_handler(echo_everything)
    for name, url, secrets in (("hooks", hook_url, {"secret": HOOK_SECRET, "authorization": HOOK_AUTH}),
                               ("echo-hooks", echo_url, {"secret": HOOK_SECRET})):
        response = api.post("/api/v1/apps/", {"name": name, "type": "webhook", "options": {"url": url},
                                              "secret_options": secrets}, format="json")
        assert response.status_code == 201, response.content
        out.response(f"API create app {name}", response)
        app = m.App.objects.get(name=name)
        response = api.post("/api/v1/destinations/", {
            "name": f"{name}-destination", "app": app.pk, "model": model.pk, "type": "webhook-export",
            "collection": DestinationCollection.MODEL, "options": {},
            "mappings": [{"property": pk.pk, "remote_key": "id"}, {"property": email.pk, "remote_key": "email"}],
        }, format="json")
        assert response.status_code == 201, response.content
        out.response(f"API create destination {name}", response)
    # a URL with user info next to an Authorization secret is refused, on its option
    response = api.post("/api/v1/apps/", {"name": "both", "type": "webhook", "options": {"url": echo_url},
                                          "secret_options": {"authorization": HOOK_AUTH}}, format="json")
    assert response.status_code == 400 and "options.url" in response.json()["errors"], response.content
    out.response("API refused app", response)
    response = api.post("/api/v1/apps/", {"name": "crm-db", "type": "mysql", "options": {
        "host": scratch_mysql["host"], "port": scratch_mysql["port"], "user": scratch_mysql["user"],
        "database": scratch_mysql["database"]}, "secret_options": {"password": MY_PASSWORD}}, format="json")
    assert response.status_code == 201, response.content
    out.response("API create mysql app", response)
    mysql_app = m.App.objects.get(name="crm-db")

    # --- a run, from the command line, delivering to the webhook -----------------------------------
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("run_schedule", str(schedule.pk), stdout=stdout, stderr=stderr)
    out.add("run_schedule stdout", stdout.getvalue())
    out.add("run_schedule stderr", stderr.getvalue())
    run = m.Run.objects.filter(source=source).latest("pk")
    assert run.state == RunState.COMPLETE, run.error
    assert len(httpserver.log) >= 2
    requests = {request.path: request for request, _ in httpserver.log}
    assert requests["/hook"].headers["X-Grouparoo-Signature"].startswith("sha256=")  # the secret was used...
    # ...so were the URLs' credentials, and the receivers sent them all back
    assert requests["/hook"].args["token"] == HOOK_TOKEN and requests["/hook"].headers["Authorization"] == HOOK_AUTH
    assert requests["/echo"].args["api_key"] == ECHO_KEY and requests["/echo"].authorization.password == ECHO_PASS
    echoed = m.Export.objects.filter(destination__app__type="webhook").values_list("error_message", flat=True)
    assert len(echoed) == 4 and all("********" in e for e in echoed), list(echoed)
    assert any("HTTP 422" in e for e in run.errors) and any("rejected the record" in e for e in run.errors), run.errors

    # --- failing connections: a wrong MySQL password, a PostgreSQL server that is not there ------
    response = api.post(f"/api/v1/apps/{mysql_app.pk}/test/")
    out.response("API test connection (wrong password)", response)
    assert response.status_code >= 400 or "denied" in response.content.decode().lower(), response.content
    page = admin_client.post(reverse("admin:core_app_changelist"),
                             {"action": "test_connection", "_selected_action": [mysql_app.pk, shop.pk]}, follow=True)
    out.response("admin test connection", page)
    assert "denied" in page.content.decode().lower()
    down = m.App.objects.create(name="down", type="postgres", options={**pg, "port": 1},
                                secret_options={"password": PG_PASSWORD})
    down_source = m.Source.objects.create(name="gone", app=down, model=model, type="postgres-table",
                                          options={"table": "customers"})
    m.SourceMapping.objects.create(source=down_source, remote_key="id", property=pk)
    m.Property.objects.create(model=model, source=down_source, key="gone_email", type=PropertyType.STRING,
                              options={"column": "email", "aggregationMethod": "exact"})
    down_schedule = m.Schedule.objects.create(source=down_source, options={})
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("run_schedule", str(down_schedule.pk), stdout=stdout, stderr=stderr)
    except BaseException as exc:  # noqa: BLE001 - the command may end with an error: its text is an output
        out.add("run_schedule (down) exception", "".join(traceback.format_exception(exc)))
    out.add("run_schedule (down) stdout", stdout.getvalue())
    out.add("run_schedule (down) stderr", stderr.getvalue())
    failed = m.Run.objects.filter(source=down_source).latest("pk")
    assert failed.state == RunState.FAILED and failed.error
    out.add("run errors", list(m.Run.objects.values_list("error", "errors")))
    out.add("export errors", list(m.Export.objects.values_list("error_message", flat=True)))

    # --- the task queue: a run enqueued for a worker (not run inline) -------------------------------
    from django_q.conf import Conf
    from django_q.models import OrmQ, Task
    from django_q.models import Schedule as QSchedule
    from django_q.signing import SignedPackage

    from core.services.runs import run_enqueue

    monkeypatch.setattr(Conf, "SYNC", False)
    with django_capture_on_commit_callbacks(execute=True):
        run_enqueue(schedule=schedule, full=True)
    assert OrmQ.objects.exists()  # the task really went to the broker's table
    for row in OrmQ.objects.all():
        out.add("OrmQ payload", row.payload)
        out.add("OrmQ task", SignedPackage.loads(row.payload))
    for row in Task.objects.all():
        out.add("Task", (row.name, row.func, row.args, row.kwargs, row.result))
    for row in QSchedule.objects.all():
        out.add("django-q Schedule", (row.name, row.func, row.args, row.kwargs, row.hook))

    # --- every admin page of every object, and every API resource ---------------------------------
    for model_cls in admin.site._registry:
        opts = model_cls._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        out.response(f"admin {opts.model_name} changelist", admin_client.get(reverse(f"{base}_changelist")))
        for obj in model_cls._default_manager.all()[:10]:
            for page in ("change", "history"):
                url = reverse(f"{base}_{page}", args=[obj.pk])
                out.response(f"admin {url}", admin_client.get(url))
    for resource in ("models", "apps", "app-refresh-queries", "sources", "properties", "schedules", "records",
                     "groups", "destinations", "runs", "imports", "exports", "api-keys", "settings"):
        listing = api.get(f"/api/v1/{resource}/")
        assert listing.status_code == 200, resource
        out.response(f"API {resource}", listing)
        for item in listing.json().get("results", [])[:10]:
            out.response(f"API {resource}/{item['id']}", api.get(f"/api/v1/{resource}/{item['id']}/"))
    out.response("API status", api.get("/api/v1/status/"))

    # --- config export ----------------------------------------------------------------------------
    target = tmp_path / "exported"
    stdout = io.StringIO()
    call_command("config_export", str(target), stdout=stdout)
    out.add("config_export stdout", stdout.getvalue())
    files = [p for p in Path(target).rglob("*") if p.is_file()]
    assert files
    for path in files:
        out.add(f"exported {path.name}", path.read_text())

    # --- logs, and every table at rest -------------------------------------------------------------
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = capture_everything.records
    assert any(r.name.startswith("django.db.backends") for r in records)  # SQL was really captured
    for record in records:
        if record.name == "werkzeug":
            continue  # the receivers' own access log (pytest-httpserver), not the product's
        out.add(f"log {record.name}", formatter.format(record))
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            out.add(f"table {table}", [tuple(str(v) for v in row) for row in cursor.fetchall()])

    # --- the search --------------------------------------------------------------------------------
    secrets = secrets_of(bootstrap, reporting)
    leaks = [(name, where) for where, text in out.items for name, value in secrets.items() if value in text]
    assert leaks == [], leaks
    # the key created through the API was shown exactly once: in the answer that created it
    assert reporting in created.content.decode()
    assert len(out.items) > 200
