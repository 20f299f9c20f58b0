"""``mcp-remote-py auth login``: the real command, a real authorization server, a scripted browser.

The browser is ``BROWSER=python tests/auth_server/browser.py %s`` (``webbrowser`` honours it):
it follows the authorization URL's redirects to the command's loopback callback, and writes a
line to ``$HEADLESS_BROWSER_LOG`` each time it is opened.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.auth_server.browser import HeadlessBrowser, browsers_opened, program_env
from tests.auth_server.server import AuthServer, AuthServerConfig, StaticClient

from .harness import REPO, relay_command, run_relay_to_exit

pytestmark = pytest.mark.timeout(90)

CLIENT_SECRET = "cli-client-secret-4b8e1f0a2c"


@pytest.fixture
def server() -> Iterator[AuthServer]:
    running = AuthServer(
        AuthServerConfig(
            static_clients={"my-app": StaticClient(CLIENT_SECRET, "client_secret_basic")}
        )
    )
    yield running
    running.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return program_env(tmp_path)


def stored_credentials(env: dict[str, str]) -> dict[str, dict[str, object]]:
    path = Path(env["MCP_REMOTE_PY_CONFIG_DIR"]) / "credentials.json"
    data: dict[str, dict[str, object]] = json.loads(path.read_text())["credentials"]
    return data


def every_secret(server: AuthServer) -> list[str]:
    found = list(server.issued) + list(server.refresh_tokens) + [CLIENT_SECRET]
    for request in server.token_requests:
        found += [request.get("code", ""), request.get("code_verifier", "")]
    return [s for s in found if s]


async def test_login_stores_the_tokens_and_shows_them_masked(
    server: AuthServer, env: dict[str, str]
) -> None:
    result = await run_relay_to_exit(["auth", "login", server.mcp_url], env=env)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert f"signed in to {server.mcp_url}" in out
    assert "  token: at_" in out
    assert "…" in out
    assert "registered dynamically" in out
    assert browsers_opened(env) == 1
    (credential,) = stored_credentials(env).values()
    assert credential["kind"] == "oauth"
    assert credential["access_token"] in server.access_tokens
    assert credential["refresh_token"]
    for secret in every_secret(server):
        assert secret not in out + err

    shown = await run_relay_to_exit(["auth", "show", server.mcp_url], env=env)
    assert shown.returncode == 0
    assert "kind: oauth" in shown.stdout.decode()
    assert str(credential["access_token"]) not in shown.stdout.decode()


async def test_login_with_a_pre_registered_client(server: AuthServer, env: dict[str, str]) -> None:
    result = await run_relay_to_exit(
        [
            "auth",
            "login",
            server.mcp_url,
            "--oauth-client-id",
            "my-app",
            "--oauth-client-secret-env",
            "MY_APP_SECRET",
            "--scope",
            "mcp:read mcp:admin",
        ],
        env={**env, "MY_APP_SECRET": CLIENT_SECRET},
    )
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "my-app (pre-registered)" in out
    assert "scope: mcp:read mcp:admin" in out
    assert server.registrations == []
    (token,) = server.token_requests
    assert token["authorization_header"].startswith("Basic ")  # client_secret_basic
    for secret in every_secret(server):
        assert secret not in out + err
    # The secret is kept with the tokens (0600 file here), for refreshing later.
    (credential,) = stored_credentials(env).values()
    assert credential["client"]["client_secret"] == CLIENT_SECRET  # type: ignore[index]


async def test_two_logins_at_once_open_one_browser(server: AuthServer, env: dict[str, str]) -> None:
    slow = {**env, "HEADLESS_BROWSER_DELAY": "2"}  # the user reads the page for a while
    results: list[tuple[int, str, str]] = []

    async def login() -> None:
        result = await run_relay_to_exit(["auth", "login", server.mcp_url], env=slow, timeout=60)
        results.append((result.returncode, result.stdout.decode(), result.stderr.decode()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(login)
        await trio.sleep(0.3)
        nursery.start_soon(login)
    assert [code for code, _, _ in results] == [0, 0], results
    assert browsers_opened(env) == 1
    assert len(server.authorize_requests) == 1
    waited = [err for _, _, err in results if "waiting for it" in err]
    assert len(waited) == 1
    assert "by another mcp-remote-py" in waited[0]
    tokens = {line for _, out, _ in results for line in out.splitlines() if "  token:" in line}
    assert len(tokens) == 1  # both report the same (masked) token


async def test_no_browser_prints_the_url(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    command = [*relay_command(), "auth", "login", server.mcp_url, "--no-browser"]
    process = await trio.lowlevel.open_process(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        cwd=REPO,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    seen = b""
    with trio.fail_after(30):
        marker = b"open this URL on this computer: "
        while marker not in seen or not seen.split(marker)[1].endswith(b"\n"):
            chunk = await process.stderr.receive_some()
            assert chunk, seen
            seen += chunk
        url = seen.decode().split("open this URL on this computer: ")[1].split()[0]
        await HeadlessBrowser()(url)
        out = b""
        while chunk := await process.stdout.receive_some():
            out += chunk
        assert await process.wait() == 0
    assert b"signed in to" in out
    assert browsers_opened(env) == 0  # no browser was started


async def test_an_authorization_server_without_pkce_is_refused(env: dict[str, str]) -> None:
    server = AuthServer(AuthServerConfig(pkce_methods=["plain"]))
    try:
        result = await run_relay_to_exit(["auth", "login", server.mcp_url], env=env)
    finally:
        server.close()
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "not S256" in err
    assert "PKCE" in err
    assert browsers_opened(env) == 0
    assert server.authorize_requests == []


async def test_a_secret_on_the_command_line_is_refused(
    server: AuthServer, env: dict[str, str]
) -> None:
    result = await run_relay_to_exit(
        ["auth", "login", server.mcp_url, "--oauth-client-secret", CLIENT_SECRET], env=env
    )
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "never taken from the command line" in err
    assert CLIENT_SECRET not in err + result.stdout.decode()
    assert server.metadata_requests == []


async def test_a_missing_secret_variable_is_named(server: AuthServer, env: dict[str, str]) -> None:
    result = await run_relay_to_exit(
        [
            "auth",
            "login",
            server.mcp_url,
            "--oauth-client-id",
            "my-app",
            "--oauth-client-secret-env",
            "NOT_SET_ANYWHERE",
        ],
        env=env,
    )
    assert result.returncode == 2
    assert "NOT_SET_ANYWHERE" in result.stderr.decode()
