"""The bridge down: what a 2026-07-28 client's messages become for a server of the handshake era.

A modern client speaks without a handshake: every request carries its version, capabilities and
info in ``_meta`` (basic/index §_meta); server→client questions come back as ``input_required``
results (basic/patterns/mrtr); change notifications ride ``subscriptions/listen``
(basic/patterns/subscriptions). A legacy server wants ``initialize`` first, a session, and asks
its questions as requests of its own. ``ModernFace`` holds what the bridge knows of the client
and answers these rules:

1. The first modern request opens a legacy session: ``initialize`` built from its ``_meta``
   (the client's info; of its capabilities only those the bridge can carry: elicitation,
   sampling, roots without ``listChanged``, which 2026-07-28 removed, changelog major change 5),
   at the newest handshake-era version; the server picks its own (2025-11-25 lifecycle
   §Version Negotiation). ``server/discover`` is answered from the ``InitializeResult``
   (server/discover §DiscoverResult: the versions the relay speaks, the server's capabilities,
   its info under ``_meta``, its instructions).
2. Requests go upstream with the specification's own ``_meta`` keys (``io.modelcontextprotocol/``)
   taken out and everything else (a progress token, a trace context) kept; ``inputResponses``
   and ``requestState`` are the bridge's, never the server's.
3. Results gain ``resultType: "complete"`` (changelog major change 8) and, on the cacheable
   ones, ``ttlMs: 0`` and ``cacheScope: "private"`` (changelog minor change 5: a legacy server's
   lists are its session's, so nothing is shared and nothing is fresh for long). A
   ``resources/read`` error -32002 becomes -32602 (resources §Error Handling, changelog minor
   change 6).
4. A server request made while one of the client's calls is running is held, and the client's
   call is answered with an ``InputRequiredResult`` carrying it (mrtr §InputRequiredResult) and
   a relay-minted ``requestState``: unguessable (the shell mints it), bound to that call's
   method and name, spent when redeemed, expiring (``StateBook``). The retry's
   ``inputResponses`` answer the held requests; one left unanswered is asked again in a new
   round rather than refused (mrtr §Error Handling), and keys the bridge did not ask for are
   ignored.
5. ``notifications/message`` reaches the client only while a request that set
   ``io.modelcontextprotocol/logLevel`` at or below its severity is running (logging §Per-request
   log level); the most verbose level such requests ask for becomes ``logging/setLevel`` upstream.
6. List changes and resource updates go to each ``subscriptions/listen`` that asked for them,
   tagged with its id (subscriptions §Receiving Notifications); the acknowledgement names what
   the server can deliver (§Acknowledgment).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .eras import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LOG_LEVEL_KEY,
    MODERN_VERSIONS,
    NEWEST_LEGACY,
    SERVER_INFO_KEY,
    SPEC_META_PREFIX,
    SUBSCRIPTION_ID_KEY,
)
from .jsonrpc import (
    INVALID_PARAMS,
    KEEP_PARSED_BELOW,
    Kind,
    Message,
    RequestId,
    large_answer_line,
)

__all__ = [
    "CACHEABLE_METHODS",
    "HELD_METHODS",
    "LOG_LEVELS",
    "HeldRequest",
    "ModernFace",
    "StateBook",
    "StateRefused",
    "acknowledgement",
    "binding_of",
    "honored_filter",
    "input_required",
    "is_change_notification",
    "is_log_level",
    "log_reaches",
    "modern_answer",
    "modern_response",
    "most_verbose",
    "request_log_level",
    "tagged",
    "upstream_body",
    "wants",
]

# changelog minor change 5: the results a client may cache carry ttlMs and cacheScope.
CACHEABLE_METHODS = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)
# mrtr §Supported Requests: the client requests an input_required result may answer; a server
# request made during any other is not the client's to answer.
HELD_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
# The server→client requests MRTR carries, by the client capability each needs (mrtr §Server
# Requirements 7).
_CAPABILITY_OF = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}
# logging §Log Levels (RFC 5424), least severe first.
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_SEVERITY = {level: rank for rank, level in enumerate(LOG_LEVELS)}
RESOURCE_NOT_FOUND_LEGACY = -32002
# A relay-minted requestState redeemed, expired or withdrawn: remembered (a bounded number) so a
# second use is told what happened to it rather than that it is unknown.
_REMEMBERED = 256


class StateRefused(ValueError):
    """A retry's ``requestState`` the bridge cannot honour; says why."""


