"""The bridge up: what a legacy client's messages become for a server that speaks only 2026-07-28.

A legacy client (Claude Desktop) opens with ``initialize`` and then speaks without ``_meta``; a
modern-only server wants the version, the client's capabilities and its info on every request
and has no handshake, no ``ping``, no ``logging/setLevel``, no ``resources/subscribe`` and no
server→client requests (2026-07-28 changelog major changes 2, 4, 5, 7). ``LegacyFace`` holds
what the bridge knows of the client and answers these rules:

1. ``initialize`` is answered from ``server/discover`` (server/discover §DiscoverResult): the
   client's own version when it is one of the handshake era's, the server's capabilities, its
   info (``_meta`` serverInfo) and instructions. ``notifications/initialized`` goes nowhere.
2. Every other request is stamped with the spec's ``_meta`` keys (basic/index §_meta), beside
   the client's own (a progress token); ``logLevel`` once the client set one (the server MUST
   NOT log to requests without it, changelog 5).
3. ``ping``, ``logging/setLevel``, ``resources/subscribe`` and ``unsubscribe`` are answered by
   the bridge: the level rides on later requests, the subscriptions on the listen filter.
4. Results lose ``resultType`` (changelog 8 added it; legacy schemas have none), and a
   ``resources/read`` error -32602 naming a uri becomes the legacy -32002 (resources §Error
   Handling: 2026-07-28 renumbered "resource not found").
5. An ``input_required`` result (basic/patterns/mrtr) is a round of server→client requests,
   each allowed only when the client declared its capability; their answers go back in
   ``inputResponses`` on a retry of the request, with ``requestState`` echoed as it came.
6. List and resource changes come from one ``subscriptions/listen`` whose filter follows the
   server's capabilities and the client's subscriptions; its acknowledgement and subscription
   ids are not the legacy client's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .eras import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LEGACY_VERSIONS,
    LOG_LEVEL_KEY,
    MODERN_VERSIONS,
    NEWEST_LEGACY,
    PROTOCOL_VERSION_KEY,
    SERVER_INFO_KEY,
    SUBSCRIPTION_ID_KEY,
)
from .jsonrpc import INVALID_PARAMS, Kind, Message, RequestId

__all__ = [
    "MRTR_METHODS",
    "InputRequest",
    "InputRoundError",
    "LegacyFace",
    "input_requests",
    "is_input_required",
    "legacy_notification",
    "legacy_response",
    "retry_body",
]

# mrtr §Supported Requests: the only requests a server may answer with input_required.
MRTR_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
# Which client capability each server→client request needs (mrtr §Server Requirements 7).
_CAPABILITY_OF = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}
_LOCAL = frozenset({"ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"})
RESOURCE_NOT_FOUND_LEGACY = -32002
# A requestState is the server's context for one call (a sealed token of a few hundred bytes in
# both SDKs); one this large is echoed round after round by nobody's design.
MAX_REQUEST_STATE = 1 << 20


class InputRoundError(ValueError):
    """An ``input_required`` result the bridge cannot carry to the client; says why."""


@dataclass(frozen=True, slots=True)
class InputRequest:
    """One entry of ``inputRequests``: the server's key, and the request for the client."""

    key: str
    method: str
    params: dict[str, Any]


