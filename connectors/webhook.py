"""Webhooks: the app ("webhook": a URL and a signing secret) and a destination ("webhook-export")
that POSTs batches of record changes as JSON. The payload is documented in docs/connectors.md:

    {"type": "records", "records": [{"operation": "create" | "update" | "delete",
      "export_id": 12, "record_id": 34, "properties": {...}, "groups": [...],
      "old_properties": {...}, "old_groups": [...]}]}

- Signed: `X-Grouparoo-Signature: sha256=<hex HMAC-SHA256 of the exact body with the secret>`.
- Idempotent for the receiver: a re-sent export has the same export_id and the same body.
- Outcomes: 2xx delivered, except the records a 2xx JSON answer lists as rejected,
  `{"rejected": [{"export_id": 12, "reason": "..."}]}` (final failures with that reason); 429
  and 503 with Retry-After (seconds or an HTTP date) are throttling
  (retried after that delay without spending an attempt; 429 without it waits 60 s); other 5xx,
  408, timeouts and connection errors are retried with backoff; other 4xx and 3xx are final
  failures whose reason is the response body (an excerpt).
- Private, loopback, link-local and other non-public addresses are refused unless the setting
  GROUPAROO_ALLOW_PRIVATE_WEBHOOKS allows them: every address that is not global (ipaddress'
  is_global, with the ranges newer Pythons added), and every IPv6 address that carries a
  non-public IPv4 address (an IPv4-mapped ::ffff:a.b.c.d is judged as that IPv4 address, a NAT64
  64:ff9b::a.b.c.d by it too); IPv4-compatible (::a.b.c.d, deprecated), IPv4-translated
  (::ffff:0:a.b.c.d), 6to4 (2002::/16), Teredo (2001::/32, within 2001::/23) and local-use NAT64
  (64:ff9b:1::/48) addresses are refused whatever they carry. The check runs at connect time
  on the address actually connected to (after DNS resolution), so a name that resolves to
  127.0.0.1, or that changes its answer between a check and the connection, is caught.
  Redirects are not followed.
- Every request has a total deadline, the app's `timeout` (at most MAX_TIMEOUT): name lookup,
  connection, TLS, sending and receiving share it (each socket operation may only wait for the
  time left), so a receiver that drips its answer cannot hold a request longer. A call of
  export_batch starts no new request after BATCH_SECONDS; the records not sent are due again at
  once, without spending an attempt. So one call lasts at most BATCH_SECONDS + MAX_TIMEOUT
  (180 s), below the export lease (setting runs-lease-seconds, 300 s by default; keep it above
  that): a slow receiver never gets a batch re-sent because its lease ran out. `timeout` and
  `batchSize` must be finite numbers above 0 (batchSize at least 1); a value stored before
  that check ("nan", 0) is read as the default when sending.
- The URL's credentials (user info, and query values named like credentials: see
  connectors.url_credentials) are secrets: the option is declared type "url", so they are stored
  encrypted and shown masked. A URL with user info sends its own Authorization header (Basic),
  so it is refused (option "url") when the Authorization secret is set too. The signing secret
  and the Authorization value are bound to the URL's scheme, host and port: an update that
  moves the URL elsewhere without giving them again is refused (url_bound_secrets), so a key
  that may edit apps cannot send them to a host of its choosing.
- Messages never contain the URL's user info, path or query (tokens live there), the signing
  secret or the Authorization value: a URL is shown as scheme://host:port, and any response text
  put into a message (an excerpt, a rejection reason, an error) has the URL's credentials and
  token values, the signing secret and the Authorization value (and the Basic credentials the
  user info becomes), the URL's path (8+ characters) and its path segments of 12+ characters
  (Slack-style URLs keep their token there) replaced by ********: as written, JSON-escaped
  (non-ASCII as \\u00e9 or kept, "/" as "\\/" or kept) and percent-encoded (quote, quote_plus),
  and in any letter case for those of 8+ characters. httpx's own request log line is redacted
  the same way (a filter on the "httpx" logger, for every client in the process), as it would
  otherwise log the full URL; httpcore's debug line of a response's headers leaves the headers out.

The setting is read lazily from django.conf.settings (so a test's `settings` fixture or
`override_settings` applies at once, and apps.py needs no change), falling back to the
environment variable of the same name when Django is not configured.
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus, unquote, urlsplit

import httpcore
import httpx

from connectors.base import (
    AppConnector,
    ConnectorError,
    DestinationConnector,
    ExportPayload,
    ExportResult,
    MappingOptions,
    Option,
    SyncOperations,
    validate_declared,
)
from connectors.registry import register
from connectors.url_credentials import MASK, has_masked_parts, url_secrets

ALLOW_PRIVATE_SETTING = "GROUPAROO_ALLOW_PRIVATE_WEBHOOKS"
SIGNATURE_HEADER = "X-Grouparoo-Signature"
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0
BATCH_SECONDS = 120.0
WRITE_CHUNK = 16 * 1024
DEFAULT_BATCH_SIZE = 100
DEFAULT_THROTTLE_SECONDS = 60.0
MAX_RETRY_AFTER = 24 * 3600.0
EXCERPT = 300
MIN_CASELESS = 8  # secrets this long are scrubbed in any letter case
MIN_PATH_SEGMENT = 12  # path segments this long are scrubbed from messages (tokens live there)
USER_AGENT = "grouparoo-py-webhook/1"


def allow_private_addresses() -> bool:
    """settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS, else the environment variable of that name."""
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:  # pragma: no cover - Django is a dependency of the project
        pass
    else:
        try:
            return bool(getattr(settings, ALLOW_PRIVATE_SETTING))
        except (ImproperlyConfigured, AttributeError):
            pass
    return os.environ.get(ALLOW_PRIVATE_SETTING, "").strip().lower() in ("1", "true", "yes", "on")


# Not global whatever Python's version says (3.11's is_global predates some of them), or, for
# the translation prefixes, because what they reach is decided by a relay we do not control.
_NEVER_PUBLIC_V6 = tuple(ipaddress.ip_network(n) for n in (
    "::/96",            # IPv4-compatible (deprecated); also :: and ::1
    "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    "64:ff9b:1::/48",   # local-use NAT64
    "100::/64",         # discard-only
    "2001::/23",        # IETF protocol assignments, Teredo (2001::/32) among them
    "2001:db8::/32",    # documentation
    "2002::/16",        # 6to4
    "3fff::/20",        # documentation
    "5f00::/16",        # segment routing SIDs
    "fc00::/7",         # unique local
    "fe80::/10",        # link-local
    "fec0::/10",        # site-local (deprecated)
))
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
    (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d, and the local-use
    64:ff9b:1::/48 with the address in its last 32 bits), 6to4 (2002:aabb:ccdd::) or Teredo (the
    client's). None when it carries none."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    value = int(ip)
    high = value >> 32
    if high in (0, 0xFFFF_0000) or any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    return None


def public_address(address: str) -> bool:
    """True for an address on the public internet: global (not private, loopback, link-local,
    shared, reserved, documentation, multicast or unspecified), and for IPv6 neither in a range
    that is never public (_NEVER_PUBLIC_V6) nor carrying a non-public IPv4 address. An
    IPv4-mapped address is judged as the IPv4 address it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return public_address(str(ip.ipv4_mapped))
        inner = embedded_ipv4(ip)
        if inner is not None and not public_address(str(inner)):
            return False
        if any(ip in network for network in _NEVER_PUBLIC_V6):
            return False
    return ip.is_global and not ip.is_multicast


