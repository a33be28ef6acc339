"""The webhook destination against a local HTTP server (pytest-httpserver) that records requests
and answers with each status the contract distinguishes. Loopback is allowed here through
settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS, except in the tests of the refusal itself."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote, quote_plus

import pytest
from werkzeug.wrappers import Response

from connectors import registry
from connectors.base import ConnectorError, ExportPayload, SyncOperations
from connectors.webhook import (
    AddressRefused,
    display_url,
    operation,
    public_address,
    retry_after_seconds,
)

SECRET = "whsec-test-0123456789abcdef"
SYNC = SyncOperations.for_mode("sync")
ENRICH = SyncOperations.for_mode("enrich")
ADDITIVE = SyncOperations.for_mode("additive")

_ids = iter(range(1, 1_000_000))


def payload(new=None, old=None, groups=(), old_groups=(), delete=False):
    return ExportPayload(
        export_id=next(_ids), record_id=int((new or old or {}).get("id", 0)),
        old_properties=dict(old or {}), new_properties=dict(new or {}),
        old_groups=list(old_groups), new_groups=list(groups), to_delete=delete,
    )


@pytest.fixture
def allow_loopback(settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True


@pytest.fixture
def hook(httpserver, allow_loopback):
    """A destination posting to the local server's /hook, 2 records per request."""
    def make(**app):
        options = {"url": httpserver.url_for("/hook"), "secret": SECRET, "batchSize": 2, "timeout": 2, **app}
        return registry.get_destination("webhook-export")(options, {})
    return make


def answer(httpserver, *responses, path="/hook"):
    """Answer successive requests with these (status, body, headers) responses, in order."""
    for status, body, headers in responses:
        httpserver.expect_ordered_request(path, method="POST").respond_with_response(
            Response(body, status=status, headers=headers)
        )


def bodies(httpserver):
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


# --- the request ------------------------------------------------------------------------


def test_payload_names_operations_properties_and_groups_and_is_signed(httpserver, hook):
    answer(httpserver, (200, "ok", {}), (200, "ok", {}))
    batch = [
        payload({"id": 1, "email": "a@x.test"}, groups=["vip", "new"]),
        payload({"id": 2, "email": "b@x.test"}, old={"id": 2, "email": "old@x.test"}, groups=["new"], old_groups=["vip"]),
        payload({"id": 3}, old={"id": 3}, old_groups=["vip"], delete=True),
    ]
    results = hook().export_batch(batch, operations=SYNC)
    assert [r.success for r in results] == [True, True, True]
    (first, _), (second, _) = httpserver.log
    body = first.get_data()
    assert first.headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert first.headers["X-Grouparoo-Signature"] == expected
    records = json.loads(body)["records"] + json.loads(second.get_data())["records"]
    assert json.loads(body)["type"] == "records"
    assert [r["operation"] for r in records] == ["create", "update", "delete"]
    assert records[0] == {
        "operation": "create", "export_id": batch[0].export_id, "record_id": 1,
        "properties": {"id": 1, "email": "a@x.test"}, "groups": ["new", "vip"],
        "old_properties": {}, "old_groups": [],
    }
    assert records[1]["old_properties"] == {"id": 2, "email": "old@x.test"} and records[1]["old_groups"] == ["vip"]
    assert records[2]["groups"] == []


def test_a_resent_export_repeats_the_same_body(httpserver, hook):
    answer(httpserver, (200, "", {}), (200, "", {}))
    batch = [payload({"id": 1, "email": "a@x.test"}, groups=["b", "a"])]
    hook().export_batch(batch, operations=SYNC)
    hook().export_batch(batch, operations=SYNC)
    (one, _), (two, _) = httpserver.log
    assert one.get_data() == two.get_data()
    assert one.headers["X-Grouparoo-Signature"] == two.headers["X-Grouparoo-Signature"]


def test_operations_follow_the_sync_mode():
    new = payload({"id": 1})
    known = payload({"id": 1}, old={"id": 1})
    leaving = payload({"id": 1}, old={"id": 1}, delete=True)
    assert [operation(p, SYNC) for p in (new, known, leaving)] == ["create", "update", "delete"]
    assert [operation(p, ADDITIVE) for p in (new, known, leaving)] == ["create", "update", "update"]
    assert [operation(p, ENRICH) for p in (new, known, leaving)] == ["update", "update", "update"]


