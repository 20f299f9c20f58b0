"""The OS keyring: which one this machine has, and a credential's secret kept in it.

macOS Keychain, Windows Credential Manager, or on Linux a Secret Service (GNOME Keyring,
KeePassXC, KWallet 6) or KWallet 5/4 reachable over D-Bus. The backend is chosen here, in code,
not by keyring's entry-point discovery (a frozen build loses entry points). Each secret is stored
under service ``mcp-remote-py`` with the canonical server key as user name; one too long for the
backend is split over several entries.

keyring is imported inside the functions that use it, so only a store that is used pays for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .errors import CredentialStoreError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "SERVICE",
    "backend_name",
    "delete_secret",
    "find_os_keyring",
    "get_secret",
    "no_keyring_advice",
    "set_secret",
]

SERVICE = "mcp-remote-py"
# Windows Credential Manager keeps at most 2560 bytes per secret and keyring writes UTF-16: a
# longer credential (a 1.5 KB JWT is common) is split over several entries.
WINDOWS_MAX_SECRET_CHARS = 1000

_BACKEND_NAMES = {
    "keyring.backends.SecretService.Keyring": "SecretService",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Manager",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet 4",
}


# --------------------------------------------------------------------------- the backend


def _load_candidates() -> list[Callable[[], type[KeyringBackend]]]:
    """The OS keyring backends for this platform, best first; each loader imports its module."""
    if sys.platform == "darwin":

        def macos() -> type[KeyringBackend]:
            from keyring.backends import macOS

            return macOS.Keyring

        return [macos]
    if sys.platform == "win32":

        def windows() -> type[KeyringBackend]:
            from keyring.backends import Windows

            return Windows.WinVaultKeyring

        return [windows]

    def secret_service() -> type[KeyringBackend]:
        from keyring.backends import SecretService

        return SecretService.Keyring

    def kwallet5() -> type[KeyringBackend]:
        from keyring.backends import kwallet

        return kwallet.DBusKeyring

    def kwallet4() -> type[KeyringBackend]:
        from keyring.backends import kwallet

        return kwallet.DBusKeyringKWallet4

    return [secret_service, kwallet5, kwallet4]


def find_os_keyring() -> KeyringBackend | None:
    """The OS keyring of this machine, or None when there is none (e.g. headless Linux).

    Each candidate's ``priority`` check runs: on Linux that asks D-Bus whether a Secret Service
    (or KWallet) is running or activatable.
    """
    for load in _load_candidates():
        try:
            backend_class = load()
            backend_class.priority  # noqa: B018 -- raises when the backend cannot work here
            return backend_class()
        except Exception:  # a backend that is unusable here, for whatever reason
            continue
    return None


def backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return _BACKEND_NAMES.get(f"{cls.__module__}.{cls.__qualname__}", cls.__name__)


def no_keyring_advice(environ: Mapping[str, str]) -> str:
    if sys.platform == "darwin":
        where = "the macOS Keychain cannot be used from this process"
        fix = "run it in your user session (not as another user or over a bare SSH login)"
    elif sys.platform == "win32":
        where = "Windows Credential Manager cannot be used (is pywin32-ctypes installed?)"
        fix = "reinstall mcp-remote-py so its dependencies are complete"
    else:
        bus = (
            ""
            if environ.get("DBUS_SESSION_BUS_ADDRESS")
            else " (DBUS_SESSION_BUS_ADDRESS is unset)"
        )
        where = (
            "no Secret Service (GNOME Keyring, KeePassXC, KWallet) answers on the D-Bus session "
            f"bus{bus}"
        )
        fix = (
            "install and start one, e.g. `sudo apt install gnome-keyring` and log in to a desktop "
            "session (or run inside `dbus-run-session` with `gnome-keyring-daemon --unlock`)"
        )
    return (
        f"no OS keyring available: {where}. To use the keyring, {fix}; or keep the credentials "
        "in a file readable only by you with --credential-store file"
    )


# --------------------------------------------------------------------------- secrets in it


def _chunk_limit(backend: KeyringBackend, max_secret_chars: int | None) -> int | None:
    if max_secret_chars is not None:
        return max_secret_chars
    if type(backend).__name__ == "WinVaultKeyring":
        return WINDOWS_MAX_SECRET_CHARS
    return None


def get_secret(backend: KeyringBackend, key: str) -> str | None:
    with _keyring_errors(backend, "read the credential for " + key):
        value = backend.get_password(SERVICE, key)
        count = _chunk_count(value)
        if value is None or count is None:
            return value
        parts = []
        for i in range(1, count + 1):
            part = backend.get_password(SERVICE, _chunk_name(key, i))
            if part is None:
                raise CredentialStoreError(
                    f"the credential for {key} in the {backend_name(backend)} is incomplete "
                    f"(part {i} of {count} is missing); store it again with "
                    f"`mcp-remote-py auth set {key}`"
                )
            parts.append(part)
        return "".join(parts)


def set_secret(
    backend: KeyringBackend, key: str, value: str, *, known: bool, max_secret_chars: int | None
) -> None:
    """Store ``value`` under ``key``, split when longer than the backend takes (or than
    ``max_secret_chars``); ``known``: an entry may exist, whose surplus parts are deleted."""
    with _keyring_errors(backend, "store the credential for " + key):
        old = _chunk_count(backend.get_password(SERVICE, key)) if known else None
        limit = _chunk_limit(backend, max_secret_chars)
        if limit is None or len(value) <= limit:
            backend.set_password(SERVICE, key, value)
            new = 0
        else:
            parts = [value[i : i + limit] for i in range(0, len(value), limit)]
            for i, part in enumerate(parts, 1):
                backend.set_password(SERVICE, _chunk_name(key, i), part)
            backend.set_password(SERVICE, key, json.dumps({"chunks": len(parts)}))
            new = len(parts)
        for i in range(new + 1, (old or 0) + 1):
            _delete_quietly(backend, _chunk_name(key, i))


def delete_secret(backend: KeyringBackend, key: str) -> bool:
    with _keyring_errors(backend, "delete the credential for " + key):
        count = _chunk_count(backend.get_password(SERVICE, key))
        for i in range(1, (count or 0) + 1):
            _delete_quietly(backend, _chunk_name(key, i))
        return _delete_quietly(backend, key)


def _chunk_name(key: str, index: int) -> str:
    return f"{key} #{index}"


def _chunk_count(value: str | None) -> int | None:
    """N when ``value`` is the header of a secret split into N parts, else None."""
    if value is None or not value.startswith('{"chunks"'):
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return None
    count = data.get("chunks") if isinstance(data, dict) else None
    return count if isinstance(count, int) and count > 0 else None


def _delete_quietly(backend: KeyringBackend, name: str) -> bool:
    from keyring.errors import PasswordDeleteError

    try:
        backend.delete_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    return True


@contextmanager
def _keyring_errors(backend: KeyringBackend, action: str) -> Iterator[None]:
    from keyring.errors import KeyringError, KeyringLocked

    name = backend_name(backend)
    try:
        yield
    except CredentialStoreError:
        raise
    except KeyringLocked:
        raise CredentialStoreError(
            f"the {name} is locked, so mcp-remote-py could not {action}: unlock it and try "
            "again, or use --credential-store file"
        ) from None
    except (KeyringError, OSError, RuntimeError) as exc:
        raise CredentialStoreError(
            f"the {name} could not {action} ({type(exc).__name__}: {exc}); check that it is "
            "running and unlocked, or use --credential-store file"
        ) from None
