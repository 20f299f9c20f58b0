"""Signing in without a browser: the device authorization grant (RFC 8628).

``mcp-remote-py auth login URL --device`` and the relay's ``--oauth-device``, against the
project's own authorization server (tests/auth_server) with its device endpoint. The "user on
another device" is the test: it reads the code the command showed and POSTs it to the
authorization server's approval endpoint (``approve_device``). Waits are on the commands'
output and on the server's records, never on timers; the server advertises a 0.2 s interval.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from mcp_remote_py.auth.errors import AuthorizationRequired
from mcp_remote_py.auth.grants import SLOW_DOWN_STEP
from mcp_remote_py.auth.oauth import OAuthOptions, OAuthSession
from mcp_remote_py.auth.oauth_options import DEVICE_CODE
from mcp_remote_py.auth.store import CredentialStore
from tests.auth_server.browser import browsers_opened, program_env
from tests.auth_server.server import DEVICE_GRANT, AuthServer, AuthServerConfig, approve_device

from .harness import REPO, raw_relay, relay_command, run_relay_to_exit

pytestmark = pytest.mark.timeout(90)

PROMPT = re.compile(r"open (\S+) on any device .*? enter the code ([A-Z]{4}-[A-Z]{4})")


@pytest.fixture
def server() -> Iterator[AuthServer]:
    running = AuthServer(AuthServerConfig(device=True))
    yield running
    running.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # A browser that would be logged if anything opened one: nothing may.
    return program_env(tmp_path)


def stored_credentials(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    path = Path(env["MCP_REMOTE_PY_CONFIG_DIR"]) / "credentials.json"
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())["credentials"]
    return data


def secrets_of(server: AuthServer) -> list[str]:
    """Everything the authorization server handed out that must never be shown or logged."""
    found = list(server.issued) + list(server.refresh_tokens) + list(server.devices)
    found += [c.client_secret for c in server.clients.values() if c.client_secret]
    return [s for s in found if s]


@dataclass
class Login:
    process: trio.Process
    stdout: bytearray
    stderr: bytearray
    verification_uri: str = ""
    user_code: str = ""


@asynccontextmanager
async def device_login(
    server: AuthServer, env: dict[str, str], *extra: str
) -> AsyncIterator[Login]:
    """``auth login URL --device`` running, its code read from its output (or its exit)."""
    process = await trio.lowlevel.open_process(
        [*relay_command(), "auth", "login", server.mcp_url, "--device", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        cwd=REPO,
    )
    login = Login(process, bytearray(), bytearray())
    grew = trio.Event()

    async def pump(stream: Any, into: bytearray) -> None:
        nonlocal grew
        while chunk := await stream.receive_some(65536):
            into.extend(chunk)
            grew.set()
            grew = trio.Event()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, process.stdout, login.stdout)
            nursery.start_soon(pump, process.stderr, login.stderr)
            with trio.fail_after(30):
                while (found := PROMPT.search(login.stdout.decode())) is None:
                    if process.returncode is not None or process.poll() is not None:
                        break
                    with trio.move_on_after(0.5):  # a wake-up to look at the exit status
                        await grew.wait()
            if found is not None:
                login.verification_uri, login.user_code = found.group(1), found.group(2)
            yield login
            with trio.fail_after(30):
                await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_login_with_a_device_code_then_the_relay_uses_the_tokens(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    async with device_login(server, env) as login:
        assert login.user_code, login.stdout.decode() + login.stderr.decode()
        out = login.stdout.decode()
        # Shown on the command's output: the address, the code, and the address with the code.
        assert login.verification_uri == server.issuer + "/device"
        assert f"{server.issuer}/device?user_code={login.user_code}" in out
        assert "the code is valid for" in out
        await approve_device(server, login.user_code)
    out, err = login.stdout.decode(), login.stderr.decode()
    assert login.process.returncode == 0, err
    assert f"signed in to {server.mcp_url}" in out
    assert browsers_opened(env) == 0

    # Registered for the device grant (no redirect URI), asked with scope and resource.
    (registration,) = server.registrations
    assert DEVICE_GRANT in registration["grant_types"]
    assert "redirect_uris" not in registration
    (asked,) = server.device_requests
    assert asked["resource"] == server.mcp_url
    assert asked["scope"] == "mcp:read"
    polls = [r for r in server.token_requests if r["grant_type"] == DEVICE_GRANT]
    assert polls
    assert all(r["resource"] == server.mcp_url for r in polls)
    assert server.device_polls[-1][1] == "tokens"
    assert server.polls_too_soon == 0
    (credential,) = stored_credentials(env).values()
    assert credential["kind"] == "oauth"
    assert credential["access_token"] in server.access_tokens
    assert credential["refresh_token"]
    for secret in secrets_of(server):
        assert secret not in out + err

    # The relay then sends the stored token from its first request on: no sign-in, no code.
    unauthorized = server.unauthorized
    async with raw_relay([server.mcp_url], tmp_path, env=env) as relay:
        assert "result" in await relay.initialize()
        await relay.request(1, "tools/call", {"name": "whoami", "arguments": {}})
        answer = await relay.read_message()
    assert "hello from the protected server" in json.dumps(answer)
    assert server.unauthorized == unauthorized
    assert len(server.device_requests) == 1


async def test_the_relay_signs_in_with_a_device_code_at_start(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    log_file = tmp_path / "raw-relay.log"
    async with raw_relay([server.mcp_url, "--oauth-device"], tmp_path, env=env) as relay:
        await relay.request(
            0,
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "device-test", "version": "1"},
            },
        )
        await relay.wait_for_stderr("enter the code ")
        found = PROMPT.search(relay.stderr())
        assert found is not None, relay.stderr()
        await approve_device(server, found.group(2))
        answer = await relay.read_message(timeout=30)
        assert "result" in answer, answer
        await relay.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await relay.request(1, "tools/call", {"name": "whoami", "arguments": {}})
        called = await relay.read_message()
    assert "hello from the protected server" in json.dumps(called)
    assert browsers_opened(env) == 0
    shown = relay.stderr() + log_file.read_text()
    assert found.group(2) in log_file.read_text()  # the code is in the log as well
    for secret in secrets_of(server):
        assert secret not in shown


async def test_slow_down_makes_the_polls_five_seconds_slower(env: dict[str, str]) -> None:
    server = AuthServer(AuthServerConfig(device=True, device_slow_down=1))
    try:
        async with device_login(server, env) as login:
            assert login.user_code, login.stderr.decode()
            await approve_device(server, login.user_code)
        assert login.process.returncode == 0, login.stderr.decode()
    finally:
        server.close()
    answers = [answer for _, answer in server.device_polls]
    assert answers == ["slow_down", "tokens"]
    (slowed, after), interval = [t for t, _ in server.device_polls], 0.2
    assert after - slowed >= interval + SLOW_DOWN_STEP - 0.05
    assert server.polls_too_soon == 0


@pytest.mark.parametrize(
    ("config", "decision", "expected"),
    [
        ({}, "deny", "was declined (access_denied)"),
        ({"device_expire": True}, None, "expired before the sign-in was finished"),
        ({"device_expires_in": 0.5}, None, "expired before the sign-in was finished"),
    ],
    ids=["denied", "expired_token", "expires_in-passed"],
)
async def test_a_declined_or_expired_code_is_a_clear_error(
    env: dict[str, str], config: dict[str, Any], decision: str | None, expected: str
) -> None:
    server = AuthServer(AuthServerConfig(device=True, **config))
    try:
        async with device_login(server, env) as login:
            assert login.user_code, login.stderr.decode()
            if decision is not None:
                await approve_device(server, login.user_code, decision)
    finally:
        server.close()
    err = login.stderr.decode()
    assert login.process.returncode == 1, err
    assert expected in err
    assert login.user_code in err
    assert f"mcp-remote-py auth login {server.mcp_url} --device" in err
    assert stored_credentials_or_none(env) is None
    for secret in secrets_of(server):
        assert secret not in err + login.stdout.decode()


def stored_credentials_or_none(env: dict[str, str]) -> dict[str, Any] | None:
    path = Path(env["MCP_REMOTE_PY_CONFIG_DIR"]) / "credentials.json"
    return stored_credentials(env) or None if path.exists() else None


async def test_a_server_without_the_device_grant_is_named(env: dict[str, str]) -> None:
    server = AuthServer(AuthServerConfig())
    try:
        result = await run_relay_to_exit(["auth", "login", server.mcp_url, "--device"], env=env)
    finally:
        server.close()
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "does not offer the device authorization grant" in err
    assert "device_authorization_endpoint" in err
    assert server.registrations == []


async def test_a_pending_device_sign_in_answers_with_the_code(
    server: AuthServer, tmp_path: Path
) -> None:
    """In-process, as the relay's SignIn gate uses it: a request that cannot wait for the user
    is answered with the address and the code, and the sign-in goes on in the background."""
    store = CredentialStore("file", config_dir=tmp_path / "config", warn=lambda _: None)
    notices: list[str] = []
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        oauth = OAuthSession(
            server.mcp_url,
            http,
            OAuthOptions(grant=DEVICE_CODE, auth_timeout=30),
            store=store,
            nursery=nursery,
            notify=notices.append,
            lock_dir=tmp_path / "locks",
        )
        unauthorized = await http.post(server.mcp_url, json={})
        with pytest.raises(AuthorizationRequired) as caught:
            await oauth.on_unauthorized(
                unauthorized.headers, sent=None, interactive=True, wait_for_sign_in=0.5
            )
        (code,) = [pending.user_code for pending in server.devices.values()]
        assert f"enter the code {code}" in str(caught.value)
        assert server.issuer + "/device" in str(caught.value)
        await approve_device(server, code)
        header = await oauth.on_unauthorized(
            unauthorized.headers, sent=None, interactive=True, wait_for_sign_in=20
        )
        assert header.startswith("Bearer at_")
        assert any(f"enter the code {code}" in notice for notice in notices)
    assert len(server.device_requests) == 1  # the second call waited for the same sign-in
