"""The relay sends the token stored with `auth set` to exactly the server it was stored for."""

from __future__ import annotations

import json
from pathlib import Path

import mcp.types as types
import pytest

from .conftest import RunningServer
from .harness import relay_command, relay_session, run_relay_to_exit

pytestmark = pytest.mark.timeout(60)

TOKEN = "stored-token-5b1e2c7d9a"


async def store_token(url: str, env: dict[str, str]) -> None:
    result = await run_relay_to_exit(
        ["auth", "set", url, "--credential-store", "file"], stdin=TOKEN.encode() + b"\n", env=env
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN not in (result.stdout + result.stderr).decode()


async def authorization_seen(
    url: str, tmp_path: Path, env: dict[str, str], *args: str
) -> str | None:
    async with relay_session(url, tmp_path, "--credential-store", "file", *args, env=env) as (
        session,
        side,
    ):
        result = await session.call_tool("headers", {})
        block = result.content[0]
        assert isinstance(block, types.TextContent)
        seen = {k.lower(): v for k, v in json.loads(block.text).items()}
    assert TOKEN not in side.stderr()
    assert TOKEN not in side.log_path.read_text()
    value = seen.get("authorization")
    return str(value) if value is not None else None


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MCP_REMOTE_PY_CONFIG_DIR": str(tmp_path / "config")}


async def test_the_stored_token_is_sent(
    sdk_servers: dict[str, RunningServer], tmp_path: Path, env: dict[str, str]
) -> None:
    url = sdk_servers["streamable-sse"].url
    await store_token(url, env)
    assert await authorization_seen(url, tmp_path, env) == f"Bearer {TOKEN}"


async def test_an_explicit_authorization_header_wins(
    sdk_servers: dict[str, RunningServer], tmp_path: Path, env: dict[str, str]
) -> None:
    url = sdk_servers["streamable-sse"].url
    await store_token(url, env)
    seen = await authorization_seen(url, tmp_path, env, "--header", "Authorization: Bearer other")
    assert seen == "Bearer other"


async def test_a_token_is_not_sent_to_another_server(
    sdk_servers: dict[str, RunningServer], tmp_path: Path, env: dict[str, str]
) -> None:
    server = sdk_servers["streamable-sse"]
    await store_token(server.base + "/other-path", env)  # stored for another endpoint
    assert await authorization_seen(server.url, tmp_path, env) is None


async def test_auth_is_a_subcommand_of_the_real_command(env: dict[str, str]) -> None:
    result = await run_relay_to_exit(["auth", "list", "--credential-store", "file"], env=env)
    assert result.returncode == 0
    assert relay_command()  # the same command a desktop client runs
