"""The era cache (shell/era_cache.py): 2026-07-28 basic/versioning §Backward Compatibility lets a
client persist a server's era across restarts and re-probe when the assumption fails."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import httpx
import pytest

from mcp_remote_py.shell import era_cache
from mcp_remote_py.shell.era_cache import LEGACY, MAX_AGE, MODERN_ONLY, EraCache

URL = httpx.URL("https://mcp.example.com/mcp")


def test_an_era_learnt_is_known_at_the_next_start(tmp_path: Path) -> None:
    EraCache(URL, tmp_path).learn(MODERN_ONLY)
    assert EraCache(URL, tmp_path).era == MODERN_ONLY


def test_nothing_is_known_of_a_server_never_met(tmp_path: Path) -> None:
    assert EraCache(URL, tmp_path).era is None


@pytest.mark.parametrize(
    "other",
    [
        "https://mcp.example.com/other",
        "https://mcp.example.com:8443/mcp",
        "http://mcp.example.com/mcp",
        "https://example.com/mcp",
    ],
)
def test_the_era_is_kept_per_server_url(tmp_path: Path, other: str) -> None:
    EraCache(URL, tmp_path).learn(MODERN_ONLY)
    assert EraCache(httpx.URL(other), tmp_path).era is None


def test_the_default_port_and_host_case_name_the_same_server(tmp_path: Path) -> None:
    EraCache(URL, tmp_path).learn(LEGACY)
    assert EraCache(httpx.URL("https://MCP.example.com:443/mcp"), tmp_path).era == LEGACY


def test_a_failed_era_is_forgotten(tmp_path: Path) -> None:
    cache = EraCache(URL, tmp_path)
    cache.learn(MODERN_ONLY)
    cache.learn(None)
    assert EraCache(URL, tmp_path).era is None


def test_an_old_entry_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    EraCache(URL, tmp_path).learn(MODERN_ONLY)
    later = time.time() + MAX_AGE + 60
    monkeypatch.setattr(era_cache.time, "time", lambda: later)
    assert EraCache(URL, tmp_path).era is None


def test_an_entry_from_the_future_is_not_trusted(tmp_path: Path) -> None:
    key = "https://mcp.example.com:443/mcp"
    data = {key: {"era": MODERN_ONLY, "seen": time.time() + 86400}}
    (tmp_path / "eras.json").write_text(json.dumps(data))
    assert EraCache(URL, tmp_path).era is None


@pytest.mark.parametrize(
    "content",
    ["", "{", "[]", '{"https://mcp.example.com:443/mcp": {"era": "weird", "seen": 1}}', "\xff"],
    ids=["empty", "broken", "not-a-map", "unknown-era", "garbage"],
)
def test_a_broken_file_is_a_miss_and_is_repaired(tmp_path: Path, content: str) -> None:
    (tmp_path / "eras.json").write_text(content, encoding="latin-1")
    cache = EraCache(URL, tmp_path)
    assert cache.era is None
    cache.learn(LEGACY)
    assert EraCache(URL, tmp_path).era == LEGACY


def test_other_servers_entries_survive_a_write(tmp_path: Path) -> None:
    EraCache(httpx.URL("https://a.example/mcp"), tmp_path).learn(LEGACY)
    EraCache(URL, tmp_path).learn(MODERN_ONLY)
    assert EraCache(httpx.URL("https://a.example/mcp"), tmp_path).era == LEGACY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eras.json"]  # no temporary left


def test_an_unwritable_directory_is_no_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    cache = EraCache(URL, blocked)
    cache.learn(MODERN_ONLY)  # logged at debug level, not raised
    assert cache.era == MODERN_ONLY


def test_the_state_directory_can_be_set_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_REMOTE_PY_STATE_DIR", str(tmp_path))
    EraCache(URL).learn(LEGACY)
    assert (tmp_path / "eras.json").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_the_state_directory_the_cache_makes_is_private(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "mcp-remote-py"
    cache = EraCache(httpx.URL("https://mcp.example.com/mcp"), directory)
    cache.learn(MODERN_ONLY)
    for made in (directory, directory.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
