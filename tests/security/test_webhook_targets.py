"""The webhook destination reaches only public addresses unless GROUPAROO_ALLOW_PRIVATE_WEBHOOKS
is on: every spelling of a private, loopback or link-local address is refused (IPv6 ones that
carry a private IPv4 address too: IPv4-compatible, -mapped and -translated, NAT64, 6to4, Teredo),
so is a host name
that resolves to one (the resolver is replaced here: no network), and the check runs at every
connection on the very address then connected to (a DNS answer that changes is no way around it)."""
from __future__ import annotations

import socket

import httpcore
import pytest

from connectors import registry
from connectors.base import ConnectorError, ExportPayload, SyncOperations
from connectors.webhook import AddressRefused, WebhookApp

SYNC = SyncOperations.for_mode("sync")
PUBLIC = "93.184.216.34"


def payload(n: int = 1) -> ExportPayload:
    return ExportPayload(export_id=n, record_id=n, old_properties={}, new_properties={"id": n},
                         old_groups=[], new_groups=[], to_delete=False)


def destination(url: str):
    return registry.get_destination("webhook-export")({"url": url, "timeout": 2}, {})


@pytest.fixture
def refuse_private(settings):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = False


@pytest.fixture
def connects(monkeypatch) -> list[str]:
    """The addresses the webhook client really opened a TCP connection to (each attempt fails
    as refused, so nothing leaves the machine)."""
    seen: list[str] = []

    def fake_connect(self, host, port, timeout=None, local_address=None, socket_options=None):
        seen.append(host)
        raise httpcore.ConnectError("connection refused (test)")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", fake_connect)
    return seen


@pytest.fixture
def resolver(monkeypatch):
    """resolver({"name": [answers, ...]}): getaddrinfo answers for names, one answer list per
    call (the last one repeats); other names fall through to the real resolver."""
    real = socket.getaddrinfo
    calls: list[str] = []

    def install(table: dict[str, list[list[str]]]):
        def fake(host, port, family=0, type=0, proto=0, flags=0):
            if host not in table:
                return real(host, port, family, type, proto, flags)
            n = calls.count(host)
            calls.append(host)
            answers = table[host][min(n, len(table[host]) - 1)]
            out = []
            for address in answers:
                fam = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (address, port, 0, 0) if fam == socket.AF_INET6 else (address, port)
                out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
            return out

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return calls

    return install


# Every way of writing a non-public address in a URL that the resolver turns into one.
LITERALS = [
    "http://127.0.0.1/h", "http://127.1/h", "http://2130706433/h", "http://0x7f000001/h", "http://0/h",
    "http://10.0.0.1/h", "http://192.168.1.1:8080/h", "http://172.16.0.1/h", "http://100.64.0.1/h",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/h", "http://[::]/h", "http://[fe80::1]/h",
    "http://[fd00::1]/h", "http://[::ffff:127.0.0.1]/h", "http://[::ffff:7f00:1]/h", "http://[::ffff:169.254.169.254]/h",
    "http://localhost/h", "https://localhost:8443/h",
]
# IPv6 spellings that carry a non-public IPv4 address, or sit in a range that is never public.
IPV6_SPELLINGS = [
    "http://[::7f00:1]/h", "http://[::127.0.0.1]/h",                            # IPv4-compatible
    "http://[::ffff:7f00:1]/h", "http://[::ffff:0a00:0001]/h",                   # IPv4-mapped, hex
    "http://[::ffff:0:7f00:1]/h",                                               # IPv4-translated
    "http://[64:ff9b::7f00:1]/h", "http://[64:ff9b::a00:1]/h", "http://[64:ff9b::169.254.169.254]/h",  # NAT64
    "http://[64:ff9b:1::7f00:1]/h", "http://[64:ff9b:1::808:808]/h",            # local-use NAT64
    "http://[2002:7f00:1::]/h", "http://[2002:a00:1::1]/h", "http://[2002:808:808::1]/h",  # 6to4
    "http://[2001::1]/h", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h",    # Teredo
    "http://[fec0::1]/h",                                                       # site-local
]


