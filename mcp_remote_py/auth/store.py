"""The one credential store: tokens in the OS keyring, or a 0600 file where the OS has none.

A credential belongs to one server, named by its canonical key (``canonical_server_key``):
scheme, lowercase host, explicit port, path without a trailing slash, e.g.
``https://mcp.example.com:443/mcp``. A token is only ever looked up for exactly that key, so it is
only sent to the server it was stored for.

Where the secrets live:

- **keyring** (preferred): macOS Keychain, Windows Credential Manager, or on Linux a Secret
  Service (GNOME Keyring, KeePassXC, KWallet 6) or KWallet 5/4 reachable over D-Bus. The backend is
  chosen here, in code, not by keyring's entry-point discovery (a frozen build loses entry points).
  Each secret is stored under service ``mcp-remote-py`` with the canonical key as user name.
  Keyring cannot list entries, so the keys (not secrets) are kept in ``keyring-index.json``.
- **file** (only where there is no OS keyring, or when asked for): ``credentials.json``, created
  with mode 0600 (never widened and narrowed afterwards), replaced atomically, changed under a
  lock file; a one-line warning on stderr says so, once per process.

In ``auto`` mode a keyring store also reads the file (``lookup``, ``list``, ``delete``): a token
stored where the keyring was out of reach (an SSH login without D-Bus) is still found by the relay
in the desktop session, and storing it again moves it into the keyring.

Both live in the user config directory (``platformdirs.user_config_dir("mcp-remote-py")``), or in
``$MCP_REMOTE_PY_CONFIG_DIR`` when that is set (tests use it). ``$MCP_REMOTE_PY_CREDENTIAL_STORE``
(``auto``, ``keyring`` or ``file``) chooses the store when no ``store_kind`` is given.

keyring is imported only when a credential is actually used: the relay's start-up stays fast for
everyone, and a relay that finds neither file in the config directory imports nothing at all.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..core.errors import RelayError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "CONFIG_DIR_ENV",
    "CREDENTIALS_FILE",
    "INDEX_FILE",
    "KINDS",
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

SERVICE = "mcp-remote-py"
CONFIG_DIR_ENV = "MCP_REMOTE_PY_CONFIG_DIR"
STORE_KIND_ENV = "MCP_REMOTE_PY_CREDENTIAL_STORE"
STORE_KINDS = ("auto", "keyring", "file")
KINDS = ("bearer", "oauth")
CREDENTIALS_FILE = "credentials.json"
INDEX_FILE = "keyring-index.json"
LOCK_FILE = "credentials.lock"
FILE_VERSION = 1
LOCK_TIMEOUT = 10.0
# Windows Credential Manager keeps at most 2560 bytes per secret and keyring writes UTF-16: a
# longer credential (a 1.5 KB JWT is common) is split over several entries.
WINDOWS_MAX_SECRET_CHARS = 1000

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_BACKEND_NAMES = {
    "keyring.backends.SecretService.Keyring": "SecretService",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Manager",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet 4",
}
_warned: set[str] = set()


class CredentialStoreError(RelayError):
    """The credential store cannot be used; the message says why and what to do.

    Messages never contain a secret: at most a masked one (``mask_secret``).
    """


# --------------------------------------------------------------------------- keys and values


def mask_secret(value: str) -> str:
    """``abcd…wxyz`` (first 4, last 4), or ``***`` when shorter than 12 characters."""
    if len(value) < 12:
        return "***"
    return f"{value[:4]}…{value[-4:]}"


def canonical_server_key(url: str) -> str:
    """The key a server's credential is stored under, e.g. ``https://mcp.example.com:443/mcp``.

    Scheme and host lowercased, the default port filled in, the path kept (percent-escapes
    normalised, trailing slashes dropped); userinfo, query and fragment dropped. Two URLs with the
    same key reach the same endpoint; different paths are different keys. Raises ``ValueError``
    (whose message shows the URL only masked: it might be a token pasted in the wrong place).
    """
    text = url.strip()
    example = "e.g. https://mcp.example.com/mcp"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(
            f"not a valid server URL ({mask_secret(text)}): its host or port cannot be read; "
            f"give the full URL, {example}"
        ) from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(
            f"not an http:// or https:// URL with a host ({mask_secret(text)}): "
            f"give the full URL, {example}"
        )
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(
                f"the host name of {mask_secret(text)} is not a valid internationalised name"
            ) from None
    if ":" in host:  # an IPv6 literal: keep it bracketed
        host = f"[{host}]"
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    path = quote(parts.path, safe=_PATH_SAFE)
    path = _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), path).rstrip("/")
    return f"{scheme}://{host}:{port}{path}"


@dataclass(frozen=True, kw_only=True)
class Credential:
    """One server's credential. ``repr`` never shows the secrets.

    ``kind`` is ``bearer`` (a token the user stored) or ``oauth`` (tokens from an OAuth flow, with
    ``refresh_token``, ``expires_at`` and the dynamic ``client`` registration). Times are epoch
    seconds.
    """

    kind: str = "bearer"
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    client: dict[str, Any] | None = field(default=None, repr=False)
    saved_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown credential kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not self.access_token:
            raise ValueError("the access token is empty")

    def expired(self, now: float | None = None) -> bool:
        """True when ``expires_at`` has passed."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "client": self.client,
            "saved_at": self.saved_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object) -> Credential:
        """Read what ``to_dict`` wrote; unknown fields are ignored. ``ValueError`` names the field
        that is wrong, never its value."""
        if not isinstance(data, dict):
            raise ValueError("a credential must be a JSON object")
        kind = data.get("kind", "bearer")
        if not isinstance(kind, str):
            raise ValueError("'kind' must be a string")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("'access_token' must be a non-empty string")
        refresh = data.get("refresh_token")
        if refresh is not None and not isinstance(refresh, str):
            raise ValueError("'refresh_token' must be a string or null")
        client = data.get("client")
        if client is not None and not isinstance(client, dict):
            raise ValueError("'client' must be an object or null")
        saved_at = _number(data, "saved_at", default=0.0)
        assert saved_at is not None
        return cls(
            kind=kind,
            access_token=token,
            refresh_token=refresh,
            expires_at=_number(data, "expires_at", default=None),
            client=client,
            saved_at=saved_at,
        )

    @classmethod
    def from_json(cls, text: str) -> Credential:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data)


