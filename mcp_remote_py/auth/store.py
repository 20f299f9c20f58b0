"""The one credential store: tokens in the OS keyring, or a 0600 file where the OS has none.

``CredentialStore`` looks a server's ``Credential`` up by its canonical key (``credential.py``),
and keeps it in one of two places:

- **keyring** (preferred): the OS keyring (``os_keyring.py``). Keyring cannot list entries, so
  the keys (not secrets) are kept in ``keyring-index.json``.
- **file** (only where there is no OS keyring, or when asked for): ``credentials.json``, 0600
  (``store_files.py``); a one-line warning on stderr says so when the file is first made (and
  ``doctor`` each time it runs), not on every start of a relay that reads it.

Every change is made under the lock file ``credentials.lock``. In ``auto`` mode a keyring store
also reads the file (``lookup``, ``list``, ``delete``): a token stored where the keyring was out
of reach (an SSH login without D-Bus) is still found by the relay in the desktop session, and
storing it again moves it into the keyring.

Both live in the user config directory (``platformdirs.user_config_dir("mcp-remote-py")``), or in
``$MCP_REMOTE_PY_CONFIG_DIR`` when that is set (tests use it). ``$MCP_REMOTE_PY_CREDENTIAL_STORE``
(``auto``, ``keyring`` or ``file``) chooses the store when no ``store_kind`` is given.

keyring is imported only when a credential is actually used: the relay's start-up stays fast for
everyone, and a relay that finds neither file in the config directory imports nothing at all.
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .credential import Credential, canonical_server_key, mask_secret
from .errors import CredentialStoreError
from .os_keyring import (
    SERVICE,
    backend_name,
    delete_secret,
    find_os_keyring,
    get_secret,
    no_keyring_advice,
    set_secret,
)
from .store_files import (
    locked,
    read_credentials,
    read_index,
    write_credentials,
    write_index,
)

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "CONFIG_DIR_ENV",
    "CREDENTIALS_FILE",
    "INDEX_FILE",
    "LOCK_FILE",
    "SERVICE",
    "STORE_KINDS",
    "STORE_KIND_ENV",
    "Credential",
    "CredentialStore",
    "CredentialStoreError",
    "bearer_header_for",
    "canonical_server_key",
    "config_dir",
    "find_os_keyring",
    "mask_secret",
]

CONFIG_DIR_ENV = "MCP_REMOTE_PY_CONFIG_DIR"
STORE_KIND_ENV = "MCP_REMOTE_PY_CREDENTIAL_STORE"
STORE_KINDS = ("auto", "keyring", "file")
CREDENTIALS_FILE = "credentials.json"
INDEX_FILE = "keyring-index.json"
LOCK_FILE = "credentials.lock"

_warned: set[str] = set()


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$MCP_REMOTE_PY_CONFIG_DIR``, else the user config directory of mcp-remote-py."""
    env = os.environ if environ is None else environ
    override = env.get(CONFIG_DIR_ENV, "").strip()
    if override:
        return Path(os.path.expanduser(override))
    from platformdirs import user_config_dir

    return Path(user_config_dir(SERVICE, appauthor=False))


_default_config_dir = config_dir  # the name ``config_dir`` is a parameter of CredentialStore


