"""OAuth for the 2026-07-28 revision (issue 15) through ``OAuthSession``: the loopback callback
refusing an answer from another authorization server (RFC 9207), and a server that moves to
another authorization server and back (SEP-2352).

The callback listener and the browser's request to it are real (loopback); the MCP server's
metadata and the authorization servers are an ``httpx.MockTransport``, so each test can say
exactly what every party saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from mcp_remote_py.auth.callback import open_callback_listener
from mcp_remote_py.auth.errors import OAuthError
from mcp_remote_py.auth.oauth import OAuthOptions, OAuthSession
from mcp_remote_py.auth.store import CredentialStore

pytestmark = pytest.mark.timeout(60)

STATE = "expected-state-0123456789abcdefghijkl"
ISSUER = "https://auth.example.com"
MCP = "https://mcp.example.com/mcp"
PRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
CHALLENGE = {"www-authenticate": f'Bearer resource_metadata="{PRM}", scope="mcp:basic"'}
AS1 = "https://as1.example.com"
AS2 = "https://as2.example.com"


# ---------------------------------------------------------------- the callback and iss


async def test_an_answer_naming_another_issuer_ends_the_wait_and_shows_nothing_of_it() -> None:
    listener = await open_callback_listener(STATE, issuer=ISSUER, issuer_required=True)
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        nursery.start_soon(listener.serve)
        answer = await http.get(
            listener.redirect_uri,
            params={
                "state": STATE,
                "iss": "https://evil.example",
                "error": "access_denied",
                "error_description": "Call +1-555-0100 to restore your account",
            },
        )
        # 2026-07-28 §Authorization Response Validation: on a mismatch the error fields are
        # neither acted on nor displayed.
        assert answer.status_code == 400
        assert "555" not in answer.text
        assert "iss does not match" in answer.text
        params = await listener.wait()  # the sign-in ends (TokenFlow then refuses it)
        assert params["iss"] == "https://evil.example"
        nursery.cancel_scope.cancel()
    await listener.aclose()


@pytest.mark.parametrize(
    ("iss", "required", "status"),
    [(ISSUER, True, 200), (None, False, 200), (None, True, 400), (ISSUER + "/", False, 400)],
)
async def test_the_listener_applies_the_rfc_9207_table(
    iss: str | None, required: bool, status: int
) -> None:
    listener = await open_callback_listener(STATE, issuer=ISSUER, issuer_required=required)
    params = {"state": STATE, "code": "the-code"}
    if iss is not None:
        params["iss"] = iss
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        nursery.start_soon(listener.serve)
        answer = await http.get(listener.redirect_uri, params=params)
        assert answer.status_code == status
        assert (await listener.wait())["code"] == "the-code"
        nursery.cancel_scope.cancel()
    await listener.aclose()


# ---------------------------------------------------------------- a world of two servers


@dataclass
class World:
    """The MCP server's protected resource metadata, naming ``current``, and the
    authorization servers AS1 and AS2, recording what each was sent."""

    current: str = AS1
    iss: dict[str, str] = field(default_factory=dict)  # issuer → the iss its answers carry
    registered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorized: list[tuple[str, str]] = field(default_factory=list)  # (issuer, client_id)
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (issuer, client_id)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        issuer = f"{request.url.scheme}://{request.url.host}"
        if url == PRM:
            return httpx.Response(
                200, json={"resource": MCP, "authorization_servers": [self.current]}
            )
        if request.url.path == "/.well-known/oauth-authorization-server" and issuer in (AS1, AS2):
            return httpx.Response(
                200,
                json={
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/authorize",
                    "token_endpoint": f"{issuer}/token",
                    "registration_endpoint": f"{issuer}/register",
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["none"],
                    "authorization_response_iss_parameter_supported": True,
                },
            )
        if request.url.path == "/register":
            body = json.loads(request.content)
            self.registered.append((issuer, body))
            client_id = f"{request.url.host}-client-{len(self.registered)}"
            return httpx.Response(201, json={**body, "client_id": client_id})
        if request.url.path == "/token":
            form = parse_qs(request.content.decode())
            self.tokens.append((issuer, form["client_id"][0]))
            token = f"{request.url.host}-token-{len(self.tokens)}"
            return httpx.Response(
                200, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            )
        return httpx.Response(404)

    async def browser(self, url: str) -> bool:
        """A user who clicks "Allow": the AS redirects to the callback with a code."""
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        issuer = f"{parts.scheme}://{parts.hostname}"
        self.authorized.append((issuer, query["client_id"]))
        answer = {"code": f"code-{len(self.authorized)}", "state": query["state"]}
        answer["iss"] = self.iss.get(issuer, issuer)
        async with httpx.AsyncClient() as http:
            await http.get(query["redirect_uri"], params=answer)
        return True


def session(world: World, tmp_path: Path, http: httpx.AsyncClient, notices: list[str]) -> Any:
    return OAuthSession(
        MCP,
        http,
        OAuthOptions(auth_timeout=20),
        store=CredentialStore("file", config_dir=tmp_path / "config", warn=lambda _: None),
        browser=world.browser,
        notify=notices.append,
        lock_dir=tmp_path / "locks",
    )


async def test_a_server_that_moves_to_another_authorization_server_and_back(
    tmp_path: Path,
) -> None:
    world = World()
    notices: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(world.handle)) as http:
        oauth = session(world, tmp_path, http, notices)
        first = await oauth.on_unauthorized(CHALLENGE, sent=None, interactive=True)
        assert first == "Bearer as1.example.com-token-1"

        # The server now names AS2 and refuses AS1's token: a sign-in there, seconds after the
        # last one (no "refused moments ago" loop guard), with a registration of its own.
        world.current = AS2
        second = await oauth.on_unauthorized(CHALLENGE, sent=first, interactive=True)
        assert second == "Bearer as2.example.com-token-2"
        assert [issuer for issuer, _ in world.registered] == [AS1, AS2]
        assert world.authorized[-1] == (AS2, "as2.example.com-client-2")
        assert world.tokens[-1] == (AS2, "as2.example.com-client-2")
        assert not any(client.startswith("as1") for issuer, client in world.tokens if issuer == AS2)
        assert any(f"now names the authorization server {AS2}" in n for n in notices)

        # And back to AS1: its registration, kept under its issuer, is used again.
        world.current = AS1
        third = await oauth.on_unauthorized(CHALLENGE, sent=second, interactive=True)
        assert third == "Bearer as1.example.com-token-3"
        assert len(world.registered) == 2
        assert world.tokens[-1] == (AS1, "as1.example.com-client-1")
    for _, body in world.registered:
        assert body["application_type"] == "native"


async def test_a_refused_token_of_the_same_server_is_still_not_a_sign_in_loop(
    tmp_path: Path,
) -> None:
    world = World()
    notices: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(world.handle)) as http:
        oauth = session(world, tmp_path, http, notices)
        first = await oauth.on_unauthorized(CHALLENGE, sent=None, interactive=True)
        with pytest.raises(OAuthError, match="moments ago"):
            await oauth.on_unauthorized(CHALLENGE, sent=first, interactive=True)
    assert len(world.authorized) == 1


async def test_an_answer_from_a_mixed_up_server_is_never_redeemed(tmp_path: Path) -> None:
    world = World(iss={AS1: AS2})  # AS1's answer names AS2: a mix-up
    notices: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(world.handle)) as http:
        oauth = session(world, tmp_path, http, notices)
        with pytest.raises(OAuthError, match="RFC 9207"):
            await oauth.on_unauthorized(CHALLENGE, sent=None, interactive=True)
    assert world.authorized == [(AS1, "as1.example.com-client-1")]
    assert world.tokens == []  # the code went to no token endpoint
