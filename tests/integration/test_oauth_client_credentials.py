"""Machine to machine: the client credentials grant (RFC 6749 §4.4), ``--oauth-client-credentials``.

A real relay subprocess against the project's own authorization server (tests/auth_server) with
a pre-registered confidential client allowed that grant. The secret reaches the relay through
the environment or the credential store, never its command line; it must not show in the
relay's argv, stderr or log file, nor may the tokens.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.auth_server.browser import browsers_opened, program_env
from tests.auth_server.server import AuthServer, AuthServerConfig, StaticClient

from .harness import RawRelay, raw_relay, run_relay_to_exit

pytestmark = pytest.mark.timeout(90)

CLIENT_ID = "svc-robot"
SECRET = "cc-secret-7d1f93a0b2e54c68"


def make_server(**changes: Any) -> AuthServer:
    client = StaticClient(
        SECRET, changes.pop("method", "client_secret_basic"), grant_types=["client_credentials"]
    )
    return AuthServer(AuthServerConfig(static_clients={CLIENT_ID: client}, **changes))


@pytest.fixture
def server() -> Iterator[AuthServer]:
    running = make_server()
    yield running
    running.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return program_env(tmp_path)


def cc_requests(server: AuthServer) -> list[dict[str, str]]:
    return [r for r in server.token_requests if r.get("grant_type") == "client_credentials"]


async def whoami(relay: RawRelay, request_id: int) -> dict[str, Any]:
    await relay.request(request_id, "tools/call", {"name": "whoami", "arguments": {}})
    while True:
        message = await relay.read_message(timeout=30)
        if message.get("id") == request_id:
            return message


def argv_of(relay: RawRelay) -> str:
    return Path(f"/proc/{relay.process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def nothing_secret_in(text: str, server: AuthServer) -> None:
    assert SECRET not in text
    for token in server.issued:
        assert token not in text


RELAY_ARGS = ["--oauth-client-credentials", "--oauth-client-id", CLIENT_ID]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_tokens_come_by_themselves_and_again_when_they_expire(
    env: dict[str, str], tmp_path: Path, method: str
) -> None:
    # The authorization server lists only the method the client is registered with.
    server = make_server(method=method, auth_methods=[method])
    try:
        args = [server.mcp_url, *RELAY_ARGS, "--oauth-client-secret-env", "SVC_SECRET"]
        async with raw_relay(args, tmp_path, env={**env, "SVC_SECRET": SECRET}) as relay:
            argv = argv_of(relay)
            assert "result" in await relay.initialize()
            assert "hello from" in json.dumps(await whoami(relay, 1))
            (first,) = cc_requests(server)
            # The server refuses the token (it expired there): a new one, by itself.
            server.expire_access_tokens()
            assert "hello from" in json.dumps(await whoami(relay, 2))
    finally:
        server.close()
    requests = cc_requests(server)
    assert len(requests) == 2
    for request in requests:
        assert request["resource"] == server.mcp_url  # RFC 8707
        assert request["scope"] == "mcp:read"
        if method == "client_secret_basic":
            assert request["authorization_header"].startswith("Basic ")
            assert "client_secret" not in request
        else:
            assert request["client_secret"] == SECRET
            assert "authorization_header" not in request
    assert first["client_id"] == CLIENT_ID
    assert server.refresh_tokens == {}  # RFC 6749 §4.4.3: none issued, none needed
    assert browsers_opened(env) == 0
    assert server.registrations == []
    assert server.authorize_requests == []
    nothing_secret_in(argv, server)
    nothing_secret_in(relay.stderr(), server)
    nothing_secret_in((tmp_path / "raw-relay.log").read_text(), server)


async def test_a_token_about_to_expire_is_replaced_before_it_is_sent(
    env: dict[str, str], tmp_path: Path
) -> None:
    server = make_server(access_ttl=2)
    try:
        args = [server.mcp_url, *RELAY_ARGS]
        secret_env = {**env, "MCP_REMOTE_PY_CLIENT_SECRET": SECRET}
        async with raw_relay(args, tmp_path, env=secret_env) as relay:
            argv = argv_of(relay)
            assert "result" in await relay.initialize()
            assert "hello from" in json.dumps(await whoami(relay, 1))
            unauthorized = server.unauthorized
            await trio.sleep(2.1)  # the token's lifetime passes
            assert "hello from" in json.dumps(await whoami(relay, 2))
    finally:
        server.close()
    assert len(cc_requests(server)) == 2
    assert server.unauthorized == unauthorized  # replaced before sending, not after a 401
    nothing_secret_in(argv + relay.stderr(), server)


async def test_a_secret_stored_with_set_client_secret_is_used(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    stored = await run_relay_to_exit(
        ["auth", "set-client-secret", server.mcp_url, "--oauth-client-id", CLIENT_ID],
        stdin=SECRET.encode() + b"\n",
        env=env,
    )
    out = stored.stdout.decode()
    assert stored.returncode == 0, stored.stderr.decode()
    assert f"stored the secret of the client {CLIENT_ID}" in out
    assert SECRET not in out + stored.stderr.decode()
    shown = await run_relay_to_exit(["auth", "show", server.mcp_url], env=env)
    assert "kind: client" in shown.stdout.decode()
    assert SECRET not in shown.stdout.decode()

    # No id, no secret on the relay's command line or in its environment: both are stored.
    args = [server.mcp_url, "--oauth-client-credentials"]
    async with raw_relay(args, tmp_path, env=env) as relay:
        assert "result" in await relay.initialize()
        assert "hello from" in json.dumps(await whoami(relay, 1))
    assert cc_requests(server)[0]["authorization_header"].startswith("Basic ")
    nothing_secret_in(relay.stderr(), server)
    # The next run reuses the token stored by this one.
    args = [server.mcp_url, "--oauth-client-credentials"]
    async with raw_relay(args, tmp_path, env=env) as relay:
        assert "hello from" in json.dumps(await whoami_after_initialize(relay))
    assert len(cc_requests(server)) == 1


async def whoami_after_initialize(relay: RawRelay) -> dict[str, Any]:
    assert "result" in await relay.initialize()
    return await whoami(relay, 1)


async def test_a_wrong_secret_is_a_clear_error(
    server: AuthServer, env: dict[str, str], tmp_path: Path
) -> None:
    wrong = "not-the-secret-0000000000"
    args = [server.mcp_url, *RELAY_ARGS, "--oauth-client-secret-env", "SVC_SECRET"]
    async with raw_relay(args, tmp_path, env={**env, "SVC_SECRET": wrong}) as relay:
        answer = await relay.initialize()
    message = answer["error"]["message"]
    assert f"refused the credentials of the client {CLIENT_ID}" in message
    assert "invalid_client" in message
    assert "--oauth-client-secret-env" in message
    assert wrong not in message + relay.stderr()


@pytest.mark.parametrize(
    "argv",
    [
        ["--oauth-client-secret", SECRET],
        [f"--oauth-client-secret={SECRET}"],
        ["--client-secret", SECRET],
        ["--oauth-client-secret-env", SECRET],  # the secret, not a variable's name
    ],
    ids=["option", "option=value", "client-secret", "in-place-of-the-variable"],
)
async def test_a_secret_on_the_command_line_is_refused(
    server: AuthServer, env: dict[str, str], argv: list[str]
) -> None:
    result = await run_relay_to_exit([server.mcp_url, *RELAY_ARGS, *argv], env=env)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "--oauth-client-secret-env" in err
    assert "MCP_REMOTE_PY_CLIENT_SECRET" in err
    assert SECRET not in err + result.stdout.decode()
    assert server.token_requests == []
    assert server.metadata_requests == []


async def test_no_secret_anywhere_stops_at_start(server: AuthServer, env: dict[str, str]) -> None:
    result = await run_relay_to_exit([server.mcp_url, *RELAY_ARGS], env=env)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert f"needs the secret of the client {CLIENT_ID}" in err
    assert "set-client-secret" in err
    without_id = await run_relay_to_exit([server.mcp_url, "--oauth-client-credentials"], env=env)
    assert without_id.returncode == 2
    assert "--oauth-client-id" in without_id.stderr.decode()
    both = await run_relay_to_exit(
        [server.mcp_url, *RELAY_ARGS, "--oauth-device"], env={**env, "SVC_SECRET": SECRET}
    )
    assert both.returncode == 2
    assert "exclude each other" in both.stderr.decode()


def test_the_options_are_in_the_help() -> None:
    from .harness import relay_command

    shown = subprocess.run(
        [*relay_command(), "--help"], capture_output=True, check=True, text=True
    ).stdout
    assert "--oauth-device" in shown
    assert "--oauth-client-credentials" in shown
