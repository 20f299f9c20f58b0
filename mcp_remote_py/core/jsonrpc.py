"""JSON-RPC 2.0 framing and classification for the stdio side, without I/O.

The relay reads newline-delimited JSON-RPC from the desktop client and writes the same back. This
module turns bytes into classified messages and messages into the one-line bytes that stdout may
carry (stdio transport, 2025-11-25 §stdio: "Messages are delimited by newlines, and MUST NOT
contain embedded newlines").

Classification follows JSON-RPC 2.0: a *request* has ``method`` and ``id``; a *notification* has
``method`` and no ``id``; a *response* has ``id`` and ``result`` or ``error``. An array is a batch
(2025-03-26 servers may send them); each element is classified on its own.
"""

from __future__ import annotations

import enum
import functools
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from .eras import METHOD_NOT_FOUND, PROTOCOL_VERSION_KEY, request_version

__all__ = [
    "CONNECTION_LOST",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "MAX_DEPTH",
    "PARSE_ERROR",
    "REQUEST_BLOCKED",
    "RELAY_FAILURE",
    "REQUEST_TIMEOUT",
    "SHUTTING_DOWN",
    "UPSTREAM_ERROR",
    "Kind",
    "LineSplitter",
    "Message",
    "MessageError",
    "RequestId",
    "cancelled_notification",
    "encode",
    "error_response",
    "line",
    "nesting_exceeds",
    "parse_message",
    "parse_payload",
]

RequestId = str | int

# One-line messages longer than this keep only their line, not their parsed form as well, and are
# classified from their envelope alone (see _envelope).
KEEP_PARSED_BELOW = 1 << 20

# The deepest a message may nest arrays and objects, itself counted as the first level. Whatever
# touches a message after the parser recurses a level at a time in Python, and Python stops at
# 1000 frames: copy.deepcopy (the captured initialize, logging/setLevel, resources/subscribe)
# takes two frames a level, so a message 600 deep parsed fine and then killed the relay. 256
# leaves room for that and for the frames beneath; MCP messages nest a few levels and JSON
# Schemas a few dozen (the Python SDK's parser refuses over 200, serde_json over 128).
MAX_DEPTH = 256

# JSON-RPC 2.0 reserved codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
# METHOD_NOT_FOUND (-32601) is eras.py's, which reads it in a server's answers.
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# The relay's own codes, in the implementation-defined server-error range -32000..-32099.
# -32002 (resource not found) and -32042 (URL elicitation required) are taken by MCP itself.
UPSTREAM_ERROR = -32001  # the server could not be reached or answered with an HTTP error
CONNECTION_LOST = -32003  # the connection broke while the server was handling the request
REQUEST_BLOCKED = (
    -32004
)  # the relay refuses the request (for example a tool hidden by --ignore-tool)
REQUEST_TIMEOUT = -32005  # the request could not be delivered within --request-timeout
SHUTTING_DOWN = -32006  # the relay is exiting
RELAY_FAILURE = -32007  # the relay itself failed on this request (a bug, logged with a traceback)


class Kind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


