"""The relay signing in by itself: a 401 at initialize opens the browser (here a scripted one),
tokens are refreshed behind the client's back, a step-up widens the scope, and a sign-in that
takes too long is answered in time with advice. A real authorization server and a protected SDK
server (tests/auth_server) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.auth_server.browser import browsers_opened, program_env
from tests.auth_server.server import ADMIN_TOOL, AuthServer, AuthServerConfig

from .harness import RawRelay, raw_relay, run_relay_to_exit

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[AuthServer]:
    running = AuthServer(AuthServerConfig())
    yield running
    running.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return program_env(tmp_path)


def no_secret_in(text: str, server: AuthServer) -> None:
    secrets = list(server.issued) + list(server.refresh_tokens)
    assert secrets, "the server issued nothing"
    for secret in secrets:
        assert secret not in text


async def call(relay: RawRelay, request_id: int, tool: str) -> dict[str, Any]:
    await relay.request(request_id, "tools/call", {"name": tool, "arguments": {}})
    while True:
        message = await relay.read_message(timeout=60)
        if message.get("id") == request_id:
            return message


def text_of(answer: dict[str, Any]) -> str:
    assert "result" in answer, answer
    return str(answer["result"]["content"][0]["text"])


async def test_a_401_at_initialize_signs_in_and_answers_in_time(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    async with raw_relay([server.mcp_url], tmp_path, env=env) as relay:
        started = trio.current_time()
        answer = await relay.initialize()
        assert "result" in answer, answer
        assert trio.current_time() - started < 55
        assert text_of(await call(relay, 1, "whoami")) == "hello from the protected server"
    assert browsers_opened(env) == 1
    no_secret_in(relay.stderr() + (tmp_path / "raw-relay.log").read_text(), server)


async def test_a_login_ahead_of_time_opens_no_browser(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    login = await run_relay_to_exit(["auth", "login", server.mcp_url], env=env)
    assert login.returncode == 0, login.stderr
    assert browsers_opened(env) == 1
    unauthorized_before = server.unauthorized
    async with raw_relay([server.mcp_url], tmp_path, env=env) as relay:
        assert "result" in await relay.initialize()
        assert text_of(await call(relay, 1, "whoami")).startswith("hello")
    assert browsers_opened(env) == 1
    assert server.unauthorized == unauthorized_before  # the stored token went with request one


async def test_an_expired_token_is_refreshed_unseen(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    async with raw_relay([server.mcp_url], tmp_path, env=env) as relay:
        assert "result" in await relay.initialize()
        server.expire_access_tokens()
        assert text_of(await call(relay, 1, "whoami")).startswith("hello")
    assert browsers_opened(env) == 1  # refreshed, not signed in again
    no_secret_in(relay.stderr(), server)


async def test_a_revoked_refresh_token_leads_to_a_new_sign_in(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    login = await run_relay_to_exit(["auth", "login", server.mcp_url], env=env)  # "yesterday"
    assert login.returncode == 0, login.stderr
    async with raw_relay([server.mcp_url], tmp_path, env=env) as relay:
        assert "result" in await relay.initialize()
        server.expire_access_tokens()
        server.revoke_refresh_tokens()  # invalid_grant: the stored tokens are dropped
        assert text_of(await call(relay, 1, "whoami")).startswith("hello")
    assert browsers_opened(env) == 2


async def test_insufficient_scope_steps_up(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    async with raw_relay([server.mcp_url], tmp_path, env=env) as relay:
        assert "result" in await relay.initialize()
        assert text_of(await call(relay, 1, ADMIN_TOOL)) == "admin done"
    assert browsers_opened(env) == 2
    assert server.forbidden >= 1


async def test_a_sign_in_not_finished_in_time_is_answered_with_advice(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    slow = {**env, "HEADLESS_BROWSER_DELAY": "30"}  # the user is still reading the page
    async with raw_relay([server.mcp_url, "--auth-timeout", "3"], tmp_path, env=slow) as relay:
        started = trio.current_time()
        answer = await relay.initialize()
        assert trio.current_time() - started < 20
    error = answer["error"]
    assert "mcp-remote-py auth login" in error["message"]
