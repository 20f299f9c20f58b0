"""`config install` and the file it changes: a symbolic link is written through, two installs at
once both land, numbers stay as written, and NaN/Infinity (not JSON) are refused with their line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mcp_remote_py.auth import store_files
from mcp_remote_py.config import entry as config_entry
from mcp_remote_py.config import load_config, main
from mcp_remote_py.config.entry import ConfigError, install_entry, lock_file_for
from mcp_remote_py.config.file import JsonNumber, dump_config

REPO = Path(__file__).resolve().parents[2]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX symbolic links and modes")
ENTRY = {"command": "/opt/bin/mcp-remote-py", "args": ["https://a.example/mcp"]}


def install(path: Path, name: str, *extra: str) -> int:
    url = f"https://{name}.example/mcp"
    return main(["install", url, "--name", name, "--claude-config", str(path), *extra])


# --------------------------------------------------------------------------- symbolic links


@POSIX
def test_a_linked_config_file_stays_a_link_and_its_target_is_written(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "claude_desktop_config.json"
    target.write_text('{\n  "mcpServers": {\n    "old": {"command": "node"}\n  }\n}\n')
    target.chmod(0o640)
    before = target.read_text()
    claude = tmp_path / "Claude"
    claude.mkdir()
    link = claude / "claude_desktop_config.json"
    link.symlink_to(Path("..") / "dotfiles" / "claude_desktop_config.json")

    assert install(link, "a") == 0

    assert link.is_symlink()
    assert os.readlink(link) == os.path.join("..", "dotfiles", "claude_desktop_config.json")
    servers = json.loads(target.read_text())["mcpServers"]
    assert set(servers) == {"old", "a"}
    assert target.stat().st_mode & 0o777 == 0o640
    # The backup sits beside the name Claude Desktop knows; nothing is left in the repository.
    (backup,) = claude.glob("claude_desktop_config.json.*.bak")
    assert backup.read_text() == before
    assert sorted(p.name for p in dotfiles.iterdir()) == ["claude_desktop_config.json"]


@POSIX
def test_a_dangling_link_gets_its_target_created(tmp_path: Path) -> None:
    (tmp_path / "dotfiles").mkdir()
    target = tmp_path / "dotfiles" / "claude.json"
    link = tmp_path / "claude_desktop_config.json"
    link.symlink_to(target)
    assert install(link, "a") == 0
    assert link.is_symlink()
    assert set(json.loads(target.read_text())["mcpServers"]) == {"a"}


@POSIX
def test_a_link_loop_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "claude_desktop_config.json"
    other = tmp_path / "other.json"
    link.symlink_to(other)
    other.symlink_to(link)
    assert install(link, "a") == 1
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink()
    assert other.is_symlink()


# --------------------------------------------------------------------------- two at once


def test_a_second_install_waits_for_the_first_and_keeps_its_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A has read the file and is about to write it when B starts. B must wait for A's lock (it
    # tells us so by failing to take it) and then read A's entry; without the lock B writes at
    # once and A, writing afterwards what it had read, loses B's entry.
    path = tmp_path / "claude_desktop_config.json"
    path.write_text('{"mcpServers": {}}\n')
    a_has_read = threading.Event()
    a_may_write = threading.Event()
    b_waits_or_is_done = threading.Event()
    real_load = config_entry.load_config
    real_try_lock = store_files.try_lock

    def load(file: Path, **kwargs: Any) -> Any:
        loaded = real_load(file, **kwargs)
        if threading.current_thread().name == "a":
            a_has_read.set()
            assert a_may_write.wait(60)
        return loaded

    def try_lock(fd: int) -> bool:
        taken = real_try_lock(fd)
        if not taken and threading.current_thread().name == "b":
            b_waits_or_is_done.set()
        return taken

    monkeypatch.setattr(config_entry, "load_config", load)
    monkeypatch.setattr(store_files, "try_lock", try_lock)
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            install_entry(path, name, ENTRY)
        except BaseException as exc:
            failures.append(exc)
        finally:
            if name == "b":
                b_waits_or_is_done.set()

    a = threading.Thread(target=run, args=("a",), name="a")
    b = threading.Thread(target=run, args=("b",), name="b")
    a.start()
    try:
        assert a_has_read.wait(60)
        b.start()
        assert b_waits_or_is_done.wait(60)
    finally:
        a_may_write.set()
        a.join(60)
        if b.ident is not None:
            b.join(60)
    assert failures == []
    assert set(json.loads(path.read_text())["mcpServers"]) == {"a", "b"}
    assert len(list(tmp_path.glob("*.bak"))) == 2


def test_a_lock_held_too_long_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text('{"mcpServers": {}}\n')
    monkeypatch.setattr(store_files, "LOCK_TIMEOUT", 0.2)
    with store_files.locked(lock_file_for(path)):
        assert install(path, "a") == 1
    err = capsys.readouterr().err
    assert f"kept the config file {path} locked" in err
    assert "credential store" not in err
    assert path.read_text() == '{"mcpServers": {}}\n'
    assert install(path, "a") == 0


INSTALLER = """
import contextlib, io, sys
from mcp_remote_py.config import main
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    url = f"https://{name}-{i}.example/mcp"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["install", url, "--name", f"{name}-{i}", "--claude-config", path])
    if code:
        sys.exit(code)
