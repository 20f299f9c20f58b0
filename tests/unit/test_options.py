"""The relay's options: unknown arguments said plainly, and the Node mcp-remote's options
carried over by the one table the parser and the translation share."""

from __future__ import annotations

import argparse

import pytest

from mcp_remote_py import cli
from mcp_remote_py.doctor import cli as doctor_cli
from mcp_remote_py.options import (
    COMMANDS,
    MCP_REMOTE_OPTIONS,
    build_parser,
    translate_mcp_remote,
    unknown_argument,
)

# The Node mcp-remote's options (its README and parseCommandLineArgs, 0.1.x), whatever they
# become here.
MCP_REMOTE_FLAGS = (
    "--header",
    "--header-file",
    "--transport",
    "--protocol",
    "--allow-http",
    "--debug",
    "--silent",
    "--ipv4",
    "--ignore-tool",
    "--enable-proxy",
    "--keep-alive",
    "--ping-interval",
    "--connect-timeout",
    "--auth-timeout",
    "--resource",
    "--client-metadata-url",
    "--host",
    "--callback-path",
    "--static-oauth-client-metadata",
    "--static-oauth-client-info",
    "--authorize-param",
    "--token-endpoint",
    "--headers-timeout",
    "--body-timeout",
    "--disable-resource-parameter",
    "--device-code",
    "--client-credentials",
    "--use-id-token",
    "--disable-cookies",
)


def parser_actions() -> dict[str, argparse.Action]:
    return {option: a for a in build_parser()._actions for option in a.option_strings}


def example_value(action: argparse.Action) -> str:
    if action.choices is not None:
        return str(list(action.choices)[-1])
    if action.type is not None:
        return "30"
    if action.dest == "header":
        return "X-Team: blue"
    return "https://mcp.example.com/resource"


# --------------------------------------------------------------------------- mcp-remote


def test_every_mcp_remote_option_the_relay_takes_is_carried_over() -> None:
    actions = parser_actions()
    shared = [flag for flag in MCP_REMOTE_FLAGS if flag in actions]
    # The ones the relay gained after the translation was first written are among them.
    assert {"--auth-timeout", "--resource", "--client-metadata-url", "--protocol"} <= set(shared)
    for flag in shared:
        action = actions[flag]
        given = [flag] if action.nargs == 0 else [flag, example_value(action)]
        url, args, notes = translate_mcp_remote(["https://mcp.example.com/mcp", *given])
        assert url == "https://mcp.example.com/mcp"
        assert args == given, flag
        assert notes == [], (flag, notes)
        build_parser().parse_args([url, *args])  # and the relay takes the result


def test_the_table_holds_only_what_the_parser_does_not_take() -> None:
    # An mcp-remote option the relay learns is carried over by the parser at once; an entry
    # left in the table for it would say "not supported" no more, but would be a lie in waiting.
    actions = parser_actions()
    assert not set(MCP_REMOTE_OPTIONS) & set(actions)
    for flag in MCP_REMOTE_FLAGS:
        assert flag in actions or flag in MCP_REMOTE_OPTIONS, flag
    for flag, option in MCP_REMOTE_OPTIONS.items():
        if option.args:  # a translation: the relay must take what it becomes
            value = "20" if option.takes_value else None
            _, args, notes = translate_mcp_remote(["https://h/mcp", flag, *([value] * bool(value))])
            build_parser().parse_args(["https://h/mcp", *args])
            assert notes == []
        else:
            assert option.note


def test_translation_renames_drops_and_checks_values() -> None:
    url, args, notes = translate_mcp_remote(
        [
            "https://h/mcp",
            "9696",
            "--silent",
            "--ping-interval=20",
            "--enable-proxy",
            "--static-oauth-client-info",
            '{"client_id":"x"}',
            "--protocol",
            "2026",
            "--transport=sse-only",
            "--auth-timeout",
            "soon",
            "--foo",
            "extra",
            "--header",
        ]
    )
    assert url == "https://h/mcp"
    assert args == [
        "--callback-port",
        "9696",
        "--log-level",
        "error",
        "--keepalive",
        "20",
        "--transport",
        "sse-only",
    ]
    joined = "\n".join(notes)
    assert "--enable-proxy is not needed" in joined
    assert "--static-oauth-client-info (OAuth client registration: give --oauth-client-id" in joined
    assert "--protocol '2026' is not one of auto, legacy, modern; dropped" in joined
    assert "--auth-timeout 'soon' is refused" in joined
    assert "unknown mcp-remote option --foo; dropped" in joined
    assert "ignored the extra argument 'extra'" in joined
    assert "--header had no value; dropped" in joined


def test_the_header_callback_sees_each_header() -> None:
    seen: list[str] = []

    def header(value: str) -> tuple[str, str | None]:
        seen.append(value)
        return "Authorization: Bearer ${X_TOKEN}", "the header held a literal token"

    _, args, notes = translate_mcp_remote(
        ["https://h/mcp", "--header", "Authorization: Bearer abc123456789"], header
    )
    assert seen == ["Authorization: Bearer abc123456789"]
    assert args == ["--header", "Authorization: Bearer ${X_TOKEN}"]
    assert notes == ["the header held a literal token"]


def test_the_doctors_translation_carries_the_shared_options_over() -> None:
    from mcp_remote_py.config import translate_mcp_remote as doctor_translation

    args, notes = doctor_translation(
        [
            "https://h/mcp",
            "--auth-timeout",
            "60",
            "--resource",
            "https://h",
            "--client-metadata-url",
            "https://app.example/client.json",
            "--protocol",
            "legacy",
        ]
    )
    assert args == [
        "https://h/mcp",
        "--auth-timeout",
        "60",
        "--resource",
        "https://h",
        "--client-metadata-url",
        "https://app.example/client.json",
        "--protocol",
        "legacy",
    ]
    assert not any("not supported" in note for note in notes), notes


# --------------------------------------------------------------------------- unknown arguments


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--hedaer", "X:1", "https://x/mcp"], "unknown option --hedaer (did you mean --header?)"),
        (
            ["https://x/mcp", "--conect-timeout=3"],
            "unknown option --conect-timeout (did you mean --connect-timeout?)",
        ),
        (["https://x/mcp", "-y"], "unknown option -y"),
        (["docter", "https://x/mcp"], "unknown command docter (did you mean doctor?)"),
        (["atuh", "list"], "unknown command atuh (did you mean auth?)"),
        (["confg"], "unknown command confg (did you mean config?)"),
        (["serve", "https://x/mcp"], "unknown command serve (the commands are auth, config"),
    ],
)
def test_a_typo_is_named_with_what_was_meant(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"mcp-remote-py: error: {expected}" in err
    assert "X:1" not in err.splitlines()[-1]  # not taken for the URL
    assert "unrecognized arguments" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["https://x/mcp", "--keepalive", "-1"],  # a negative number is a value, not an option
        ["https://x/mcp", "--head", "X: 1"],  # an abbreviation: argparse's to judge
        ["https://x/mcp", "--header=X: 1", "--http2"],  # a hidden option is still an option
        ["localhost:3000"],  # not a command: the URL check says what is wrong
        ["https://x/mcp", "--", "-x"],
    ],
)
def test_what_argparse_may_judge_itself(argv: list[str]) -> None:
    assert unknown_argument(build_parser(), argv, COMMANDS) is None


def test_doctor_names_a_typo_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor_cli.main(["https://x/mcp", "--sefltest"]) == 2
    assert "unknown option --sefltest (did you mean --selftest?)" in capsys.readouterr().err
