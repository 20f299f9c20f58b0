"""The errors of the credential store and the OAuth flow, each written as advice.

Each says what failed, why, and what to run.

RelayError (``mcp_remote_py.core.errors``)
├── CredentialStoreError           the keyring or the credentials file cannot be used
└── UpstreamError
    └── OAuthError                 discovery, client registration, the browser step or the
        │                          token endpoint failed; ``transient`` says whether waiting
        │                          may help
        └── AuthorizationRequired  there is no usable token for this server, and signing in
                                   again (``mcp-remote-py auth login URL``) is the fix

No message ever holds a token, a refresh token, a client secret, a PKCE verifier or an
authorization code: at most a masked one (``mask_secret``).
"""

from __future__ import annotations

from ..core.errors import RelayError, UpstreamError

__all__ = ["AuthorizationRequired", "CredentialStoreError", "OAuthError", "login_hint"]


class CredentialStoreError(RelayError):
    """The credential store cannot be used; the message says why and what to do.

    Messages never contain a secret: at most a masked one (``mask_secret``).
    """


def login_hint(server_url: str) -> str:
    """The command that signs in to ``server_url`` ahead of time."""
    return f"Run `mcp-remote-py auth login {server_url}` to sign in"


class OAuthError(UpstreamError):
    """The OAuth flow with the server's authorization server failed."""

    def __init__(self, message: str, hint: str = "", *, transient: bool = False) -> None:
        super().__init__(message, hint)
        self.transient = transient


class AuthorizationRequired(OAuthError):
    """No usable token for this server; signing in (again) is what helps."""

    def __init__(self, message: str, server_url: str, hint: str = "") -> None:
        super().__init__(message, hint or login_hint(server_url))
        self.server_url = server_url
