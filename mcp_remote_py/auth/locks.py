"""One browser sign-in and one refresh per server at a time, across processes: lock files.

A relay that finds another process signing in to the same server waits for it and takes its
tokens, instead of opening a second browser tab; a refresh waits likewise, so a rotated refresh
token is never spent twice. The locks live under the user state directory (or
``$MCP_REMOTE_PY_CONFIG_DIR/locks``), one file per server and purpose; the directories are made
0700, and one that other users may write to draws a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ..shell.logs import private_directory
from .errors import OAuthError
from .store import CONFIG_DIR_ENV, SERVICE, config_dir
from .store_files import try_lock, unlock

__all__ = [
    "REFRESH_LOCK_TIMEOUT",
    "SIGN_IN_LOCK_GRACE",
    "default_lock_dir",
    "file_lock",
    "lock_path",
]

REFRESH_LOCK_TIMEOUT = 60.0
# Waiting for another process's sign-in: its time-out plus this much.
SIGN_IN_LOCK_GRACE = 30.0
LOCK_POLL = 0.1

log = logging.getLogger("mcp_remote_py")


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$MCP_REMOTE_PY_CONFIG_DIR/locks`` when set (tests), else the user state directory's."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_DIR_ENV, "").strip():
        return config_dir(env) / "locks"
    from platformdirs import user_state_dir

    return Path(user_state_dir(SERVICE, appauthor=False)) / "locks"


def lock_path(lock_dir: Path, server_key: str, name: str) -> Path:
    """The lock file for ``name`` ("sign-in", "refresh") of the server ``server_key``."""
    digest = hashlib.sha256(server_key.encode()).hexdigest()[:24]
    return lock_dir / f"oauth-{digest}.{name}.lock"


@asynccontextmanager
async def file_lock(
    path: Path,
    max_wait: float,
    on_wait: Callable[[], None],
    *,
    warn: Callable[[str], None] | None = None,
) -> AsyncIterator[bool]:
    """Hold an exclusive lock on ``path`` across processes; yields whether it had to wait.

    ``flock``/``msvcrt.locking`` (the store's): the OS releases it when a process dies, so a
    crashed relay never leaves a server locked. Polled, so trio stays responsive. The lock
    directory and its missing parents are made 0700; ``warn`` (default: the log) hears once that
    an existing one is writable by other users.
    """
    try:
        private_directory(path.parent, warn or log.warning)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise OAuthError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    try:
        waited = False
        with trio.move_on_after(max_wait) as scope:
            while not try_lock(fd):
                if not waited:
                    waited = True
                    on_wait()
                await trio.sleep(LOCK_POLL)
        if scope.cancelled_caught:
            raise OAuthError(
                f"another mcp-remote-py held {path.name} for {max_wait:g} s",
                "Try again; if it persists, look for a stuck mcp-remote-py process",
                transient=True,
            )
        try:
            yield waited
        finally:
            unlock(fd)
    finally:
        os.close(fd)
