from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from mcp_remote_py.shell import logs
from mcp_remote_py.shell.logs import Redactor, redact, setup_logging


def render(message: str, secrets: list[str] | None = None) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    return Redactor("%(message)s", secrets or []).format(record)


def test_known_secrets_are_removed() -> None:
    assert "hunter22" not in render("sent header X-Key=hunter22 to server", ["hunter22"])


def test_secret_shaped_text_is_removed() -> None:
    for line in [
        "Authorization: Bearer eyJhbGciOi.abc.def",
        "GET https://x/mcp?api_key=abcdef123&x=1",
        'headers {"authorization": "Basic dXNlcjpwYXNz"}',
        "token=abcdef with token abcdefgh42",
        "Authorization: Bearer abcdefgh",  # a header's value goes whatever it looks like
        "the server said: invalid token: 3f9ab2c1d4e5f60718",
    ]:
        out = render(line)
        for secret in ["eyJhbGciOi", "abcdef123", "dXNlcjpwYXNz", "abcdef", "3f9ab2c1"]:
            assert secret not in out, out


def test_ordinary_text_is_untouched() -> None:
    assert render("connected over Streamable HTTP in 12 ms") == (
        "connected over Streamable HTTP in 12 ms"
    )


@pytest.mark.parametrize(
    "line",
    [
        "no token for this server: store a token with `mcp-remote-py auth set URL`",
        "--header 'Authorization: Bearer ${API_TOKEN}' with API_TOKEN in the env block",
        "the token endpoint answered 400; the token is stored in the OS keyring",
        'the server asks for a Bearer token: WWW-Authenticate: Bearer realm="mcp", '
        'error="invalid_token"',
        "refreshing the token before it expires (basic auth is not used)",
    ],
)
def test_advice_keeps_its_words(line: str) -> None:
    # The redactor takes values, not the words around them: "token with" is prose.
    assert render(line) == line


def test_redact_uses_the_secrets_the_log_was_given(tmp_path: Path) -> None:
    try:
        setup_logging("info", str(tmp_path / "log"), ["X-Key-value-4242", "Bearer opaque"])
        excerpt = "bad key X-Key-value-4242, and Bearer eyJhbGciOi.abc.def is expired"
        out = redact(excerpt)
        assert "X-Key-value-4242" not in out
        assert "eyJhbGciOi" not in out
        assert out == "bad key ***, and Bearer *** is expired"
        assert redact("store a token with `auth set`") == "store a token with `auth set`"
    finally:
        logs._secrets.clear()
        logging.getLogger(logs.LOGGER).handlers.clear()


async def test_an_error_excerpt_for_the_client_is_redacted() -> None:
    from mcp_remote_py.shell.net import http_error

    body = b'{"error": {"message": "token eyJhbGciOi.abc.def is not valid for ?api_key=k9x8"}}'
    request = httpx.Request("POST", "https://h.example/mcp")
    response = httpx.Response(
        400, content=body, headers={"content-type": "application/json"}, request=request
    )
    error = await http_error(response)
    assert "eyJhbGciOi" not in str(error)
    assert "k9x8" not in error.excerpt
    assert "token *** is not valid" in error.excerpt