class MessageError(ValueError):
    """A line that is not a JSON-RPC message; ``code`` is the JSON-RPC error to answer with."""

    def __init__(self, code: int, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class Message:
    """One classified JSON-RPC message and, when it arrived on one line, that line as it came
    (bytes from stdin or a JSON body, text from an SSE event); empty when it must be re-encoded.

    Relaying the line as it came costs no re-encoding. A large one-line message also lets go of
    its parsed form once classified (``body`` parses the line again if someone asks), so a
    100 MB result is not held twice while it waits for stdout.
    """

    __slots__ = ("_body", "id", "is_error", "kind", "method", "raw")

    def __init__(self, kind: Kind, body: dict[str, Any], raw: bytes | str) -> None:
        self.kind = kind
        self.raw = raw
        value = body.get("id")
        self.id: RequestId | None = (
            value if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        )
        method = body.get("method")
        self.method: str | None = method if isinstance(method, str) else None
        # Known from the envelope too, so a large answer need not be parsed again to ask.
        self.is_error = "error" in body
        self._body: dict[str, Any] | None = None if raw and len(raw) > KEEP_PARSED_BELOW else body

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            body: dict[str, Any] = json.loads(self.raw)
            return body  # not cached: large messages are asked rarely, and stay lean
        return self._body

    @property
    def is_large(self) -> bool:
        """Whether the message keeps only its line, not its parsed form (``body`` would parse
        it all again: a few milliseconds a megabyte)."""
        return self._body is None

    @property
    def protocol_version(self) -> str | None:
        """The version a request's ``_meta`` declares (2026-07-28 basic/index §_meta): read
        from the envelope alone for a large message, as ``result_type`` is."""
        if self._body is None:
            return _large_protocol_version(self.raw)
        return request_version(self.params)

    @property
    def result_type(self) -> str | None:
        """The result's ``resultType`` (2026-07-28 changelog 8): read from the envelope alone
        for a large message, so a 5 MB result is not parsed in full to ask."""
        if self._body is None:
            return _large_result_type(self.raw)
        result = self._body.get("result")
        kind = result.get("resultType") if isinstance(result, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def params(self) -> dict[str, Any]:
        value = self.body.get("params")
        return value if isinstance(value, dict) else {}


def _classify(body: Any, raw: bytes | str) -> Message:
    if not isinstance(body, dict):
        raise MessageError(INVALID_REQUEST, "a JSON-RPC message must be a JSON object")
    raw_id = body.get("id")
    has_id = "id" in body and raw_id is not None
    if has_id and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))):
        raise MessageError(INVALID_REQUEST, "a JSON-RPC id must be a string or an integer")
    request_id = raw_id if has_id else None
    if "method" in body:
        if not isinstance(body["method"], str):
            raise MessageError(INVALID_REQUEST, "'method' must be a string", request_id)
        return Message(Kind.REQUEST if has_id else Kind.NOTIFICATION, body, raw)
    if "result" in body or "error" in body:
        # An error response may carry a null id (it answers something unparseable).
        return Message(Kind.RESPONSE, body, raw)
    raise MessageError(
        INVALID_REQUEST,
        "not a JSON-RPC request, notification or response (no 'method', 'result' or 'error')",
        request_id,
    )


class _TooDeep(ValueError):
    """Well-formed JSON nested deeper than MAX_DEPTH (the id is kept so the error can answer
    the request)."""

    def __init__(self, request_id: RequestId | None) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")
        self.request_id = request_id


# What nesting_exceeds keeps of a message: quotes and brackets; and how each bracket moves the
# depth.
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')
_STEP = [0] * 256
_STEP[0x5B] = _STEP[0x7B] = 1  # [ {
_STEP[0x5D] = _STEP[0x7D] = -1  # ] }
# Below this size the brackets are counted; above, found one by one up to the limit (memchr),
# which stops early in a large structured message and costs one pass in a large text.
_COUNT_BELOW = 1 << 16


def _openers_exceed(data: bytes, limit: int) -> bool:
    """Whether ``data`` has more than ``limit`` opening brackets, strings included: more than
    any nesting deeper than ``limit`` needs, so False settles it."""
    if len(data) <= 2 * limit:
        return False
    if len(data) < _COUNT_BELOW:
        return data.count(b"[") + data.count(b"{") > limit
    found = 0
    for opener in (b"[", b"{"):
        pos = data.find(opener)
        while pos >= 0:
            found += 1
            if found > limit:
                return True
            pos = data.find(opener, pos + 1)
    return False


