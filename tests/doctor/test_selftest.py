"""doctor --selftest: an in-process MCP server (hypercorn on trio) and a scripted session
through the real relay, on both transports, then the 2026-07-28 paths (a modern client passed
through, a 2025 client bridged up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from mcp_remote_py.doctor.report import Report
from mcp_remote_py.doctor.selftest import run_selftest
from mcp_remote_py.doctor.selftest_server import MODERN_VERSION, SelfTestServer

from .helpers import run_doctor

pytestmark = pytest.mark.timeout(120)

STEPS = (
    "initialize",
    "tools/list",
    "tools/call echo",
    "server -> client request",
    "session lost and recovered",
    "ping",
    "shutdown",
)
# The 2026-07-28 flows: check id key, label, steps (each then ends with "shutdown").
MODERN_FLOWS = (
    ("modern", "2026-07-28 client", ("server/discover", "tools/call echo")),
    ("bridge-up", "bridge up", ("initialize", "tools/call echo", "input_required round")),
    ("bridge-down", "bridge down", ("server/discover", "tools/call echo", "input_required round")),
)
PASSES = 1 + 2 * len(STEPS) + sum(len(steps) + 1 for _, _, steps in MODERN_FLOWS)


async def test_selftest_command(tmp_path: Path) -> None:
    run = await run_doctor("--selftest", tmp_path=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    for transport in ("Streamable HTTP", "legacy HTTP+SSE"):
        for step in STEPS[:-1]:
            assert f"[ ok ] {transport}: {step} (" in run.stdout, run.stdout
    assert "re-established" in run.stdout
    assert run.stdout.rstrip().endswith(f"{PASSES} passed, 0 warnings, 0 failed: nothing failed")
    assert run.stderr == ""


def ok_line(stdout: str, start: str) -> str:
    """The line for the step ``start`` (its label and name), which must say ok."""
    found = [line for line in stdout.splitlines() if line.startswith(f"  [ ok ] {start} (")]
    assert len(found) == 1, stdout
    return found[0]


async def test_selftest_modern_client_is_passed_through_with_checked_headers(
    tmp_path: Path,
) -> None:
    run = await run_doctor("--selftest", tmp_path=tmp_path)
    discover = ok_line(run.stdout, "2026-07-28 client: server/discover")
    assert "supportedVersions ['2026-07-28']; no initialize, no session" in discover
    call = ok_line(run.stdout, "2026-07-28 client: tools/call echo")
    assert (
        "the server checked MCP-Protocol-Version: 2026-07-28, Mcp-Method: tools/call, "
        "Mcp-Name: echo" in call
    )
    assert "[ ok ] 2026-07-28 client: end of input -> the relay stopped (" in run.stdout
    assert "no session, no DELETE)" in run.stdout


async def test_selftest_bridge_up_answers_initialize_and_an_input_required_round(
    tmp_path: Path,
) -> None:
    run = await run_doctor("--selftest", tmp_path=tmp_path)
    initialize = ok_line(run.stdout, "bridge up: initialize")
    assert "refused it with -32022 naming ['2026-07-28']; answered from server/discover" in (
        initialize
    )
    assert "protocol 2025-11-25" in initialize
    call = ok_line(run.stdout, "bridge up: tools/call echo")
    assert "sent with the client's _meta; the server checked MCP-Protocol-Version" in call
    round_ = ok_line(run.stdout, "bridge up: input_required round")
    assert "roots/list asked of the client, answered; retried under a new id" in round_
    assert "[ ok ] bridge up: end of input -> the relay stopped (" in run.stdout


async def test_selftest_bridge_down_answers_discover_and_carries_a_server_request(
    tmp_path: Path,
) -> None:
    run = await run_doctor("--selftest", tmp_path=tmp_path)
    discover = ok_line(run.stdout, "bridge down: server/discover")
    assert "answered from the relay's own initialize: server mcp-remote-py-selftest" in discover
    call = ok_line(run.stdout, "bridge down: tools/call echo")
    assert "with resultType complete" in call
    round_ = ok_line(run.stdout, "bridge down: input_required round")
    assert "roots/list came back as input_required with the relay's requestState" in round_
    assert "[ ok ] bridge down: end of input -> the relay ended the session (" in run.stdout


async def test_selftest_json(tmp_path: Path) -> None:
    run = await run_doctor("--selftest", "--json", tmp_path=tmp_path)
    data = json.loads(run.stdout)
    assert data["ok"] is True
    assert data["selftest"] is True
    ids = [c["id"] for c in data["checks"]]
    for mode in ("http-only", "sse-only"):
        for step in STEPS:
            assert f"selftest.{mode}.{step}" in ids
    for key, _, steps in MODERN_FLOWS:
        for step in (*steps, "shutdown"):
            assert f"selftest.{key}.{step}" in ids


async def test_selftest_in_process() -> None:
    report = Report()
    await run_selftest(report)
    assert not report.failed, report.render_text()
    assert report.counts()["pass"] == PASSES


async def test_selftest_leaves_the_users_era_cache_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_REMOTE_PY_STATE_DIR", str(tmp_path))
    report = Report()
    await run_selftest(report)
    assert not report.failed, report.render_text()
    assert list(await trio.Path(tmp_path).iterdir()) == []


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """The status and the JSON-RPC answer (an event stream's last ``data:``, for /mcp's 2025
    sessions)."""
    response = await client.post(
        url, json=body, headers={"Accept": "application/json, text/event-stream", **headers}
    )
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        text = [line for line in text.splitlines() if line.startswith("data:")][-1][5:]
    answer: dict[str, Any] = json.loads(text)
    return response.status_code, answer


async def test_selftest_server_refuses_what_the_selftest_lines_say_it_checks() -> None:
    """The lines claim the server checked the request headers and refused a 2025 initialize:
    it does, with the spec's statuses and codes."""
    server = SelfTestServer()
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    }
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta},
    }
    right = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}},
    }
    async with trio.open_nursery() as nursery:
        base = await nursery.start(server.serve)
        async with httpx.AsyncClient() as client:
            ok = await _post(client, f"{base}/mcp", call, right)
            wrong_name = await _post(client, f"{base}/mcp", call, {**right, "Mcp-Name": "roots"})
            no_method = await _post(
                client, f"{base}/mcp", call, {k: v for k, v in right.items() if k != "Mcp-Method"}
            )
            refused = await _post(client, f"{base}/modern", initialize, {})
            dual = await _post(client, f"{base}/mcp", initialize, {})
        nursery.cancel_scope.cancel()
    assert ok[0] == 200
    assert ok[1]["result"]["content"] == [{"type": "text", "text": "x"}]
    for status, answer in (wrong_name, no_method):
        assert status == 400
        assert answer["error"]["code"] == -32020
    assert "Mcp-Name" in wrong_name[1]["error"]["message"]
    assert refused[0] == 400
    assert refused[1]["error"]["code"] == -32022
    assert refused[1]["error"]["data"]["supported"] == ["2026-07-28"]
    assert dual[0] == 200  # /mcp is dual-era: a 2025 initialize opens a session there
    assert dual[1]["result"]["protocolVersion"] == "2025-11-25"
    assert server.refused_initializes == 1
    assert [r.method for r in server.modern_requests] == ["tools/call"]
