"""OAuth sign-in against a real authorization server and a protected MCP server on loopback.

The client side is ``OAuthSession`` used the way the relay uses it: send the request with
``authorization_header()``, and on a 401 or 403 ask ``on_unauthorized``/``on_forbidden`` for
the header to send it again with. The "browser" follows the authorization URL's redirects to
the callback (``tests/auth_server/browser.py``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from mcp_remote_py.auth.errors import AuthorizationRequired, OAuthError
from mcp_remote_py.auth.oauth import OAuthOptions, OAuthSession
from mcp_remote_py.auth.store import Credential, CredentialStore, find_os_keyring
from tests.auth_server.browser import HeadlessBrowser
from tests.auth_server.server import ADMIN_TOOL, AuthServer, AuthServerConfig, StaticClient

pytestmark = pytest.mark.timeout(60)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "oauth-test", "version": "1"},
    },
}
WAIT = 30.0

MakeServer = Callable[..., AuthServer]


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    servers: list[AuthServer] = []

    def make(**changes: Any) -> AuthServer:
        server = AuthServer(AuthServerConfig(**changes))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore("file", config_dir=tmp_path / "config", warn=lambda _: None)


class Client:
    """An MCP client over raw HTTP that authorizes as the relay would, recording every notice."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        server: AuthServer,
        store: CredentialStore,
        tmp_path: Path,
        *,
        browser: HeadlessBrowser | None = None,
        options: OAuthOptions | None = None,
        nursery: trio.Nursery | None = None,
        interactive: bool = True,
    ) -> None:
        self.http = http
        self.server = server
        self.browser = browser or HeadlessBrowser()
        self.notices: list[str] = []
        self.interactive = interactive
        self.oauth = OAuthSession(
            server.mcp_url,
            http,
            options,
            store=store,
            nursery=nursery,
            browser=self.browser,
            notify=self.notices.append,
            lock_dir=tmp_path / "locks",
        )
        self.session_id: str | None = None
        self.header: str | None = None
        self.calls = 0

    async def post(self, message: dict[str, Any]) -> httpx.Response:
        """Send ``message``, authorizing (and retrying) as a relay does."""
        oauth = self.oauth
        header = await oauth.authorization_header(
            interactive=self.interactive, wait_for_sign_in=WAIT
        )
        for _ in range(3):
            headers = {"Accept": "application/json, text/event-stream"}
            if header:
                headers["Authorization"] = header
            if self.session_id:
                headers["Mcp-Session-Id"] = self.session_id
                headers["MCP-Protocol-Version"] = "2025-11-25"
            response = await self.http.post(self.server.mcp_url, json=message, headers=headers)
            if response.status_code == 401:
                header = await oauth.on_unauthorized(
                    response.headers,
                    sent=header,
                    interactive=self.interactive,
                    wait_for_sign_in=WAIT,
                )
                continue
            if response.status_code == 404 and self.session_id and message is not INITIALIZE:
                # The session belongs to the client it was opened by; a step-up that registered
                # a new client needs a new session (the relay re-establishes it the same way).
                self.session_id = None
                await self.initialize()
                continue
            if response.status_code == 403:
                stepped_up = await oauth.on_forbidden(
                    response.headers,
                    sent=header,
                    interactive=self.interactive,
                    wait_for_sign_in=WAIT,
                )
                if stepped_up is None:
                    break
                header = stepped_up
                continue
            break
        self.header = header
        return response

    async def initialize(self) -> None:
        response = await self.post(INITIALIZE)
        assert response.status_code == 200, response.text
        self.session_id = response.headers["mcp-session-id"]
        response = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert response.status_code == 202, response.text

    async def call(self, tool: str) -> httpx.Response:
        self.calls += 1
        message = {
            "jsonrpc": "2.0",
            "id": 1 + self.calls,
            "method": "tools/call",
            "params": {"name": tool, "arguments": {}},
        }
        return await self.post(message)


