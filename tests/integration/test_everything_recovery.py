"""The reference TypeScript server restarted behind the relay's back.

server-everything answers an unknown session with **400** "No valid session ID provided", not
404; in SSE mode the restart ends the stream. Either way the relay must re-initialize by itself.
The fault proxy keeps the URL the same while the server behind it is replaced.
"""

from __future__ import annotations

from pathlib import Path

import mcp.types as types
import pytest
import trio

from ..faults.proxy import FaultProxy
from ..peers.everything import EverythingServer, server_everything_bin
from .harness import relay_session

pytestmark = pytest.mark.timeout(120)


def started(mode: str) -> EverythingServer:
    server = EverythingServer(mode)
    server.start()
    return server


@pytest.mark.parametrize("mode", ["streamableHttp", "sse"])
async def test_restarted_server_everything_is_reinitialized(mode: str, tmp_path: Path) -> None:
    if server_everything_bin() is None:
        pytest.skip("node or @modelcontextprotocol/server-everything missing (run `npm ci`)")
    first = await trio.to_thread.run_sync(started, mode)
    try:
        assert first.port is not None
        assert first.url is not None
        path = "/" + first.url.split("/", 3)[3]
        async with (
            FaultProxy("127.0.0.1", first.port) as proxy,
            relay_session(proxy.url(path), tmp_path) as (session, side),
        ):
            result = await session.call_tool("echo", {"message": "before"})
            assert isinstance(result.content[0], types.TextContent)
            assert result.content[0].text == "Echo: before"
            await trio.to_thread.run_sync(first.stop)
            second = await trio.to_thread.run_sync(started, mode)
            try:
                assert second.port is not None
                proxy.upstream_port = second.port  # same URL, a server that never saw us
                proxy.reset_all()
                with trio.fail_after(30):
                    result = await session.call_tool("echo", {"message": "after"})
                assert isinstance(result.content[0], types.TextContent)
                assert result.content[0].text == "Echo: after"
            finally:
                await trio.to_thread.run_sync(second.stop)
    finally:
        await trio.to_thread.run_sync(first.stop)
    stderr = side.stderr()
    assert "Traceback" not in stderr
    assert "session re-established" in stderr
    if mode == "streamableHttp":
        assert "HTTP 400" in stderr  # the 400 "no valid session" path, not a 404
