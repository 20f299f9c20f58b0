"""The 2026-07-28 request metadata headers, derived from a message and its tool's input schema.

2026-07-28 basic/transports/streamable-http §Request Metadata: every POST carries
``MCP-Protocol-Version`` (the body's ``_meta`` version), ``Mcp-Method``, ``Mcp-Name`` for
``tools/call``, ``resources/read`` and ``prompts/get``, and ``Mcp-Param-{Name}`` for each
parameter the tool's ``inputSchema`` marks with ``x-mcp-header``. A value that is not a plain
ASCII header value travels in the Base64 sentinel ``=?base64?...?=``.

Pure functions of their arguments: the transport calls ``metadata_headers`` with the message and
the ``ParamHeader``s that ``screen_tools`` found in the last ``tools/list``. ``screen_tools`` also
applies server/tools §x-mcp-header: a tool whose annotations break the constraints is left out
of the list, with the reason, so one bad tool does not take the others down.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .eras import PROTOCOL_VERSION_KEY

__all__ = [
    "InvalidToolHeaders",
    "ParamHeader",
    "RejectedTool",
    "encode_header_value",
    "metadata_headers",
    "param_headers",
    "screen_tools",
]

# §Standard Request Headers: the body field that Mcp-Name mirrors, by method.
_NAME_FIELD = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# RFC 9110 §5.1: a field name is a token (1*tchar); tchar excludes controls, so CR/LF too.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: visible ASCII, space and tab; §Value Encoding wants no leading/trailing
# whitespace either, so a plain value starts and ends with a visible character.
_PLAIN = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?")
_SENTINEL_PREFIX, _SENTINEL_SUFFIX = "=?base64?", "?="
_PRIMITIVE_TYPES = frozenset({"string", "integer", "boolean"})
# JSON Schema keywords whose value is a map from names to subschemas, not a schema itself.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Keywords whose value is instance data: an "x-mcp-header" key inside is not an annotation.
_INSTANCE_DATA = frozenset({"const", "enum", "default", "examples"})
# server/tools §x-mcp-header: integers within IEEE 754 double precision's safe range.
_MAX_SAFE_INTEGER = 2**53 - 1


class InvalidToolHeaders(ValueError):
    """A tool's ``x-mcp-header`` annotations break server/tools §x-mcp-header; says which."""


@dataclass(frozen=True, slots=True)
class ParamHeader:
    """``Mcp-Param-{name}`` mirrors the call argument at ``path`` (a chain of property names)."""

    name: str
    path: tuple[str, ...]

    @property
    def header(self) -> str:
        return f"Mcp-Param-{self.name}"


@dataclass(frozen=True, slots=True)
class RejectedTool:
    """A tool left out of ``tools/list``, and why (for the warning the spec asks for)."""

    name: str
    reason: str


def encode_header_value(value: str) -> str:
    """§Value Encoding: ``value`` as it is when it is a plain ASCII header value, else the
    Base64 sentinel of its UTF-8; a plain value that looks like the sentinel is encoded too."""
    looks_encoded = value.startswith(_SENTINEL_PREFIX) and value.endswith(_SENTINEL_SUFFIX)
    if _PLAIN.fullmatch(value) and not looks_encoded:
        return value
    encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"{_SENTINEL_PREFIX}{encoded}{_SENTINEL_SUFFIX}"


def param_headers(input_schema: Any) -> tuple[ParamHeader, ...]:
    """The ``x-mcp-header`` annotations of a tool's ``inputSchema``, in schema order.

    Raises InvalidToolHeaders when one breaks a constraint: not a non-empty token, not unique
    (case-insensitively), on a parameter whose type is not integer, string or boolean, or not
    statically reachable (a chain of ``properties`` keys from the root: not under ``items``,
    ``oneOf``, ``$ref``'s targets and the like)."""
    found: list[ParamHeader] = []
    seen: dict[str, str] = {}
    for path, schema, reachable in _annotated_schemas(input_schema, (), True):
        value = schema["x-mcp-header"]
        where = _describe(path, reachable)
        if not reachable or not path:
            raise InvalidToolHeaders(
                f"x-mcp-header on {where} is not reachable from the schema root through "
                "'properties' alone"
            )
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            raise InvalidToolHeaders(
                f"x-mcp-header {value!r} on {where} is not an HTTP header name token"
            )
        folded = value.lower()
        if folded in seen:
            raise InvalidToolHeaders(
                f"x-mcp-header {value!r} on {where} repeats the one on {seen[folded]} "
                "(names are compared case-insensitively)"
            )
        seen[folded] = where
        kind = _primitive_type(schema.get("type"))
        if kind is None:
            raise InvalidToolHeaders(
                f"x-mcp-header {value!r} is on {where}, whose type {schema.get('type')!r} is "
                "not integer, string or boolean"
            )
        found.append(ParamHeader(value, path))
    return tuple(found)


