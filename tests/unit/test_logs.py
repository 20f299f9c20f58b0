from __future__ import annotations

import logging

from mcp_remote_py.shell.logs import Redactor


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
        "token=abcdef with token abcdefgh",
    ]:
        out = render(line)
        for secret in ["eyJhbGciOi", "abcdef123", "dXNlcjpwYXNz", "abcdefgh"]:
            assert secret not in out, out


def test_ordinary_text_is_untouched() -> None:
    assert render("connected over Streamable HTTP in 12 ms") == (
        "connected over Streamable HTTP in 12 ms"
    )
