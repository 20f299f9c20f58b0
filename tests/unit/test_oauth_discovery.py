"""OAuth discovery, the pure parts: challenges, well-known URIs, resources, metadata checks."""

from __future__ import annotations

import httpx
import pytest

from mcp_remote_py.auth.challenge import bearer_challenge, parse_www_authenticate
from mcp_remote_py.auth.discovery import (
    AuthorizationServer,
    authorization_server_metadata_urls,
    canonical_resource,
    check_endpoint_url,
    protected_resource_metadata_urls,
    resource_covers,
)
from mcp_remote_py.auth.errors import OAuthError

# ---------------------------------------------------------------- WWW-Authenticate


def test_a_bearer_challenge_with_resource_metadata_and_scope() -> None:
    (challenge,) = parse_www_authenticate(
        [
            'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-'
            'resource", scope="files:read  files:write"'
        ]
    )
    assert challenge.scheme == "bearer"
    assert challenge.resource_metadata == (
        "https://mcp.example.com/.well-known/oauth-protected-resource"
    )
    assert challenge.scope == "files:read files:write"


def test_several_challenges_in_one_value_and_in_several() -> None:
    challenges = parse_www_authenticate(
        ['Basic realm="a, b", Bearer error="insufficient_scope", scope=read', "DPoP algs=ES256"]
    )
    assert [c.scheme for c in challenges] == ["basic", "bearer", "dpop"]
    assert challenges[0].params == {"realm": "a, b"}
    assert challenges[1].error == "insufficient_scope"
    assert challenges[1].scope == "read"


def test_quoted_strings_keep_escapes_and_names_are_case_insensitive() -> None:
    (challenge,) = parse_www_authenticate(
        [r'BEARER Error_Description="say \"hi\"", RESOURCE_METADATA = "https://x/y"']
    )
    assert challenge.error_description == 'say "hi"'
    assert challenge.resource_metadata == "https://x/y"


def test_token68_and_bare_schemes() -> None:
    challenges = parse_www_authenticate(["Negotiate abc123==, Bearer", "Bearer"])
    assert challenges[0].token68 == "abc123=="
    assert [c.scheme for c in challenges] == ["negotiate", "bearer", "bearer"]
    assert challenges[1].params == {}


def test_garbage_is_ignored_not_guessed() -> None:
    assert parse_www_authenticate(["", "   ", '"quoted"']) == []
    (challenge,) = parse_www_authenticate(['Bearer realm="unterminated'])
    assert challenge.scheme == "bearer"
    assert challenge.scope is None


def test_bearer_challenge_picks_bearer_from_headers() -> None:
    headers = httpx.Headers(
        [("WWW-Authenticate", 'Basic realm="x"'), ("WWW-Authenticate", 'Bearer scope="a"')]
    )
    found = bearer_challenge(headers)
    assert found is not None
    assert found.scope == "a"
    assert bearer_challenge({"www-authenticate": 'Basic realm="x"'}) is None
    assert bearer_challenge(httpx.Headers()) is None


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://MCP.Example.com/mcp", "https://mcp.example.com/mcp"),
        ("HTTPS://mcp.example.com:443/mcp/", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com:8443", "https://mcp.example.com:8443"),
        ("https://mcp.example.com/", "https://mcp.example.com"),
        ("https://mcp.example.com/mcp#frag", "https://mcp.example.com/mcp"),
        ("https://user:pw@mcp.example.com/mcp", "https://mcp.example.com/mcp"),
        ("http://127.0.0.1:8080/mcp?tenant=a", "http://127.0.0.1:8080/mcp?tenant=a"),
        ("http://[::1]:80/mcp", "http://[::1]/mcp"),
    ],
)
def test_canonical_resource(url: str, canonical: str) -> None:
    # 2025-11-25 §Canonical Server URI.
    assert canonical_resource(url) == canonical


def test_canonical_resource_refuses_non_urls() -> None:
    for bad in ("mcp.example.com", "ftp://x/y", "https://"):
        with pytest.raises(ValueError, match="not an http"):
            canonical_resource(bad)


def test_protected_resource_metadata_urls_path_inserted_first_then_root() -> None:
    assert protected_resource_metadata_urls("https://example.com/public/mcp/") == [
        "https://example.com/.well-known/oauth-protected-resource/public/mcp",
        "https://example.com/.well-known/oauth-protected-resource",
    ]
    assert protected_resource_metadata_urls("https://example.com:8443") == [
        "https://example.com:8443/.well-known/oauth-protected-resource"
    ]