def test_unsigned_without_a_secret_and_authorization_header_when_set(httpserver, hook):
    answer(httpserver, (204, "", {}))
    hook(secret="", authorization="Bearer tok-123").export_batch([payload({"id": 1})], operations=SYNC)
    request, _ = httpserver.log[0]
    assert "X-Grouparoo-Signature" not in request.headers
    assert request.headers["Authorization"] == "Bearer tok-123"


# --- outcomes ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_success(httpserver, hook, status):
    answer(httpserver, (status, "", {}))
    assert [r.success for r in hook().export_batch([payload({"id": 1})], operations=SYNC)] == [True]


@pytest.mark.parametrize("status, header, expected", [
    (429, "30", 30.0),
    (503, "7", 7.0),
    (429, None, 60.0),  # throttled without a delay: the default wait
])
def test_throttling_raises_retry_after(httpserver, hook, status, header, expected):
    answer(httpserver, (status, "slow down", {"Retry-After": header} if header else {}))
    with pytest.raises(ConnectorError) as info:
        hook().export_batch([payload({"id": 1})], operations=SYNC)
    assert info.value.retry_after == expected and not info.value.permanent
    assert f"HTTP {status}" in info.value.message and "slow down" in info.value.message


def test_retry_after_as_an_http_date(httpserver, hook):
    when = datetime.now(UTC) + timedelta(seconds=120)
    answer(httpserver, (503, "", {"Retry-After": format_datetime(when, usegmt=True)}))
    with pytest.raises(ConnectorError) as info:
        hook().export_batch([payload({"id": 1})], operations=SYNC)
    assert 110 <= info.value.retry_after <= 121


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("5", now) == 5.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60.0
    assert retry_after_seconds("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0.0  # in the past: now
    assert retry_after_seconds("-3", now) == 0.0
    assert retry_after_seconds("999999999", now) == 86400.0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retried_with_backoff(httpserver, hook, status):
    answer(httpserver, (status, "<h1>oops</h1>", {}))
    with pytest.raises(ConnectorError) as info:
        hook().export_batch([payload({"id": 1})], operations=SYNC)
    assert not info.value.permanent and info.value.retry_after is None
    assert f"HTTP {status}" in info.value.message and "oops" in info.value.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_final_with_the_body_as_reason(httpserver, hook, status):
    answer(httpserver, (status, json.dumps({"error": "email is invalid"}), {}))
    results = hook().export_batch([payload({"id": 1}), payload({"id": 2})], operations=SYNC)
    assert [(r.success, r.level) for r in results] == [(False, "info"), (False, "info")]
    assert f"HTTP {status}" in results[0].error and "email is invalid" in results[0].error


def test_long_bodies_are_cut(httpserver, hook):
    answer(httpserver, (422, "x" * 5000, {}))
    [result] = hook().export_batch([payload({"id": 1})], operations=SYNC)
    assert len(result.error) < 400 and result.error.endswith("...")


def test_redirects_are_not_followed(httpserver, hook):
    answer(httpserver, (302, "", {"Location": "http://169.254.169.254/latest/meta-data"}))
    [result] = hook().export_batch([payload({"id": 1})], operations=SYNC)
    assert not result.success and result.level == "info" and "redirect" in result.error
    assert "169.254" not in result.error
    assert len(httpserver.log) == 1


def test_a_timeout_is_retried(httpserver, hook):
    done = threading.Event()

    def slow(request):
        time.sleep(1)
        done.set()
        return Response("late")

    httpserver.expect_request("/hook").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        hook(timeout=0.3).export_batch([payload({"id": 1})], operations=SYNC)
    assert time.monotonic() - started < 0.9
    assert not info.value.permanent and "did not answer within 0.3 s" in info.value.message
    assert done.wait(5)  # the (single-threaded) server is free again for the next test


def test_an_unreachable_url_is_retried(allow_loopback):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    destination = registry.get_destination("webhook-export")({"url": f"http://127.0.0.1:{port}/x"}, {})
    with pytest.raises(ConnectorError) as info:
        destination.export_batch([payload({"id": 1})], operations=SYNC)
    assert not info.value.permanent and f"Could not reach webhook http://127.0.0.1:{port}" in info.value.message


# --- batches of requests -----------------------------------------------------------------


def test_records_go_in_requests_of_batch_size(httpserver, hook):
    answer(httpserver, *[(200, "", {})] * 3)
    results = hook().export_batch([payload({"id": i}) for i in range(5)], operations=SYNC)
    assert all(r.success for r in results)
    assert [len(b["records"]) for b in bodies(httpserver)] == [2, 2, 1]


def test_throttled_after_a_delivery_throttles_only_the_rest(httpserver, hook):
    answer(httpserver, (200, "", {}), (429, "", {"Retry-After": "12"}))
    batch = [payload({"id": i}) for i in range(5)]
    results = hook().export_batch(batch, operations=SYNC)
    assert [r.success for r in results] == [True, True, False, False, False]
    assert [r.retry_after for r in results[2:]] == [12.0] * 3
    assert len(httpserver.log) == 2  # it stopped asking


def test_server_error_after_a_delivery_retries_only_the_rest(httpserver, hook):
    answer(httpserver, (200, "", {}), (500, "boom", {}))
    results = hook().export_batch([payload({"id": i}) for i in range(4)], operations=SYNC)
    assert [r.success for r in results] == [True, True, False, False]
    assert all(r.level == "error" and r.retry_after is None and "boom" in r.error for r in results[2:])


def test_records_after_a_failed_request_are_not_sent_and_say_so(httpserver, hook):
    answer(httpserver, (200, "", {}), (500, "boom", {}))
    results = hook().export_batch([payload({"id": i}) for i in range(6)], operations=SYNC)
    assert [r.success for r in results] == [True, True, False, False, False, False]
    assert [r.not_sent for r in results] == [False, False, False, False, True, True]
    assert all("boom" in r.error and r.retry_after is None for r in results[2:])
    assert results[4].error.startswith("not sent: an earlier request of the batch failed")
    assert len(httpserver.log) == 2


def test_a_first_request_failing_fails_the_whole_batch(httpserver, hook):
    # Nothing got through: the destination looks down, the batch is one failure.
    answer(httpserver, (503, "down", {}))
    with pytest.raises(ConnectorError) as info:
        hook().export_batch([payload({"id": i}) for i in range(5)], operations=SYNC)
    assert not info.value.permanent and "down" in info.value.message
    assert len(httpserver.log) == 1


def test_a_rejected_request_fails_its_records_and_sending_goes_on(httpserver, hook):
    answer(httpserver, (422, "bad record", {}), (200, "", {}), (200, "", {}))
    results = hook().export_batch([payload({"id": i}) for i in range(5)], operations=SYNC)
    assert [(r.success, r.level) for r in results] == [(False, "info")] * 2 + [(True, "error")] * 3


# --- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.1.2.3", False),
    ("::ffff:8.8.8.8", True), ("64:ff9b::808:808", True),  # IPv4-mapped and NAT64 of a public address
    ("::7f00:1", False), ("::808:808", False), ("64:ff9b::7f00:1", False), ("64:ff9b::a00:1", False),
    ("64:ff9b:1::808:808", False), ("2002:7f00:1::", False), ("2002:808:808::", False), ("::ffff:7f00:1", False),
    ("::ffff:0:7f00:1", False), ("2001::1", False), ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
    ("fec0::1", False), ("ff02::1", False),
])
def test_public_addresses(address, public):
    assert public_address(address) is public


