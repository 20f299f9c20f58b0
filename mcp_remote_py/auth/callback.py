"""The browser step: a loopback server for the authorization server's redirect, and the browser.

The listener is bound (127.0.0.1, the given port or one the OS picks) before the browser is
asked to open the authorization URL, so the redirect always finds someone listening; mcp-remote's
users meet the opposite ("the callback server is not listening when the browser returns").

The redirect URI is ``http://127.0.0.1:PORT/callback``: a loopback IP literal, not
``localhost``, which may resolve to ::1 where nothing listens (RFC 8252 §7.3 and §8.3). Only an
answer whose ``state`` is the one sent is accepted; any other (a forged or stale redirect) is
answered 400 and discarded, and the wait goes on (2025-11-25 §Open Redirection: clients SHOULD
"discard any results that do not include or have a mismatch with the original state").
An answer with the right ``state`` but an ``iss`` that is not the authorization server's
(``issuer_problem``, RFC 9207) ends the wait, answered 400 without showing the answer's error
text, and the sign-in fails: the browser went through another authorization server.

The browser is the user's default, as ``webbrowser`` finds it (``BROWSER`` honoured). When the
relay runs, its stdin and stdout are the JSON-RPC channel: a browser that ``webbrowser`` would
start as a plain command (``BROWSER=...``, or a console browser such as lynx) inherits them and
could read the client's messages or write into the protocol stream, so such a command gets
/dev/null for both instead.
"""

from __future__ import annotations

import html
import logging
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

from .errors import OAuthError

__all__ = [
    "CALLBACK_PATH",
    "CallbackListener",
    "issuer_problem",
    "open_callback_listener",
    "open_browser",
    "system_browser",
]

log = logging.getLogger("mcp_remote_py")

CALLBACK_PATH = "/callback"
# A browser sends its request at once; a connection that says nothing is not one.
REQUEST_TIMEOUT = 10.0
MAX_REQUEST_BYTES = 64 * 1024


def issuer_problem(params: Mapping[str, str], issuer: str, *, required: bool) -> str | None:
    """Why an authorization response must be refused for its ``iss`` (RFC 9207), or None.

    ``issuer`` is the one recorded from the authorization server's validated metadata before
    the browser opened; ``required`` is its ``authorization_response_iss_parameter_supported``.
    2026-07-28 §Authorization Response Validation, applying RFC 9207 §2.4 before the code goes
    to any token endpoint:

    * a present ``iss`` is compared with the issuer by simple string comparison (RFC 3986
      §6.2.1), advertised or not (the spec's local policy, for servers that send ``iss`` before
      their metadata says so). ``params`` are already form-decoded (RFC 9207 §2.4); nothing
      else is done to them: no case folding of scheme or host, no default-port elision, no
      trailing slash, no percent-encoding normalisation (RFC 3986 §6.2.2-6.2.3), so
      ``https://as.example/`` is not ``https://as.example``;
    * an absent ``iss`` is refused only when the metadata promises one (RFC 9207 §2.4).

    It applies to error responses alike: on a mismatch their ``error`` fields are neither acted
    on nor shown.
    """
    iss = params.get("iss")
    if iss is None:
        if not required:
            return None
        return (
            f"the sign-in answer carries no iss parameter, though the authorization server "
            f"{issuer} says in its metadata that it sends one "
            "(authorization_response_iss_parameter_supported); it was refused (RFC 9207 §2.4)"
        )
    if iss == issuer:
        return None
    return (
        f"the sign-in answer names the issuer {iss[:200]!r}, not {issuer!r}, the authorization "
        "server mcp-remote-py signed in with; it was refused as a possible mix-up attack "
        "(RFC 9207 §2.4: the two must be the same string)"
    )


