"""How to sign in to an MCP server: the choices of ``auth login`` and of the relay's OAuth flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..shell.relay_options import OAuthSettings

__all__ = [
    "AUTH_TIMEOUT",
    "CLIENT_CREDENTIALS",
    "CLIENT_SECRET_ENV",
    "DEVICE_CODE",
    "GRANTS",
    "AUTHORIZATION_CODE",
    "GrantSettings",
    "OAuthOptions",
]

AUTH_TIMEOUT = 300.0

# How tokens are got (``OAuthOptions.grant``): a browser on this computer (RFC 6749 §4.1 with
# PKCE), a code entered on another device (RFC 8628), or the client's own credentials, with no
# user at all (RFC 6749 §4.4).
AUTHORIZATION_CODE = "authorization_code"
DEVICE_CODE = "device_code"
CLIENT_CREDENTIALS = "client_credentials"
GRANTS = (AUTHORIZATION_CODE, DEVICE_CODE, CLIENT_CREDENTIALS)

# Where a pre-registered client's secret is read when no --oauth-client-secret-env names a
# variable (the secret is never taken from the command line).
CLIENT_SECRET_ENV = "MCP_REMOTE_PY_CLIENT_SECRET"


@dataclass(frozen=True)
class OAuthOptions:
    """How to sign in. Every field is optional; the defaults discover everything.

    ``client_id``/``client_secret``: a pre-registered client (the secret comes from an
    environment variable, a prompt or the credential store, never the command line).
    ``client_metadata_url``: this client's Client ID Metadata Document, used where the
    authorization server supports them.
    ``resource``: the RFC 8707 resource to ask for, instead of the discovered one;
    ``send_resource=False`` leaves the parameter out (for servers that reject it).
    ``scope``: the scopes to ask for, instead of the 2025-11-25 §Scope Selection Strategy.
    ``callback_port``: 0 lets the system pick (or reuses the registered one).
    ``auth_timeout``: how long a sign-in (browser or device code) may take.
    ``open_browser=False`` only shows the URL. ``allow_http``: plain http to an authorization
    server that is not on loopback. ``grant``: ``authorization_code`` (the browser),
    ``device_code`` (RFC 8628: a code entered on another device) or ``client_credentials``
    (RFC 6749 §4.4: a pre-registered confidential client, no user).
    """

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_metadata_url: str | None = None
    resource: str | None = None
    send_resource: bool = True
    scope: str | None = None
    callback_port: int = 0
    auth_timeout: float = AUTH_TIMEOUT
    open_browser: bool = True
    allow_http: bool = False
    client_name: str = "mcp-remote-py"
    grant: str = AUTHORIZATION_CODE

    def __post_init__(self) -> None:
        if self.grant not in GRANTS:
            raise ValueError(f"unknown grant {self.grant!r} (known: {', '.join(GRANTS)})")


@dataclass(frozen=True)
class GrantSettings(OAuthSettings):
    """The relay's ``OAuthSettings`` with the grant to sign in with (``OAuthOptions.grant``).

    ``options.py`` makes these and ``app.py`` turns them into ``OAuthOptions`` field by field;
    the relay itself only reads the fields of ``OAuthSettings``.
    """

    grant: str = AUTHORIZATION_CODE
