"""Stored credentials: bearer tokens (and later OAuth tokens) kept in the OS keyring.

``store.py`` holds the one credential store (the OS keyring, or a 0600 file where the OS has
none); ``cli.py`` is ``mcp-remote-py auth set|show|list|delete``. Nothing here is imported by the
relay unless credentials are used: keyring is imported lazily.
"""

from __future__ import annotations

from .store import (
    CONFIG_DIR_ENV,
    SERVICE,
    STORE_KIND_ENV,
    Credential,
    CredentialStore,
    CredentialStoreError,
    bearer_header_for,
    canonical_server_key,
    mask_secret,
)

__all__ = [
    "CONFIG_DIR_ENV",
    "SERVICE",
    "STORE_KIND_ENV",
    "Credential",
    "CredentialStore",
    "CredentialStoreError",
    "bearer_header_for",
    "canonical_server_key",
    "mask_secret",
]