@dataclass
class LegacyFace:
    """The legacy client as the bridge knows it from its ``initialize`` and what followed."""

    requested_version: str
    capabilities: dict[str, Any]
    info: dict[str, Any]
    modern_version: str = MODERN_VERSIONS[0]
    log_level: str | None = None
    subscriptions: list[str] = field(default_factory=list)

    @classmethod
    def from_initialize(cls, params: Mapping[str, Any]) -> LegacyFace:
        version = params.get("protocolVersion")
        capabilities = params.get("capabilities")
        info = params.get("clientInfo")
        return cls(
            requested_version=version if isinstance(version, str) else NEWEST_LEGACY,
            capabilities=dict(capabilities) if isinstance(capabilities, dict) else {},
            info=dict(info) if isinstance(info, dict) else {"name": "unknown", "version": "0"},
        )

    def meta(self) -> dict[str, Any]:
        """Rule 2: the spec's ``_meta`` keys for this client's requests."""
        meta: dict[str, Any] = {
            PROTOCOL_VERSION_KEY: self.modern_version,
            CLIENT_CAPABILITIES_KEY: self.capabilities,
            CLIENT_INFO_KEY: self.info,
        }
        if self.log_level is not None:
            meta[LOG_LEVEL_KEY] = self.log_level
        return meta

    def stamped(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A request ``body`` with the spec's ``_meta`` keys over the client's own."""
        params = body.get("params")
        params = dict(params) if isinstance(params, dict) else {}
        own = params.get("_meta")
        params["_meta"] = {**(own if isinstance(own, dict) else {}), **self.meta()}
        return {**body, "params": params}

    def initialize_result(
        self, request_id: RequestId, discover: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Rule 1: the client's InitializeResult, from the server's DiscoverResult."""
        meta = discover.get("_meta")
        server_info = meta.get(SERVER_INFO_KEY) if isinstance(meta, dict) else None
        capabilities = discover.get("capabilities")
        version = self.requested_version
        result: dict[str, Any] = {
            "protocolVersion": version if version in LEGACY_VERSIONS else NEWEST_LEGACY,
            "capabilities": capabilities if isinstance(capabilities, dict) else {},
            "serverInfo": server_info
            if isinstance(server_info, dict)
            else {"name": "unknown", "version": "0"},
        }
        instructions = discover.get("instructions")
        if isinstance(instructions, str):
            result["instructions"] = instructions
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def answers_locally(self, method: str | None) -> bool:
        return method in _LOCAL

    def answer_locally(self, message: Message) -> tuple[dict[str, Any], bool]:
        """Rule 3: the answer to a request the bridge keeps, and whether the listen filter
        changed with it."""
        params = message.params
        changed = False
        if message.method == "logging/setLevel":
            level = params.get("level")
            if isinstance(level, str):
                self.log_level = level
        elif message.method in ("resources/subscribe", "resources/unsubscribe"):
            uri = params.get("uri")
            if isinstance(uri, str):
                subscribed = uri in self.subscriptions
                if message.method == "resources/subscribe" and not subscribed:
                    self.subscriptions.append(uri)
                    changed = True
                elif message.method == "resources/unsubscribe" and subscribed:
                    self.subscriptions.remove(uri)
                    changed = True
        return {"jsonrpc": "2.0", "id": message.id, "result": {}}, changed

    def listen(
        self, request_id: RequestId, server_capabilities: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Rule 6: the ``subscriptions/listen`` request for what the server can announce; None
        when it announces nothing."""
        wanted: dict[str, Any] = {}
        for kind, flag in (
            ("tools", "toolsListChanged"),
            ("prompts", "promptsListChanged"),
            ("resources", "resourcesListChanged"),
        ):
            declared = server_capabilities.get(kind)
            if isinstance(declared, dict) and declared.get("listChanged"):
                wanted[flag] = True
        if self.subscriptions:
            wanted["resourceSubscriptions"] = list(self.subscriptions)
        if not wanted:
            return None
        return self.stamped(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "subscriptions/listen",
                "params": {"notifications": wanted},
            }
        )

    def can_answer(self, method: str) -> bool:
        """Whether the client declared the capability a server→client request needs."""
        capability = _CAPABILITY_OF.get(method)
        return capability is not None and isinstance(self.capabilities.get(capability), dict)


def is_input_required(body: Mapping[str, Any]) -> bool:
    result = body.get("result")
    return isinstance(result, dict) and result.get("resultType") == "input_required"


def input_requests(result: Mapping[str, Any], face: LegacyFace) -> list[InputRequest]:
    """Rule 5: the round's requests for the client, in the server's order. Raises
    InputRoundError for a malformed round or one the client cannot answer."""
    requests = result.get("inputRequests", {})
    if not isinstance(requests, dict):
        raise InputRoundError("its inputRequests is not an object")
    state = result.get("requestState")
    if state is not None and not isinstance(state, str):
        raise InputRoundError("its requestState is not a string")
    if not requests and state is None:
        raise InputRoundError("it carries neither inputRequests nor requestState")
    if isinstance(state, str) and len(state) > MAX_REQUEST_STATE:
        raise InputRoundError(
            f"its requestState is {len(state):,} characters, more than the "
            f"{MAX_REQUEST_STATE:,} the relay carries"
        )
    round_: list[InputRequest] = []
    for key, request in requests.items():
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params", {}) if isinstance(request, dict) else None
        if not isinstance(method, str) or not isinstance(params, dict):
            raise InputRoundError(f"input request {key!r} is not a request")
        if method not in _CAPABILITY_OF:
            raise InputRoundError(
                f"input request {key!r} asks for {method!r}, which MRTR does not allow"
            )
        if not face.can_answer(method):
            raise InputRoundError(
                f"the server asked for {method} ({key!r}), but the client did not declare the "
                f"{_CAPABILITY_OF[method]} capability"
            )
        round_.append(InputRequest(str(key), method, params))
    return round_


def retry_body(
    original: Mapping[str, Any], result: Mapping[str, Any], responses: Mapping[str, Any]
) -> dict[str, Any]:
    """Rule 5: the retry of ``original`` with the client's answers and the server's
    ``requestState`` exactly as it came (mrtr §Client Requirements 2); the caller gives it a new
    id (requirement 3)."""
    params = dict(original.get("params") or {})
    params.pop("inputResponses", None)
    params.pop("requestState", None)
    if responses:
        params["inputResponses"] = dict(responses)
    state = result.get("requestState")
    if isinstance(state, str):
        params["requestState"] = state
    return {**original, "params": params}


def legacy_response(message: Message, method: str | None) -> Message:
    """Rule 4: ``message`` as a legacy client expects it; the same object when nothing changes
    (a large result keeps its bytes and its ``resultType``: re-encoding megabytes for one key
    that a client ignores would cost more than it is worth)."""
    if message.is_large:
        return message
    body = message.body
    result = body.get("result")
    if isinstance(result, dict) and "resultType" in result:
        trimmed = {k: v for k, v in result.items() if k != "resultType"}
        return Message(Kind.RESPONSE, {**body, "result": trimmed}, "")
    error = body.get("error")
    if (
        method == "resources/read"
        and isinstance(error, dict)
        and error.get("code") == INVALID_PARAMS
        and isinstance(error.get("data"), dict)
        and "uri" in error["data"]
    ):
        return Message(
            Kind.RESPONSE, {**body, "error": {**error, "code": RESOURCE_NOT_FOUND_LEGACY}}, ""
        )
    return message


def legacy_notification(message: Message) -> Message | None:
    """Rule 6: a listen stream's notification for the legacy client; None for the
    acknowledgement. The subscription id is dropped from ``_meta``."""
    if message.method == "notifications/subscriptions/acknowledged":
        return None
    params = message.params
    meta = params.get("_meta")
    if not isinstance(meta, dict) or SUBSCRIPTION_ID_KEY not in meta:
        return message
    rest = {k: v for k, v in meta.items() if k != SUBSCRIPTION_ID_KEY}
    params = {k: v for k, v in params.items() if k != "_meta"}
    if rest:
        params["_meta"] = rest
    return Message(Kind.NOTIFICATION, {**message.body, "params": params}, "")
