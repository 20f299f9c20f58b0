"""The browser step on its own: the loopback callback listener and how the browser is started."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from mcp_remote_py.auth.callback import open_browser, open_callback_listener
from mcp_remote_py.auth.errors import AuthorizationRequired, OAuthError
from mcp_remote_py.auth.oauth import OAuthOptions, OAuthSession
from mcp_remote_py.auth.store import CredentialStore
from tests.auth_server.browser import HeadlessBrowser
from tests.auth_server.server import AuthServer, AuthServerConfig

from .harness import REPO

pytestmark = pytest.mark.timeout(60)

STATE = "expected-state-0123456789abcdefghijkl"


async def test_only_the_right_state_is_accepted_once() -> None:
    notices: list[str] = []
    listener = await open_callback_listener(STATE, on_discarded=notices.append)
    assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        nursery.start_soon(listener.serve)
        base = listener.redirect_uri
        assert (await http.get(base.replace("/callback", "/favicon.ico"))).status_code == 404
        assert (await http.post(base, content=b"code=x&state=" + STATE.encode())).status_code == 404
        wrong = await http.get(base, params={"code": "c1", "state": "other"})
        assert wrong.status_code == 400
        assert "does not match" in wrong.text
        missing = await http.get(base, params={"code": "c1"})
        assert missing.status_code == 400
        right = await http.get(base, params={"code": "c2", "state": STATE})
        assert right.status_code == 200
        assert right.headers["referrer-policy"] == "no-referrer"
        assert "c2" not in right.text
        assert await listener.wait() == {"code": "c2", "state": STATE}
        again = await http.get(base, params={"code": "c3", "state": STATE})
        assert "already complete" in again.text
        assert await listener.wait() == {"code": "c2", "state": STATE}
        nursery.cancel_scope.cancel()
    await listener.aclose()
    assert listener.discarded == 2
    assert len(notices) == 2


async def test_a_silent_connection_does_not_block_the_listener() -> None:
    listener = await open_callback_listener(STATE)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.serve)
        idle = await trio.open_tcp_stream("127.0.0.1", listener.port)  # says nothing
        async with httpx.AsyncClient() as http:
            response = await http.get(listener.redirect_uri, params={"code": "c", "state": STATE})
        assert response.status_code == 200
        await idle.aclose()
        nursery.cancel_scope.cancel()
    await listener.aclose()


async def test_a_taken_port_is_named() -> None:
    listener = await open_callback_listener(STATE)
    try:
        with pytest.raises(OAuthError) as caught:
            await open_callback_listener(STATE, listener.port)
        assert "--callback-port" in caught.value.advice()
    finally:
        await listener.aclose()


async def test_a_fixed_callback_port_is_used(tmp_path: Path) -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = AuthServer(AuthServerConfig())
    try:
        async with httpx.AsyncClient() as http:
            session = OAuthSession(
                server.mcp_url,
                http,
                OAuthOptions(callback_port=port),
                store=CredentialStore("file", config_dir=tmp_path),
                browser=HeadlessBrowser(),
                notify=lambda _: None,
                lock_dir=tmp_path / "locks",
            )
            await session.login()
    finally:
        server.close()
    assert server.authorize_requests[0]["redirect_uri"] == f"http://127.0.0.1:{port}/callback"


async def test_declining_in_the_browser_is_reported(tmp_path: Path) -> None:
    server = AuthServer(AuthServerConfig(deny=True))
    try:
        async with httpx.AsyncClient() as http:
            session = OAuthSession(
                server.mcp_url,
                http,
                store=CredentialStore("file", config_dir=tmp_path),
                browser=HeadlessBrowser(),
                notify=lambda _: None,
                lock_dir=tmp_path / "locks",
            )
            with pytest.raises(AuthorizationRequired, match="declined"):
                await session.login()
    finally:
        server.close()
    assert server.token_requests == []


def test_a_browser_command_never_writes_into_our_stdout(tmp_path: Path) -> None:
    # The relay's stdout is the JSON-RPC channel: a BROWSER command (or a console browser) that
    # prints must not land there, nor read our stdin.
    noisy = tmp_path / "noisy_browser.py"
    seen = tmp_path / "seen.txt"
    noisy.write_text(
        "import sys\n"
        "print('BROWSER NOISE ON STDOUT')\n"
        f"open({str(seen)!r}, 'w').write(sys.argv[1] + ' stdin=' + repr(sys.stdin.read()))\n"
    )
    browser = f"{shlex.quote(sys.executable)} {shlex.quote(str(noisy))} %s"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mcp_remote_py.auth.callback import open_browser; "
            "print(open_browser('http://127.0.0.1:1/authorize?x=1'))",
        ],
        input=b"JSON-RPC from the client\n",
        capture_output=True,
        env={**os.environ, "BROWSER": browser},
        cwd=REPO,
        timeout=30,
        check=True,
    )
    assert result.stdout == b"True\n"
    assert seen.read_text() == "http://127.0.0.1:1/authorize?x=1 stdin=''"


def test_no_browser_at_all_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    def nothing(using: str | None = None) -> webbrowser.BaseBrowser:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", nothing)
    assert open_browser("http://127.0.0.1:1/") is False