"""


def test_two_processes_installing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    count = 40
    installers = [
        subprocess.Popen(
            [sys.executable, "-c", INSTALLER, str(path), name, str(count)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for installer in installers:
        _, err = installer.communicate(timeout=120)
        assert installer.returncode == 0, err
    expected = {f"{name}-{i}" for name in ("a", "b") for i in range(count)}
    assert set(json.loads(path.read_text())["mcpServers"]) == expected


# --------------------------------------------------------------------------- JSON as written


@pytest.mark.parametrize(
    ("constant", "line", "text"),
    [
        ("NaN", 3, '{\n  "mcpServers": {},\n  "zoom": NaN\n}\n'),
        # the words inside a string are not the constant
        (
            "Infinity",
            5,
            '{\n  "mcpServers": {},\n  "note": "NaN Infinity",\n  "z": [1,\n Infinity]}',
        ),
        ("-Infinity", 3, '{"mcpServers": {},\n\n  "z": -Infinity}'),
    ],
)
def test_nan_and_infinity_are_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], constant: str, line: int, text: str
) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(text)

    loaded = load_config(path)
    assert loaded.error is not None
    assert loaded.line == line
    assert constant in loaded.error

    assert install(path, "a") == 1
    err = capsys.readouterr().err
    assert str(path) in err
    assert f"{constant} at line {line}, column" in err
    assert "JSON has no NaN or Infinity" in err
    assert path.read_text() == text
    assert not list(tmp_path.glob("*.bak"))


def test_numbers_are_written_back_as_they_were_written(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    numbers = {
        "huge": "1e400",
        "tiny": "-1E-400",
        "trailing_zero": "1.50",
        "exponent": "2.5e+3",
        "negative_zero": "-0",
        "big_int": "123456789012345678901234567890123456789",
        "plain": "42",
    }
    body = ",\n".join(f'  "{key}": {value}' for key, value in numbers.items())
    path.write_text('{\n  "mcpServers": {},\n' + body + ',\n  "list": [0.10, 7]\n}\n')

    assert install(path, "a") == 0

    text = path.read_text()
    for key, value in numbers.items():
        assert f'"{key}": {value},' in text
    assert '"list": [\n    0.10,\n    7\n  ]' in text
    assert "Infinity" not in text
    assert json.loads(text)["mcpServers"]["a"]["args"] == ["https://a.example/mcp"]


def test_dump_config_writes_what_json_dumps_writes() -> None:
    data = {
        "mcpServers": {"é": {"command": "x", "args": ["a", "\u2028", '"q"'], "env": {}}},
        "list": [],
        "nested": [[], {}, [1, 2.5, None, True, False]],
        "n": 3,
    }
    assert dump_config(data) == json.dumps(data, indent=2, ensure_ascii=False)
    assert dump_config({"x": JsonNumber("1e400")}) == '{\n  "x": 1e400\n}'


def test_a_literal_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text('{"mcpServers": {}, "x": NaN}')
    with pytest.raises(ConfigError, match=rf"{path}.*NaN at line 1, column 25"):
        install_entry(path, "a", ENTRY)
