from __future__ import annotations

import re

import pytest

from mcp_remote_py.core.errors import UsageError
from mcp_remote_py.core.headers import (
    join_split_header_args,
    parse_header,
    parse_header_file,
)


def test_header_with_and_without_space() -> None:
    assert parse_header("X-Key: abc", {}) == ("X-Key", "abc")
    assert parse_header("X-Key:abc", {}) == ("X-Key", "abc")


def test_variables_are_expanded() -> None:
    env = {"TOKEN": "s3cret"}
    assert parse_header("Authorization: Bearer ${TOKEN}", env) == ("Authorization", "Bearer s3cret")


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(UsageError, match=r"API_TOKEN is not set"):
        parse_header("Authorization: Bearer ${API_TOKEN}", {})


@pytest.mark.parametrize("text", ["no colon", ": value", "Bad Name: x"])
def test_malformed_headers_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_header(text, {})


def test_transport_owned_headers_cannot_be_overridden() -> None:
    with pytest.raises(UsageError, match="sets Mcp-Session-Id itself"):
        parse_header("Mcp-Session-Id: x", {})


def test_header_file_skips_comments_and_names_the_line() -> None:
    content = "# tokens\nX-A: 1\n\nX-B: ${B}\n"
    assert parse_header_file(content, {"B": "2"}, "h.txt") == [("X-A", "1"), ("X-B", "2")]
    with pytest.raises(UsageError, match=r"h\.txt:2"):
        parse_header_file("X-A: 1\nbroken\n", {}, "h.txt")


def test_split_header_arguments_are_joined_back() -> None:
    argv = ["https://x/mcp", "--header", "Authorization:", "Bearer ${T}", "--ipv4"]
    assert join_split_header_args(argv) == [
        "https://x/mcp",
        "--header",
        "Authorization: Bearer ${T}",
        "--ipv4",
    ]


def test_a_header_followed_by_the_url_is_not_joined() -> None:
    argv = ["--header", "X-Empty:", "https://x/mcp"]
    assert join_split_header_args(argv) == argv


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("t\u2014k", "a non-ASCII character (U+2014)"),
        ("a\x7fb", "a control character (U+007F)"),
        ("a\x00b", "a control character (U+0000)"),
    ],
)
def test_a_value_no_http_header_can_carry_is_refused_without_showing_it(
    value: str, kind: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(kind)) as raised:
        parse_header("X-Token: ${T}", {"T": value})
    assert value not in str(raised.value)


def test_a_tab_and_spaces_inside_a_value_are_fine() -> None:
    assert parse_header("X-A: a b\tc", {}) == ("X-A", "a b\tc")
