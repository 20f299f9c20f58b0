from __future__ import annotations

import httpx
import pytest

from mcp_remote_py.shell.net import (
    NetworkOptions,
    _excerpt,
    build_client,
    describe_network_error,
    display_url,
    is_loopback_host,
    redirect_allowed,
    same_origin,
)
from mcp_remote_py.shell.transports.negotiate import transport_order


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "a.localhost"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "localhost.example.com"])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


def test_same_origin_uses_default_ports() -> None:
    assert same_origin(httpx.URL("https://a.com/x"), httpx.URL("https://a.com:443/y"))
    assert not same_origin(httpx.URL("https://a.com/x"), httpx.URL("http://a.com/x"))
    assert not same_origin(httpx.URL("https://a.com/x"), httpx.URL("https://b.a.com/x"))


def test_display_url_drops_secrets() -> None:
    shown = display_url(httpx.URL("https://user:pw@a.com/mcp?key=s3cret#f"))
    assert shown == "https://a.com/mcp"


def test_excerpt_of_json_error_html_and_text() -> None:
    assert _excerpt(b'{"error":{"code":1,"message":"bad session"}}', "application/json") == (
        "bad session"
    )
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    assert _excerpt(page, "text/html") == "502 Bad Gateway"
    assert _excerpt(b"x" * 1000, "text/plain").endswith("…")


@pytest.mark.parametrize(
    ("mode", "url", "order"),
    [
        ("http-first", "https://a/mcp", ["http", "sse"]),
        ("http-first", "https://a/sse", ["sse", "http"]),
        ("http-first", "https://a/v1/sse/", ["sse", "http"]),
        ("sse-first", "https://a/mcp", ["sse", "http"]),
        ("http-only", "https://a/sse", ["http"]),
        ("sse-only", "https://a/mcp", ["sse"]),
    ],
)
def test_transport_order(mode: str, url: str, order: list[str]) -> None:
    assert transport_order(mode, httpx.URL(url)) == order


def _connect_error(cause: BaseException) -> httpx.ConnectError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise httpx.ConnectError(str(inner)) from inner
    except httpx.ConnectError as outer:
        return outer


URL = httpx.URL("https://mcp.example.com/mcp")


def test_dns_failure_names_the_host_and_is_not_retried() -> None:
    import socket

    error = describe_network_error(
        _connect_error(socket.gaierror(-2, "Name or service not known")), URL, NetworkOptions()
    )
    assert "mcp.example.com could not be resolved" in str(error)
    assert not error.transient
    assert "mcp-remote-py doctor https://mcp.example.com/mcp" in error.advice()


def test_ipv6_only_host_under_ipv4_says_so() -> None:
    import socket

    cause = socket.gaierror(
        -5, "mcp.example.com has only IPv6 addresses, and --ipv4 allows IPv4 only"
    )
    error = describe_network_error(_connect_error(cause), URL, NetworkOptions(ipv4=True))
    assert "only IPv6" in str(error)
    assert "Remove --ipv4" in error.advice()


def test_refused_is_transient_and_unreachable_suggests_ipv4() -> None:
    import errno

    refused = describe_network_error(
        _connect_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")), URL, NetworkOptions()
    )
    assert refused.transient
    assert "mcp.example.com:443 refused the connection" in str(refused)
    unreachable = describe_network_error(
        _connect_error(OSError(errno.ENETUNREACH, "Network is unreachable")), URL, NetworkOptions()
    )
    assert "--ipv4" in unreachable.advice()


def test_connect_timeout_names_the_limit() -> None:
    error = describe_network_error(
        httpx.ConnectTimeout("t"), URL, NetworkOptions(connect_timeout=7)
    )
    assert "timed out after 7 s" in str(error)
    assert error.transient


async def test_the_client_sends_through_http1_and_proxies_through_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp_remote_py.shell.http1 import Http1Transport

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    async with build_client(NetworkOptions()) as client:
        assert isinstance(client._transport_for_url(httpx.URL("http://a.example/")), Http1Transport)
        proxied = client._transport_for_url(httpx.URL("https://a.example/mcp"))
        assert isinstance(proxied, httpx.AsyncHTTPTransport)  # Http1Transport speaks no proxy
        direct = client._transport_for_url(httpx.URL("https://internal.example/mcp"))
        assert isinstance(direct, Http1Transport)


@pytest.mark.parametrize(
    "options", [NetworkOptions(httpx_transport=True), NetworkOptions(http2=True)]
)
async def test_httpx_transport_and_http2_use_httpx(options: NetworkOptions) -> None:
    async with build_client(options) as client:
        transport = client._transport_for_url(httpx.URL("https://a.example/mcp"))
        assert isinstance(transport, httpx.AsyncHTTPTransport)


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("https://a.example/mcp", "https://a.example/other", True),
        ("https://a.example/mcp", "https://a.example:443/mcp", True),
        ("http://a.example/mcp", "https://a.example/mcp", True),  # the one upgrade: 80 -> 443
        ("http://a.example:80/mcp", "https://a.example:443/mcp", True),
        ("http://a.example:8080/mcp", "https://a.example/mcp", False),
        ("http://a.example/mcp", "https://a.example:8443/mcp", False),
        ("http://127.0.0.1:5000/mcp", "https://127.0.0.1:6000/mcp", False),
        ("https://a.example/mcp", "http://a.example/mcp", False),  # a downgrade
        ("https://a.example/mcp", "https://b.example/mcp", False),
        ("http://a.example/mcp", "https://b.example/mcp", False),
        ("https://a.example:8443/mcp", "https://a.example:9443/mcp", False),
    ],
)
def test_a_redirect_may_carry_credentials_only_within_the_origin_or_the_80_to_443_upgrade(
    source: str, target: str, allowed: bool
) -> None:
    assert redirect_allowed(httpx.URL(source), httpx.URL(target)) is allowed
