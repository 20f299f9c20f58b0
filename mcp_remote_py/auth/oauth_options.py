"""How to sign in to an MCP server: the choices of ``auth login`` and of the relay's OAuth flags."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AUTH_TIMEOUT", "OAuthOptions"]

AUTH_TIMEOUT = 300.0


@dataclass(frozen=True)
class OAuthOptions:
    """How to sign in. Every field is optional; the defaults discover everything.

    ``client_id``/``client_secret``: a pre-registered client (the secret comes from an
    environment variable or a prompt, never the command line). ``client_metadata_url``: this
    client's Client ID Metadata Document, used where the authorization server supports them.
    ``resource``: the RFC 8707 resource to ask for, instead of the discovered one;
    ``send_resource=False`` leaves the parameter out (for servers that reject it).
    ``scope``: the scopes to ask for, instead of the 2025-11-25 §Scope Selection Strategy.
    ``callback_port``: 0 lets the system pick (or reuses the registered one).
    ``auth_timeout``: how long a browser sign-in may take. ``open_browser=False`` only shows the
    URL. ``allow_http``: plain http to an authorization server that is not on loopback.
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
