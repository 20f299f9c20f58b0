"""Headers and tokens stay with the server they were given for (DESIGN.md invariant 6): no
redirect and no legacy ``endpoint`` event may carry them to another origin."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ..faults.proxy import FaultProxy
from .harness import raw_relay, sdk_server

pytestmark = pytest.mark.timeout(60)

SECRET = "tok-3f9a-never-leaves"


async def test_a_redirect_to_another_origin_is_refused(tmp_path: Path) -> None:
    async with sdk_server("--transport", "streamable-http") as server:
        port = int(server.base.rsplit(":", 1)[1])
        # "Another origin": the same server behind a proxy on another port, counting arrivals.
        async with FaultProxy("127.0.0.1", port) as elsewhere:
            async with httpx.AsyncClient() as client:
                await client.post(
                    f"{server.base}/_faults",
                    json={"redirect_to": elsewhere.url("/mcp"), "count": 1},
                )
            args = [server.mcp_url, "--header", f"Authorization: Bearer {SECRET}"]
            async with raw_relay(args, tmp_path) as relay:
                error = (await relay.initialize())["error"]
            assert elsewhere.accepted == 0  # nothing, the token least of all, went there
    assert "redirected" in error["message"]
    assert "another origin" in error["message"]
    assert SECRET not in error["message"] + relay.stderr()


async def test_an_https_redirect_to_another_port_of_the_same_host_is_refused(
    tmp_path: Path,
) -> None:
    # Only http:80 -> https:443 of the same host is an upgrade; https on any other port is
    # another server (another origin), and the Authorization header must not go there.
    async with sdk_server("--transport", "streamable-http") as server:
        port = int(server.base.rsplit(":", 1)[1])
        async with FaultProxy("127.0.0.1", port) as elsewhere:
            target = elsewhere.url("/mcp").replace("http://", "https://")
            async with httpx.AsyncClient() as client:
                await client.post(
                    f"{server.base}/_faults", json={"redirect_to": target, "count": 1}
                )
            args = [server.mcp_url, "--header", f"Authorization: Bearer {SECRET}"]
            async with raw_relay(args, tmp_path) as relay:
                error = (await relay.initialize())["error"]
            assert elsewhere.accepted == 0
    assert "another origin" in error["message"]
    assert SECRET not in error["message"] + relay.stderr()


async def test_a_legacy_endpoint_on_another_origin_is_refused(tmp_path: Path) -> None:
    async with sdk_server("--transport", "sse") as server:
        port = int(server.base.rsplit(":", 1)[1])
        async with FaultProxy("127.0.0.1", port) as elsewhere:
            origin = elsewhere.url("/").rstrip("/")
            async with httpx.AsyncClient() as client:
                await client.post(f"{server.base}/_faults", json={"endpoint_origin": origin})
            args = [server.sse_url, "--transport", "sse-only", "--header", f"X-Api-Key: {SECRET}"]
            async with raw_relay(args, tmp_path) as relay:
                error = (await relay.initialize())["error"]
            assert elsewhere.accepted == 0
    assert "endpoint event points to another origin" in error["message"]
    assert SECRET not in error["message"] + relay.stderr()
