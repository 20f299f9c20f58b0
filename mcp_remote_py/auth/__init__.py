"""Credentials for MCP servers: bearer tokens and OAuth tokens, kept in the OS keyring.

The store: ``store.py`` is the one credential store (``CredentialStore``), holding a
``Credential`` (``credential.py``) under the server's canonical key in the OS keyring
(``os_keyring.py``) or, where the OS has none, a 0600 file (``store_files.py``).

OAuth: ``oauth.py`` (``OAuthSession``) decides when to sign in or refresh, as ``OAuthOptions``
(``oauth_options.py``) say; ``token_flow.py`` does it, with ``challenge.py`` and
``discovery.py`` (where the authorization server is), ``registration.py`` (the client),
``token_endpoint.py`` (token requests), ``callback.py`` (the browser and the loopback redirect),
``scope.py``, ``grants.py`` (the device authorization and client credentials grants, which need
no browser here), and ``locks.py`` (one sign-in and one refresh at a time across processes).
``errors.py`` holds the errors of both.

``cli.py`` is ``mcp-remote-py auth set|show|list|delete|login|set-client-secret``. Nothing here
is imported by the relay unless credentials are used: keyring is imported lazily, and the OAuth
modules (with authlib) only once a server asks for authorization or OAuth tokens are stored.
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
