"""Era detection (core/eras.py), a row per clause of 2026-07-28 basic/versioning and
basic/transports/streamable-http §Backward Compatibility."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_remote_py.core.eras import (
    PROTOCOL_VERSION_KEY,
    is_modern_request,
    jsonrpc_error_body,
    proves_modern,
    request_version,
)


def _error(code: Any, **extra: Any) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "m"}, **extra}
    ).encode()


@pytest.mark.parametrize(
    ("params", "modern"),
    [
        ({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}, True),
        # a version newer than we know is still modern: the server answers -32022 if need be
        ({"_meta": {PROTOCOL_VERSION_KEY: "2027-01-01"}}, True),
        ({"_meta": {PROTOCOL_VERSION_KEY: "2025-11-25"}}, False),
        ({"_meta": {PROTOCOL_VERSION_KEY: 20260728}}, False),
        ({"_meta": {"progressToken": 1}}, False),
        ({"_meta": "not-an-object"}, False),
        ({}, False),
    ],
    ids=["2026-07-28", "newer", "legacy-version", "not-a-string", "no-version", "bad-meta", "none"],
)
def test_versioning_every_request_declares_its_era_in_meta(
    params: dict[str, Any], modern: bool
) -> None:
    assert is_modern_request(params) is modern


def test_versioning_request_version_reads_the_meta_key() -> None:
    assert request_version({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}) == "2026-07-28"
    assert request_version({"_meta": {}}) is None


@pytest.mark.parametrize(
    ("status", "body", "modern"),
    [
        (400, _error(-32022, data={"supported": ["2026-07-28"]}), True),
        (400, _error(-32020), True),
        (400, _error(-32021), True),
        (404, _error(-32601), True),
        # -32601 with 200 or 400 is what a legacy server says to a method it does not know
        (400, _error(-32601), False),
        (200, _error(-32601), False),
        # a legacy server's own refusals: no session, a bad request
        (400, _error(-32600), False),
        (400, _error(-32000), False),
        (400, b"Bad Request: No valid session ID provided", False),
        (400, b"", False),
        (405, b"Method Not Allowed", False),
    ],
    ids=[
        "unsupported-version",
        "header-mismatch",
        "missing-capability",
        "method-not-found-404",
        "method-not-found-400",
        "method-not-found-200",
        "invalid-request",
        "legacy-server-error",
        "plain-text-400",
        "empty-400",
        "405",
    ],
)
def test_backward_compatibility_only_a_recognised_modern_error_proves_a_modern_server(
    status: int, body: bytes, modern: bool
) -> None:
    assert proves_modern(status, jsonrpc_error_body(body)) is modern


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'{"error": "text"}',
        b'{"error": {"code": "x"}}',
        b'{"error": {"code": true}}',
        b'{"result": {}}',
        b'{"jsonrpc": "2.0", "error": {"code": -32022',  # cut off at 8 KiB
        b"[" * 100_000,
        b"\xff\xfe",
    ],
    ids=[
        "array",
        "error-string",
        "code-string",
        "code-bool",
        "result",
        "truncated",
        "deep",
        "bytes",
    ],
)
def test_backward_compatibility_anything_but_one_jsonrpc_error_is_no_error_body(
    body: bytes,
) -> None:
    assert jsonrpc_error_body(body) is None