def test_authorization_server_metadata_urls_in_the_spec_order() -> None:
    assert authorization_server_metadata_urls("https://auth.example.com/tenant1") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
    ]
    assert authorization_server_metadata_urls("https://auth.example.com/") == [
        "https://auth.example.com/.well-known/oauth-authorization-server",
        "https://auth.example.com/.well-known/openid-configuration",
    ]


def test_resource_covers_only_the_endpoint_or_a_prefix_on_the_same_origin() -> None:
    server = "https://mcp.example.com/v1/mcp"
    assert resource_covers("https://mcp.example.com/v1/mcp", server)
    assert resource_covers("https://MCP.example.com:443/v1/", server)
    assert resource_covers("https://mcp.example.com", server)
    assert not resource_covers("https://mcp.example.com/v1/m", server)  # not a path segment
    assert not resource_covers("https://other.example.com/v1/mcp", server)
    assert not resource_covers("http://mcp.example.com/v1/mcp", server)
    assert not resource_covers("not a url", server)


def test_endpoints_must_be_https_except_on_loopback() -> None:
    assert check_endpoint_url("https://a.example/token", "t", allow_http=False)
    assert check_endpoint_url("http://127.0.0.1:9/token", "t", allow_http=False)
    assert check_endpoint_url("http://localhost/token", "t", allow_http=False)
    with pytest.raises(OAuthError, match="plain http") as caught:
        check_endpoint_url("http://a.example/token", "the token endpoint", allow_http=False)
    assert "--allow-http" in caught.value.hint
    assert check_endpoint_url("http://a.example/token", "t", allow_http=True)
    with pytest.raises(OAuthError, match="fragment"):
        check_endpoint_url("https://a.example/t#x", "t", allow_http=False)
    with pytest.raises(OAuthError, match="missing"):
        check_endpoint_url(None, "t", allow_http=False)


# ---------------------------------------------------------------- metadata


def _metadata(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "issuer": "https://auth.example.com",
        "authorization_endpoint": "https://auth.example.com/authorize",
        "token_endpoint": "https://auth.example.com/token",
        "code_challenge_methods_supported": ["S256"],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _server(**changes: object) -> AuthorizationServer:
    return AuthorizationServer.from_metadata(
        _metadata(**changes),
        issuer="https://auth.example.com",
        metadata_url="https://auth.example.com/.well-known/oauth-authorization-server",
        allow_http=False,
    )


def test_metadata_is_read() -> None:
    server = _server(
        registration_endpoint="https://auth.example.com/register",
        token_endpoint_auth_methods_supported=["none", "client_secret_post"],
        client_id_metadata_document_supported=True,
        authorization_response_iss_parameter_supported=True,
        scopes_supported=["a", 3, "b"],
    )
    assert server.registration_endpoint == "https://auth.example.com/register"
    assert server.token_endpoint_auth_methods == ("none", "client_secret_post")
    assert server.client_id_metadata_documents
    assert server.iss_parameter
    assert server.scopes_supported == ("a", "b")
    server.check_pkce()


def test_token_endpoint_auth_defaults_to_client_secret_basic() -> None:
    # RFC 8414 §2: absent means client_secret_basic.
    assert _server().token_endpoint_auth_methods == ("client_secret_basic",)


def test_an_issuer_that_is_not_the_one_looked_up_is_refused() -> None:
    # RFC 8414 §3.3.
    with pytest.raises(OAuthError, match="names the issuer"):
        _server(issuer="https://evil.example.com")
    _server(issuer="https://auth.example.com/")  # a trailing slash is forgiven


def test_metadata_without_a_token_endpoint_is_refused() -> None:
    with pytest.raises(OAuthError, match="token_endpoint"):
        _server(token_endpoint=None)


@pytest.mark.parametrize(("methods", "listed"), [(None, "nothing"), (["plain"], "plain")])
def test_pkce_without_s256_is_refused_and_the_message_says_why(
    methods: list[str] | None, listed: str
) -> None:
    # 2025-11-25 §Authorization Code Protection: MUST refuse to proceed.
    server = _server(code_challenge_methods_supported=methods)
    with pytest.raises(OAuthError) as caught:
        server.check_pkce()
    text = caught.value.advice()
    assert f"lists {listed} in code_challenge_methods_supported, not S256" in text
    assert "intercepted authorization code" in text
    assert "Authorization Code Protection" in text
    assert "operator" in text


def test_the_2025_03_26_default_endpoints() -> None:
    server = AuthorizationServer.default_endpoints("https://mcp.example.com")
    assert server.authorization_endpoint == "https://mcp.example.com/authorize"
    assert server.token_endpoint == "https://mcp.example.com/token"
    assert server.registration_endpoint == "https://mcp.example.com/register"
    server.check_pkce()  # nothing to check: that revision makes PKCE mandatory