@pytest.mark.parametrize("url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/x"])
def test_private_literals_are_refused_without_connecting(settings, url):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = False
    destination = registry.get_destination("webhook-export")({"url": url, "timeout": 1}, {})
    started = time.monotonic()
    with pytest.raises(AddressRefused) as info:
        destination.export_batch([payload({"id": 1})], operations=SYNC)
    assert time.monotonic() - started < 0.5  # refused before any connection attempt
    assert info.value.permanent and "non-public address" in info.value.message
    assert "GROUPAROO_ALLOW_PRIVATE_WEBHOOKS" in info.value.message


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(httpserver, settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = False
    url = f"http://localhost:{httpserver.port}/hook"
    httpserver.expect_request("/hook").respond_with_data("ok")
    destination = registry.get_destination("webhook-export")({"url": url}, {})
    with pytest.raises(ConnectorError) as info:
        destination.export_batch([payload({"id": 1})], operations=SYNC)
    assert info.value.permanent and "localhost" in info.value.message
    with pytest.raises(ConnectorError):
        registry.get_app("webhook")({"url": url}).test_connection()
    assert httpserver.log == []  # nothing reached the server
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    assert destination.export_batch([payload({"id": 1})], operations=SYNC)[0].success


def test_the_setting_falls_back_to_the_environment(monkeypatch):
    from connectors import webhook

    monkeypatch.setattr(webhook, "ALLOW_PRIVATE_SETTING", "GROUPAROO_TEST_ONLY_UNSET_SETTING")
    monkeypatch.setenv("GROUPAROO_TEST_ONLY_UNSET_SETTING", "true")
    assert webhook.allow_private_addresses() is True
    monkeypatch.setenv("GROUPAROO_TEST_ONLY_UNSET_SETTING", "0")
    assert webhook.allow_private_addresses() is False


# --- secrets and the app ------------------------------------------------------------------


def echo_everything(request):
    """A receiver that answers with all it received: request line, headers (the Basic
    credentials of the URL's user info among them) and body. Its status comes from ?status=."""
    status = int(request.args.get("status", "500"))
    seen = f"{request.method} {request.full_path} {request.url} {dict(request.headers)} {request.get_data(as_text=True)}"
    if status == 200:
        ids = [r["export_id"] for r in json.loads(request.get_data())["records"]]
        return Response(json.dumps({"rejected": [{"export_id": i, "reason": seen} for i in ids]}), status=200)
    return Response(seen, status=status)


ECHOED = {
    # URL user info and query tokens, next to a signing secret.
    "user info": (
        "bob-Us3r:hunter2-Pa55@", {"secret": SECRET},
        ["bob-Us3r", "hunter2-Pa55", "Ym9iLVVzM3I6aHVudGVyMi1QYTU1", "query-T0ken-xyz", "api-K3y-123", "s1g-Value-9",
         SECRET],
    ),
    # Query tokens next to an Authorization header and a signing secret.
    "authorization": (
        "", {"secret": SECRET, "authorization": "Bearer tok-Au7h-999"},
        ["Bearer tok-Au7h-999", "tok-Au7h-999", "query-T0ken-xyz", "api-K3y-123", "s1g-Value-9", SECRET],
    ),
}


@pytest.mark.parametrize("case", ECHOED)
def test_messages_and_logs_never_show_credentials_tokens_or_the_secret(case, httpserver, allow_loopback, caplog):
    userinfo, options, secrets = ECHOED[case]
    caplog.set_level("DEBUG")
    httpserver.expect_request("/hook/path-token-abc").respond_with_handler(echo_everything)
    query = "token=query-T0ken-xyz&api_key=api-K3y-123&sig=s1g-Value-9&page=2"

    def destination(status):
        url = httpserver.url_for(f"/hook/path-token-abc?{query}&status={status}")
        return registry.get_destination("webhook-export")({"url": url.replace("http://", f"http://{userinfo}"),
                                                           **options}, {})

    with pytest.raises(ConnectorError) as info:  # 500: retried; the echo is in the message
        destination(500).export_batch([payload({"id": 1})], operations=SYNC)
    [final] = destination(422).export_batch([payload({"id": 2})], operations=SYNC)
    [rejected] = destination(200).export_batch([payload({"id": 3})], operations=SYNC)
    assert len(httpserver.log) == 3
    (request, _), *_ = httpserver.log
    if userinfo:  # the credentials really were sent, so the receiver really echoed them
        assert request.headers["Authorization"] == "Basic Ym9iLVVzM3I6aHVudGVyMi1QYTU1"
    else:
        assert request.headers["Authorization"] == options["authorization"]
    assert "query-T0ken-xyz" in request.full_path
    messages = [info.value.message, final.error, rejected.error]
    for message in messages:
        for secret in secrets:
            assert secret not in message
        assert f"http://localhost:{httpserver.port}" in message and "********" in message
    assert "HTTP 500" in messages[0] and "HTTP 422" in messages[1] and "rejected the record" in messages[2]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore", "connectors")))
    assert "HTTP Request" in logged
    for secret in [*secrets, "path-token-abc"]:
        assert secret not in logged
    assert display_url("https://u:p@hooks.example.com:8443/a/b?c=d") == "https://hooks.example.com:8443"


def test_response_header_values_stay_out_of_the_debug_log(httpserver, allow_loopback, caplog):
    caplog.set_level("DEBUG")
    answer(httpserver, (200, "", {"X-Echo": "Bearer tok-Echoed-42"}))
    registry.get_destination("webhook-export")({"url": httpserver.url_for("/hook")}, {}).export_batch(
        [payload({"id": 1})], operations=SYNC)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("httpcore"))
    assert "receive_response_headers.complete" in logged and "200" in logged
    assert "tok-Echoed-42" not in logged