def expire_in(
    seconds: int, credential: Credential, store: CredentialStore, server: AuthServer
) -> None:
    """Store ``credential`` again as an hour-long token with ``seconds`` left of it."""
    store.put(
        server.mcp_url,
        Credential(
            kind="oauth",
            access_token=credential.access_token,
            refresh_token=credential.refresh_token,
            expires_at=time.time() + seconds,
            client=credential.client,
            saved_at=time.time() - (3600 - seconds),
        ),
    )


def stored(store: CredentialStore, server: AuthServer) -> Credential:
    credential = store.get(server.mcp_url)
    assert credential is not None
    assert credential.kind == "oauth"
    return credential


# ---------------------------------------------------------------- discovery and sign-in


async def test_sign_in_from_the_challenge(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        response = await client.call("whoami")
        assert "hello from the protected server" in response.text

    # Discovery went by the header's resource_metadata (served nowhere else).
    assert "/meta/protected-resource.json" in server.metadata_requests
    assert len(client.browser.opened) == 1
    (authorize,) = server.authorize_requests
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["resource"] == server.mcp_url  # RFC 8707
    assert authorize["scope"] == "mcp:read"  # from WWW-Authenticate
    assert authorize["redirect_uri"].startswith("http://127.0.0.1:")
    assert authorize["redirect_uri"].endswith("/callback")
    assert len(authorize["state"]) >= 32
    (token,) = server.token_requests
    assert token["grant_type"] == "authorization_code"
    assert token["resource"] == server.mcp_url
    assert len(token["code_verifier"]) >= 43
    (registration,) = server.registrations
    assert registration["redirect_uris"] == [authorize["redirect_uri"]]
    assert registration["token_endpoint_auth_method"] == "none"

    credential = stored(store, server)
    assert credential.refresh_token
    assert credential.expires_at is not None
    client_info = credential.client or {}
    assert client_info["registration"] == "dynamic"
    assert client_info["issuer"] == server.issuer
    assert client_info["resource"] == server.mcp_url
    assert client_info["scope"] == "mcp:read"

    # A second process finds the token: no browser, no discovery.
    async with httpx.AsyncClient() as http:
        again = Client(http, server, store, tmp_path)
        await again.initialize()
    assert again.browser.opened == []
    assert len(server.authorize_requests) == 1


@pytest.mark.parametrize(
    ("prm", "as_metadata", "issuer_path", "expected"),
    [
        # 2025-11-25: path-inserted well-known first...
        ("path", "oauth", "", ["/.well-known/oauth-protected-resource/mcp"]),
        # ...then the root.
        (
            "root",
            "oauth",
            "",
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource",
            ],
        ),
        # Authorization server metadata in the spec's order, for an issuer with a path.
        ("header", "oauth", "/tenant1", ["/.well-known/oauth-authorization-server/tenant1"]),
        (
            "header",
            "openid",
            "/tenant1",
            [
                "/.well-known/oauth-authorization-server/tenant1",
                "/.well-known/openid-configuration/tenant1",
            ],
        ),
        (
            "header",
            "openid-append",
            "/tenant1",
            [
                "/.well-known/oauth-authorization-server/tenant1",
                "/.well-known/openid-configuration/tenant1",
                "/tenant1/.well-known/openid-configuration",
            ],
        ),
        (
            "header",
            "openid",
            "",
            ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"],
        ),
    ],
)
async def test_discovery_fallbacks(
    make_server: MakeServer,
    store: CredentialStore,
    tmp_path: Path,
    prm: str,
    as_metadata: str,
    issuer_path: str,
    expected: list[str],
) -> None:
    server = make_server(prm=prm, as_metadata=as_metadata, issuer_path=issuer_path)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
    assert len(server.authorize_requests) == 1
    seen = [p for p in server.metadata_requests if p != "/meta/protected-resource.json"]
    if prm == "header":
        seen = [p for p in seen if "protected-resource" not in p]
    else:
        assert seen[: len(expected)] == expected
        return
    assert seen == expected


