"""What the relay learnt of a server's protocol era, kept across restarts.

2026-07-28 basic/versioning §Backward Compatibility: the era is a property of the server, which
clients SHOULD cache for the origin and MAY persist, re-probing when the cached assumption
fails. What is worth remembering here is whether a server refuses ``initialize`` because it
speaks only 2026-07-28 (``MODERN_ONLY``: a legacy client's next start goes straight to the bridge,
without the refused initialize), or takes it (``LEGACY``: no ``server/discover`` probe after a
refusal that meant "try legacy SSE"), or takes it and refuses modern requests (``LEGACY_ONLY``:
a modern client's next start goes straight down the bridge, without the refused request). Kept
per server URL (scheme, host, port, path: two paths of one origin can be two servers) in
``eras.json`` under the user state directory, for ``MAX_AGE``; a broken or unreadable file is a
cache miss, never an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import httpx

from .logs import private_directory

__all__ = ["LEGACY", "LEGACY_ONLY", "MAX_AGE", "MODERN_ONLY", "STATE_DIR_ENV", "EraCache"]

log = logging.getLogger("mcp_remote_py")

MODERN_ONLY = "modern-only"
LEGACY = "legacy"
LEGACY_ONLY = "legacy-only"
MAX_AGE = 7 * 24 * 3600.0
STATE_DIR_ENV = "MCP_REMOTE_PY_STATE_DIR"
_FILE = "eras.json"
# A server list this long means something is wrong; old entries go first.
_MAX_ENTRIES = 256


def _state_dir() -> Path:
    override = os.environ.get(STATE_DIR_ENV, "").strip()
    if override:
        return Path(override)
    from platformdirs import user_state_dir

    return Path(user_state_dir("mcp-remote-py", appauthor=False))


def _key(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{url.host.lower()}:{port}{url.path}"


class EraCache:
    """The era of one server, read once at start and written when it is learnt or forgotten."""

    def __init__(self, url: httpx.URL, directory: Path | None = None) -> None:
        self._key = _key(url)
        self._path = (directory or _state_dir()) / _FILE
        self.era = self._read()

    def _entries(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _read(self) -> str | None:
        entry = self._entries().get(self._key)
        if not isinstance(entry, dict):
            return None
        era, seen = entry.get("era"), entry.get("seen")
        if era not in (MODERN_ONLY, LEGACY, LEGACY_ONLY) or not isinstance(seen, (int, float)):
            return None
        if not 0 <= time.time() - seen <= MAX_AGE:
            return None
        assert isinstance(era, str)
        return era

    @property
    def takes_initialize(self) -> bool:
        return self.era in (LEGACY, LEGACY_ONLY)

    def learn(self, era: str | None) -> None:
        """Remember ``era`` for this server (None: forget it, the cached one failed)."""
        if era == self.era:
            return
        self.era = era
        entries = self._entries()
        entries.pop(self._key, None)
        if era is not None:
            entries[self._key] = {"era": era, "seen": time.time()}
        newest = sorted(entries.items(), key=lambda item: _seen(item[1]))[-_MAX_ENTRIES:]
        try:
            self._write(dict(newest))
        except OSError as exc:
            log.debug("could not write the era cache %s: %s", self._path, exc)

    def _write(self, entries: dict[str, dict[str, object]]) -> None:
        private_directory(self._path.parent)  # 0700, parents too: the user's state
        # Atomically: two relays starting at once must not leave half a file behind.
        handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".eras-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(entries, file, indent=1, sort_keys=True)
            os.replace(temporary, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _seen(entry: object) -> float:
    seen = entry.get("seen") if isinstance(entry, dict) else None
    return float(seen) if isinstance(seen, (int, float)) else 0.0
