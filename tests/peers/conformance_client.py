"""The client under test for the MCP conformance suite's auth scenarios: the SDK's ``Client``
driving mcp-remote-py over stdio, as a desktop app would.

The suite (``npx conformance client --command CMD --scenario NAME``) starts a scenario's
authorization server and MCP server, then runs ``CMD SERVER_URL`` with ``MCP_CONFORMANCE_SCENARIO``,
``MCP_CONFORMANCE_PROTOCOL_VERSION`` and, for some scenarios, ``MCP_CONFORMANCE_CONTEXT`` (JSON:
pre-registered client credentials, say) in the environment. This program starts the relay on
``SERVER_URL``, lists the tools and calls ``test-tool`` when the server has it, and exits 0 when
all of that worked, 1 (with the reason on stderr) otherwise; the suite judges the rest from what
its servers saw.

The relay runs in a home of its own: ``$CONFORMANCE_CLIENT_HOME`` (the test makes a fresh one
per scenario), else a new temporary directory. Its credential store (a file store), lock files,
era cache, log file and XDG directories live there, and so do what the test reads afterwards:
``relay-stderr.txt``, ``relay.log``, ``relay-argv.json`` (the relay's command line) and
``browser.log`` (one line per browser opened). The browser is ``tests/auth_server/browser.py``,
which follows the authorization URL's redirects to the relay's loopback callback, as a user's
browser does after they click "Allow".

How the era is chosen: the suite asks for ``MCP_CONFORMANCE_PROTOCOL_VERSION``; 2026-07-28 runs
the client pinned to that era (no ``initialize``: ``_meta`` on every request), anything earlier
runs it in the legacy era (the ``initialize`` handshake). The relay runs with its defaults
(``--protocol auto``), as users run it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[2]
BROWSER = REPO / "tests" / "auth_server" / "browser.py"
MODERN = "2026-07-28"
TOOL = "test-tool"
# The suite's Client ID Metadata Document URL (auth/basic-cimd): its authorization server never
# fetches it, it checks that the client presents it as its client_id.
CIMD_URL = "https://conformance-test.local/client-metadata.json"
SECRET_ENV = "CONFORMANCE_OAUTH_CLIENT_SECRET"
READ_TIMEOUT = 25.0  # the suite gives a client 30 s in all


def relay_command() -> list[str]:
    configured = os.environ.get("MCP_REMOTE_PY_BIN")
    if not configured:
        return [sys.executable, "-m", "mcp_remote_py"]
    return [configured] if Path(configured).is_file() else shlex.split(configured)


def relay_environment(home: Path) -> dict[str, str]:
    """The environment of the relay: everything it keeps, under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_CONFORMANCE_")}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "xdg-config"),
            "XDG_STATE_HOME": str(home / "xdg-state"),
            "XDG_CACHE_HOME": str(home / "xdg-cache"),
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "MCP_REMOTE_PY_CONFIG_DIR": str(home / "config"),
            "MCP_REMOTE_PY_CREDENTIAL_STORE": "file",
            "MCP_REMOTE_PY_STATE_DIR": str(home / "state"),
            "BROWSER": f"{shlex.quote(sys.executable)} {shlex.quote(str(BROWSER))} %s",
            "HEADLESS_BROWSER_LOG": str(home / "browser.log"),
        }
    )
    return env


def scenario_arguments(scenario: str, context: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The relay options a user of this server would give (a pre-registered client, a Client
    ID Metadata Document); secrets go through the environment, never argv."""
    args: list[str] = []
    client_id = context.get("client_id")
    if isinstance(client_id, str) and client_id:
        args += ["--oauth-client-id", client_id]
        secret = context.get("client_secret")
        if isinstance(secret, str) and secret:
            env[SECRET_ENV] = secret
            args += ["--oauth-client-secret-env", SECRET_ENV]
    if scenario == "auth/basic-cimd":
        args += ["--client-metadata-url", CIMD_URL]
    return args


async def run(server_url: str, home: Path) -> None:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    env = relay_environment(home)
    command = relay_command()
    args = [
        *command[1:],
        server_url,
        "--log-file",
        str(home / "relay.log"),
        "--debug",  # the log the test searches for secrets is the most talkative one
        *scenario_arguments(scenario, context, env),
    ]
    (home / "relay-argv.json").write_text(json.dumps([command[0], *args]), encoding="utf-8")
    params = StdioServerParameters(command=command[0], args=args, env=env, cwd=str(REPO))
    mode = "2026-07-28" if version == MODERN else "legacy"
    with (home / "relay-stderr.txt").open("w", encoding="utf-8") as errlog:
        async with Client(
            stdio_client(params, errlog=errlog),
            mode=mode,
            read_timeout_seconds=READ_TIMEOUT,
            client_info=types.Implementation(name="mcp-remote-py-conformance", version="1.0"),
        ) as client:
            print(f"connected: protocol {client.protocol_version}", flush=True)
            tools = await client.list_tools()
            names = [tool.name for tool in tools.tools]
            print(f"tools: {names}", flush=True)
            if TOOL in names:
                result = await client.call_tool(TOOL, {})
                if result.is_error:
                    raise RuntimeError(f"{TOOL} answered with an error: {result.content}")
                print(f"called {TOOL}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: conformance_client.py SERVER_URL", file=sys.stderr)
        return 2
    configured = os.environ.get("CONFORMANCE_CLIENT_HOME")
    home = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="conformance-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        anyio.run(run, argv[1], home, backend="trio")
    except BaseException as exc:  # an exception group from the client's task groups, too
        print(f"the client failed: {describe(exc)}", file=sys.stderr)
        return 1
    return 0


def describe(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)  # an exception group (Python 3.11+, or anyio's)
    if isinstance(inner, (list, tuple)) and inner:
        return "; ".join(describe(each) for each in inner)
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
