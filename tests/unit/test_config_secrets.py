"""The literal-secret check of ``config`` (issue 16, class 8): what it refuses to write into the
desktop client's config file, judged by the name of a header or a query parameter.

It once knew Authorization, X-API-Key and names holding "token", "secret" or "password", and
query parameters from a short list: X-Auth, ``?api_token=``, ``?auth_token=`` or
``?googleApiKey=`` went into the file as they were.
"""

from __future__ import annotations

import pytest

from mcp_remote_py.config.entry import literal_secrets, names_a_secret

SECRET_HEADERS = [
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "X-Auth",
    "X-Auth-Token",
    "X-Auth-Key",
    "X-API-Key",
    "X-Api-Key",
    "Api-Key",
    "ApiKey",
    "APIKEY",
    "X-Goog-Api-Key",
    "Ocp-Apim-Subscription-Key",
    "Private-Token",
    "X-Vault-Token",
    "X-Amz-Security-Token",
    "X-Access-Key",
    "X-Hub-Signature",
    "X-Client-Secret",
    "X-Passwd",
    "X-JWT",
]
PLAIN_HEADERS = [
    "Accept",
    "Content-Type",
    "User-Agent",
    "X-Request-Id",
    "X-Client-Name",
    "X-Tenant",
    "X-Api-Version",
    "X-Auth-Email",
    "X-Auth-User",
    "Mcp-Session-Id",
    "X-Forwarded-For",
    "Monkey",
]


@pytest.mark.parametrize("name", SECRET_HEADERS)
def test_a_literal_value_in_a_credential_header_is_refused(name: str) -> None:
    assert literal_secrets("https://h.example/mcp", [f"{name}: k-123456"]) == [
        f"the {name} header holds a literal value"
    ]


@pytest.mark.parametrize("name", SECRET_HEADERS)
def test_a_variable_reference_in_a_credential_header_is_fine(name: str) -> None:
    headers = [f"{name}: ${{TOKEN}}", f"{name}: Bearer ${{TOKEN}}"]
    assert literal_secrets("https://h.example/mcp", headers) == []


@pytest.mark.parametrize("name", PLAIN_HEADERS)
def test_other_headers_are_left_alone(name: str) -> None:
    assert not names_a_secret(name)
    assert literal_secrets("https://h.example/mcp", [f"{name}: plain-value"]) == []


@pytest.mark.parametrize(
    "query",
    [
        "api_token=abc",
        "auth_token=abc",
        "access_token=abc",
        "token=abc",
        "apikey=abc",
        "apiKey=abc",
        "googleApiKey=abc",
        "x-api-key=abc",
        "key=abc",
        "client_secret=abc",
        "password=abc",
        "sig=abc",
        "auth=abc",
        "region=eu&AUTH_TOKEN=abc",
        "api%5Ftoken=abc",  # percent-encoded
    ],
)
def test_a_token_like_query_parameter_is_refused(query: str) -> None:
    assert literal_secrets(f"https://h.example/mcp?{query}", []) == [
        "the URL's query carries a token-like parameter"
    ]


@pytest.mark.parametrize(
    "query", ["region=eu", "version=2", "monkey=1", "token_type=bearer", "page=2&q=x", "token="]
)
def test_other_query_parameters_are_left_alone(query: str) -> None:
    assert literal_secrets(f"https://h.example/mcp?{query}", []) == []


def test_a_password_in_the_url_is_still_refused() -> None:
    assert literal_secrets("https://u:pw@h.example/mcp", []) == [
        "the URL carries a password (user:password@)"
    ]