def test_a_url_with_user_info_and_an_authorization_secret_is_refused(httpserver, allow_loopback):
    url = httpserver.url_for("/hook").replace("http://", "http://bob:pw-123@")
    errors = registry.get_app("webhook").validate_options({"url": url, "authorization": "Bearer tok"})
    assert list(errors) == ["url"] and "Authorization" in errors["url"] and "pw-123" not in errors["url"]
    assert registry.get_app("webhook").validate_options({"url": url}) == {}
    # A row stored before the check is refused when it is used, and nothing is sent (before,
    # the user info silently replaced the Authorization header).
    destination = registry.get_destination("webhook-export")({"url": url, "authorization": "Bearer tok"}, {})
    with pytest.raises(ConnectorError) as info:
        destination.export_batch([payload({"id": 1})], operations=SYNC)
    assert info.value.permanent and "Authorization" in info.value.message and "pw-123" not in info.value.message
    assert httpserver.log == []


def test_a_url_whose_credentials_are_still_masked_is_refused(httpserver, allow_loopback):
    url = httpserver.url_for("/hook?token=********")
    assert "url" in registry.get_app("webhook").validate_options({"url": url})
    with pytest.raises(ConnectorError) as info:
        registry.get_app("webhook")({"url": url}).test_connection()
    assert info.value.permanent and info.value.message.startswith("The webhook URL's masked parts")
    assert "type the credentials again" in info.value.message
    assert httpserver.log == []


