"""Shared fixtures: a clean network environment for every test."""

from __future__ import annotations

import pytest

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "MCP_HTTP_URL",
)


@pytest.fixture(autouse=True)
def _own_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The era cache lives in the user state directory: a server that spoke only 2026-07-28 on a
    # port in one test must not decide how a relay meets another server on that port later.
    monkeypatch.setenv("MCP_REMOTE_PY_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def _clean_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Like httpx's own test suite: a proxy or CA setting of the machine must not change results.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
