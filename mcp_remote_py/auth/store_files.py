"""The store's files: ``credentials.json`` and the keyring's index, 0600, replaced atomically.

The credentials file is where the secrets live when there is no OS keyring (or when asked for);
the keyring index lists the keys (not the secrets) of the keyring's entries, since keyring cannot
list them. Both are created with mode 0600 (never widened and narrowed afterwards), replaced
atomically, and changed under the store's lock file (``locked``), in a directory made 0700 (a
directory other users may write to draws one warning). A damaged file is reported and left as it
is. ``locked`` is the project's one cross-process lock for a read-modify-write of a file: the
config code takes it too.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from ..shell.logs import check_directory, private_directory
from .errors import CredentialStoreError

__all__ = [
    "FILE_VERSION",
    "LOCK_TIMEOUT",
    "locked",
    "read_credentials",
    "read_index",
    "try_lock",
    "unlock",
    "write_credentials",
    "write_index",
]

FILE_VERSION = 1
LOCK_TIMEOUT = 10.0


# --------------------------------------------------------------------------- reading


def _damaged(path: Path, detail: str) -> CredentialStoreError:
    return CredentialStoreError(
        f"the credentials file {path} is damaged ({detail}); it was left as it is. Repair it "
        f"by hand, or move it away (e.g. rename it to {path.name}.bad) and store your tokens "
        "again with `mcp-remote-py auth set URL`"
    )


def _read_json(path: Path) -> object | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialStoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data: object = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _damaged(
            path, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return data


def read_credentials(path: Path, warn_once: Callable[[str], None]) -> dict[str, object]:
    """The entries of the credentials file at ``path`` ({} when there is none); ``warn_once``
    hears that other users can read it."""
    data = _read_json(path)
    if data is None:
        return {}
    _check_mode(path, warn_once)
    if not isinstance(data, dict) or not isinstance(data.get("credentials"), dict):
        raise _damaged(path, "not an object with a 'credentials' object")
    version = data.get("version")
    if version != FILE_VERSION:
        raise CredentialStoreError(
            f"the credentials file {path} has version {version!r}, which this mcp-remote-py "
            f"does not know (it knows {FILE_VERSION}); upgrade mcp-remote-py"
        )
    entries: dict[str, object] = data["credentials"]
    return entries


def write_credentials(path: Path, entries: Mapping[str, object]) -> None:
    _write_json_atomic(
        path, {"version": FILE_VERSION, "credentials": dict(sorted(entries.items()))}
    )


def _check_mode(path: Path, warn_once: Callable[[str], None]) -> None:
    if sys.platform == "win32":
        return
    check_directory(path.parent, lambda message: warn_once(f"mcp-remote-py: warning: {message}"))
    with suppress(OSError):
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            warn_once(
                f"mcp-remote-py: warning: {path} can be read by other users (mode "
                f"{mode:04o}); run: chmod 600 {path}"
            )


def read_index(path: Path) -> set[str]:
    """The keys the keyring holds a credential for, from the keyring index at ``path``."""
    data = _read_json(path)
    if data is None:
        return set()
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CredentialStoreError(
            f"the keyring index {path} is damaged (it holds only the list of servers, no "
            "secrets); remove it and store your tokens again with `mcp-remote-py auth set URL`"
        )
    return set(keys)


def write_index(path: Path, keys: set[str]) -> None:
    _write_json_atomic(path, {"version": FILE_VERSION, "keys": sorted(keys)})


# --------------------------------------------------------------------------- writing


def _write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically: a 0600 temporary file in the same directory, fsync,
    ``os.replace``. The file is created 0600 (``os.open`` with that mode, minus the umask), never
    written wider and narrowed afterwards. Readers see the old file or the new, never half."""
    payload = (json.dumps(data, indent=2) + "\n").encode("utf-8")
    try:
        private_directory(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            with open(fd, "wb", closefd=True) as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            _replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise CredentialStoreError(
            f"cannot write {path}: {exc.strerror or exc}; check that you can write to {path.parent}"
        ) from None
    _fsync_directory(path.parent)


def _replace(source: Path, target: Path) -> None:
    if sys.platform != "win32":
        os.replace(source, target)
        return
    # Windows refuses to replace a file another process has open (a reader, an antivirus scan)
    # for a moment: try for about a second.
    for _ in range(50):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            time.sleep(0.02)
    os.replace(source, target)


def _fsync_directory(directory: Path) -> None:
    if sys.platform == "win32":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- the lock file


if sys.platform == "win32":
    import msvcrt

    def try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def locked(
    path: Path,
    *,
    what: str = "the credential store",
    warn: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600 if missing) for a read-modify-write of
    ``what`` (as the time-out error names it).

    ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows; either is released by the OS when
    the process dies, so a crashed writer never leaves the store locked. A missing directory is
    made 0700; with ``warn``, an existing one that other users may write to is reported
    (``shell.logs.check_directory``).
    """
    try:
        private_directory(
            path.parent,
            None if warn is None else (lambda message: warn(f"mcp-remote-py: warning: {message}")),
        )
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise CredentialStoreError(
            f"cannot open the lock file {path}: {exc.strerror or exc}"
        ) from None
    timeout = LOCK_TIMEOUT
    try:
        deadline = time.monotonic() + timeout
        while not try_lock(fd):
            if time.monotonic() >= deadline:
                raise CredentialStoreError(
                    f"another mcp-remote-py kept {what} locked ({path}) for "
                    f"{timeout:g} s; try again"
                )
            time.sleep(0.01)
        try:
            yield
        finally:
            unlock(fd)
    finally:
        os.close(fd)