# --- deadlines ----------------------------------------------------------------------------


@pytest.fixture
def drip_server():
    """drip_server(part) -> port of a receiver on loopback that answers one byte every 0.1 s:
    its status line and headers (part "headers") or, after prompt headers, its body ("body"),
    about 6 s in all."""
    listeners: list[socket.socket] = []
    stop = threading.Event()

    def serve(listener: socket.socket, part: str) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(0.5)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                body = b"x" * 60
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
                if part == "headers":
                    slow, fast = head + body, b""
                else:
                    conn.sendall(head)
                    slow, fast = body, b""
                try:
                    for i in range(len(slow)):
                        if stop.wait(0.1):
                            return
                        conn.sendall(slow[i : i + 1])
                    conn.sendall(fast)
                except OSError:
                    continue

    def start(part: str) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listeners.append(listener)
        threading.Thread(target=serve, args=(listener, part), daemon=True).start()
        return listener.getsockname()[1]

    yield start
    stop.set()
    for listener in listeners:
        listener.close()


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_receiver_dripping_its_answer_is_cut_at_the_timeout(part, drip_server, allow_loopback):
    port = drip_server(part)
    destination = registry.get_destination("webhook-export")({"url": f"http://127.0.0.1:{port}/hook", "timeout": 1}, {})
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        destination.export_batch([payload({"id": 1})], operations=SYNC)
    elapsed = time.monotonic() - started
    # Each byte came within the per-read timeout, so only a deadline for the whole request cuts it.
    assert elapsed < 1.5, elapsed
    assert not info.value.permanent and "did not answer within 1 s" in info.value.message


