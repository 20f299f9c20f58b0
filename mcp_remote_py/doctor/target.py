"""What ``doctor URL`` checks: the relay's options for the URL, and what the user gave besides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from ..shell.net import NetworkOptions, display_url
from ..shell.relay_options import RelayOptions

__all__ = ["Target"]


@dataclass
class Target:
    """What to check and how the relay would reach it."""

    options: RelayOptions
    user_auth: bool = False  # the user gave an Authorization header
    stored: Any = None  # (Credential, where) from the credential store, or None
    store_error: str | None = None
    soak: float = 0.0
    hosts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> httpx.URL:
        return self.options.url

    @property
    def net(self) -> NetworkOptions:
        return self.options.network

    @property
    def shown(self) -> str:
        return display_url(self.url)

    @property
    def stream_window(self) -> float:
        """How long an event stream's headers or first event may take before we call it held."""
        return min(5.0, max(1.0, self.net.connect_timeout))