def screen_tools(
    tools: Sequence[Any],
) -> tuple[list[Any], dict[str, tuple[ParamHeader, ...]], list[RejectedTool]]:
    """Split a ``tools/list`` result's tools into those kept (in order), the param headers of
    each kept tool by name, and the tools rejected for invalid ``x-mcp-header``s."""
    kept: list[Any] = []
    headers: dict[str, tuple[ParamHeader, ...]] = {}
    rejected: list[RejectedTool] = []
    for tool in tools:
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            kept.append(tool)  # not ours to judge: the client sees what the server sent
            continue
        try:
            found = param_headers(tool.get("inputSchema"))
        except InvalidToolHeaders as exc:
            rejected.append(RejectedTool(tool["name"], str(exc)))
            continue
        except RecursionError:
            rejected.append(RejectedTool(tool["name"], "its inputSchema is nested too deeply"))
            continue
        kept.append(tool)
        if found:
            headers[tool["name"]] = found
    return kept, headers, rejected


def metadata_headers(
    body: Mapping[str, Any], params: Sequence[ParamHeader] = ()
) -> list[tuple[str, str]]:
    """The §Request Metadata headers for a request ``body``: ``MCP-Protocol-Version`` (when
    its ``_meta`` has one), ``Mcp-Method``, ``Mcp-Name`` where the method has one, and one
    ``Mcp-Param-*`` for each of ``params`` whose argument is present and not null."""
    headers: list[tuple[str, str]] = []
    method = body.get("method")
    fields = body.get("params")
    fields = fields if isinstance(fields, Mapping) else {}
    meta = fields.get("_meta")
    version = meta.get(PROTOCOL_VERSION_KEY) if isinstance(meta, Mapping) else None
    if isinstance(version, str):
        headers.append(("MCP-Protocol-Version", encode_header_value(version)))
    if not isinstance(method, str):
        return headers
    headers.append(("Mcp-Method", encode_header_value(method)))
    name_field = _NAME_FIELD.get(method)
    if name_field is not None and isinstance(fields.get(name_field), str):
        headers.append(("Mcp-Name", encode_header_value(fields[name_field])))
    if method == "tools/call":
        arguments = fields.get("arguments")
        for param in params:
            text = _header_text(_value_at(arguments, param.path))
            if text is not None:
                headers.append((param.header, encode_header_value(text)))
    return headers


def _annotated_schemas(
    node: Any, path: tuple[str, ...], reachable: bool
) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any], bool]]:
    """Every subschema carrying ``x-mcp-header``: its property path and whether it is
    statically reachable. Walks the whole schema, since an annotation anywhere else makes the
    tool invalid (§Custom Headers from Tool Parameters)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _annotated_schemas(item, (*path, str(index)), False)
        return
    if not isinstance(node, Mapping):
        return
    if "x-mcp-header" in node:
        yield path, node, reachable
    for keyword, value in node.items():
        if keyword in _INSTANCE_DATA or keyword == "x-mcp-header":
            continue
        if keyword in _SCHEMA_MAPS and isinstance(value, Mapping):
            for name, subschema in value.items():
                if reachable and keyword == "properties":
                    yield from _annotated_schemas(subschema, (*path, str(name)), True)
                else:
                    yield from _annotated_schemas(subschema, (*path, keyword, str(name)), False)
        else:
            yield from _annotated_schemas(value, (*path, keyword), False)


def _primitive_type(declared: Any) -> str | None:
    """The one primitive type a parameter may have (``null`` alongside is allowed: a null value
    just sends no header); None when it is missing, ``number``, structured or several."""
    kinds = [declared] if isinstance(declared, str) else declared
    if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
        return None
    primitive = [kind for kind in kinds if kind != "null"]
    if len(primitive) != 1 or primitive[0] not in _PRIMITIVE_TYPES:
        return None
    return str(primitive[0])


def _value_at(arguments: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(arguments, Mapping) or name not in arguments:
            return None
        arguments = arguments[name]
    return arguments


def _header_text(value: Any) -> str | None:
    """§Value Encoding's type conversion; None for a value that sends no header (null, absent,
    or not a primitive: the server's own argument validation answers that call)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return str(int(value))  # 42.0 is the integer 42; servers compare numerically
    if isinstance(value, str):
        return value
    return None


def _describe(path: tuple[str, ...], reachable: bool) -> str:
    """A parameter by its property path; anything else by its place in the schema."""
    if not path:
        return "the schema root"
    return "parameter " + ".".join(path) if reachable else "schema location /" + "/".join(path)
