"""A proxy that gzips event streams for clients that accept it (nginx with ``gzip on`` and
``text/event-stream`` in ``gzip_types``): the relay asks for identity and never sees it, other
clients do. The doctor asks once as they do.

The server is the self-test's MCP server (Streamable HTTP at ``/mcp``, whose answers are event
streams; legacy SSE at ``/sse``) on hypercorn in this process, behind an ASGI layer that does
what nginx does: an event stream asked for with ``Accept-Encoding: gzip`` gets
``Content-Encoding: gzip``, and its events wait in the compressor until it fills or the stream
ends.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from mcp_remote_py.doctor.selftest_server import SelfTestServer

from .helpers import run_doctor, text_of

pytestmark = pytest.mark.timeout(120)

FAST = ("--connect-timeout", "2", "--json")


class GzipEventStreams:
    """nginx's gzip filter for ``text/event-stream`` in front of an ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.compressed = 0  # event streams sent compressed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accepts = dict(scope["headers"]).get(b"accept-encoding", b"").decode().lower()
        compressor: Any = None

        async def gzip_send(message: dict[str, Any]) -> None:
            nonlocal compressor
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/event-stream") and "gzip" in accepts:
                    compressor = zlib.compressobj(wbits=31)
                    self.compressed += 1
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    headers.append((b"content-encoding", b"gzip"))
                    headers.append((b"vary", b"Accept-Encoding"))
                await send({**message, "headers": headers})
                return
            if message["type"] == "http.response.body" and compressor is not None:
                data = compressor.compress(message.get("body", b""))  # held, as nginx does
                if not message.get("more_body", False):
                    data += compressor.flush()
                await send({**message, "body": data})
                return
            await send(message)

        await self.app(scope, receive, gzip_send)


@asynccontextmanager
async def gzipping_server() -> AsyncIterator[tuple[str, GzipEventStreams]]:
    server = SelfTestServer()
    proxy = GzipEventStreams(server)
    async with trio.open_nursery() as nursery:
        base = await nursery.start(partial(server.serve, app=proxy))
        try:
            yield base, proxy
        finally:
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("path", "what"),
    [("/mcp", "the event stream answering initialize"), ("/sse", "the legacy SSE stream")],
)
async def test_event_streams_gzipped_for_other_clients_are_a_warning(
    tmp_path: Path, path: str, what: str
) -> None:
    async with gzipping_server() as (base, proxy):
        run = await run_doctor(base + path, *FAST, tmp_path=tmp_path)
        compressed = proxy.compressed
    assert compressed >= 1  # the doctor did ask as other clients do
    # What the relay gets (identity) is fine, so is everything it checks...
    assert run.check("mcp.session")["status"] == "pass"
    assert not run.has("streaming.encoding")
    # ...but other clients on this server get a compressed stream.
    check = run.check("streaming.compression")
    assert check["status"] == "warn", check
    assert "a client that asks for gzip, deflate, br" in check["summary"]
    assert f"gets {what} gzip-compressed" in check["summary"]
    assert "other MCP clients on this server hang or see events late" in check["summary"]
    text = text_of(check)
    assert "`gzip off;`" in text
    assert "gzip_types" in text
    assert run.code == 0  # a warning: the relay itself works


async def test_uncompressed_event_streams_pass(tmp_path: Path) -> None:
    server = SelfTestServer()
    async with trio.open_nursery() as nursery:
        base = await nursery.start(server.serve)
        run = await run_doctor(base + "/mcp", *FAST, tmp_path=tmp_path)
        nursery.cancel_scope.cancel()
    check = run.check("streaming.compression")
    assert check["status"] == "pass", check
    assert (
        "comes uncompressed also to a client that asks for gzip, deflate, br" in (check["summary"])
    )