@dataclass(frozen=True, slots=True)
class HeldRequest:
    """A server request held for the client: its key in ``inputRequests`` and the server's id."""

    key: str
    server_id: RequestId
    method: str
    params: dict[str, Any]


def _spec_free(meta: Any) -> dict[str, Any] | None:
    """``_meta`` without the specification's own keys; None when nothing is left."""
    if not isinstance(meta, dict):
        return None
    kept = {k: v for k, v in meta.items() if not k.startswith(SPEC_META_PREFIX)}
    return kept or None


@dataclass
class ModernFace:
    """The modern client, as the bridge knows it from the ``_meta`` of its requests."""

    capabilities: dict[str, Any]
    info: dict[str, Any]

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ModernFace:
        capabilities = meta.get(CLIENT_CAPABILITIES_KEY)
        info = meta.get(CLIENT_INFO_KEY)
        return cls(
            capabilities=dict(capabilities) if isinstance(capabilities, dict) else {},
            info=dict(info) if isinstance(info, dict) else {"name": "unknown", "version": "0"},
        )

    def bridged_capabilities(self) -> dict[str, Any]:
        """Rule 1: what the legacy server is told the client can do."""
        bridged: dict[str, Any] = {}
        for name in ("elicitation", "sampling"):
            declared = self.capabilities.get(name)
            if isinstance(declared, dict):
                bridged[name] = declared
        if isinstance(self.capabilities.get("roots"), dict):
            bridged["roots"] = {}  # no notifications/roots/list_changed to send it
        return bridged

    def initialize(self, request_id: RequestId) -> dict[str, Any]:
        """Rule 1: the legacy ``initialize`` this client's session opens with."""
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": {
                "protocolVersion": NEWEST_LEGACY,
                "capabilities": self.bridged_capabilities(),
                "clientInfo": self.info,
            },
        }

    def can_answer(self, method: str) -> bool:
        """Whether the client declared the capability a server request needs."""
        capability = _CAPABILITY_OF.get(method)
        return capability is not None and isinstance(self.capabilities.get(capability), dict)

    @staticmethod
    def discover_result(request_id: RequestId, initialize: Mapping[str, Any]) -> dict[str, Any]:
        """Rule 1: the client's ``DiscoverResult``, from the server's ``InitializeResult``."""
        result = initialize.get("result")
        result = result if isinstance(result, dict) else {}
        capabilities = result.get("capabilities")
        info = result.get("serverInfo")
        discovered: dict[str, Any] = {
            "resultType": "complete",
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": capabilities if isinstance(capabilities, dict) else {},
            "_meta": {
                SERVER_INFO_KEY: info if isinstance(info, dict) else {"name": "unknown"},
            },
            # server/discover supports caching; a legacy server's answer is its session's.
            "ttlMs": 0,
            "cacheScope": "private",
        }
        instructions = result.get("instructions")
        if isinstance(instructions, str):
            discovered["instructions"] = instructions
        return {"jsonrpc": "2.0", "id": request_id, "result": discovered}