class CallbackListener:
    """The loopback HTTP server the authorization server redirects the browser to."""

    def __init__(
        self,
        listeners: list[trio.SocketListener],
        state: str,
        on_discarded: Callable[[str], None] | None = None,
        *,
        issuer: str | None = None,
        issuer_required: bool = False,
    ) -> None:
        self._listeners = listeners
        self.port: int = listeners[0].socket.getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"
        self._state = state
        self._result: dict[str, str] | None = None
        self._done = trio.Event()
        self._on_discarded = on_discarded
        self.discarded = 0
        # The issuer recorded before the browser opened, and whether its metadata promises iss.
        self._issuer = issuer
        self._issuer_required = issuer_required

    async def serve(self) -> None:
        """Answer browsers until cancelled (run it in a nursery)."""
        await trio.serve_listeners(self._serve, self._listeners)

    async def aclose(self) -> None:
        for listener in self._listeners:
            await listener.aclose()

    async def wait(self) -> dict[str, str]:
        """The query parameters of the accepted redirect (``code``/``state``/``iss``, or
        ``error``/``error_description``)."""
        await self._done.wait()
        assert self._result is not None
        return self._result

    def _decide(self, method: bytes, target: bytes) -> tuple[int, str, dict[str, str] | None]:
        """(status, page text, accepted parameters or None) for one request."""
        parts = urlsplit(target.decode("ascii", "replace"))
        if parts.path != CALLBACK_PATH or method != b"GET":
            return 404, "Not found.", None
        if self._result is not None:
            return 200, "This sign-in is already complete. You can close this tab.", None
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        state = params.get("state", "")
        if not secrets.compare_digest(state.encode(), self._state.encode()):
            self.discarded += 1
            if self._on_discarded is not None:
                self._on_discarded(
                    "ignored a sign-in response whose state does not match the sign-in that "
                    "mcp-remote-py started (a stale tab, or a forged redirect)"
                )
            return (
                400,
                "This sign-in response does not belong to the sign-in mcp-remote-py is waiting "
                "for (its state does not match), so it was ignored. If you started a new "
                "sign-in, use the newest browser tab.",
                None,
            )
        if self._issuer is not None and issuer_problem(
            params, self._issuer, required=self._issuer_required
        ):
            # Accepted, so the sign-in ends (with the error); its error text is not shown.
            return (
                400,
                "This sign-in response does not come from the authorization server mcp-remote-py "
                "signed in with (its iss does not match), so it was refused. Return to your MCP "
                "client.",
                params,
            )
        if "error" in params:
            detail = params.get("error_description") or params["error"]
            return 200, f"The authorization server did not grant access: {detail}", params
        return 200, "Signed in. You can close this tab and return to your MCP client.", params

    async def _serve(self, stream: trio.SocketStream) -> None:
        with trio.move_on_after(REQUEST_TIMEOUT):
            try:
                await self._answer(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
                pass
            except Exception:  # one odd connection must not end the sign-in
                log.debug("the sign-in listener failed to answer a connection", exc_info=True)
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.aclose()

    async def _answer(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive_some(MAX_REQUEST_BYTES))
                continue
            if isinstance(event, h11.Request):
                break
            return  # the connection closed (or sent something else) before a request
        status, text, accepted = self._decide(event.method, event.target)
        body = _page(text).encode("utf-8")
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            # The page's URL holds the authorization code: keep it out of any Referer.
            ("Referrer-Policy", "no-referrer"),
            ("Connection", "close"),
        ]
        for outgoing in (
            h11.Response(status_code=status, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            data = connection.send(outgoing)
            if data:
                await stream.send_all(data)
        # Accepted only once the browser has its page: the listener closes right after.
        if accepted is not None and self._result is None:
            self._result = accepted
            self._done.set()


def _page(text: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>mcp-remote-py</title></head>"
        f"<body><p>{html.escape(text)}</p></body></html>"
    )


async def open_callback_listener(
    state: str,
    port: int = 0,
    *,
    on_discarded: Callable[[str], None] | None = None,
    issuer: str | None = None,
    issuer_required: bool = False,
) -> CallbackListener:
    """Bind 127.0.0.1:``port`` (0: any free port); ``serve()`` then answers, ``aclose()`` ends.

    Bound here, before anything else happens, so the redirect URI (and its port) is known for
    the registration and the browser. ``issuer``/``issuer_required``: see ``issuer_problem``.
    Raises OAuthError when the port cannot be had.
    """
    try:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    except OSError as exc:
        raise OAuthError(
            f"cannot listen on 127.0.0.1:{port} for the sign-in redirect ({exc.strerror or exc})",
            "Another program uses that port: choose another with --callback-port, or 0 to let "
            "the system pick one",
        ) from None
    return CallbackListener(
        listeners, state, on_discarded, issuer=issuer, issuer_required=issuer_required
    )


def open_browser(url: str, *, quiet_stdio: bool = True) -> bool:
    """Open ``url`` in the user's browser; False when none could be started.

    Blocking (a ``BROWSER`` command is waited for): call it from a worker thread. With
    ``quiet_stdio`` a browser started as a plain command gets no stdin and no stdout.
    """
    import webbrowser

    if not quiet_stdio:
        return webbrowser.open(url)
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if not isinstance(browser, webbrowser.GenericBrowser):
        # macOS, Windows and the known Unix browsers already keep our stdio out of it.
        return browser.open(url)
    command = [browser.name, *(arg.replace("%s", url) for arg in browser.args)]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=sys.platform != "win32",
        )
    except OSError as exc:
        log.debug("could not start the browser %s: %s", browser.name, exc)
        return False
    if isinstance(browser, webbrowser.BackgroundBrowser):
        return process.poll() is None
    return process.wait() == 0


async def system_browser(url: str, *, quiet_stdio: bool = True) -> bool:
    """``open_browser`` in a worker thread (it may wait for a ``BROWSER`` command to end)."""
    return await trio.to_thread.run_sync(
        lambda: open_browser(url, quiet_stdio=quiet_stdio), abandon_on_cancel=True
    )