def nesting_exceeds(data: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether well-formed JSON ``data`` nests arrays and objects more than ``limit`` deep.

    A message with no more than ``limit`` brackets (nearly all) costs a count. The rest cost a
    few passes over their bytes in C, none of them per value, so a 5 MB structured result is
    not parsed twice: escaped backslashes and quotes are dropped (what is left of each string
    lies between two plain quotes), then every byte but quotes and brackets, then the strings,
    leaving the brackets outside strings in order. Taking out the innermost pairs a few times
    empties most; the others have their depth summed up bracket by bracket.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _openers_exceed(raw, limit):
        return False
    if b"\\" in raw:  # one memchr; the replacements cost more, and most data has no escape
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # strings that hold brackets
        skeleton = _STRING.sub(b"", skeleton)
    reduced = skeleton
    for _ in range(min(8, limit // 2)):  # each pass takes out one or two levels
        reduced = reduced.replace(b"[]", b"").replace(b"{}", b"")
        if not reduced:
            return False
    return _deepest(skeleton) > limit


def _deepest(skeleton: bytes) -> int:
    return max(itertools.accumulate(map(_STEP.__getitem__, skeleton)), default=0)


def _check_depth(data: bytes | str, body: Any) -> None:
    if nesting_exceeds(data):
        raw_id = body.get("id") if isinstance(body, dict) else None
        valid = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool)
        raise _TooDeep(raw_id if valid else None)


def _require_utf8(data: bytes) -> None:
    # json.loads would also take UTF-16 and UTF-32 bytes; MCP messages are UTF-8 only.
    if json.detect_encoding(data) != "utf-8":
        raise UnicodeDecodeError("utf-8", data[:4], 0, 1, "not UTF-8 (UTF-16/32 or a BOM)")


@functools.cache
def _envelope_decoder() -> Any:
    """msgspec's decoder for the members of a message that classify it; the others are checked to
    be well-formed JSON and skipped, and ``result`` and ``error`` are kept as unparsed spans to
    see whether they are there. msgspec is imported on the first large message (start-up)."""
    import msgspec

    envelope = msgspec.defstruct(
        "Envelope",
        [
            ("jsonrpc", Any, msgspec.UNSET),
            ("id", Any, msgspec.UNSET),
            ("method", Any, msgspec.UNSET),
            ("result", msgspec.Raw, msgspec.Raw()),
            ("error", msgspec.Raw, msgspec.Raw()),
        ],
    )
    return msgspec.json.Decoder(envelope)


@functools.cache
def _result_type_decoder() -> Any:
    import msgspec

    result = msgspec.defstruct("Result", [("resultType", Any, None)])
    outer = msgspec.defstruct("WithResult", [("result", result | None, None)])
    return msgspec.json.Decoder(outer)


@functools.cache
def _protocol_version_decoder() -> Any:
    import msgspec

    meta = msgspec.defstruct(
        "Meta", [("version", Any, None)], rename={"version": PROTOCOL_VERSION_KEY}
    )
    params = msgspec.defstruct("Params", [("meta", meta | None, None)], rename={"meta": "_meta"})
    outer = msgspec.defstruct("WithParams", [("params", params | None, None)])
    return msgspec.json.Decoder(outer)


def _large_protocol_version(data: bytes | str) -> str | None:
    import msgspec

    try:
        decoded = _protocol_version_decoder().decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None  # params or _meta that is not an object declares no version
    meta = decoded.params.meta if decoded.params is not None else None
    version = meta.version if meta is not None else None
    return version if isinstance(version, str) else None


def _large_result_type(data: bytes | str) -> str | None:
    import msgspec

    try:
        decoded = _result_type_decoder().decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None  # a result that is not an object has no resultType
    kind = decoded.result.resultType if decoded.result is not None else None
    return kind if isinstance(kind, str) else None


def large_answer_line(
    data: bytes | str, request_id: RequestId, defaults: Mapping[str, Any]
) -> bytes | None:
    """A large answer's line (its result an object) as the answer to ``request_id``, with the
    ``defaults`` its result lacks added: the result's text is copied once, not parsed into
    objects and encoded again (a 5 MB result: a few ms, not some 30). None when the line has no
    result object; other top-level members (the server's id) are not kept."""
    import msgspec

    try:
        result = memoryview(_envelope_decoder().decode(data).result)
        present = msgspec.json.decode(result, type=dict[str, msgspec.Raw]) if result else None
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if present is None:
        return None
    added = b",".join(
        json.dumps(key).encode() + b":" + json.dumps(value).encode()
        for key, value in defaults.items()
        if key not in present
    )
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(request_id).encode() + b',"result":{'
    if not present:
        return head + added + b"}}"
    # The result's members as they came, between its braces (JSON allows no text outside).
    return b"".join((head, added, b"," if added else b"", result[1:-1], b"}}"))


def _envelope(data: bytes | str) -> dict[str, Any] | None:
    """The classifying members of a large one-line JSON object, as a small dict for _classify;
    None when ``data`` is well-formed JSON but not an object (the caller parses it in full).

    A 5 MB tool result costs json.loads about 7 ms and a second copy of its text; this check of
    the whole line (well-formed JSON, valid UTF-8) takes about 2 ms and builds nothing big.
    """
    import msgspec

    try:
        if isinstance(data, bytes) and not data.isascii():
            data.decode("utf-8")  # msgspec does not check the UTF-8 of the strings it skips
        envelope = _envelope_decoder().decode(data)
    except msgspec.ValidationError:
        return None  # a batch, a bare value, or an object with no room for the checks below
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    members: dict[str, Any] = {}
    if envelope.jsonrpc is not msgspec.UNSET:
        members["jsonrpc"] = envelope.jsonrpc
    if envelope.id is not msgspec.UNSET:
        members["id"] = envelope.id
    if envelope.method is not msgspec.UNSET:
        members["method"] = envelope.method
    if len(envelope.result):
        members["result"] = None
    if len(envelope.error):
        members["error"] = None
    return members


def _loads(data: bytes | str, one_line: bool) -> Any:
    """``data`` parsed: in full, or (one-line messages above KEEP_PARSED_BELOW, whose parsed form
    is never kept) only its envelope. Raises ValueError, UnicodeDecodeError, RecursionError, or
    _TooDeep for JSON nested deeper than MAX_DEPTH (checked here, so that nothing after the
    parser recurses further)."""
    if isinstance(data, bytes):
        _require_utf8(data)
    if one_line and len(data) > KEEP_PARSED_BELOW:
        members = _envelope(data)
        if members is not None:
            _check_depth(data, members)
            return members
    body = json.loads(data)
    _check_depth(data, body)
    return body


def _spans_lines(data: bytes | str) -> bool:
    if isinstance(data, bytes):
        return b"\n" in data or b"\r" in data
    return "\n" in data or "\r" in data


def _too_deep(what: str) -> str:
    return (
        f"{what} nests arrays and objects deeper than {MAX_DEPTH} levels, more than the relay "
        "takes (nesting too deep)"
    )


def parse_message(line: bytes) -> Message:
    """Parse one line from the client into a single classified message.

    Raises MessageError with -32700 for bytes that are not UTF-8 JSON (or nest deeper than
    MAX_DEPTH; the error keeps the request's id) and -32600 for JSON that is not a JSON-RPC
    message. Batches are refused on the client side: MCP since 2025-06-18 has none,
    and stdio clients do not send them.
    """
    try:
        body = _loads(line, not _spans_lines(line))
    except UnicodeDecodeError as exc:
        raise MessageError(
            PARSE_ERROR, f"the line is not valid UTF-8 (byte {exc.start}): JSON-RPC needs UTF-8"
        ) from None
    except _TooDeep as exc:
        raise MessageError(PARSE_ERROR, _too_deep("the line"), exc.request_id) from None
    except ValueError as exc:
        raise MessageError(PARSE_ERROR, f"the line is not valid JSON: {exc}") from None
    except RecursionError:
        raise MessageError(PARSE_ERROR, _too_deep("the line")) from None
    if isinstance(body, list):
        raise MessageError(INVALID_REQUEST, "JSON-RPC batches are not supported on stdio")
    message = _classify(body, line)
    if body.get("jsonrpc") != "2.0":
        raise MessageError(
            INVALID_REQUEST, 'a JSON-RPC message must carry "jsonrpc": "2.0"', message.id
        )
    if "method" in body and "id" in body and body["id"] is None:
        # MCP basic §Requests: the id MUST NOT be null; it is no notification either.
        raise MessageError(INVALID_REQUEST, "a request id may not be null")
    return message


def parse_payload(data: bytes | str) -> list[Message]:
    """Parse a server payload (a JSON body or one SSE event's data): one message or a batch.

    Messages whose text spans several lines keep no raw form, so that they are re-encoded onto
    one line before they reach stdout.
    """
    one_line = not _spans_lines(data)
    try:
        body = _loads(data, one_line)
    except _TooDeep:
        raise MessageError(PARSE_ERROR, _too_deep("the server's message")) from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise MessageError(PARSE_ERROR, f"the server sent data that is not JSON: {exc}") from None
    except RecursionError:
        raise MessageError(PARSE_ERROR, _too_deep("the server's message")) from None
    if isinstance(body, list):
        # 2025-03-26 §Transports allows a batch; its elements are re-encoded one per line.
        return [_classify(item, b"") for item in body]
    return [_classify(body, data if one_line else b"")]


# For what msgspec will not take: one encoder (json.dumps with options builds one a call).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _line_encoder() -> Any:
    """msgspec's JSON encoder: a tenth of ``json``'s time on a small message (two encodings of
    each bridged call: its request and its answer)."""
    import msgspec

    return msgspec.json.Encoder()


def line(message: Message | dict[str, Any]) -> bytes | str:
    """The message as one compact line of JSON, without the newline: the line as it came when
    there is one (bytes, or text to be written as UTF-8), else a fresh encoding."""
    if isinstance(message, Message):
        if message.raw:
            return message.raw
        message = message.body
    try:
        data: bytes = _line_encoder().encode(message)
    except UnicodeEncodeError:
        # A lone surrogate (a peer's "\ud83d" escape, a string cut mid-emoji) has no UTF-8:
        # write it escaped, as it came.
        return json.dumps(message, ensure_ascii=True, separators=(",", ":"))
    except (TypeError, ValueError, OverflowError):
        return _COMPACT.encode(message)  # what msgspec refuses, json encodes (or refuses) as ever
    return data


def encode(message: Message | dict[str, Any]) -> bytes:
    """One line for stdout as bytes, ending in b"\\n" on every OS."""
    data = line(message)
    return (data if isinstance(data, bytes) else data.encode("utf-8")) + b"\n"


def cancelled_notification(request_id: RequestId, reason: str) -> dict[str, Any]:
    """``notifications/cancelled`` for a request the relay sent and no longer waits for."""
    return {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": reason},
    }


def error_response(
    request_id: RequestId | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class LineSplitter:
    """Splits a byte stream into lines without rescanning: a 50 MB line costs O(n), not O(n²).

    A line longer than ``max_line`` is dropped as it streams past (memory stays bounded) and
    reported once as ``None`` in place of the line, so the caller can answer it with an error.
    """

    def __init__(self, max_line: int) -> None:
        self._max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        lines: list[bytes | None] = []
        buffer = self._buffer
        buffer += data
        start = 0
        while True:
            newline = buffer.find(b"\n", max(start, self._scanned))
            if newline < 0:
                break
            if self._discarding:
                self._discarding = False
                lines.append(None)
            else:
                with memoryview(buffer) as view:
                    line = bytes(view[start:newline]).rstrip(b"\r")
                if line and not line.isspace():
                    lines.append(line)
            start = newline + 1
            self._scanned = start
        del buffer[:start]
        self._scanned = len(buffer)
        if len(buffer) > self._max_line:
            self._discarding = True
            buffer.clear()
            self._scanned = 0
        return lines

    def finish(self) -> list[bytes | None]:
        """The unterminated last line at end of input, if any."""
        if self._discarding:
            self._discarding = False
            return [None]
        line = bytes(self._buffer).rstrip(b"\r")
        self._buffer.clear()
        self._scanned = 0
        return [line] if line and not line.isspace() else []
