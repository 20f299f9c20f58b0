"""The project's own directories and files: every directory it makes is 0700 (parents too), a
credentials or state directory other users may write to draws one warning with the chmod that
fixes it, and the log file and its rotated copies are 0600."""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_remote_py.auth.locks import default_lock_dir, file_lock, lock_path
from mcp_remote_py.auth.store import CONFIG_DIR_ENV, Credential, CredentialStore
from mcp_remote_py.shell.logs import LOGGER, setup_logging

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
TOKEN = "tok_live_0123456789abcdefghijklmnop"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual one: what made the directories 0755
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def umask_0() -> Iterator[None]:
    old = os.umask(0)  # the widest: whatever is 0600 or 0700 is so by its own mode
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- directories


@pytest.mark.usefixtures("umask_022")
async def test_an_oauth_lock_made_first_makes_the_config_directory_0700(tmp_path: Path) -> None:
    config = tmp_path / "new" / "config"
    lock = lock_path(default_lock_dir({CONFIG_DIR_ENV: str(config)}), "https://h:443/", "sign-in")
    async with file_lock(lock, 5, lambda: None):
        pass
    assert lock.parent == config / "locks"
    for directory in (tmp_path / "new", config, config / "locks"):
        assert mode(directory) == 0o700, directory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_STATE_HOME is Linux's")
@pytest.mark.usefixtures("umask_022")
async def test_an_oauth_lock_made_first_makes_the_state_directory_0700(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    lock_dir = default_lock_dir()
    assert lock_dir == tmp_path / "state" / "mcp-remote-py" / "locks"
    async with file_lock(lock_path(lock_dir, "https://h:443/", "refresh"), 5, lambda: None):
        pass
    for directory in (tmp_path / "state", lock_dir.parent, lock_dir):
        assert mode(directory) == 0o700, directory


@pytest.mark.usefixtures("umask_022")
def test_the_credential_store_makes_its_directory_and_parents_0700(tmp_path: Path) -> None:
    store = CredentialStore("file", config_dir=tmp_path / "a" / "b", warn=lambda _: None)
    store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "b") == 0o700


def test_a_credentials_directory_others_can_write_to_draws_one_warning(tmp_path: Path) -> None:
    directory = tmp_path / "shared config"
    directory.mkdir()
    directory.chmod(0o777)
    warnings: list[str] = []
    store = CredentialStore("file", config_dir=directory, warn=warnings.append)
    store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    store.put("https://i.example/mcp", Credential(access_token=TOKEN))
    assert store.get("https://h.example/mcp") is not None
    assert CredentialStore("file", config_dir=directory, warn=warnings.append).list()
    assert len(warnings) == 1, warnings
    assert str(directory) in warnings[0]
    assert "mode 0777" in warnings[0]
    assert f"chmod 700 '{directory}'" in warnings[0]
    assert mode(directory) == 0o777  # reported, not changed behind the user's back


def test_a_reading_relay_hears_of_it_too(tmp_path: Path) -> None:
    directory = tmp_path / "config"
    CredentialStore("file", config_dir=directory, warn=lambda _: None).put(
        "https://h.example/mcp", Credential(access_token=TOKEN)
    )
    directory.chmod(0o770)
    warnings: list[str] = []
    assert CredentialStore("file", config_dir=directory, warn=warnings.append).get(
        "https://h.example/mcp"
    )
    assert len(warnings) == 1
    assert f"chmod 700 {directory}" in warnings[0]


async def test_a_lock_directory_others_can_write_to_draws_one_warning(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    locks.chmod(0o775)
    warnings: list[str] = []
    for name in ("sign-in", "refresh", "sign-in"):
        lock = lock_path(locks, "https://h:443/", name)
        async with file_lock(lock, 5, lambda: None, warn=warnings.append):
            pass
    assert len(warnings) == 1, warnings
    assert str(locks) in warnings[0]
    assert f"chmod 700 {locks}" in warnings[0]


def test_a_private_directory_draws_no_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    store = CredentialStore("file", config_dir=tmp_path / "config", warn=warnings.append)
    store.put("https://h.example/mcp", Credential(access_token=TOKEN))
    store.put("https://i.example/mcp", Credential(access_token=TOKEN))
    assert warnings == []


# --------------------------------------------------------------------------- the log file


@pytest.fixture
def package_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger(LOGGER)
    saved = (list(logger.handlers), logger.propagate, logger.level, logging.raiseExceptions)
    try:
        yield logger
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers[:] = saved[0]
        logger.propagate, logger.level, logging.raiseExceptions = saved[1:]


def file_handler(logger: logging.Logger) -> logging.handlers.RotatingFileHandler:
    (handler,) = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    return handler


@pytest.mark.usefixtures("umask_0")
def test_the_log_file_and_its_rotated_copies_are_0600(
    tmp_path: Path, package_logger: logging.Logger
) -> None:
    log_file = tmp_path / "logs" / "deeper" / "mcp-remote-py.log"
    assert setup_logging("info", str(log_file)) == log_file
    package_logger.info("first line")
    handler = file_handler(package_logger)
    handler.flush()
    assert mode(log_file) == 0o600
    assert mode(tmp_path / "logs") == 0o700
    assert mode(tmp_path / "logs" / "deeper") == 0o700

    handler.doRollover()
    package_logger.info("after the rotation")
    handler.flush()
    rotated = Path(f"{log_file}.1")
    assert "first line" in rotated.read_text()
    assert mode(rotated) == 0o600
    assert "after the rotation" in log_file.read_text()
    assert mode(log_file) == 0o600


def test_a_log_file_an_older_version_left_readable_is_narrowed(
    tmp_path: Path, package_logger: logging.Logger
) -> None:
    log_file = tmp_path / "mcp-remote-py.log"
    log_file.write_text("old\n")
    log_file.chmod(0o644)
    old_rotated = Path(f"{log_file}.2")
    old_rotated.write_text("older\n")
    old_rotated.chmod(0o644)
    setup_logging("info", str(log_file))
    package_logger.info("new line")
    file_handler(package_logger).flush()
    assert log_file.read_text().startswith("old\n")
    assert "new line" in log_file.read_text()
    assert mode(log_file) == 0o600
    assert mode(old_rotated) == 0o600