@pytest.mark.parametrize("url", LITERALS + IPV6_SPELLINGS)
def test_private_loopback_and_link_local_spellings_are_refused_before_connecting(url, refuse_private, connects):
    with pytest.raises(AddressRefused) as info:
        destination(url).export_batch([payload()], operations=SYNC)
    assert info.value.permanent
    assert "non-public address" in info.value.message and "GROUPAROO_ALLOW_PRIVATE_WEBHOOKS" in info.value.message
    assert connects == []
    with pytest.raises(ConnectorError):
        registry.get_app("webhook")({"url": url, "timeout": 2}).test_connection()
    assert connects == []


def test_an_octal_host_is_not_a_valid_url(refuse_private, connects):
    url = "http://0177.0.0.1/h"
    assert "url" in WebhookApp.validate_options({"url": url})
    with pytest.raises(ConnectorError) as info:
        destination(url).export_batch([payload()], operations=SYNC)
    assert info.value.permanent and "not a valid URL" in info.value.message
    assert connects == []


@pytest.mark.parametrize("answers", [
    ["10.1.2.3"], ["169.254.169.254"], ["127.0.0.53"], ["fe80::1"], ["fd12:3456::1"], ["::ffff:192.168.0.1"],
    [PUBLIC, "127.0.0.1"],  # one bad answer among good ones is enough to refuse
    ["::7f00:1"], ["64:ff9b::7f00:1"], ["64:ff9b::a00:1"], ["64:ff9b:1::1"], ["2002:7f00:1::"],
    ["::ffff:7f00:1"], ["2001::1"], ["fec0::1"],  # IPv6 answers carrying private IPv4 (DNS64 etc.)
], ids=str)
def test_a_name_that_resolves_to_a_private_address_is_refused(answers, refuse_private, connects, resolver):
    calls = resolver({"hooks.example.com": [answers]})
    with pytest.raises(AddressRefused) as info:
        destination("https://hooks.example.com/h").export_batch([payload()], operations=SYNC)
    assert info.value.permanent and "hooks.example.com" in info.value.message
    assert calls == ["hooks.example.com"]
    assert connects == []


def test_the_checked_address_is_the_one_connected_to_and_every_connection_is_checked(
    refuse_private, connects, resolver
):
    # A rebinding name: public at the first lookup, loopback afterwards.
    calls = resolver({"rebind.example.com": [[PUBLIC], ["127.0.0.1"]]})
    hook = destination("http://rebind.example.com/h")
    with pytest.raises(ConnectorError) as info:
        hook.export_batch([payload(1)], operations=SYNC)
    # one lookup, then a connection to the address it checked (not the name, which the OS
    # would resolve again); the refused connection is a retryable failure
    assert calls == ["rebind.example.com"]
    assert connects == [PUBLIC]
    assert not info.value.permanent and not isinstance(info.value, AddressRefused)
    # the next connection looks the name up again, sees loopback and refuses it
    with pytest.raises(AddressRefused):
        hook.export_batch([payload(2)], operations=SYNC)
    assert calls == ["rebind.example.com"] * 2
    assert connects == [PUBLIC]


@pytest.mark.parametrize("answers", [[PUBLIC], ["64:ff9b::5db8:d822"], ["::ffff:93.184.216.34"]], ids=str)
def test_public_answers_are_connected_to(answers, refuse_private, connects, resolver):
    # NAT64 (DNS64) and IPv4-mapped spellings of a public address stay reachable.
    resolver({"hooks.example.com": [answers]})
    with pytest.raises(ConnectorError) as info:
        destination("https://hooks.example.com/h").export_batch([payload()], operations=SYNC)
    assert not isinstance(info.value, AddressRefused) and not info.value.permanent
    assert connects == answers


def test_the_setting_allows_private_targets(settings, httpserver, resolver):
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = True
    resolver({"crm.internal": [["127.0.0.1"]]})
    httpserver.expect_request("/h", method="POST").respond_with_data("ok")
    results = destination(f"http://crm.internal:{httpserver.port}/h").export_batch([payload()], operations=SYNC)
    assert results[0].success
    (request, _), = httpserver.log
    assert request.headers["Host"] == f"crm.internal:{httpserver.port}"
    settings.GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = False
    with pytest.raises(AddressRefused):
        destination(f"http://crm.internal:{httpserver.port}/h").export_batch([payload(2)], operations=SYNC)
    assert len(httpserver.log) == 1
