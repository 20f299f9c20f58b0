"""claude_desktop_config.json: reading (errors with line and column), checking entries,
translating npx mcp-remote entries, and `config show` / `config install`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mcp_remote_py.config import (
    InstallCommand,
    check_entries,
    command_for_this_install,
    default_config_path,
    load_config,
    main,
    translate_mcp_remote,
)
from mcp_remote_py.config import entry as config_entry

US = InstallCommand("/opt/bin/mcp-remote-py")


def which_only(*names: str):  # type: ignore[no-untyped-def]
    def which(command: str, path: str | None = None) -> str | None:
        return f"/usr/bin/{command}" if command in names else None

    return which


def test_default_paths_per_os() -> None:
    env = {"HOME": "/home/me", "APPDATA": r"C:\Users\me\AppData\Roaming"}
    assert default_config_path(env, "darwin") == Path(
        "/home/me/Library/Application Support/Claude/claude_desktop_config.json"
    )
    assert default_config_path(env, "linux") == Path(
        "/home/me/.config/Claude/claude_desktop_config.json"
    )
    windows = default_config_path(env, "win32")
    assert windows.name == "claude_desktop_config.json"
    assert windows.parent.name == "Claude"
    assert str(windows).startswith(r"C:\Users\me\AppData\Roaming")


@pytest.mark.parametrize(
    ("text", "line", "column", "hint"),
    [
        ('{\n  "mcpServers": {\n    "a": {"command": "x"},\n  }\n}', 4, 3, "trailing comma"),
        ('{\n  // comment\n  "mcpServers": {}\n}', 2, 3, "comment"),
        ('{"mcpServers": {"a": {"command": "C:\\Users\\x"}}}', 1, 37, "backslash"),
        ("{'mcpServers': {}}", 1, 2, "single quotes"),
    ],
)
def test_syntax_errors_give_line_column_and_cause(
    tmp_path: Path, text: str, line: int, column: int, hint: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(text, encoding="utf-8")
    loaded = load_config(path)
    assert loaded.error is not None
    assert (loaded.line, loaded.column) == (line, column)
    assert f"line {line}, column {column}" in loaded.error
    assert hint in loaded.error


def test_bom_and_empty_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b'\xef\xbb\xbf{"mcpServers": {}}')
    assert load_config(path).bom
    assert load_config(path).data == {"mcpServers": {}}
    path.write_text("  ", encoding="utf-8")
    assert "empty" in (load_config(path).error or "")
    assert not load_config(tmp_path / "nope.json").exists


def test_entries_claude_desktop_cannot_start() -> None:
    data = {
        "mcpServers": {
            "sse": {"type": "sse", "url": "https://mcp.example.com/sse"},
            "bare": {"url": "https://mcp.example.com/mcp"},
            "nothing": {"args": []},
            "lost": {"command": "not-installed-anywhere"},
            "fine": {"command": "node", "args": ["server.js"]},
            "path": {"command": "/no/such/binary"},
        }
    }
    found = {f.name: f for f in check_entries(data, which=which_only("node"), install=US)}
    assert found["sse"].status == "fail"
    assert "Required" in found["sse"].summary
    assert found["sse"].suggestion == {
        "command": "/opt/bin/mcp-remote-py",
        "args": ["https://mcp.example.com/sse", "--transport", "sse-first"],
    }
    assert found["bare"].suggestion == {
        "command": "/opt/bin/mcp-remote-py",
        "args": ["https://mcp.example.com/mcp"],
    }
    assert found["nothing"].status == "fail"
    assert "Required" in found["nothing"].summary
    assert found["lost"].status == "fail"
    assert "not found on PATH" in found["lost"].summary
    assert found["fine"].status == "pass"
    assert found["path"].status == "fail"
    assert "does not exist" in found["path"].summary


def test_macos_gui_path_warning() -> None:
    def which(command: str, path: str | None = None) -> str:
        return f"/opt/homebrew/bin/{command}"

    (finding,) = check_entries(
        {"mcpServers": {"x": {"command": "mcp-remote-py", "args": ["https://h/mcp"]}}},
        which=which,
        platform="darwin",
        install=US,
    )
    assert finding.status == "warn"
    assert '"command": "/opt/homebrew/bin/mcp-remote-py"' in finding.fix


def test_npx_mcp_remote_entry_is_translated() -> None:
    entry = {
        "command": "npx",
        "args": [
            "-y",
            "mcp-remote@0.1.29",
            "https://mcp.example.com/sse",
            "--header",
            "Authorization: Bearer literal-secret-token-123",
            "--header",
            "X-Team:${TEAM}",
            "--transport",
            "sse-only",
            "--allow-http",
            "--static-oauth-client-info",
            "{}",
            "--silent",
            "3334",
        ],
        "env": {"TEAM": "a"},
    }
    (finding,) = check_entries(
        {"mcpServers": {"my server": entry}}, which=which_only("npx"), install=US
    )
    assert finding.status == "warn"
    assert finding.suggestion == {
        "command": "/opt/bin/mcp-remote-py",
        "args": [
            "https://mcp.example.com/sse",
            "--header",
            "Authorization: Bearer ${MY_SERVER_TOKEN}",
            "--header",
            "X-Team:${TEAM}",
            "--transport",
            "sse-only",
            "--allow-http",
            "--log-level",
            "error",
            "--callback-port",  # mcp-remote's positional OAuth callback port
            "3334",
        ],
        "env": {"TEAM": "(keep your value)"},
    }
    notes = "\n".join(finding.details)
    assert "literal-secret-token-123" not in json.dumps(finding.suggestion) + notes
    assert "--static-oauth-client-info" in notes


def test_windows_cmd_npx_and_missing_npx() -> None:
    entry = {"command": "cmd", "args": ["/c", "npx", "mcp-remote", "https://h.example/mcp"]}
    (finding,) = check_entries({"mcpServers": {"w": entry}}, which=which_only(), install=US)
    assert finding.status == "fail"  # cmd is not found here, and npx would not be either
    assert finding.suggestion is not None
    assert finding.suggestion["args"] == ["https://h.example/mcp"]


def test_own_entries_are_parsed() -> None:
    data = {
        "mcpServers": {
            "bad": {"command": "mcp-remote-py", "args": ["https://h/mcp", "--transport", "x"]},
            "var": {
                "command": "mcp-remote-py",
                "args": ["https://h/mcp", "--header", "Authorization: Bearer ${TOKEN}"],
            },
            "set": {
                "command": "mcp-remote-py",
                "args": ["https://h/mcp", "--header", "Authorization: Bearer ${TOKEN}"],
                "env": {"TOKEN": "x"},
            },
            "literal": {
                "command": "mcp-remote-py",
                "args": ["https://h/mcp", "--header", "Authorization: Bearer abcdefgh12345"],
            },
        }
    }
    found = {f.name: f for f in check_entries(data, which=which_only("mcp-remote-py"))}
    assert found["bad"].status == "fail"
    assert "invalid choice" in "\n".join(found["bad"].details)
    assert found["var"].status == "warn"
    assert "${TOKEN}" in found["var"].details[0]
    assert found["set"].status == "pass"
    assert found["literal"].status == "warn"
    assert "auth set" in found["literal"].fix


def test_translation_keeps_shared_flags_and_notes_the_others() -> None:
    args, notes = translate_mcp_remote(
        ["https://h/mcp", "--resource", "x", "--enable-proxy", "--ping-interval", "20", "--foo"]
    )
    # --resource means the same here (one table with the relay's parser); the rest are noted.
    assert args == ["https://h/mcp", "--resource", "x", "--keepalive", "20"]
    joined = "\n".join(notes)
    assert "--resource" not in joined
    assert "--enable-proxy is not needed" in joined
    assert "unknown mcp-remote option --foo" in joined


def test_command_for_a_frozen_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/Applications/mcp-remote-py")
    assert command_for_this_install().command == str(Path("/Applications/mcp-remote-py").resolve())


def test_command_falls_back_to_uvx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_entry, "_script_beside_interpreter", lambda: None)
    found = command_for_this_install(which=which_only("uvx"))
    assert (found.command, found.prefix) == ("/usr/bin/uvx", ("mcp-remote-py",))
    nothing = command_for_this_install(which=which_only())
    assert (nothing.command, nothing.prefix) == ("uvx", ("mcp-remote-py",))
    assert "not found" in nothing.note


# -- config show / install


def test_show_prints_a_working_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "show",
            "https://mcp.example.com/mcp",
            "--name",
            "example",
            "--header",
            "Authorization: Bearer ${API_TOKEN}",
            "--ipv4",
            "--connect-timeout=20",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    entry = json.loads(out)["mcpServers"]["example"]
    command = entry["command"]
    assert Path(command).is_absolute()
    assert os.path.basename(command).startswith("mcp-remote-py")
    assert entry["args"] == [
        "https://mcp.example.com/mcp",
        "--header",
        "Authorization: Bearer ${API_TOKEN}",
        "--ipv4",
        "--connect-timeout",
        "20",
    ]
    assert "API_TOKEN" in err
    assert "env" in err


@pytest.mark.parametrize(
    "extra",
    [
        ["--header", "Authorization: Bearer abcdef123456"],
        ["--header", "X-API-Key: k-123456"],
    ],
)
def test_a_literal_secret_is_refused(capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    code = main(["show", "https://mcp.example.com/mcp", "--name", "x", *extra])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "refusing to write a secret" in err
    assert "mcp-remote-py auth set https://mcp.example.com/mcp" in err
    assert "${API_TOKEN}" in err
    assert extra[1].split()[-1] not in err


def test_secret_in_url_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    code = main(
        [
            "install",
            "https://u:pw@h.example/mcp?api_key=zzz",
            "--name",
            "x",
            "--claude-config",
            str(path),
        ]
    )
    assert code == 1
    assert not path.exists()
    assert "zzz" not in capsys.readouterr().err


def test_install_creates_keeps_backs_up_and_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Claude" / "claude_desktop_config.json"
    args = ["--claude-config", str(path)]
    assert main(["install", "https://a.example/mcp", "--name", "a", *args]) == 0
    assert json.loads(path.read_text())["mcpServers"]["a"]["args"] == ["https://a.example/mcp"]
    assert list(path.parent.glob("*.bak")) == []  # nothing to back up

    # keep the rest of the file
    data = json.loads(path.read_text())
    data["globalShortcut"] = "Ctrl+Space"
    data["mcpServers"]["other"] = {"command": "node", "args": ["x.js"], "env": {"K": "v"}}
    path.write_text(json.dumps(data))
    before = path.read_text()
    assert (
        main(["install", "https://b.example/sse", "--name", "b", "--transport", "sse-only", *args])
        == 0
    )
    after = json.loads(path.read_text())
    assert after["globalShortcut"] == "Ctrl+Space"
    assert after["mcpServers"]["other"] == {"command": "node", "args": ["x.js"], "env": {"K": "v"}}
    assert after["mcpServers"]["b"]["args"] == ["https://b.example/sse", "--transport", "sse-only"]
    (backup,) = path.parent.glob("claude_desktop_config.json.*.bak")
    assert backup.read_text() == before

    # an existing entry is not replaced without --force
    capsys.readouterr()
    assert main(["install", "https://c.example/mcp", "--name", "b", *args]) == 1
    assert "--force" in capsys.readouterr().err
    assert json.loads(path.read_text())["mcpServers"]["b"]["args"][0] == "https://b.example/sse"
    assert main(["install", "https://c.example/mcp", "--name", "b", "--force", *args]) == 0
    assert json.loads(path.read_text())["mcpServers"]["b"]["args"] == ["https://c.example/mcp"]
    assert len(list(path.parent.glob("*.bak"))) == 2
    assert not list(path.parent.glob(".*.tmp"))


def test_install_leaves_a_broken_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"mcpServers": {,}}')
    code = main(["install", "https://a.example/mcp", "--name", "a", "--claude-config", str(path)])
    assert code == 1
    assert "line 1, column 17" in capsys.readouterr().err
    assert path.read_text() == '{"mcpServers": {,}}'
    assert not list(tmp_path.glob("*.bak"))


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["show", "https://a.example/mcp"]) == 2  # --name is required
    assert main(["show", "http://a.example/mcp", "--name", "a"]) == 2  # plain http, not loopback
    assert main(["show", "http://a.example/mcp", "--name", "a", "--allow-http"]) == 0