def test_a_slow_name_lookup_counts_against_the_timeout(allow_loopback, monkeypatch):
    real = socket.getaddrinfo

    def slow(host, port, *args, **kwargs):
        if host == "slow-dns.example.com":
            time.sleep(3)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    destination = registry.get_destination("webhook-export")({"url": "http://slow-dns.example.com:9/h", "timeout": 1}, {})
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        destination.export_batch([payload({"id": 1})], operations=SYNC)
    assert time.monotonic() - started < 1.5
    assert not info.value.permanent and "did not answer within 1 s" in info.value.message


def test_the_timeout_is_at_most_a_minute_well_below_the_export_lease():
    from connectors.webhook import MAX_TIMEOUT, WebhookClient
    from core.settings_registry import DEFAULTS

    lease = float(next(d.default for d in DEFAULTS if d.key == "runs-lease-seconds"))
    assert MAX_TIMEOUT == 60 and 3 * MAX_TIMEOUT <= lease
    app = registry.get_app("webhook")
    assert "timeout" in app.validate_options({"url": "https://h.example/x", "timeout": 61})
    assert app.validate_options({"url": "https://h.example/x", "timeout": 60}) == {}
    assert WebhookClient({"url": "https://h.example/x", "timeout": 600}).timeout == 60  # a row stored before


def test_a_batch_starts_no_request_after_its_budget(httpserver, hook, monkeypatch):
    from connectors import webhook

    monkeypatch.setattr(webhook, "BATCH_SECONDS", 0.2)

    def slow(request):
        time.sleep(0.3)
        return Response("ok")

    httpserver.expect_request("/hook").respond_with_handler(slow)
    results = hook(batchSize=1).export_batch([payload({"id": i}) for i in range(3)], operations=SYNC)
    assert [r.success for r in results] == [True, False, False]
    # the rest is due again at once and spends no attempt
    assert all(r.not_sent and r.retry_after == 0 and "not sent yet" in r.error for r in results[1:])
    assert len(httpserver.log) == 1


def test_test_connection_posts_a_signed_ping(httpserver, allow_loopback):
    answer(httpserver, (200, "pong", {}))
    app = registry.get_app("webhook")({"url": httpserver.url_for("/hook"), "secret": SECRET})
    message = app.test_connection()
    assert "answered HTTP 200 to a signed test request" in message
    request, _ = httpserver.log[0]
    assert json.loads(request.get_data()) == {"records": [], "type": "ping"}
    assert request.headers["X-Grouparoo-Signature"].startswith("sha256=")


def test_test_connection_reports_a_refusal_clearly(httpserver, allow_loopback):
    answer(httpserver, (401, "invalid signature", {}))
    app = registry.get_app("webhook")({"url": httpserver.url_for("/hook"), "secret": "wrong"})
    with pytest.raises(ConnectorError) as info:
        app.test_connection()
    assert info.value.permanent and "HTTP 401" in info.value.message and "invalid signature" in info.value.message


def test_options_are_validated():
    app = registry.get_app("webhook")
    assert app.secret_option_keys() == ("secret", "authorization")
    assert [o.type for o in app.options if o.key == "url"] == ["url"]  # its credentials are secrets
    assert app.validate_options({"url": "https://hooks.example.com/x"}) == {}
    assert "url" in app.validate_options({})
    assert "url" in app.validate_options({"url": "ftp://example.com/x"})
    assert "url" in app.validate_options({"url": "https:///nohost"})
    assert "batchSize" in app.validate_options({"url": "https://h.example/x", "batchSize": 0})


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", float("nan"), float("inf"), 0, -1, "1e999"])
def test_a_timeout_or_batch_size_that_is_not_a_finite_positive_number_is_refused(value):
    app = registry.get_app("webhook")
    for key in ("timeout", "batchSize"):
        errors = app.validate_options({"url": "https://h.example/x", key: value})
        assert list(errors) == [key] and "finite number more than 0" in errors[key]
    assert "batchSize" in app.validate_options({"url": "https://h.example/x", "batchSize": 0.5})


