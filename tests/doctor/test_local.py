"""doctor without a URL: the local checks, the Claude Desktop config file, and no secret in any
output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_remote_py.auth.store import Credential, CredentialStore

from .helpers import assert_no_secret, run_doctor

pytestmark = pytest.mark.timeout(120)


async def test_local_checks_only(tmp_path: Path) -> None:
    run = await run_doctor("--json", tmp_path=tmp_path)
    assert run.code == 0, run.stdout
    ids = [c["id"] for c in run.report["checks"]]
    for expected in (
        "local.version",
        "local.platform",
        "local.command",
        "local.credentials",
        "local.truststore",
        "local.proxy",
        "claude.file",
    ):
        assert expected in ids
    assert not any(i.startswith(("network.", "http.", "mcp.")) for i in ids)
    assert run.check("local.version")["data"]["frozen"] is False
    assert "file" in run.check("local.credentials")["summary"]
    assert run.check("local.truststore")["status"] == "pass"


async def test_a_broken_config_file(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text('{\n  "mcpServers": {\n    "a": {"command": "x",}\n  }\n}\n')
    run = await run_doctor("--json", "--claude-config", str(path), tmp_path=tmp_path)
    assert run.code == 1
    check = run.check("claude.file")
    assert check["status"] == "fail"
    assert "line 3, column 26" in check["summary"]
    assert "trailing comma" in check["summary"]


async def test_config_entries_with_fixes(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "sse": {"type": "sse", "url": "https://mcp.example.com/sse"},
                    "node": {
                        "command": "npx",
                        "args": ["mcp-remote", "https://mcp.example.com/mcp", "--header",
                                 "Authorization: Bearer config-file-secret-77"],
                    },
                }
            }
        )
    )  # fmt: skip
    run = await run_doctor("--json", "--claude-config", str(path), tmp_path=tmp_path)
    text = await run_doctor("--claude-config", str(path), tmp_path=tmp_path)
    sse = run.check("claude.entry.sse")
    assert sse["status"] == "fail"
    assert sse["data"]["suggestion"]["args"] == [
        "https://mcp.example.com/sse",
        "--transport",
        "sse-first",
    ]
    node = run.check("claude.entry.node")
    assert node["data"]["suggestion"]["args"][:2] == ["https://mcp.example.com/mcp", "--header"]
    assert '"command":' in text.stdout
    assert "Use this entry instead" in text.stdout
    assert_no_secret(run, "config-file-secret-77")
    assert_no_secret(text, "config-file-secret-77")


async def test_proxy_variables_are_shown_without_passwords(tmp_path: Path) -> None:
    env = {
        "HTTPS_PROXY": "http://alice:proxy-pass-99@127.0.0.1:9/",
        "NO_PROXY": "localhost,127.0.0.1",
    }
    run = await run_doctor("--json", tmp_path=tmp_path, env=env)
    proxy = run.check("local.proxy")
    assert "HTTPS_PROXY=http://alice:***@127.0.0.1:9/" in proxy["summary"]
    assert "NO_PROXY=localhost,127.0.0.1" in proxy["summary"]
    assert_no_secret(run, "proxy-pass-99")
    socks = await run_doctor("--json", tmp_path=tmp_path, env={"ALL_PROXY": "socks5://h:1080"})
    import importlib.util

    if importlib.util.find_spec("socksio") is None:
        assert socks.check("local.proxy")["status"] == "fail"


async def test_stored_tokens_are_counted_never_shown(tmp_path: Path) -> None:
    store = CredentialStore("file", config_dir=tmp_path / "config")
    store.put("https://mcp.example.com/mcp", Credential(access_token="stored-secret-abc-123"))
    run = await run_doctor(tmp_path=tmp_path)
    assert "1 server(s) with a stored token" in run.stdout
    assert_no_secret(run, "stored-secret-abc-123")


async def test_usage_errors(tmp_path: Path) -> None:
    assert (await run_doctor("--soak", "-1", tmp_path=tmp_path)).code == 2
    assert (await run_doctor("--transport", "nope", tmp_path=tmp_path)).code == 2
    helped = await run_doctor("--help", tmp_path=tmp_path)
    assert helped.code == 0
    assert "--selftest" in helped.stdout
    assert "--soak" in helped.stdout
