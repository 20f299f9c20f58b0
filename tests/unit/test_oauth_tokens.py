"""OAuth tokens and clients, the pure parts: token answers, refresh timing, scopes, auth."""

from __future__ import annotations

import base64
import json

import pytest
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]

from mcp_remote_py.auth.errors import AuthorizationRequired, OAuthError
from mcp_remote_py.auth.oauth import OAuthOptions
from mcp_remote_py.auth.registration import registration_auth_method, static_auth_method
from mcp_remote_py.auth.scope import scope_union
from mcp_remote_py.auth.store import Credential
from mcp_remote_py.auth.token_endpoint import (
    TokenEndpointError,
    client_secret_basic,
    parse_token_response,
    refresh_due,
)

ACCESS = "at_secret_0123456789abcdef"
REFRESH = "rt_secret_0123456789abcdef"


def _body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_a_token_answer_is_read() -> None:
    tokens = parse_token_response(
        200,
        _body(
            access_token=ACCESS,
            token_type="bearer",
            expires_in=3600,
            refresh_token=REFRESH,
            scope="a  b",
        ),
        now=1000.0,
    )
    assert tokens.access_token == ACCESS
    assert tokens.refresh_token == REFRESH
    assert tokens.expires_at == 4600.0
    assert tokens.scope == "a b"
    assert ACCESS not in repr(tokens)
    assert REFRESH not in repr(tokens)


@pytest.mark.parametrize(
    ("expires_in", "expected"), [("60", 1060.0), (None, None), (0, None), ("soon", None)]
)
def test_expires_in_as_a_string_or_missing(expires_in: object, expected: float | None) -> None:
    tokens = parse_token_response(
        200, _body(access_token=ACCESS, expires_in=expires_in), now=1000.0
    )
    assert tokens.expires_at == expected
    assert tokens.refresh_token is None


def test_a_token_that_is_not_bearer_is_refused() -> None:
    with pytest.raises(OAuthError, match="'DPoP' token, not a Bearer"):
        parse_token_response(200, _body(access_token=ACCESS, token_type="DPoP"), now=0)


def test_an_error_answer_keeps_only_its_error_fields() -> None:
    with pytest.raises(TokenEndpointError) as caught:
        parse_token_response(
            400,
            _body(error="invalid_grant", error_description="refresh token\nrevoked"),
            now=0,
        )
    assert caught.value.error == "invalid_grant"
    assert str(caught.value) == "invalid_grant: refresh token revoked"


def test_a_broken_200_never_shows_its_body() -> None:
    with pytest.raises(OAuthError) as caught:
        parse_token_response(200, b"access_token=" + ACCESS.encode(), now=0)
    assert ACCESS not in caught.value.advice()
    with pytest.raises(OAuthError, match="no access_token"):
        parse_token_response(200, _body(refresh_token=REFRESH), now=0)


def test_a_server_error_is_transient() -> None:
    with pytest.raises(OAuthError) as caught:
        parse_token_response(503, b"<html>down</html>", now=0)
    assert caught.value.transient
    with pytest.raises(OAuthError) as caught:
        parse_token_response(404, b"", now=0)
    assert not caught.value.transient


def test_refresh_a_minute_early_or_a_quarter_of_a_short_life() -> None:
    hour = Credential(kind="oauth", access_token=ACCESS, expires_at=3600.0, saved_at=0.0)
    assert not refresh_due(hour, now=3539.0)
    assert refresh_due(hour, now=3541.0)
    short = Credential(kind="oauth", access_token=ACCESS, expires_at=4.0, saved_at=0.0)
    assert not refresh_due(short, now=2.9)
    assert refresh_due(short, now=3.1)
    forever = Credential(kind="oauth", access_token=ACCESS, expires_at=None, saved_at=0.0)
    assert not refresh_due(forever, now=1e12)


def test_scope_union_keeps_order_and_drops_repeats() -> None:
    assert scope_union("a b", None, "b c", "") == "a b c"
    assert scope_union(None, "") is None


def test_dynamic_registration_prefers_a_public_client() -> None:
    assert registration_auth_method(("client_secret_post", "none")) == "none"
    assert registration_auth_method(("client_secret_post", "client_secret_basic")) == (
        "client_secret_basic"
    )
    assert registration_auth_method(("client_secret_post",)) == "client_secret_post"
    assert registration_auth_method(("private_key_jwt",)) == "none"


def test_a_pre_registered_client_authenticates_as_the_server_allows() -> None:
    assert static_auth_method(False, ("client_secret_basic",)) == "none"
    assert static_auth_method(True, ("client_secret_post",)) == "client_secret_post"
    assert static_auth_method(True, ("client_secret_basic", "client_secret_post")) == (
        "client_secret_basic"
    )
    assert static_auth_method(True, ()) == "client_secret_basic"


def test_client_secret_basic_form_encodes_id_and_secret() -> None:
    # RFC 6749 §2.3.1: form-urlencoded before Base64 (a ':' in the id must not split it).
    auth = ClientAuth("my:app", "s%cr t", client_secret_basic)
    _, headers, body = auth.prepare("POST", "https://a/token", {}, "grant_type=x")
    scheme, _, value = headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode() == "my%3Aapp:s%25cr%20t"
    assert body == "grant_type=x"


def test_options_never_show_the_client_secret() -> None:
    options = OAuthOptions(client_id="app", client_secret="very-secret-value-123")
    assert "very-secret-value-123" not in repr(options)


def test_authorization_required_says_to_log_in() -> None:
    error = AuthorizationRequired("no token", "https://mcp.example.com/mcp")
    assert "mcp-remote-py auth login https://mcp.example.com/mcp" in error.advice()
    assert not error.transient