def _default_warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class CredentialStore:
    """Credentials by server URL, in the OS keyring or (without one) a 0600 JSON file.

    ``store_kind``: ``auto`` (keyring if the OS has one, else the file with a warning),
    ``keyring`` (an error if there is none) or ``file``; None reads
    ``$MCP_REMOTE_PY_CREDENTIAL_STORE`` and defaults to ``auto``.

    ``backend``: a ``keyring.backend.KeyringBackend`` instance to use instead of the OS keyring.
    Tests pass an in-memory one, which the project allows only where no OS keyring exists.

    ``config_dir``: where the file, the keyring index and the lock file live (default
    ``config_dir()``: ``$MCP_REMOTE_PY_CONFIG_DIR`` or the user config directory).

    ``warn``: called with the one-line warning about the file fallback, when the file is first
    made (default: stderr).

    ``max_secret_chars``: split longer keyring secrets over several entries (default: 1000 on
    Windows Credential Manager, unlimited elsewhere).

    Every method raises ``CredentialStoreError`` when the store cannot be used, and ``ValueError``
    for a URL that is not an http(s) URL.
    """

    def __init__(
        self,
        store_kind: str | None = None,
        *,
        backend: KeyringBackend | None = None,
        config_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
        max_secret_chars: int | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        from_env = store_kind is None
        kind = (self._environ.get(STORE_KIND_ENV, "") if from_env else store_kind or "").strip()
        kind = kind.lower() or "auto"
        if kind not in STORE_KINDS:
            source = f"{STORE_KIND_ENV}={kind}" if from_env else f"--credential-store {kind}"
            raise CredentialStoreError(
                f"unknown credential store in {source}: choose one of {', '.join(STORE_KINDS)}"
            )
        if backend is not None and kind == "file":
            raise CredentialStoreError("a keyring backend was given together with the file store")
        self.store_kind = kind
        self._kind_source = f"{STORE_KIND_ENV}={kind}" if from_env else f"--credential-store {kind}"
        self._backend = backend
        self._resolved = backend is not None
        self.config_dir = (
            Path(config_dir) if config_dir is not None else _default_config_dir(self._environ)
        )
        self._warn = warn or _default_warn
        self._max_secret_chars = max_secret_chars

    # ---- where

    @property
    def file_path(self) -> Path:
        return self.config_dir / CREDENTIALS_FILE

    @property
    def index_path(self) -> Path:
        return self.config_dir / INDEX_FILE

    @property
    def lock_path(self) -> Path:
        return self.config_dir / LOCK_FILE

    @property
    def uses_keyring(self) -> bool:
        return self._resolve() is not None

    def describe(self) -> str:
        """Which backend, e.g. ``keyring: SecretService`` or ``file: /path (no OS keyring)``."""
        backend = self._resolve()
        if backend is not None:
            return f"keyring: {backend_name(backend)}"
        why = "no OS keyring" if self.store_kind == "auto" else f"chosen with {self._kind_source}"
        return f"file: {self.file_path} ({why})"

    def _resolve(self) -> KeyringBackend | None:
        """The keyring backend to use, or None for the file; decided once per store."""
        if not self._resolved:
            if self.store_kind != "file":
                self._backend = find_os_keyring()
                if self._backend is None and self.store_kind == "keyring":
                    raise CredentialStoreError(no_keyring_advice(self._environ))
            self._resolved = True
        return self._backend

    def _warn_once(self, message: str) -> None:
        if message not in _warned:
            _warned.add(message)
            self._warn(message)

    # ---- the API

    def get(self, url: str) -> Credential | None:
        """The credential stored for exactly this server, or None."""
        found = self.lookup(url)
        return None if found is None else found[0]

    def lookup(self, url: str) -> tuple[Credential, str] | None:
        """The credential for exactly this server and where it was found (``describe()``'s
        form), or None."""
        key = canonical_server_key(url)
        if (
            not self._resolved
            and self.store_kind == "auto"
            and not self.index_path.exists()
            and not self.file_path.exists()
        ):
            return None  # nothing was ever stored here: no keyring import, no D-Bus, no prompt
        backend = self._resolve()
        if backend is not None and key in read_index(self.index_path):
            value = get_secret(backend, key)
            if value is not None:
                where = f"the {backend_name(backend)}"
                return self._parse(key, value, f"in {where}"), self.describe()
        if backend is None or self._file_too:
            entry = self._read_file().get(key)
            if entry is not None:
                credential = self._parse(key, entry, f"in {self.file_path}")
                if backend is None:
                    return credential, self.describe()
                return credential, f"file: {self.file_path} (stored while no OS keyring was found)"
        return None

    def put(self, url: str, credential: Credential) -> str:
        """Store ``credential`` for this server (replacing any); returns the canonical key."""
        key = canonical_server_key(url)
        backend = self._resolve()
        with locked(self.lock_path, warn=self._warn_once):
            if backend is None:
                entries = self._read_file()
                entries[key] = credential.to_dict()
                self._write_file(entries)
                return key
            keys = read_index(self.index_path)
            set_secret(
                backend,
                key,
                credential.to_json(),
                known=key in keys,
                max_secret_chars=self._max_secret_chars,
            )
            if key not in keys:
                keys.add(key)
                write_index(self.index_path, keys)
            self._forget_in_file(key)  # the keyring holds it now
        return key

    def delete(self, url: str) -> bool:
        """Forget this server's credential; True if there was one."""
        key = canonical_server_key(url)
        backend = self._resolve()
        with locked(self.lock_path, warn=self._warn_once):
            if backend is None:
                entries = self._read_file()
                if entries.pop(key, None) is None:
                    return False
                self._write_file(entries)
                return True
            deleted = delete_secret(backend, key)
            keys = read_index(self.index_path)
            if key in keys:
                keys.discard(key)
                write_index(self.index_path, keys)
                deleted = True
            return self._forget_in_file(key) or deleted

    def list(self) -> builtins.list[str]:
        """The canonical keys that have a credential, sorted. No secrets are read."""
        if self._resolve() is None:
            return sorted(self._read_file())
        keys = read_index(self.index_path)
        if self._file_too:
            keys.update(self._read_file())
        return sorted(keys)

    @property
    def _file_too(self) -> bool:
        # In auto mode a keyring store also reads the file: a token stored where the keyring was
        # out of reach (an SSH login without D-Bus) is still found by the desktop's relay.
        return self.store_kind == "auto" and self.file_path.exists()

    def _forget_in_file(self, key: str) -> bool:
        if not self._file_too:
            return False
        entries = self._read_file()
        if entries.pop(key, None) is None:
            return False
        self._write_file(entries)
        return True

    # ---- parsing

    def _parse(self, key: str, value: object, where: str) -> Credential:
        try:
            if isinstance(value, str):
                return Credential.from_json(value)
            return Credential.from_dict(value)
        except ValueError as exc:
            raise CredentialStoreError(
                f"the credential for {key} {where} is damaged ({exc}); store it again with "
                f"`mcp-remote-py auth set {key}` (or remove it with `mcp-remote-py auth delete "
                f"{key}`)"
            ) from None

    # ---- the file

    def _read_file(self) -> dict[str, object]:
        return read_credentials(self.file_path, self._warn_once)

    def _write_file(self, entries: Mapping[str, object]) -> None:
        created = not self.file_path.exists()
        write_credentials(self.file_path, entries)
        if created and self.store_kind == "auto" and self._backend is None:
            # Said once, when the file store is made: not on every start of every relay that
            # reads it afterwards (`doctor` reports the store in use each time it runs).
            self._warn_once(
                f"mcp-remote-py: warning: no OS keyring found, so credentials are kept in "
                f"{self.file_path} (readable only by you; `mcp-remote-py doctor` shows the "
                "store in use)"
            )


# --------------------------------------------------------------------------- for the relay


def bearer_header_for(url: str, store: CredentialStore | None = None) -> tuple[str, str] | None:
    """``("Authorization", "Bearer <token>")`` stored for exactly this server URL, or None.

    Without ``store``, the default store (``$MCP_REMOTE_PY_CREDENTIAL_STORE``, else auto). When
    nothing was ever stored on this machine this returns None without importing keyring. Raises
    ``CredentialStoreError`` when a store exists but cannot be read (damaged file, locked
    keyring), and ``ValueError`` for a URL that is not http(s).
    """
    credential = (store if store is not None else CredentialStore()).get(url)
    if credential is None or credential.kind == "client":  # a client secret is no token
        return None
    return ("Authorization", f"Bearer {credential.access_token}")
