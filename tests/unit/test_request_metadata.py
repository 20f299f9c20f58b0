"""The 2026-07-28 request metadata headers (core/request_metadata.py), a row per spec clause.

Clauses are from docs/specification/2026-07-28/basic/transports/streamable-http.mdx (§Request
Metadata, §Value Encoding, §Custom Headers from Tool Parameters) and server/tools.mdx
(§x-mcp-header).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mcp_remote_py.core.eras import PROTOCOL_VERSION_KEY
from mcp_remote_py.core.request_metadata import (
    InvalidToolHeaders,
    ParamHeader,
    encode_header_value,
    metadata_headers,
    param_headers,
    screen_tools,
)

META = {PROTOCOL_VERSION_KEY: "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "c"}}


def _sentinel(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


# §Value Encoding: the table of encoding examples, row by row.
@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("us-west1", "us-west1"),
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        (" padded ", "=?base64?IHBhZGRlZCA=?="),
        ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
        ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
    ],
)
def test_value_encoding_examples(value: str, header: str) -> None:
    assert encode_header_value(value) == header


@pytest.mark.parametrize(
    "value",
    ["tab\tinside", "a b", "~!#$%&'*+-.^_`|", "x", ""],
    ids=["inner-tab", "inner-space", "visible-ascii", "one-char", "empty"],
)
def test_value_encoding_plain_ascii_with_inner_space_or_tab_stays_as_it_is(value: str) -> None:
    assert encode_header_value(value) == value


@pytest.mark.parametrize(
    "value",
    ["\ttab-first", "trailing\t", "nul\x00", "del\x7f", "cr\r", "é"],
    ids=["leading-tab", "trailing-tab", "nul", "del", "cr", "latin-1"],
)
def test_value_encoding_controls_whitespace_ends_and_non_ascii_use_the_sentinel(
    value: str,
) -> None:
    assert encode_header_value(value) == _sentinel(value)


def test_value_encoding_a_lone_surrogate_from_json_is_encoded_not_raised() -> None:
    assert encode_header_value("\ud800").startswith("=?base64?")


# §Standard Request Headers.
def test_standard_headers_every_request_has_mcp_method_and_the_protocol_version() -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
    assert metadata_headers(body) == [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/list"),
    ]


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("tools/call", {"name": "get_weather", "arguments": {}}, "get_weather"),
        ("prompts/get", {"name": "greet"}, "greet"),
        ("resources/read", {"uri": "file:///projects/myapp/config.json"}, None),
    ],
)
def test_standard_headers_mcp_name_mirrors_params_name_or_uri(
    method: str, params: dict[str, Any], name: str | None
) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}
    expected = name if name is not None else params["uri"]
    assert ("Mcp-Name", expected) in metadata_headers(body)


def test_standard_headers_mcp_name_outside_the_safe_set_uses_the_sentinel() -> None:
    body = {"method": "resources/read", "params": {"uri": "file:///tmp/ünïcode.txt"}}
    assert ("Mcp-Name", _sentinel("file:///tmp/ünïcode.txt")) in metadata_headers(body)


def test_standard_headers_no_mcp_name_for_other_methods_and_no_version_without_meta() -> None:
    body = {"method": "server/discover", "params": {"name": "not-a-name-field"}}
    assert metadata_headers(body) == [("Mcp-Method", "server/discover")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, []),
        ({"method": 7}, []),
        ({"method": "tools/call", "params": "oops"}, [("Mcp-Method", "tools/call")]),
        ({"method": "tools/call", "params": {"name": 3}}, [("Mcp-Method", "tools/call")]),
        ({"method": "ping", "params": {"_meta": 3}}, [("Mcp-Method", "ping")]),
        ({"method": "a\r\nX: y"}, [("Mcp-Method", _sentinel("a\r\nX: y"))]),
    ],
    ids=[
        "empty",
        "method-not-string",
        "params-not-object",
        "name-not-string",
        "meta-not-object",
        "method-with-crlf",
    ],
)
def test_standard_headers_odd_bodies_give_only_what_they_carry(
    body: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert metadata_headers(body) == expected


# §Custom Headers from Tool Parameters: the example tool and its resulting request.
EXECUTE_SQL = {
    "name": "execute_sql",
    "inputSchema": {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "query": {"type": "string"},
        },
        "required": ["region", "query"],
    },
}


def test_custom_headers_the_spec_example_gives_mcp_param_region() -> None:
    params = param_headers(EXECUTE_SQL["inputSchema"])
    assert params == (ParamHeader("Region", ("region",)),)
    body = {
        "method": "tools/call",
        "params": {
            "_meta": META,
            "name": "execute_sql",
            "arguments": {"region": "us-west1", "query": "SELECT * FROM users"},
        },
    }
    assert metadata_headers(body, params) == [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "execute_sql"),
        ("Mcp-Param-Region", "us-west1"),
    ]


@pytest.mark.parametrize(
    ("value", "header"),
    [(42, "42"), (-7, "-7"), (True, "true"), (False, "false"), (42.0, "42"), ("é", _sentinel("é"))],
)
def test_custom_headers_type_conversion(value: Any, header: str) -> None:
    body = {"method": "tools/call", "params": {"name": "t", "arguments": {"v": value}}}
    assert metadata_headers(body, [ParamHeader("V", ("v",))])[-1] == ("Mcp-Param-V", header)


@pytest.mark.parametrize(
    "arguments",
    [{"v": None}, {}, {"v": {"nested": 1}}, {"v": [1]}, {"v": 1.5}, None, "not-an-object"],
    ids=["null", "absent", "object", "array", "fraction", "no-arguments", "arguments-string"],
)
def test_custom_headers_null_absent_or_non_primitive_values_send_no_header(
    arguments: Any,
) -> None:
    body = {"method": "tools/call", "params": {"name": "t", "arguments": arguments}}
    headers = metadata_headers(body, [ParamHeader("V", ("v",))])
    assert [name for name, _ in headers] == ["Mcp-Method", "Mcp-Name"]


def test_custom_headers_nested_object_properties_follow_the_property_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "target": {
                "type": "object",
                "properties": {"tenant": {"type": "string", "x-mcp-header": "Tenant"}},
            }
        },
    }
    params = param_headers(schema)
    assert params == (ParamHeader("Tenant", ("target", "tenant")),)
    body = {
        "method": "tools/call",
        "params": {"name": "t", "arguments": {"target": {"tenant": "a"}}},
    }
    assert ("Mcp-Param-Tenant", "a") in metadata_headers(body, params)


def test_custom_headers_only_for_tools_call() -> None:
    body = {"method": "prompts/get", "params": {"name": "p", "arguments": {"v": "x"}}}
    assert all(
        not n.startswith("Mcp-Param-")
        for n, _ in metadata_headers(body, [ParamHeader("V", ("v",))])
    )


# server/tools §x-mcp-header: the constraints, each breaking the tool.
def _tool_with(prop: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"p": prop, **extra}}


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (_tool_with({"type": "string", "x-mcp-header": ""}), "not an HTTP header name token"),
        (_tool_with({"type": "string", "x-mcp-header": "Has Space"}), "token"),
        (_tool_with({"type": "string", "x-mcp-header": "Bad\r\nX: y"}), "token"),
        (_tool_with({"type": "string", "x-mcp-header": 5}), "token"),
        (_tool_with({"type": "number", "x-mcp-header": "N"}), "not integer, string or boolean"),
        (_tool_with({"type": "object", "x-mcp-header": "O"}), "not integer, string or boolean"),
        (_tool_with({"type": "array", "x-mcp-header": "A"}), "not integer, string or boolean"),
        (_tool_with({"x-mcp-header": "NoType"}), "not integer, string or boolean"),
        (_tool_with({"type": ["string", "integer"], "x-mcp-header": "Two"}), "not integer"),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"type": "string", "x-mcp-header": "Same"},
                    "b": {"type": "string", "x-mcp-header": "sAME"},
                },
            },
            "repeats the one on parameter a",
        ),
        (
            _tool_with({"type": "array", "items": {"type": "string", "x-mcp-header": "I"}}),
            "not reachable",
        ),
        (
            _tool_with({"oneOf": [{"type": "string", "x-mcp-header": "O"}]}),
            "schema location /p/oneOf/0",
        ),
        (
            {"type": "object", "$defs": {"d": {"type": "string", "x-mcp-header": "D"}}},
            "schema location /$defs/d",
        ),
        ({"type": "object", "x-mcp-header": "Root"}, "the schema root"),
        (
            _tool_with(
                {
                    "type": "object",
                    "patternProperties": {"^x": {"type": "string", "x-mcp-header": "P"}},
                }
            ),
            "not reachable",
        ),
    ],
    ids=[
        "empty",
        "space",
        "crlf-injection",
        "not-a-string",
        "number",
        "object",
        "array",
        "no-type",
        "two-types",
        "case-insensitive-duplicate",
        "under-items",
        "under-oneOf",
        "under-defs",
        "on-the-root",
        "under-patternProperties",
    ],
)
def test_x_mcp_header_constraint_breaks_the_tool(schema: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidToolHeaders, match="x-mcp-header") as raised:
        param_headers(schema)
    assert reason in str(raised.value)


def test_x_mcp_header_nullable_primitive_is_allowed() -> None:
    schema = _tool_with({"type": ["string", "null"], "x-mcp-header": "Opt"})
    assert param_headers(schema) == (ParamHeader("Opt", ("p",)),)


@pytest.mark.parametrize(
    "schema",
    [
        # a parameter *named* x-mcp-header is a property name, not an annotation
        {"type": "object", "properties": {"x-mcp-header": {"type": "string"}}},
        # instance data that happens to hold the key
        _tool_with({"type": "object", "default": {"x-mcp-header": "NotOne"}}),
        _tool_with({"type": "string", "enum": [{"x-mcp-header": "E"}]}),
        None,
        "not-a-schema",
        {"type": "object"},
    ],
    ids=["property-named-x-mcp-header", "in-default", "in-enum", "none", "string", "no-props"],
)
def test_x_mcp_header_schemas_without_annotations_have_no_param_headers(schema: Any) -> None:
    assert param_headers(schema) == ()


def test_x_mcp_header_invalid_tools_are_left_out_of_tools_list_with_the_reason() -> None:
    bad = {"name": "bad", "inputSchema": _tool_with({"type": "number", "x-mcp-header": "N"})}
    plain = {"name": "plain", "inputSchema": {"type": "object"}}
    odd = {"no-name": True}
    kept, headers, rejected = screen_tools([EXECUTE_SQL, bad, plain, odd])
    assert kept == [EXECUTE_SQL, plain, odd]
    assert headers == {"execute_sql": (ParamHeader("Region", ("region",)),)}
    assert [r.name for r in rejected] == ["bad"]
    assert "parameter p" in rejected[0].reason
    assert "number" in rejected[0].reason