def upstream_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Rule 2: a client request as the legacy server gets it (without an id: the shell gives
    it one of the relay's)."""
    params = body.get("params")
    upstream: dict[str, Any] = {"jsonrpc": "2.0", "method": body.get("method")}
    if isinstance(params, dict):
        kept = {
            k: v for k, v in params.items() if k not in ("_meta", "inputResponses", "requestState")
        }
        meta = _spec_free(params.get("_meta"))
        if meta is not None:
            kept["_meta"] = meta
        upstream["params"] = kept
    return upstream


_COMPLETE: Mapping[str, Any] = MappingProxyType({"resultType": "complete"})
_COMPLETE_PRIVATE: Mapping[str, Any] = MappingProxyType(
    {"resultType": "complete", "ttlMs": 0, "cacheScope": "private"}
)


def _result_defaults(method: str) -> Mapping[str, Any]:
    return _COMPLETE_PRIVATE if method in CACHEABLE_METHODS else _COMPLETE


def modern_response(
    request_id: RequestId, answer: Mapping[str, Any], method: str
) -> dict[str, Any]:
    """Rule 3: the server's answer to a relay request, as the modern client's answer."""
    error = answer.get("error")
    if isinstance(error, dict):
        if method == "resources/read" and error.get("code") == RESOURCE_NOT_FOUND_LEGACY:
            error = {**error, "code": INVALID_PARAMS}
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    result = answer.get("result")
    result = dict(result) if isinstance(result, dict) else {}
    for key, value in _result_defaults(method).items():
        result.setdefault(key, value)
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def modern_answer(request_id: RequestId, answer: Message, method: str) -> Message:
    """``modern_response`` for an answer as it came: a large result (kept as its line) is
    spliced into the client's answer, not parsed and encoded again."""
    if answer.is_large and not answer.is_error:
        spliced = large_answer_line(answer.raw, request_id, _result_defaults(method))
        if spliced is not None:
            # Its parsed form is kept below the size that keeps none (the server's own large
            # members may be what made the answer large).
            small = len(spliced) <= KEEP_PARSED_BELOW
            body = json.loads(spliced) if small else {"id": request_id, "result": None}
            return Message(Kind.RESPONSE, body, spliced)
    return Message(Kind.RESPONSE, modern_response(request_id, answer.body, method), "")


def binding_of(method: str, params: Mapping[str, Any]) -> tuple[str, str | None]:
    """What a ``requestState`` is bound to (mrtr §Server Requirements 5: the method and its
    salient parameter): the tool or prompt name, the resource URI."""
    key = "uri" if method == "resources/read" else "name"
    value = params.get(key)
    return method, value if isinstance(value, str) else None


def _for_client(request: HeldRequest) -> dict[str, Any]:
    """A held server request as an ``inputRequests`` entry: changelog minor change 11 removed
    ``elicitationId`` (the retry tells the outcome), and the server's progress token is not the
    client's."""
    params = {k: v for k, v in request.params.items() if k != "elicitationId"}
    meta = params.get("_meta")
    if isinstance(meta, dict):
        rest = {k: v for k, v in meta.items() if k != "progressToken"}
        if rest:
            params["_meta"] = rest
        else:
            params.pop("_meta")
    return {"method": request.method, "params": params}


def input_required(request_id: RequestId, asked: list[HeldRequest], state: str) -> dict[str, Any]:
    """Rule 4: the client's call answered with the held server requests."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {
            "resultType": "input_required",
            "inputRequests": {request.key: _for_client(request) for request in asked},
            "requestState": state,
        },
    }


def is_log_level(value: Any) -> bool:
    return isinstance(value, str) and value in _SEVERITY


def log_reaches(level: Any, wanted: str) -> bool:
    """Rule 5: whether a ``notifications/message`` at ``level`` is for a request that asked for
    ``wanted`` (an unknown level is treated as the most severe: it is not dropped silently)."""
    rank = _SEVERITY.get(level, len(LOG_LEVELS)) if isinstance(level, str) else len(LOG_LEVELS)
    return rank >= _SEVERITY[wanted]


def most_verbose(levels: list[str]) -> str | None:
    return min(levels, key=_SEVERITY.__getitem__) if levels else None


def request_log_level(params: Mapping[str, Any]) -> Any:
    meta = params.get("_meta")
    return meta.get(LOG_LEVEL_KEY) if isinstance(meta, dict) else None


def honored_filter(wanted: Any, server_capabilities: Mapping[str, Any]) -> dict[str, Any]:
    """Rule 6: the part of a listen's filter this server can deliver (subscriptions
    §Acknowledgment: types the server does not support are omitted)."""
    wanted = wanted if isinstance(wanted, dict) else {}
    honored: dict[str, Any] = {}
    for flag, kind in (
        ("toolsListChanged", "tools"),
        ("promptsListChanged", "prompts"),
        ("resourcesListChanged", "resources"),
    ):
        declared = server_capabilities.get(kind)
        if wanted.get(flag) is True and isinstance(declared, dict) and declared.get("listChanged"):
            honored[flag] = True
    uris = wanted.get("resourceSubscriptions")
    resources = server_capabilities.get("resources")
    if (
        isinstance(uris, list)
        and isinstance(resources, dict)
        and resources.get("subscribe")
        and (kept := list(dict.fromkeys(u for u in uris if isinstance(u, str))))
    ):
        honored["resourceSubscriptions"] = kept
    return honored


_FLAG_OF = {
    "notifications/tools/list_changed": "toolsListChanged",
    "notifications/prompts/list_changed": "promptsListChanged",
    "notifications/resources/list_changed": "resourcesListChanged",
}


def wants(honored: Mapping[str, Any], method: str | None, params: Mapping[str, Any]) -> bool:
    """Rule 6: whether a listen with this filter gets this server notification."""
    if method in _FLAG_OF:
        return honored.get(_FLAG_OF[method]) is True
    if method == "notifications/resources/updated":
        uris = honored.get("resourceSubscriptions")
        return isinstance(uris, list) and params.get("uri") in uris
    return False


def is_change_notification(method: str | None) -> bool:
    return method in _FLAG_OF or method == "notifications/resources/updated"


def tagged(body: Mapping[str, Any], subscription_id: RequestId) -> dict[str, Any]:
    """A notification as the listen ``subscription_id`` delivers it."""
    params = body.get("params")
    params = dict(params) if isinstance(params, dict) else {}
    meta = params.get("_meta")
    params["_meta"] = {
        **(meta if isinstance(meta, dict) else {}),
        SUBSCRIPTION_ID_KEY: subscription_id,
    }
    return {"jsonrpc": "2.0", "method": body.get("method"), "params": params}


def acknowledgement(subscription_id: RequestId, honored: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {SUBSCRIPTION_ID_KEY: subscription_id}, "notifications": honored},
    }


@dataclass(slots=True)
class _Ticket:
    call: str
    binding: tuple[str, str | None]
    expires: float


class StateBook:
    """Rule 4: the ``requestState`` values the bridge minted, each for one round of one call.

    Sans-I/O: the shell mints the tokens (unguessable) and passes the clock in.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._live: dict[str, _Ticket] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()

    def issue(self, token: str, call: str, binding: tuple[str, str | None], now: float) -> None:
        self._live[token] = _Ticket(call, binding, now + self.ttl)

    def redeem(self, token: Any, binding: tuple[str, str | None], now: float) -> str:
        """The call ``token`` continues, the token spent; raises StateRefused saying why not."""
        if not isinstance(token, str):
            raise StateRefused("requestState must be the string the relay gave")
        ticket = self._live.get(token)
        if ticket is None:
            why = self._gone.get(token)
            if why is not None:
                raise StateRefused(f"this requestState {why}")
            raise StateRefused(
                "this requestState is not one the relay issued (mrtr §Client Requirements 2: "
                "echo it exactly as it came)"
            )
        if ticket.expires <= now:
            self._forget(token, "has expired: the call it belonged to was abandoned")
            raise StateRefused("this requestState has expired: the call it belonged to ended")
        if ticket.binding != binding:
            method, name = ticket.binding
            raise StateRefused(
                f"this requestState belongs to another call ({method}"
                + (f" {name!r}" if name is not None else "")
                + "); it may be used only on the retry of that request (mrtr §Client "
                "Requirements 4)"
            )
        self._forget(token, "was used already: each round's requestState is good for one retry")
        return ticket.call

    def withdraw(self, call: str, why: str) -> None:
        """The call ended: its outstanding token is spent, with ``why`` for a late retry."""
        for token in [t for t, ticket in self._live.items() if ticket.call == call]:
            self._forget(token, why)

    def _forget(self, token: str, why: str) -> None:
        self._live.pop(token, None)
        self._gone[token] = why
        while len(self._gone) > _REMEMBERED:
            self._gone.popitem(last=False)
