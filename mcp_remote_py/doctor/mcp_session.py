"""The MCP check: a real session through the relay's own transports (``open_transport``).

initialize, notifications/initialized and tools/list, as the relay would send them, so a session
that opens here opens in the relay. A 401 is left to the Auth checks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from ..core.errors import ProtocolViolation, UpstreamError, UpstreamHttpError, UpstreamUnavailable
from ..core.jsonrpc import Kind, Message, parse_message
from .http_probe import elapsed_ms, initialize_body
from .report import FAIL, PASS, Report
from .target import Target

__all__ = ["Session", "real_session"]

SESSION_TIMEOUT = 30.0


@dataclass
class Session:
    transport_name: str = ""
    server: str = ""
    protocol_version: str = ""
    tools: int | None = None
    initialize_ms: float = 0.0
    error: UpstreamError | None = None


async def real_session(report: Report, target: Target, client: httpx.AsyncClient) -> Session:
    """initialize, notifications/initialized and tools/list through the relay's transports."""
    from ..shell.transports.negotiate import open_transport

    section = "MCP"
    result = Session()
    answers: dict[str, dict[str, Any]] = {}
    arrived = trio.Event()

    async def deliver(message: Message) -> None:
        if message.kind is Kind.RESPONSE and isinstance(message.id, str):
            answers[message.id] = message.body
            arrived.set()

    lost: list[UpstreamError] = []

    def on_lost(error: UpstreamError) -> None:
        lost.append(error)

    async def wait_for(request_id: str) -> dict[str, Any]:
        nonlocal arrived
        while request_id not in answers:
            arrived = trio.Event()
            await arrived.wait()
        return answers[request_id]

    started = time.monotonic()
    bound = SESSION_TIMEOUT + target.net.connect_timeout

    async def converse(nursery: trio.Nursery) -> None:
        first = parse_message(json.dumps(initialize_body("doctor-init")).encode())
        transport = await open_transport(
            target.options.transport,
            target.url,
            first,
            client=client,
            deliver=deliver,
            nursery=nursery,
            options=target.net,
            backoff=target.options.backoff,
            on_lost=on_lost,
        )
        try:
            answer = await wait_for("doctor-init")
            result.initialize_ms = elapsed_ms(started)
            result.transport_name = transport.name
            if "error" in answer:
                raise ProtocolViolation(f"the server refused initialize: {answer['error']}")
            info = answer.get("result", {})
            server_info = info.get("serverInfo", {})
            result.server = f"{server_info.get('name', '?')} {server_info.get('version', '')}"
            result.protocol_version = str(info.get("protocolVersion", "?"))
            transport.set_protocol_version(result.protocol_version)
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await transport.send_message(parse_message(json.dumps(initialized).encode()))
            tools_list = {"jsonrpc": "2.0", "id": "doctor-tools", "method": "tools/list"}
            await transport.send_request(parse_message(json.dumps(tools_list).encode()))
            tools_answer = await wait_for("doctor-tools")
            tools = tools_answer.get("result", {}).get("tools")
            result.tools = len(tools) if isinstance(tools, list) else None
        finally:
            with trio.CancelScope(shield=True):
                await transport.close()

    async with trio.open_nursery() as nursery:
        try:
            with trio.fail_after(bound):
                await converse(nursery)
        except UpstreamError as exc:
            result.error = exc
        except trio.TooSlowError:
            result.error = UpstreamUnavailable(
                f"no answer within {bound:g} s",
                "A proxy may be holding answers back, or the server hangs",
                kind="timeout",
            )
        nursery.cancel_scope.cancel()
    if result.error is not None:
        if not (isinstance(result.error, UpstreamHttpError) and result.error.status == 401):
            report.add(
                "mcp.session",
                section,
                FAIL,
                f"the relay's transports could not open a session: {result.error}",
                fix=result.error.hint
                or f"See the checks above (--transport {target.options.transport})",
            )
        return result
    tools = "an unreadable tool list" if result.tools is None else f"{result.tools} tools"
    report.add(
        "mcp.session",
        section,
        PASS,
        f"initialize over {result.transport_name} in {result.initialize_ms:.0f} ms: server "
        f"{result.server.strip()}, protocol {result.protocol_version}; tools/list: {tools}",
        data={
            "transport": result.transport_name,
            "server": result.server.strip(),
            "protocolVersion": result.protocol_version,
            "tools": result.tools,
        },
    )
    return result