def _number(data: Mapping[str, object], name: str, default: float | None) -> float | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name!r} must be a number of epoch seconds or null")
    return float(value)


# --------------------------------------------------------------------------- where things live


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$MCP_REMOTE_PY_CONFIG_DIR``, else the user config directory of mcp-remote-py."""
    env = os.environ if environ is None else environ
    override = env.get(CONFIG_DIR_ENV, "").strip()
    if override:
        return Path(os.path.expanduser(override))
    from platformdirs import user_config_dir

    return Path(user_config_dir(SERVICE, appauthor=False))


def _load_candidates() -> builtins.list[Callable[[], type[KeyringBackend]]]:
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


def _no_keyring_advice(environ: Mapping[str, str]) -> str:
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


_default_config_dir = config_dir  # the name ``config_dir`` is a parameter of CredentialStore


def _default_warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the store


class CredentialStore:
    """Credentials by server URL, in the OS keyring or (without one) a 0600 JSON file.

    ``store_kind``: ``auto`` (keyring if the OS has one, else the file with a warning),
    ``keyring`` (an error if there is none) or ``file``; None reads
    ``$MCP_REMOTE_PY_CREDENTIAL_STORE`` and defaults to ``auto``.

    ``backend``: a ``keyring.backend.KeyringBackend`` instance to use instead of the OS keyring.
    Tests pass an in-memory one, which the project allows only where no OS keyring exists.

    ``config_dir``: where the file, the keyring index and the lock file live (default
    ``config_dir()``: ``$MCP_REMOTE_PY_CONFIG_DIR`` or the user config directory).

    ``warn``: called with the one-line warning about the file fallback (default: stderr).

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
                    raise CredentialStoreError(_no_keyring_advice(self._environ))
            self._resolved = True
            if self._backend is None and self.store_kind == "auto":
                self._warn_once(
                    f"mcp-remote-py: warning: no OS keyring found, so credentials are kept in "
                    f"{self.file_path} (readable only by you)"
                )
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
        if backend is not None and key in self._read_index():
            value = self._keyring_get(backend, key)
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
        with _locked(self.lock_path):
            if backend is None:
                entries = self._read_file()
                entries[key] = credential.to_dict()
                self._write_file(entries)
                return key
            keys = self._read_index()
            self._keyring_set(backend, key, credential.to_json(), known=key in keys)
            if key not in keys:
                keys.add(key)
                self._write_index(keys)
            self._forget_in_file(key)  # the keyring holds it now
        return key

    def delete(self, url: str) -> bool:
        """Forget this server's credential; True if there was one."""
        key = canonical_server_key(url)
        backend = self._resolve()
        with _locked(self.lock_path):
            if backend is None:
                entries = self._read_file()
                if entries.pop(key, None) is None:
                    return False
                self._write_file(entries)
                return True
            deleted = self._keyring_delete(backend, key)
            keys = self._read_index()
            if key in keys:
                keys.discard(key)
                self._write_index(keys)
                deleted = True
            return self._forget_in_file(key) or deleted

    def list(self) -> builtins.list[str]:
        """The canonical keys that have a credential, sorted. No secrets are read."""
        if self._resolve() is None:
            return sorted(self._read_file())
        keys = self._read_index()
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

    def _damaged(self, path: Path, detail: str) -> CredentialStoreError:
        return CredentialStoreError(
            f"the credentials file {path} is damaged ({detail}); it was left as it is. Repair it "
            f"by hand, or move it away (e.g. rename it to {path.name}.bad) and store your tokens "
            "again with `mcp-remote-py auth set URL`"
        )

    def _read_json(self, path: Path) -> object | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialStoreError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data: object = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise self._damaged(path, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise self._damaged(
                path, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        return data

    def _read_file(self) -> dict[str, object]:
        path = self.file_path
        data = self._read_json(path)
        if data is None:
            return {}
        self._check_mode(path)
        if not isinstance(data, dict) or not isinstance(data.get("credentials"), dict):
            raise self._damaged(path, "not an object with a 'credentials' object")
        version = data.get("version")
        if version != FILE_VERSION:
            raise CredentialStoreError(
                f"the credentials file {path} has version {version!r}, which this mcp-remote-py "
                f"does not know (it knows {FILE_VERSION}); upgrade mcp-remote-py"
            )
        entries: dict[str, object] = data["credentials"]
        return entries

    def _write_file(self, entries: Mapping[str, object]) -> None:
        _write_json_atomic(
            self.file_path, {"version": FILE_VERSION, "credentials": dict(sorted(entries.items()))}
        )

    def _check_mode(self, path: Path) -> None:
        if sys.platform == "win32":
            return
        with suppress(OSError):
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                self._warn_once(
                    f"mcp-remote-py: warning: {path} can be read by other users (mode "
                    f"{mode:04o}); run: chmod 600 {path}"
                )

    # ---- the keyring and its index

    def _read_index(self) -> set[str]:
        path = self.index_path
        data = self._read_json(path)
        if data is None:
            return set()
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, builtins.list) or not all(isinstance(k, str) for k in keys):
            raise CredentialStoreError(
                f"the keyring index {path} is damaged (it holds only the list of servers, no "
                "secrets); remove it and store your tokens again with `mcp-remote-py auth set URL`"
            )
        return set(keys)

    def _write_index(self, keys: set[str]) -> None:
        _write_json_atomic(self.index_path, {"version": FILE_VERSION, "keys": sorted(keys)})

    def _chunk_limit(self, backend: KeyringBackend) -> int | None:
        if self._max_secret_chars is not None:
            return self._max_secret_chars
        if type(backend).__name__ == "WinVaultKeyring":
            return WINDOWS_MAX_SECRET_CHARS
        return None

    def _keyring_get(self, backend: KeyringBackend, key: str) -> str | None:
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

    def _keyring_set(self, backend: KeyringBackend, key: str, value: str, *, known: bool) -> None:
        with _keyring_errors(backend, "store the credential for " + key):
            old = _chunk_count(backend.get_password(SERVICE, key)) if known else None
            limit = self._chunk_limit(backend)
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

    def _keyring_delete(self, backend: KeyringBackend, key: str) -> bool:
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


# --------------------------------------------------------------------------- files on disk


def _write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically: a 0600 temporary file in the same directory, fsync,
    ``os.replace``. The file is created 0600 (``os.open`` with that mode, minus the umask), never
    written wider and narrowed afterwards. Readers see the old file or the new, never half."""
    payload = (json.dumps(data, indent=2) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def _locked(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600 if missing) for a read-modify-write.

    ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows; either is released by the OS when
    the process dies, so a crashed writer never leaves the store locked.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise CredentialStoreError(
            f"cannot open the lock file {path}: {exc.strerror or exc}"
        ) from None
    if timeout is None:
        timeout = LOCK_TIMEOUT
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise CredentialStoreError(
                    f"another mcp-remote-py kept the credential store locked ({path}) for "
                    f"{timeout:g} s; try again"
                )
            time.sleep(0.01)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- for the relay


def bearer_header_for(url: str, store: CredentialStore | None = None) -> tuple[str, str] | None:
    """``("Authorization", "Bearer <token>")`` stored for exactly this server URL, or None.

    Without ``store``, the default store (``$MCP_REMOTE_PY_CREDENTIAL_STORE``, else auto). When
    nothing was ever stored on this machine this returns None without importing keyring. Raises
    ``CredentialStoreError`` when a store exists but cannot be read (damaged file, locked
    keyring), and ``ValueError`` for a URL that is not http(s).
    """
    credential = (store if store is not None else CredentialStore()).get(url)
    if credential is None:
        return None
    return ("Authorization", f"Bearer {credential.access_token}")
