"""Test peer: a legacy-only MCP server on the 2025-era official SDK (`mcp` 1.x, FastMCP).

It runs in its own virtualenv (`tests.peers.mcp1.mcp1_python()` makes it), never in the
project's: that one has `mcp` 2.x, which this file does not import. Run it as a script:

    .venv-mcp1/bin/python tests/peers/mcp1_server.py --transport streamable-http
        [--json-response] [--stateless] [--port 0]
    .venv-mcp1/bin/python tests/peers/mcp1_server.py --transport sse [--port 0]

It binds 127.0.0.1 only (port 0 lets the OS pick) and, once uvicorn accepts connections, prints
exactly one stdout line, `READY http://127.0.0.1:PORT`. Streamable HTTP is served at `/mcp`,
legacy SSE at `/sse` (POST endpoint `/messages/?session_id=...`). SIGTERM/SIGINT shut it down
with exit status 0. The SDK speaks the handshake era only (initialize, protocol versions up to
2025-11-25); what it answers to a 2026-07-28 request is in `mcp1_notes.md`.

The server is FastMCP as shipped; the few things FastMCP 1.x cannot declare on its own are set
on the lowlevel server under it (`_mcp_server`): the version, the `tools.listChanged` and
`resources.subscribe` capabilities, and the `logging/setLevel` and `resources/(un)subscribe`
handlers. No protocol is written by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.lowlevel.server import NotificationOptions
from pydantic import AnyUrl, BaseModel
from starlette.applications import Starlette

SERVER_NAME = "mcp1-peer"
SERVER_VERSION = "1.30.0-test"
SERVER_INSTRUCTIONS = "Legacy test peer."
ADDED_TOOL = "added"
"""The tool that `add_tool` registers."""


class Answer(BaseModel):
    """The form `elicit` and `twice` ask the client to fill in."""

    answer: str


@dataclass
class PeerState:
    """What the client did that a test may want to read back (through the `state` tool)."""

    log_level: str | None = None
    subscriptions: set[str] = field(default_factory=set)
    unsubscribed: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(
            {
                "log_level": self.log_level,
                "subscriptions": sorted(self.subscriptions),
                "unsubscribed": self.unsubscribed,
            },
            sort_keys=True,
        )


async def _ask(ctx: Context[Any, Any, Any], question: str) -> str:
    """One elicitation (related to the call): the answer, or the action if not accepted."""
    result = await ctx.elicit(message=question, schema=Answer)
    if result.action == "accept":
        return result.data.answer
    return result.action


def build_server(json_response: bool = False, stateless: bool = False) -> FastMCP[Any]:
    state = PeerState()
    mcp: FastMCP[Any] = FastMCP(
        SERVER_NAME,
        instructions=SERVER_INSTRUCTIONS,
        host="127.0.0.1",
        log_level="WARNING",
        json_response=json_response,
        stateless_http=stateless,
        warn_on_duplicate_tools=False,
    )

    @mcp.tool(structured_output=False)
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @mcp.tool()
    def add(a: int | float, b: int | float) -> int | float:
        """Add two numbers (structuredContent {"result": a+b}, with an outputSchema)."""
        return a + b

    @mcp.tool(structured_output=False)
    async def slow(seconds: float, steps: int, ctx: Context[Any, Any, Any]) -> str:
        """Sleep `seconds` in all, sending progress (n, steps, "step n/steps") after each slice."""
        for step in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(step, steps, f"step {step}/{steps}")
        return "done"

    @mcp.tool(structured_output=False)
    async def elicit(question: str, ctx: Context[Any, Any, Any]) -> str:
        """Ask the user (form elicitation, one string field `answer`); the answer or the action."""
        return await _ask(ctx, question)

    @mcp.tool(structured_output=False)
    async def twice(ctx: Context[Any, Any, Any]) -> str:
        """Two elicitations one after the other; the answers joined with "+"."""
        first = await _ask(ctx, "first?")
        second = await _ask(ctx, "second?")
        return f"{first}+{second}"

    @mcp.tool(structured_output=False)
    async def sample(prompt: str, ctx: Context[Any, Any, Any]) -> str:
        """sampling/createMessage (related to this call); the sampled text."""
        message = types.SamplingMessage(
            role="user", content=types.TextContent(type="text", text=prompt)
        )
        result = await ctx.session.create_message(
            messages=[message], max_tokens=100, related_request_id=ctx.request_id
        )
        content = result.content
        if not isinstance(content, types.TextContent):
            raise ValueError(f"sampling answered with {content.type} content, expected text")
        return content.text

    @mcp.tool(structured_output=False)
    async def roots(ctx: Context[Any, Any, Any]) -> str:
        """roots/list (the SDK relates it to no request); the first root's URI."""
        result = await ctx.session.list_roots()
        return str(result.roots[0].uri) if result.roots else "no roots"

    @mcp.tool(structured_output=False)
    async def log(ctx: Context[Any, Any, Any], message: str = "hello") -> str:
        """notifications/message at debug, info and error (data: `message`); returns "logged"."""
        await ctx.debug(message)
        await ctx.info(message)
        await ctx.error(message)
        return "logged"

    @mcp.tool(structured_output=False)
    async def add_tool(ctx: Context[Any, Any, Any]) -> str:
        """Register the tool `added` and send notifications/tools/list_changed."""

        def added(text: str = "") -> str:
            """Added at run time by `add_tool`."""
            return f"added {text}".rstrip()

        mcp.add_tool(added, name=ADDED_TOOL, structured_output=False)
        await ctx.session.send_tool_list_changed()
        return "added"

    @mcp.tool(structured_output=False)
    async def touch(uri: str, ctx: Context[Any, Any, Any]) -> str:
        """Send notifications/resources/updated for `uri` (subscribed to or not)."""
        await ctx.session.send_resource_updated(AnyUrl(uri))
        return "touched"

    @mcp.tool(structured_output=False)
    def fail() -> str:
        """Always fails: the SDK turns the exception into an isError result."""
        raise ValueError("failed on purpose")

    @mcp.tool(name="state", structured_output=False)
    def read_state() -> str:
        """What the client set: logging/setLevel's level, resources/(un)subscribe's URIs (JSON)."""
        return state.as_json()

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet someone by name."""
        return f"Hello, {name}!"

    @mcp.resource("text://hello", mime_type="text/plain")
    def hello() -> str:
        """A static text resource."""
        return "hello world"

    @mcp.resource("text://item/{name}", mime_type="text/plain")
    def item(name: str) -> str:
        """A templated text resource."""
        return f"item {name}"

    lowlevel = mcp._mcp_server  # FastMCP 1.x has no public way to set these
    lowlevel.version = SERVER_VERSION

    @lowlevel.set_logging_level()
    async def set_level(level: types.LoggingLevel) -> None:
        # Recorded only: the SDK sends every log message whatever the level.
        state.log_level = level

    @lowlevel.subscribe_resource()
    async def subscribe(uri: AnyUrl) -> None:
        state.subscriptions.add(str(uri))

    @lowlevel.unsubscribe_resource()
    async def unsubscribe(uri: AnyUrl) -> None:
        state.subscriptions.discard(str(uri))
        state.unsubscribed.append(str(uri))

    # The lowlevel server derives its capabilities from the handlers, but hardcodes
    # resources.subscribe false and takes listChanged from NotificationOptions, which
    # FastMCP's transports never pass. Every session's initialize answer is built here.
    derive = lowlevel.get_capabilities

    def capabilities(
        options: NotificationOptions, experimental: dict[str, dict[str, Any]]
    ) -> types.ServerCapabilities:
        result = derive(options, experimental)
        assert result.tools is not None
        assert result.resources is not None
        result.tools.listChanged = True
        result.resources.subscribe = True
        return result

    lowlevel.get_capabilities = capabilities  # type: ignore[method-assign]
    return mcp


@dataclass
class Options:
    transport: str
    json_response: bool
    stateless: bool
    port: int


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="mcp1_server.py", description="legacy MCP test peer (mcp 1.x)"
    )
    parser.add_argument(
        "--transport", choices=["streamable-http", "sse"], default="streamable-http"
    )
    parser.add_argument(
        "--json-response", action="store_true", help="answer POSTs with JSON instead of SSE"
    )
    parser.add_argument("--stateless", action="store_true", help="no sessions (streamable-http)")
    parser.add_argument("--port", type=int, default=0)
    ns = parser.parse_args(argv)
    if ns.transport == "sse" and (ns.json_response or ns.stateless):
        parser.error("--json-response/--stateless apply to streamable-http only")
    return Options(ns.transport, ns.json_response, ns.stateless, ns.port)


def build_app(options: Options) -> Starlette:
    mcp = build_server(json_response=options.json_response, stateless=options.stateless)
    if options.transport == "sse":
        return mcp.sse_app()
    return mcp.streamable_http_app()


_SHUTDOWN_NOISE = (
    "Exception in ASGI application",
    "ASGI callable returned without completing response",
)


class _PeerServer(uvicorn.Server):
    """uvicorn server that announces readiness and exits 0 on SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self._url = url
        logging.getLogger("uvicorn.error").addFilter(self._drop_shutdown_noise)

    def _drop_shutdown_noise(self, record: logging.LogRecord) -> bool:
        # Open SSE streams at shutdown make uvicorn log a traceback each: harmless at exit.
        return not (self.should_exit and str(record.msg).startswith(_SHUTDOWN_NOISE))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            sys.stdout.write(f"READY {self._url}\n")
            sys.stdout.flush()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Record no signal: uvicorn would re-raise it after shutdown (exit status -15).
        if self.should_exit:
            self.force_exit = True
        else:
            self.should_exit = True


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then. SO_REUSEADDR lets a restarted
    # peer take its old port back at once (the mcp1.Mcp1Server.restart fault tests).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", options.port))
    sock.listen(128)
    sock.setblocking(False)
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(options),
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Open SSE streams would otherwise hold a graceful shutdown open indefinitely.
        timeout_graceful_shutdown=1,
    )
    server = _PeerServer(config, f"http://127.0.0.1:{port}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    main()