@pytest.mark.parametrize("value", ["nan", "inf", float("nan"), 0, -3, "abc", 0.5])
def test_a_stored_timeout_or_batch_size_that_validation_refuses_is_the_default_at_send_time(
        value, httpserver, allow_loopback):
    from connectors.webhook import DEFAULT_TIMEOUT, WebhookClient

    httpserver.expect_request("/hook").respond_with_data("ok")
    url = httpserver.url_for("/hook")
    if value != 0.5:  # a fraction of a second is a valid timeout
        assert WebhookClient({"url": url, "timeout": value}).timeout == DEFAULT_TIMEOUT
    message = registry.get_app("webhook")({"url": url, "timeout": value}).test_connection()
    assert "answered HTTP 200" in message
    results = registry.get_destination("webhook-export")({"url": url, "batchSize": value}, {}).export_batch(
        [payload({"id": 1}), payload({"id": 2})], operations=SYNC)
    assert [r.success for r in results] == [True, True]
    assert len(bodies(httpserver)[1]["records"]) == (2 if value != 0.5 else 1)


# Secrets with characters that JSON and URLs escape: "/", '"', "\", a space, non-ASCII.
ODD_SECRET = 'whsec/"Odd\\Secret é-0123'
ODD_AUTHORIZATION = 'Bearer tok/Au7h"x\\y-999'
ODD_TOKEN = "qT0ken/é z"
SLACK_PATH = "/services/T0ABC/B0DEF/XXXXSECRETp4thT0ken"
ENCODINGS = {
    "json": lambda s: json.dumps(s)[1:-1],
    "json, non-ASCII kept": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json, / escaped (PHP)": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "json, non-ASCII kept, / escaped": lambda s: json.dumps(s, ensure_ascii=False)[1:-1].replace("/", "\\/"),
    "percent-encoded": lambda s: quote(s, safe=""),
    "percent-encoded, / kept": lambda s: quote(s),
    "percent-encoded, lower-case hex": lambda s: quote(s, safe="").lower(),
    "form-encoded": lambda s: quote_plus(s),
    "lower case": lambda s: s.lower(),
    "upper case": lambda s: s.upper(),
    "as is": lambda s: s,
}


def odd_destination(httpserver, status_path="/status"):
    url = httpserver.url_for(f"{SLACK_PATH}?token={quote(ODD_TOKEN, safe='')}&page=2")
    options = {"url": url, "secret": ODD_SECRET, "authorization": ODD_AUTHORIZATION}
    return registry.get_destination("webhook-export")(options, {})


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("secret", [ODD_SECRET, ODD_AUTHORIZATION, "tok/Au7h\"x\\y-999", ODD_TOKEN, SLACK_PATH,
                                    "XXXXSECRETp4thT0ken"])
def test_echoed_secrets_are_scrubbed_in_every_encoding(secret, encoding, httpserver, allow_loopback):
    echoed = ENCODINGS[encoding](secret)
    httpserver.expect_request(SLACK_PATH).respond_with_response(Response(f"got <{echoed}>", status=422))
    [result] = odd_destination(httpserver).export_batch([payload({"id": 1})], operations=SYNC)
    assert "HTTP 422" in result.error and "got <********>" in result.error, result.error
    assert echoed not in result.error


def test_a_php_receiver_echoing_the_request_as_json_leaks_nothing(httpserver, allow_loopback):
    """The receiver answers json_encode() of what it got: "/" escaped, header names and values
    lower-cased, the path and the decoded query."""

    def php(request):
        seen = {"authorization": request.headers["Authorization"].lower(), "path": request.path,
                "query": dict(request.args), "full": request.full_path}
        return Response(json.dumps(seen).replace("/", "\\/"), status=500)

    httpserver.expect_request(SLACK_PATH).respond_with_handler(php)
    with pytest.raises(ConnectorError) as info:
        odd_destination(httpserver).export_batch([payload({"id": 1})], operations=SYNC)
    message = info.value.message
    assert "HTTP 500" in message and "********" in message
    folded = message.lower()
    assert '"authorization": "********"' in message
    for secret in ("tok\\/", "au7h", "xxxxsecretp4tht0ken", "t0abc", "qt0ken", "services"):
        assert secret not in folded, message
