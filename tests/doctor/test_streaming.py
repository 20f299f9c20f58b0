"""Buffering and idle-cutting proxies between the doctor and the SDK peer (the project's
FaultProxy: nginx-like response buffering, an idle timeout like proxy_read_timeout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.proxy import FaultProxy
from tests.integration.harness import sdk_server

from .helpers import port_of, run_doctor, text_of

pytestmark = pytest.mark.timeout(180)

FAST = ("--connect-timeout", "2", "--json")


async def test_a_buffering_proxy_holds_the_get_stream_back(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "streamable-http") as server,
        FaultProxy("127.0.0.1", port_of(server.base)) as proxy,
    ):
        proxy.buffer_responses(True)
        run = await run_doctor(proxy.url("/mcp"), *FAST, tmp_path=tmp_path)
    # Requests still work (each answer is complete), so the session passes...
    assert run.check("mcp.session")["status"] == "pass"
    # ...but the stream of server messages is held back.
    stream = run.check("streaming.get")
    assert stream["status"] == "warn"
    assert "did not arrive within 2 s" in stream["summary"]
    assert "proxy_buffering off;" in stream["fix"]
    assert "flush_interval -1" in stream["fix"]


async def test_a_buffering_proxy_breaks_legacy_sse(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "sse") as server,
        FaultProxy("127.0.0.1", port_of(server.base)) as proxy,
    ):
        proxy.buffer_responses(True)
        run = await run_doctor(proxy.url("/sse"), *FAST, tmp_path=tmp_path)
    assert run.code == 1
    legacy = run.check("http.legacy")
    assert legacy["status"] == "fail"
    assert "sent no headers within 2 s" in legacy["summary"]
    assert "proxy_buffering off;" in text_of(legacy)


async def test_no_proxy_no_buffering(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "sse") as server,
        FaultProxy("127.0.0.1", port_of(server.base)) as proxy,
    ):
        run = await run_doctor(proxy.url("/sse"), *FAST, tmp_path=tmp_path)
    assert run.code == 0, run.stdout
    assert run.check("streaming.get")["status"] == "pass"


async def test_soak_finds_an_idle_cut(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "streamable-http") as server,
        FaultProxy("127.0.0.1", port_of(server.base)) as proxy,
    ):
        proxy.idle_timeout(1.5)
        run = await run_doctor(proxy.url("/mcp"), "--soak", "6", *FAST, tmp_path=tmp_path)
        cuts = proxy.idle_cuts
    assert cuts >= 1
    soak = run.check("streaming.soak")
    assert soak["status"] == "warn"
    assert 1.2 <= soak["data"]["cut_after_s"] <= 3.5, soak
    assert "proxy_read_timeout 3600s;" in soak["fix"]


async def test_soak_on_a_healthy_stream(tmp_path: Path) -> None:
    async with sdk_server("--transport", "streamable-http") as server:
        run = await run_doctor(server.mcp_url, "--soak", "2", *FAST, tmp_path=tmp_path)
    soak = run.check("streaming.soak")
    assert soak["status"] == "pass"
    assert "stayed open for 2 s" in soak["summary"]