@pytest.mark.parametrize("as_metadata", ["oauth", "none"])
async def test_the_2025_03_26_fallback(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path, as_metadata: str
) -> None:
    # No protected resource metadata: the MCP server's origin is the authorization server,
    # with RFC 8414 metadata at its root or, without it, /authorize /token /register there.
    server = make_server(prm="none", same_origin=True, as_metadata=as_metadata)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
    assert server.issuer == server.origin
    assert "/.well-known/oauth-protected-resource/mcp" in server.metadata_requests
    assert "/.well-known/oauth-protected-resource" in server.metadata_requests
    assert "/.well-known/oauth-authorization-server" in server.metadata_requests
    (authorize,) = server.authorize_requests
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["resource"] == server.mcp_url
    assert len(server.registrations) == 1
    assert stored(store, server).client["token_endpoint"] == server.origin + "/token"  # type: ignore[index]


async def test_a_server_with_no_oauth_at_all_says_so(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server(prm="none", same_origin=True, as_metadata="none", registration=False)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        with pytest.raises(OAuthError) as caught:
            await client.initialize()
    assert "offers no OAuth" in caught.value.advice()
    assert "auth set" in caught.value.advice()
    assert client.browser.opened == []


async def test_the_registration_is_reused(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        first = Client(http, server, store, tmp_path)
        await first.oauth.login()
        second = Client(http, server, store, tmp_path)
        await second.oauth.login()  # an explicit sign-in again: same client, same callback port
    assert len(server.registrations) == 1
    assert len(server.authorize_requests) == 2
    ports = {r["redirect_uri"] for r in server.authorize_requests}
    assert len(ports) == 1


# ---------------------------------------------------------------- clients


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "none"])
async def test_a_pre_registered_client(
    make_server: MakeServer,
    store: CredentialStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    method: str,
) -> None:
    secret = None if method == "none" else "pre-registered-secret-7f3a9c2e"
    methods = ["client_secret_basic"] if method == "client_secret_basic" else [method]
    server = make_server(
        static_clients={"my-app": StaticClient(secret=secret, method=method)},
        auth_methods=methods,
        registration=False,
    )
    options = OAuthOptions(client_id="my-app", client_secret=secret)
    caplog.set_level(logging.DEBUG, logger="mcp_remote_py")
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path, options=options)
        await client.initialize()
    assert server.registrations == []
    assert server.authorize_requests[0]["client_id"] == "my-app"
    (token,) = server.token_requests
    if method == "client_secret_basic":
        assert token["authorization_header"].startswith("Basic ")
        assert "client_secret" not in token
    elif method == "client_secret_post":
        assert token["client_secret"] == secret
        assert "authorization_header" not in token
    credential = stored(store, server)
    assert (credential.client or {})["registration"] == "static"
    if secret:
        everything = "\n".join(client.notices) + caplog.text
        assert secret not in everything

    # The relay, started without the client's flags, refreshes as the stored client.
    server.expire_access_tokens()
    async with httpx.AsyncClient() as http:
        later = Client(http, server, store, tmp_path)
        await later.initialize()
    assert server.token_requests[-1]["grant_type"] == "refresh_token"
    assert later.browser.opened == []


@pytest.mark.parametrize("supported", [True, False])
async def test_a_client_id_metadata_document(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path, supported: bool
) -> None:
    server = make_server(cimd=supported)
    options = OAuthOptions(client_metadata_url=server.client_metadata_url)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path, options=options)
        await client.initialize()
    (authorize,) = server.authorize_requests
    if supported:
        assert authorize["client_id"] == server.client_metadata_url
        assert set(server.cimd_fetches) == {server.client_metadata_url}
        assert server.registrations == []
        assert (stored(store, server).client or {})["registration"] == "metadata_document"
    else:
        # 2025-11-25 §Client ID Metadata Documents: MAY fall back to Dynamic Client Registration.
        assert len(server.registrations) == 1
        assert authorize["client_id"] != server.client_metadata_url
        assert any("does not support client ID metadata documents" in n for n in client.notices)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("methods", [None, ["plain"]])
