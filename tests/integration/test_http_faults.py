"""Faults only an HTTP server makes: 429/503 with Retry-After, and answers that are not JSON."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import Server, raw_relay, sdk_server

pytestmark = pytest.mark.timeout(120)

MODES = {
    "streamable": ("--transport", "streamable-http"),
    "streamable-json": ("--transport", "streamable-http", "--json-response"),
    "legacy-sse": ("--transport", "sse"),
}


@pytest.fixture(params=list(MODES))
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    async with sdk_server(*MODES[request.param]) as running:
        yield running


async def arm(server: Server, **fault: Any) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server.base}/_faults", json=fault)
        met: dict[str, int] = response.json()
        return met


async def faults_met(server: Server) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        met: dict[str, int] = (await client.get(f"{server.base}/_faults")).json()
        return met


@pytest.mark.parametrize("status", [429, 503])
async def test_busy_server_is_waited_out_honouring_retry_after(
    server: Server, status: int, tmp_path: Path
) -> None:
    async with raw_relay([server.url(), "--reconnect-delay", "0.05"], tmp_path) as relay:
        await relay.initialize()
        await arm(server, status=status, count=2, retry_after=1)
        started = time.monotonic()
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        answer = await relay.read_message()
        waited = time.monotonic() - started
    assert answer["result"]["content"][0]["text"] == "x"
    assert (await faults_met(server))["status"] == 2
    assert waited >= 2.0  # two Retry-After: 1 honoured, not the 0.05 s of our own backoff
    assert f"HTTP {status}" in relay.stderr()


async def test_retries_are_bounded_by_max_retries(server: Server, tmp_path: Path) -> None:
    args = [server.url(), "--reconnect-delay", "0.05", "--max-retries", "2"]
    async with raw_relay(args, tmp_path) as relay:
        await relay.initialize()
        await arm(server, status=503, count=10)
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        answer = await relay.read_message()
    assert answer["error"]["code"] == -32001
    assert "HTTP 503" in answer["error"]["message"]
    assert answer["error"]["data"]["status"] == 503
    assert (await faults_met(server))["status"] == 3  # the first try and two more


async def test_a_non_json_event_is_skipped_and_the_answer_still_arrives(
    server: Server, tmp_path: Path
) -> None:
    if server.flags != MODES["streamable"]:
        pytest.skip("only a Streamable HTTP server answering with SSE carries events per request")
    async with raw_relay([server.url()], tmp_path) as relay:
        await relay.initialize()
        await arm(server, garbage="event", count=1)
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        answer = await relay.read_message()
    assert answer["result"]["content"][0]["text"] == "x"
    assert "not JSON-RPC" in relay.stderr()


async def test_a_non_json_body_is_an_error_and_the_relay_goes_on(
    server: Server, tmp_path: Path
) -> None:
    if server.flags == MODES["legacy-sse"]:
        pytest.skip("legacy SSE answers arrive on the stream, not in the POST body")
    async with raw_relay([server.url()], tmp_path) as relay:
        await relay.initialize()
        await arm(server, garbage="body", count=1)
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        error = (await relay.read_message())["error"]
        assert "not JSON" in error["message"]
        await relay.request(2, "tools/call", {"name": "echo", "arguments": {"text": "y"}})
        assert (await relay.read_message())["result"]["content"][0]["text"] == "y"
    assert "Traceback" not in relay.stderr()


async def test_a_cookie_the_server_sets_is_sent_back(server: Server, tmp_path: Path) -> None:
    # Sticky load balancers (AWS ALB, Cloudflare Access) keep a session on one backend by cookie.
    async with raw_relay([server.url()], tmp_path) as relay:
        await relay.initialize()
        await arm(server, set_cookie="sticky=backend-2; Path=/", count=1)
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        assert (await relay.read_message())["result"]["content"][0]["text"] == "x"
        await relay.request(2, "tools/call", {"name": "headers", "arguments": {}})
        answer = await relay.read_message()
    seen = json.loads(answer["result"]["content"][0]["text"])
    assert seen.get("cookie") == "sticky=backend-2"


async def test_the_get_stream_opens_before_the_next_request(server: Server, tmp_path: Path) -> None:
    # TypeScript SDK servers send their own requests (roots/list from a tool) only on the GET
    # stream and drop them while it is not open: the request right after initialized must not
    # overtake the GET.
    if server.flags[-1] == "sse":
        pytest.skip("legacy SSE opens its stream before anything else")
    async with raw_relay([server.url()], tmp_path) as relay:
        await relay.initialize()  # sends notifications/initialized right after the answer
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        assert (await relay.read_message())["result"]["content"][0]["text"] == "x"
    arrivals = (await faults_met(server))["arrivals"]
    after = arrivals[arrivals.index("POST notifications/initialized") + 1 :]
    assert after[:2] == ["GET", "POST tools/call"], arrivals
