"""The relay's way past a 401: the current OAuth header for each request, and a sign-in when
the server refuses the token (2025-11-25 and 2026-07-28 basic/authorization).

``SignInGate`` wraps the ``SignIn`` that ``app.py`` hands in (``auth.oauth.OAuthSession``),
making it on first use so a relay that never meets a 401 never imports OAuth.
"""

from __future__ import annotations

import httpx
import trio

from ..core.errors import UpstreamError, UpstreamHttpError
from .relay_options import RelayOptions, SignIn, SignInFactory

__all__ = ["SIGN_IN_WAIT", "SignInGate"]

# How long a request waits for a browser sign-in before it is answered with advice (Claude
# Desktop gives up on a request after about 60 s).
SIGN_IN_WAIT = 55.0


class SignInGate:
    def __init__(
        self,
        factory: SignInFactory | None,
        options: RelayOptions,
        client: httpx.AsyncClient,
    ) -> None:
        self._factory = factory
        self._options = options
        self._client = client
        self._session: SignIn | None = None
        self._nursery: trio.Nursery | None = None

    def start(self, nursery: trio.Nursery) -> None:
        """Where a sign-in finishing in the browser lives on; with an OAuth token stored, the
        session is made now so the first request carries it."""
        self._nursery = nursery
        if self._options.oauth_at_start and self._factory is not None:
            self._oauth_session()

    def _oauth_session(self) -> SignIn:
        if self._session is None:
            assert self._factory is not None
            self._session = self._factory(self._options, self._client, self._nursery)
        return self._session

    async def authorize(self) -> str | None:
        """The OAuth Authorization header for the next request (refreshed before it expires)."""
        if self._session is None:
            return None
        return await self._session.authorization_header(interactive=False)

    @property
    def wait(self) -> float:
        """How long a request may wait for a sign-in in the browser."""
        assert self._options.oauth is not None
        return min(SIGN_IN_WAIT, self._options.oauth.auth_timeout)

    def needed(self, exc: UpstreamError) -> bool:
        return (
            isinstance(exc, UpstreamHttpError)
            and exc.status in (401, 403)
            and self._options.oauth is not None
            and self._factory is not None
        )

    async def reauthorize(self, exc: UpstreamError, wait: float) -> None:
        """After a 401 (or a 403 insufficient_scope), get a token the server accepts: another
        process's, a refreshed one, or one from a browser sign-in (2025-11-25 §Authorization).
        Raises ``exc`` when OAuth cannot help, AuthorizationRequired when the user must act."""
        assert isinstance(exc, UpstreamHttpError)
        oauth = self._oauth_session()
        challenge = exc.challenge or {}
        if exc.status == 401:
            await oauth.on_unauthorized(
                challenge, sent=exc.sent_authorization, interactive=True, wait_for_sign_in=wait
            )
        elif (
            await oauth.on_forbidden(
                challenge, sent=exc.sent_authorization, interactive=True, wait_for_sign_in=wait
            )
            is None
        ):
            raise exc
