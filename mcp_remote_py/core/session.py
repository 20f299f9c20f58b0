"""Session state, without I/O: what the client asked, what is in flight, what a new session replays.

The relay's trio code asks this module what to do and carries it out. Rules it keeps:

Rule 1. Every client request is in ``pending`` from the moment it is read until exactly one answer
        has been written for it; ``take`` removes it, so a second answer finds nothing and is
        dropped (DESIGN.md invariant 2).
Rule 2. Ids the relay uses for its own requests (replayed initialize, keepalive ping) live in a
        namespace of their own, ``"mcp-remote-py/<n>"`` strings, and answers to them never reach
        the client.
Rule 3. The captured ``initialize``, ``logging/setLevel`` and ``resources/subscribe`` requests are
        what a new session replays; other requests are re-sent only as ``may_resend`` allows.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    ConnectionLost,
    SessionLost,
    UpstreamError,
    UpstreamHttpError,
    UpstreamUnavailable,
)
from .jsonrpc import Message, RequestId

__all__ = [
    "Pending",
    "SessionState",
    "ToolFilter",
    "RELAY_ID_PREFIX",
    "is_relay_id",
    "is_side_effect_free",
    "may_resend",
]

# Requests that change nothing on the server: sending one twice is harmless.
SIDE_EFFECT_FREE = frozenset(
    {
        "initialize",
        "server/discover",  # 2026-07-28 server/discover: it only describes the server
        "ping",
        "resources/read",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
    }
)


def is_side_effect_free(method: str) -> bool:
    return method in SIDE_EFFECT_FREE or method.endswith("/list")


def may_resend(error: UpstreamError, method: str) -> bool:
    """Whether a request that met ``error`` may be sent again without asking the client.

    DESIGN.md invariant 3: only when the server provably did not take it (no connection; a 404
    or 400 for an unknown session, answered before processing; 429/503, the server declining) or
    when taking it twice does no harm. Anything else the server may have run: the client decides.
    """
    if isinstance(error, (SessionLost, UpstreamUnavailable)):
        return True
    if isinstance(error, UpstreamHttpError):
        if error.status in (429, 503):
            return True
        return error.status in (502, 504) and is_side_effect_free(method)
    if isinstance(error, ConnectionLost):
        return is_side_effect_free(method)
    return False


RELAY_ID_PREFIX = "mcp-remote-py/"


def is_relay_id(request_id: RequestId | None, prefix: str = RELAY_ID_PREFIX) -> bool:
    return isinstance(request_id, str) and request_id.startswith(prefix)


@dataclass(slots=True)
class Pending:
    """A client request that has not been answered yet."""

    id: RequestId
    method: str
    cancelled: bool = False


class ToolFilter:
    """``--ignore-tool`` globs: matching tools are hidden from tools/list and refused in tools/call.

    Matching is case-insensitive, like mcp-remote's, so a pattern written in a config file keeps
    working when a server changes the case of a tool name.
    """

    def __init__(self, patterns: list[str]) -> None:
        self._patterns = [p.casefold() for p in patterns]

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def hides(self, tool_name: str) -> bool:
        name = tool_name.casefold()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self._patterns)

    def filter_list_result(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The tools/list response without hidden tools, or None when nothing was hidden."""
        result = body.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return None
        tools = result["tools"]
        kept = [t for t in tools if not (isinstance(t, dict) and self.hides(str(t.get("name"))))]
        if len(kept) == len(tools):
            return None
        return {**body, "result": {**result, "tools": kept}}


@dataclass
class SessionState:
    """What the relay knows of the MCP session it carries."""

    pending: dict[RequestId, Pending] = field(default_factory=dict)
    initialize: dict[str, Any] | None = None
    protocol_version: str | None = None
    server_name: str | None = None
    log_level: dict[str, Any] | None = None
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The relay's own ids: a prefix no client can guess (the shell adds a random part), so a
    # client request whose id merely looks like the relay's is still the client's.
    relay_prefix: str = RELAY_ID_PREFIX
    _relay_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_relay_id(self) -> str:
        return f"{self.relay_prefix}{next(self._relay_ids)}"

    def is_relay_id(self, request_id: RequestId | None) -> bool:
        return is_relay_id(request_id, self.relay_prefix)

    def replay_plan(self) -> list[dict[str, Any]]:
        """What a new session is sent before the client's traffic resumes (Rule 3): the captured
        initialize under a relay id, ``notifications/initialized``, the log level and the live
        subscriptions, each request under a fresh relay id so its answer is swallowed."""
        if self.initialize is None:
            return []
        plan = [{**self.initialize, "id": self.next_relay_id()}]
        plan.append({"jsonrpc": "2.0", "method": "notifications/initialized"})
        for request in [self.log_level, *self.subscriptions.values()]:
            if request is not None:
                plan.append({**request, "id": self.next_relay_id()})
        return plan

    # -- client → server ---------------------------------------------------------------------

    def track(self, message: Message) -> Pending | None:
        """Record a client request; None when its id is already in flight (a client bug)."""
        request_id = message.id
        assert request_id is not None
        assert message.method is not None
        if request_id in self.pending:
            return None
        entry = Pending(request_id, message.method)
        self.pending[request_id] = entry
        self.remember(message)
        return entry

    def remember(self, message: Message) -> None:
        """Record a request for a new session to replay (Rule 3): the client's, or one the
        relay made on the client's behalf (the bridge down's initialize and subscriptions)."""
        method = message.method
        if method == "initialize":
            self.initialize = copy.deepcopy(message.body)
        elif method == "logging/setLevel":
            self.log_level = copy.deepcopy(message.body)
        elif method == "resources/subscribe":
            uri = message.params.get("uri")
            if isinstance(uri, str):
                self.subscriptions[uri] = copy.deepcopy(message.body)
        elif method == "resources/unsubscribe":
            uri = message.params.get("uri")
            if isinstance(uri, str):
                self.subscriptions.pop(uri, None)

    def cancel(self, message: Message) -> None:
        """notifications/cancelled: the client no longer wants an answer to that request."""
        request_id = message.params.get("requestId")
        if isinstance(request_id, (str, int)) and request_id in self.pending:
            self.pending[request_id].cancelled = True

    # -- server → client ---------------------------------------------------------------------

    def take(self, request_id: RequestId | None) -> Pending | None:
        """The pending request this answer is for, removed; None if none is waiting (Rule 1)."""
        if request_id is None:
            return None
        return self.pending.pop(request_id, None)

    def learn_initialize_result(self, body: dict[str, Any]) -> None:
        result = body.get("result")
        if not isinstance(result, dict):
            return
        version = result.get("protocolVersion")
        if isinstance(version, str):
            self.protocol_version = version
        info = result.get("serverInfo")
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            self.server_name = info["name"]