def display_url(url: str) -> str:
    """scheme://host[:port] of a URL: never its user info, path or query."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the webhook URL"
    return f"{parts.scheme}://{host}{port}"


class _RedactUrls(logging.Filter):
    """Shows httpx.URL arguments of httpx log records as scheme://host:port."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(display_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


class _HeaderNamesOnly(logging.Filter):
    """httpcore's debug line of a response's headers, with the headers left out (status kept):
    a receiver may echo anything there."""

    HEADERS = re.compile(r", \[\(b.*\]\)\s*$", re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("receive_response_headers.complete"):
            record.msg = self.HEADERS.sub(", [headers not logged])", record.msg)
        return True


def _add_filter(name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


_add_filter("httpx", _RedactUrls)
_add_filter("httpcore.http11", _HeaderNamesOnly)
_add_filter("httpcore.http2", _HeaderNamesOnly)


class AddressRefused(ConnectorError):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


class _Deadline:
    """The deadline of the request in flight (time.monotonic() seconds; None: none in flight).
    Every socket operation of the client waits at most for the time left."""

    def __init__(self) -> None:
        self.at: float | None = None

    def left(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """`timeout` cut to the time left; raises `expired` (an httpcore timeout) when none is."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise expired("the request's deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads, writes and TLS handshake share the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # In chunks, so a receiver that reads slowly meets the deadline too.
        for start in range(0, len(buffer), WRITE_CHUNK):
            self._stream.write(buffer[start : start + WRITE_CHUNK], self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._deadline.left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _resolve(host: str, port: int, timeout: float | None) -> list[Any]:
    """getaddrinfo within `timeout` (it has no timeout of its own: a name is looked up in a
    helper thread, left behind if it overruns; an address literal needs no lookup)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    answer: dict[str, Any] = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            answer["error"] = exc

    worker = threading.Thread(target=lookup, name="webhook-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise httpcore.ConnectTimeout("the host name did not resolve in time")
    if "error" in answer:
        raise answer["error"]
    return answer["infos"]


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses non-public addresses (unless allowed) and connects to
    an address it checked — so the check and the connection see the same DNS answer. Lookups,
    connections and the streams it returns keep to the request's deadline."""

    def __init__(self, *, allow_private: bool, shown: str, deadline: _Deadline | None = None,
                 what: str = "Webhook"):
        self.allow_private = allow_private
        self.shown = shown
        self.deadline = deadline or _Deadline()
        self.what = what

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            infos = _resolve(host, port, self.deadline.left(timeout, httpcore.ConnectTimeout))
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve the host name ({exc})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self.allow_private:
            refused = [a for a in addresses if not public_address(a)]
            if refused:
                raise AddressRefused(
                    f"{self.what} {self.shown} resolves to the non-public address {refused[0]}; {self.what.lower()}s may"
                    f" reach only public addresses unless {ALLOW_PRIVATE_SETTING} is on.",
                    permanent=True,
                )
        last: Exception | None = None
        for address in addresses:
            try:
                stream = super().connect_tcp(address, port, timeout=self.deadline.left(timeout, httpcore.ConnectTimeout),
                                             local_address=local_address, socket_options=socket_options)
            except httpcore.ConnectError as exc:
                last = exc
            else:
                return _DeadlineStream(stream, self.deadline)
        raise last or httpcore.ConnectError("no address to connect to")


def guarded_client(*, timeout: float, shown: str, what: str) -> httpx.Client:
    """A client for other connectors that fetch a URL (the CSV source's `url`): the same address
    guard as webhooks (public addresses only unless GROUPAROO_ALLOW_PRIVATE_WEBHOOKS is on,
    checked on the address connected to), no proxy from the environment, no redirects unless a
    request asks (each hop's address is checked again), `timeout` for each socket operation.
    A refused address raises AddressRefused naming `what` and `shown` (scheme://host:port)."""
    return _client(timeout=timeout, allow_private=allow_private_addresses(), shown=shown, deadline=_Deadline(),
                   what=what)


def _client(*, timeout: float, allow_private: bool, shown: str, deadline: _Deadline,
            what: str = "Webhook") -> httpx.Client:
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no public hook for the network backend: replace its pool by one that uses ours
    # (same SSL defaults; no proxy, as trust_env is off).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=4,
        max_keepalive_connections=4,
        network_backend=_GuardedBackend(allow_private=allow_private, shown=shown, deadline=deadline, what=what),
    )
    return httpx.Client(transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) as seconds from now, capped at a day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def sign(body: bytes, secret: str) -> str:
    """The signature header value: sha256=<hex HMAC-SHA256 of body keyed by secret>."""
    return "sha256=" + hmac.new(str(secret).encode("utf-8"), body, hashlib.sha256).hexdigest()


def _number(options: dict[str, Any], key: str, default: float) -> float:
    """The option as a finite number above 0 (`default` when unset); raises ConnectorError
    (permanent) for anything else: "nan", "inf", 0, -1, "abc"."""
    raw = options.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise ConnectorError(f"{key} {raw!r} is not a number.", permanent=True) from None
    if not math.isfinite(value) or value <= 0:
        raise ConnectorError(f"{key} must be a finite number more than 0, not {raw!r}.", permanent=True)
    return value


def _number_or_default(options: dict[str, Any], key: str, default: float) -> float:
    """The option as _number() reads it, or `default` for a value validation would refuse
    (a row stored before the check: "nan" must not reach min() or range())."""
    try:
        return _number(options, key, default)
    except ConnectorError:
        return default


class _Failure(Exception):
    """What one request's failure means for its records (internal)."""

    def __init__(self, message: str, *, final: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.final = final
        self.retry_after = retry_after


class WebhookClient:
    """Posts signed JSON bodies to the app's URL and classifies the answers."""

    def __init__(self, app_options: dict[str, Any]):
        self.options = dict(app_options)
        url = str(self.options.get("url") or "")
        problem = url_problem(url) or _credentials_problem(url, self.options.get("authorization"))
        if problem:
            raise ConnectorError(problem, permanent=True)
        self.url = url
        self.shown = display_url(url)
        self.secret = str(self.options.get("secret") or "")
        self.authorization = str(self.options.get("authorization") or "")
        self.timeout = min(_number_or_default(self.options, "timeout", DEFAULT_TIMEOUT), MAX_TIMEOUT)
        self._secrets = self._secret_values()
        self._patterns = self._scrubbers()
        self._deadline = _Deadline()
        self._http: httpx.Client | None = None

    def __enter__(self) -> WebhookClient:
        self._http = _client(timeout=self.timeout, allow_private=allow_private_addresses(), shown=self.shown,
                             deadline=self._deadline)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _secret_values(self) -> list[str]:
        """What a message must never show: the signing secret, the Authorization value (whole
        and its credential), the URL's credentials and token values, the Basic credentials
        httpx makes of the URL's user info, and the URL's path (8+ characters) and its path
        segments of 12+ characters (Slack-style URLs keep their token there)."""
        values = {self.secret, self.authorization, *url_secrets(self.url)}
        scheme, _, credential = self.authorization.strip().partition(" ")
        values.add(credential.strip())
        if scheme.lower() == "basic":
            values.add(_base64_text(credential.strip()))
        parsed = httpx.URL(self.url)
        user, password = parsed.username, parsed.password
        if user or password:
            values.add(base64.b64encode(f"{user}:{password}".encode()).decode())
            values.add(f"{user}:{password}")
        path = urlsplit(self.url).path
        for piece in (path, unquote(path)):
            if len(piece) >= MIN_CASELESS:
                values.add(piece)
            values.update(s for s in piece.split("/") if len(s) >= MIN_PATH_SEGMENT)
        return sorted((v for v in values if len(v) >= 2 and v != MASK), key=lambda v: (-len(v), v))

    def _scrubbers(self) -> list[re.Pattern[str]]:
        """A pattern per form of every secret (_encoded_forms), longest first; a secret of
        MIN_CASELESS or more characters is matched in any letter case (a receiver may lower-case
        a header it echoes)."""
        forms: dict[str, int] = {}
        for secret in self._secrets:
            flags = re.IGNORECASE if len(secret) >= MIN_CASELESS else 0
            for form in _encoded_forms(secret):
                for spelling in (form, " ".join(form.split())):  # also with whitespace collapsed
                    if len(spelling) >= 2 and spelling != MASK:
                        forms[spelling] = forms.get(spelling, 0) | flags
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        return [re.compile(re.escape(form), forms[form]) for form in ordered]

    def _scrub(self, text: str) -> str:
        """The text on one line, every secret value, in every form a receiver may echo it in,
        replaced by ********."""
        for pattern in self._patterns:
            text = pattern.sub(MASK, text)
        text = " ".join(text.split())
        for pattern in self._patterns:  # a secret with inner whitespace, now collapsed
            text = pattern.sub(MASK, text)
        return text

    def excerpt(self, response: httpx.Response) -> str:
        try:
            text = self._scrub(response.text)
        except Exception:  # undecodable body
            text = ""
        if len(text) > EXCERPT:
            text = text[: EXCERPT - 3] + "..."
        return text or "(empty body)"

    def rejections(self, response: httpx.Response, export_ids: set[int]) -> dict[int, str]:
        """Per-record rejections in a 2xx answer: `{"rejected": [{"export_id": 12, "reason":
        "..."}]}` -> {12: "..."} (ids of this request only; any other body rejects nothing)."""
        try:
            document = json.loads(response.content or b"null")
        except ValueError:
            return {}
        items = document.get("rejected") if isinstance(document, dict) else None
        out: dict[int, str] = {}
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            try:
                export_id = int(item.get("export_id"))
            except (TypeError, ValueError):
                continue
            if export_id in export_ids:
                reason = self._scrub(str(item.get("reason") or "")) or "no reason given"
                out[export_id] = reason if len(reason) <= EXCERPT else reason[: EXCERPT - 3] + "..."
        return out

    def post(self, document: dict[str, Any]) -> httpx.Response:
        """POST the document; return the 2xx response or raise _Failure / AddressRefused."""
        assert self._http is not None, "use WebhookClient as a context manager"
        body = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.secret)
        if self.authorization:
            headers["Authorization"] = self.authorization
        # The whole request (lookup, connection, sending, answer) within the timeout.
        self._deadline.at = time.monotonic() + self.timeout
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except AddressRefused:
            raise
        except httpx.TimeoutException:
            raise _Failure(f"Webhook {self.shown} did not answer within {self.timeout:g} s.") from None
        except httpx.HTTPError as exc:  # connection refused, DNS, TLS, protocol errors
            reason = self._scrub(str(exc)) or type(exc).__name__
            raise _Failure(f"Could not reach webhook {self.shown}: {reason}") from None
        finally:
            self._deadline.at = None
        status = response.status_code
        if 200 <= status < 300:
            return response
        shown = f"Webhook {self.shown} answered HTTP {status}"
        if status in (429, 503):
            delay = retry_after_seconds(response.headers.get("Retry-After"))
            if delay is None and status == 429:
                delay = DEFAULT_THROTTLE_SECONDS
            if delay is not None:
                raise _Failure(f"{shown} (throttled, retry after {delay:g} s): {self.excerpt(response)}", retry_after=delay)
        if status >= 500 or status == 408:
            raise _Failure(f"{shown}: {self.excerpt(response)}")
        if 300 <= status < 400:
            raise _Failure(f"{shown} (a redirect, not followed): set the webhook URL to the final address.", final=True)
        raise _Failure(f"{shown}: {self.excerpt(response)}", final=True)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL (None when it can)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "The webhook URL is not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The webhook URL must be an http:// or https:// URL with a host."
    try:
        httpx.URL(url)  # stricter than urlsplit: e.g. refuses the octal host 0177.0.0.1
    except httpx.InvalidURL:
        return "The webhook URL is not a valid URL."
    return None


def _credentials_problem(url: str, authorization: Any) -> str | None:
    """Why the URL's credentials cannot be used: a credential still masked (it was never stored),
    or user info (httpx sends it as an Authorization: Basic header) next to an Authorization
    secret, which it would silently replace."""
    if has_masked_parts(url):
        return (f"The webhook URL's masked parts ({MASK}) stand for stored credentials, and none are stored:"
                " type the credentials again.")
    parts = urlsplit(url)
    if authorization and (parts.username or parts.password):
        return ("The webhook URL has user info (user:password@), which is sent as the Authorization header, and "
                "the Authorization header option is set too: keep only one of them.")
    return None


def _encoded_forms(value: str) -> set[str]:
    """The spellings of `value` a receiver may echo: as is; JSON-escaped (with and without
    ensure_ascii, so also as \\u00e9; with "/" escaped as "\\/" too, as PHP's json_encode does);
    percent-encoded (quote, with and without "/" kept; quote_plus)."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")}
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms.update((escaped, escaped.replace("/", "\\/")))
    return forms


def _base64_text(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""


# --- app ----------------------------------------------------------------------------------


@register
class WebhookApp(AppConnector):
    """An HTTP endpoint that receives record changes as signed JSON."""

    key = "webhook"
    label = "Webhook"
    max_concurrency = 2
    preferred_batch_size = DEFAULT_BATCH_SIZE
    # Sent to the URL's host: kept only while the URL stays on the same scheme, host and port
    # (connectors.url_credentials.moved_url_errors).
    url_bound_secrets: ClassVar[dict[str, tuple[str, ...]]] = {"url": ("authorization", "secret")}
    options = (
        Option("url", "URL", type="url", required=True,
               help_text="http(s) URL that receives POSTed JSON. Its user info and credential-like query values"
                         " (token, key, signature...) are stored encrypted and shown as ********."),
        Option("secret", "Signing secret", type="secret",
               help_text=f"Signs each body: {SIGNATURE_HEADER}: sha256=<HMAC-SHA256 hex>."),
        Option("authorization", "Authorization header", type="secret",
               help_text="Optional value of the Authorization header (e.g. Bearer <token>)."),
        Option("timeout", "Timeout (seconds)", type="number", default=DEFAULT_TIMEOUT,
               help_text=f"The whole request's deadline (connection, sending and answer), at most {MAX_TIMEOUT:g}."),
        Option("batchSize", "Records per request", type="number", default=DEFAULT_BATCH_SIZE),
    )

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, str]:
        errors = validate_declared(cls.options, options)
        url = options.get("url")
        if url and "url" not in errors:
            problem = url_problem(str(url)) or _credentials_problem(str(url), options.get("authorization"))
            if problem:
                errors["url"] = problem
        for key in ("timeout", "batchSize"):
            try:
                _number(options, key, 1)
            except ConnectorError as exc:
                errors.setdefault(key, exc.message)
        if "timeout" not in errors and _number(options, "timeout", DEFAULT_TIMEOUT) > MAX_TIMEOUT:
            errors["timeout"] = (f"timeout must be at most {MAX_TIMEOUT:g} seconds: a request must end well within"
                                 " the export lease.")
        if "batchSize" not in errors and _number(options, "batchSize", DEFAULT_BATCH_SIZE) < 1:
            errors["batchSize"] = "batchSize must be at least 1 record per request."
        return errors

    def test_connection(self) -> str:
        """POST a signed `{"type": "ping", "records": []}`; a 2xx answer is a success.
        Raises ConnectorError (permanent for a refused address or a 4xx answer)."""
        with WebhookClient(self.app_options) as client:
            try:
                response = client.post({"type": "ping", "records": []})
            except _Failure as failure:
                raise ConnectorError(failure.message, permanent=failure.final, retry_after=failure.retry_after) from None
        signed = "signed " if client.secret else "unsigned "
        return f"Webhook {client.shown} answered HTTP {response.status_code} to a {signed}test request."


# --- destination --------------------------------------------------------------------------


def operation(payload: ExportPayload, operations: SyncOperations) -> str:
    """create / update / delete for one payload under the sync mode's operations: a leaving
    record is deleted only when deletes are allowed (else updated with no groups); a record
    never delivered before is created only when creates are allowed (else updated: the receiver
    updates it if it has it)."""
    if payload.to_delete:
        return "delete" if operations.delete else "update"
    if not payload.old_properties and not payload.old_groups and operations.create:
        return "create"
    return "update"


def record_document(payload: ExportPayload, operations: SyncOperations) -> dict[str, Any]:
    op = operation(payload, operations)
    return {
        "operation": op,
        "export_id": payload.export_id,
        "record_id": payload.record_id,
        "properties": dict(payload.new_properties),
        "groups": [] if payload.to_delete else sorted({str(g) for g in payload.new_groups}),
        "old_properties": dict(payload.old_properties),
        "old_groups": sorted({str(g) for g in payload.old_groups}),
    }


def _chunks(items: Sequence[ExportPayload], size: int) -> Iterator[Sequence[ExportPayload]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _postponed(payloads: Sequence[ExportPayload]) -> list[ExportResult]:
    """Results for records left unsent because the batch used its time: due again at once."""
    message = f"not sent yet: the batch used its {BATCH_SECONDS:g} s; sent with a next batch"
    return [ExportResult(p.export_id, success=False, error=message, level="error", not_sent=True, retry_after=0.0)
            for p in payloads]


@register
class WebhookDestination(DestinationConnector):
    """POSTs record changes in batches of `batchSize` records per request."""

    key = "webhook-export"
    app_key = "webhook"
    label = "Webhook (JSON POST)"
    aliases = ("webhook-export-records",)
    options: ClassVar[tuple[Option, ...]] = ()

    def mapping_options(self) -> MappingOptions:
        """Any field: the receiver gets the mapped properties under the names chosen."""
        return MappingOptions(required=(), known=(), allow_any=True)

    def export_batch(self, exports: list[ExportPayload], *, operations: SyncOperations) -> list[ExportResult]:
        """POST the batch, `batchSize` records per request, and return one result per payload.

        A request that fails before anything was delivered raises ConnectorError (retry_after
        for throttling; permanent for a refused address): the destination looks down. Once a
        request succeeded, a throttled one (429/503 with Retry-After) throttles its records and
        the unsent ones (retry_after; no attempt spent); any other retryable failure fails its
        records (level error: an attempt each) and returns the unsent ones as not_sent (retried
        with them, no attempt spent). A final failure (4xx)
        fails only that request's records (level info, the body as the reason) and sending
        goes on. Records a 2xx answer lists as rejected fail alone (level info, the receiver's
        reason). Every body is deterministic, so a repeated export repeats its request."""
        if not exports:
            return []
        size = max(1, int(_number_or_default(self.app_options, "batchSize", DEFAULT_BATCH_SIZE)))
        results: list[ExportResult] = []
        delivered = False
        started = time.monotonic()
        with WebhookClient(self.app_options) as client:
            chunks = list(_chunks(exports, size))
            for index, chunk in enumerate(chunks):
                if index and time.monotonic() - started > BATCH_SECONDS:
                    # Past the batch's budget: the rest waits for the next batch (no attempt
                    # spent), so this call ends well within the export lease.
                    results += _postponed([p for c in chunks[index:] for p in c])
                    break
                document = {"type": "records", "records": [record_document(p, operations) for p in chunk]}
                try:
                    response = client.post(document)
                except _Failure as failure:
                    if failure.final:
                        results += [ExportResult(p.export_id, success=False, error=failure.message, level="info") for p in chunk]
                        continue
                    if not delivered:
                        # Nothing got through: the destination looks down (or throttles); the
                        # whole batch waits, as one failure.
                        raise ConnectorError(failure.message, retry_after=failure.retry_after) from None
                    rest = [p for c in chunks[index + 1 :] for p in c]
                    if failure.retry_after is not None:
                        # Throttled: nobody spends an attempt; everything waits as asked.
                        results += [
                            ExportResult(p.export_id, success=False, error=failure.message, level="error",
                                         retry_after=failure.retry_after)
                            for p in chunk + rest
                        ]
                        break
                    # This request's records spend an attempt; the ones never sent do not.
                    results += [
                        ExportResult(p.export_id, success=False, error=failure.message, level="error")
                        for p in chunk
                    ]
                    results += [
                        ExportResult(p.export_id, success=False, level="error", not_sent=True,
                                     error=f"not sent: an earlier request of the batch failed ({failure.message})")
                        for p in rest
                    ]
                    break
                delivered = True
                rejected = client.rejections(response, {p.export_id for p in chunk})
                results += [
                    ExportResult(p.export_id, success=False, level="info",
                                 error=f"Webhook {client.shown} rejected the record: {rejected[p.export_id]}")
                    if p.export_id in rejected else ExportResult(p.export_id, success=True)
                    for p in chunk
                ]
        return results