async def test_no_pkce_s256_no_sign_in(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path, methods: list[str] | None
) -> None:
    server = make_server(pkce_methods=methods)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        with pytest.raises(OAuthError) as caught:
            await client.initialize()
    assert "not S256" in str(caught.value)
    assert client.browser.opened == []
    assert server.authorize_requests == []
    assert server.registrations == []


async def test_a_callback_with_the_wrong_state_is_discarded(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    browser = HeadlessBrowser(forge_first=True)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path, browser=browser)
        await client.initialize()
    forged, real = browser.callbacks
    assert forged.status_code == 400
    assert "state does not match" in forged.text
    assert real.status_code == 200
    assert any("state does not match" in n for n in client.notices)
    (token,) = server.token_requests
    assert not token["code"].startswith("forged")


async def test_only_a_forged_callback_never_signs_in(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    browser = HeadlessBrowser(forge_only=True)
    async with httpx.AsyncClient() as http:
        client = Client(
            http, server, store, tmp_path, browser=browser, options=OAuthOptions(auth_timeout=2)
        )
        with pytest.raises(AuthorizationRequired, match="not completed"):
            await client.initialize()
    assert server.token_requests == []
    assert store.get(server.mcp_url) is None


async def test_the_issuer_in_the_answer_is_checked(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server(iss_in_response=True)  # RFC 9207
    async with httpx.AsyncClient() as http:
        await Client(http, server, store, tmp_path).initialize()
    assert len(server.token_requests) == 1


# ---------------------------------------------------------------- tokens over time


async def test_refresh_shortly_before_expiry_saves_the_rotated_token(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        first = stored(store, server)
        # Ten seconds to go out of an hour: inside the one-minute margin.
        expire_in(10, first, store, server)
        fresh = Client(http, server, store, tmp_path)
        header = await fresh.oauth.authorization_header()
    second = stored(store, server)
    assert header == f"Bearer {second.access_token}"
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token  # rotated, and saved
    assert first.refresh_token not in server.refresh_tokens  # the old one is dead
    refresh = server.token_requests[-1]
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["resource"] == server.mcp_url
    assert fresh.browser.opened == []


async def test_a_401_refreshes_and_the_request_goes_through(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        server.expire_access_tokens()  # the server forgets it early
        response = await client.call("whoami")
    assert response.status_code == 200
    assert [t["grant_type"] for t in server.token_requests] == [
        "authorization_code",
        "refresh_token",
    ]
    assert len(client.browser.opened) == 1


async def test_invalid_grant_drops_the_tokens_and_says_to_log_in(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        await Client(http, server, store, tmp_path).initialize()
        server.revoke_refresh_tokens()
        server.expire_access_tokens()
        relay = Client(http, server, store, tmp_path, interactive=False)
        with pytest.raises(AuthorizationRequired) as caught:
            await relay.initialize()
        text = caught.value.advice()
        assert "invalid_grant" in text
        assert f"mcp-remote-py auth login {server.mcp_url}" in text
        assert store.get(server.mcp_url) is None
        assert relay.browser.opened == []

        # Interactive, the same situation leads to a new browser sign-in.
        await Client(http, server, store, tmp_path).initialize()
        server.revoke_refresh_tokens()
        server.expire_access_tokens()
        again = Client(http, server, store, tmp_path)
        await again.initialize()
    assert len(again.browser.opened) == 1
    assert stored(store, server).access_token in server.access_tokens


async def test_without_interaction_no_browser_opens(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path, interactive=False)
        with pytest.raises(AuthorizationRequired) as caught:
            await client.initialize()
    assert f"auth login {server.mcp_url}" in caught.value.advice()
    assert client.browser.opened == []
    assert server.metadata_requests == []


# ---------------------------------------------------------------- scopes and resources


async def test_step_up_on_insufficient_scope(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        response = await client.call(ADMIN_TOOL)
    assert response.status_code == 200
    assert "admin done" in response.text
    assert server.forbidden == 1
    assert [a["scope"] for a in server.authorize_requests] == ["mcp:read", "mcp:read mcp:admin"]
    # The first registration covered only mcp:read (what the server listed): registered again.
    assert len(server.registrations) == 2
    assert (stored(store, server).client or {})["scope"] == "mcp:read mcp:admin"


async def test_two_requests_needing_more_scope_share_one_step_up(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server(scopes_supported=["mcp:read", "mcp:admin"])
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        answers: list[httpx.Response] = []

        async def admin() -> None:
            answers.append(await client.call(ADMIN_TOOL))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(admin)
            nursery.start_soon(admin)
    assert [a.status_code for a in answers] == [200, 200]
    assert server.forbidden == 2
    assert len(client.browser.opened) == 2  # the first sign-in and one step-up


async def test_step_up_that_does_not_help_stops(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server(grant_admin=False, scopes_supported=["mcp:read", "mcp:admin"])
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        with pytest.raises(OAuthError, match="still refuses with insufficient_scope"):
            await client.call(ADMIN_TOOL)
    assert server.forbidden == 2
    assert len(client.browser.opened) == 2  # the first sign-in and one step-up, no more
    assert len(server.registrations) == 1  # registered for both scopes at once


@pytest.mark.parametrize(
    ("challenge_scope", "scopes_supported", "asked"),
    [
        ("mcp:read mcp:admin", ["mcp:read"], "mcp:read mcp:admin"),  # the challenge first
        (None, ["mcp:read"], "mcp:read"),  # then the protected resource's scopes_supported
        (None, [], None),  # else no scope parameter at all
    ],
)
async def test_scope_selection(
    make_server: MakeServer,
    store: CredentialStore,
    tmp_path: Path,
    challenge_scope: str | None,
    scopes_supported: list[str],
    asked: str | None,
) -> None:
    # 2025-11-25 §Scope Selection Strategy (never the authorization server's whole list, which
    # here holds "openid profile email" too).
    server = make_server(challenge_scope=challenge_scope, scopes_supported=scopes_supported)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        if asked is None:
            # This server wants mcp:read, and its 403 does not name it: nothing to step up to.
            with pytest.raises(OAuthError, match="without saying which scope"):
                await client.initialize()
        else:
            await client.initialize()
    assert server.authorize_requests[0].get("scope") == asked


async def test_one_refresh_across_processes(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    # Rotating refresh tokens: two processes refreshing at once would burn the token for one of
    # them. The lock and the re-read make it one refresh, whose result both use.
    server = make_server()
    async with httpx.AsyncClient() as http:
        await Client(http, server, store, tmp_path).initialize()
        first = stored(store, server)
        expire_in(5, first, store, server)
        headers: list[str | None] = []

        async def one() -> None:
            own = CredentialStore("file", config_dir=store.config_dir, warn=lambda _: None)
            client = Client(http, server, own, tmp_path)
            headers.append(await client.oauth.authorization_header())

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
    grants = [t["grant_type"] for t in server.token_requests]
    assert grants == ["authorization_code", "refresh_token"]
    assert len(set(headers)) == 1
    assert headers[0] == f"Bearer {stored(store, server).access_token}"


async def test_the_resource_parameter_can_be_left_out(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server(validate_resource=False)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path, options=OAuthOptions(send_resource=False))
        await client.initialize()
    assert "resource" not in server.authorize_requests[0]
    assert "resource" not in server.token_requests[0]


async def test_a_token_refused_right_after_sign_in_is_not_a_loop(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    # The server wants tokens issued for it (RFC 8707), but none was asked for.
    server = make_server(validate_resource=True)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path, options=OAuthOptions(send_resource=False))
        with pytest.raises(OAuthError, match="moments ago"):
            await client.initialize()
    assert len(client.browser.opened) == 1


# ---------------------------------------------------------------- several at once


async def test_two_sign_ins_at_once_open_one_browser(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    browser = HeadlessBrowser()

    async def slow_browser(url: str) -> bool:
        await trio.sleep(0.5)  # the user reads the page while the other one waits
        return await browser(url)

    headers: list[str] = []
    async with httpx.AsyncClient() as http:

        async def one() -> None:
            # Separate sessions and stores: as separate processes would have.
            other_store = CredentialStore("file", config_dir=store.config_dir, warn=lambda _: None)
            client = Client(http, server, other_store, tmp_path, browser=browser)
            client.oauth._flow._browser = slow_browser
            await client.initialize()
            assert client.header is not None
            headers.append(client.header)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
    assert len(browser.opened) == 1
    assert len(server.authorize_requests) == 1
    assert headers[0] == headers[1]


async def test_a_sign_in_outlives_a_short_wait(
    make_server: MakeServer, store: CredentialStore, tmp_path: Path
) -> None:
    server = make_server()
    browser = HeadlessBrowser(hold=True)  # the user has not clicked yet
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        client = Client(http, server, store, tmp_path, browser=browser, nursery=nursery)
        response = await http.post(server.mcp_url, json=INITIALIZE)
        with pytest.raises(AuthorizationRequired) as caught:
            await client.oauth.on_unauthorized(
                response.headers, sent=None, interactive=True, wait_for_sign_in=0.5
            )
        assert "Finish signing in in the browser" in caught.value.advice()
        # The user clicks now; the next request waits for that same sign-in.
        (url,) = browser.opened
        nursery.start_soon(HeadlessBrowser(), url)
        header = await client.oauth.authorization_header(interactive=True, wait_for_sign_in=WAIT)
    assert header == f"Bearer {stored(store, server).access_token}"
    assert len(browser.opened) == 1


# ---------------------------------------------------------------- stores and secrets


async def test_the_keyring_store(
    make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_credential_store import MemoryKeyring

    backend = find_os_keyring() or MemoryKeyring()
    keyring_store = CredentialStore(backend=backend, config_dir=tmp_path / "config")
    server = make_server()
    try:
        async with httpx.AsyncClient() as http:
            await Client(http, server, keyring_store, tmp_path).initialize()
            again = Client(http, server, keyring_store, tmp_path)
            await again.initialize()
        assert again.browser.opened == []
        assert stored(keyring_store, server).refresh_token
        assert not (tmp_path / "config" / "credentials.json").exists()
    finally:
        keyring_store.delete(server.mcp_url)


async def test_no_secret_reaches_a_log_or_a_notice(
    make_server: MakeServer,
    store: CredentialStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A confidential dynamic client (the server allows only client_secret_post), a sign-in, a
    # refresh and a step-up: nothing secret in any log record or notice.
    server = make_server(auth_methods=["client_secret_post"])
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        client = Client(http, server, store, tmp_path)
        await client.initialize()
        server.expire_access_tokens()
        await client.call("whoami")
        await client.call(ADMIN_TOOL)
    secrets_seen: list[str] = []
    for token in server.token_requests:
        secrets_seen += [
            token.get("code", ""),
            token.get("code_verifier", ""),
            token.get("refresh_token", ""),
            token.get("client_secret", ""),
        ]
    secrets_seen += server.issued
    secrets_seen += [t for t in server.refresh_tokens]
    credential = stored(store, server)
    secrets_seen += [credential.access_token, credential.refresh_token or ""]
    secrets_seen += [(credential.client or {}).get("client_secret") or ""]
    secrets_seen = [s for s in secrets_seen if s]
    assert len(secrets_seen) > 8
    # Our logger's records (the test's own "browser" is an httpx client that logs the callback
    # URL, code included, at INFO: that is the browser's business, not the relay's).
    ours = [r for r in caplog.records if r.name.startswith("mcp_remote_py")]
    assert ours
    everything = "\n".join(client.notices) + "\n"
    everything += json.dumps([r.getMessage() for r in ours] + [str(r.args) for r in ours])
    for secret in secrets_seen:
        assert secret not in everything
