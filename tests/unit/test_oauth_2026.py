"""OAuth for the 2026-07-28 revision (issue 15), the parts that need no real server: RFC 9207
``iss`` checks, protected resource metadata without ``resource``, the 2025-03-26 root metadata
naming a same-origin issuer, ``application_type`` in Dynamic Client Registration, and client
registrations bound to the issuer that issued them (SEP-2352).

The HTTP side is an ``httpx.MockTransport`` playing the MCP server's metadata and one or two
authorization servers. The conformance suite runs the same cases end to end
(``tests/integration/test_conformance_auth.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mcp_remote_py.auth.callback import issuer_problem
from mcp_remote_py.auth.discovery import AuthorizationServer, Discovery, discover
from mcp_remote_py.auth.errors import OAuthError
from mcp_remote_py.auth.oauth_options import OAuthOptions
from mcp_remote_py.auth.registration import (
    application_type,
    client_for_sign_in,
    registrations_by_issuer,
    remember_registration,
)

MCP = "https://mcp.example.com/mcp"
PRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
REDIRECT = "http://127.0.0.1:40123/callback"
AS1 = "https://as1.example.com"
AS2 = "https://as2.example.com"

# ---------------------------------------------------------------- RFC 9207 iss


ISSUER = "https://auth.example.com/tenant"


@pytest.mark.parametrize(
    ("params", "required", "refused"),
    [
        # 2026-07-28 §Authorization Response Validation, its table row by row.
        ({"code": "c", "iss": ISSUER}, True, False),  # advertised, present: compared, equal
        ({"code": "c"}, True, True),  # advertised, absent: rejected
        ({"code": "c", "iss": ISSUER}, False, False),  # not advertised, present: compared
        ({"code": "c", "iss": "https://evil.example"}, False, True),  # ... and different
        ({"code": "c"}, False, False),  # not advertised, absent: proceed
        # Simple string comparison (RFC 3986 §6.2.1); none of §6.2.2-6.2.3 normalisation.
        ({"iss": ISSUER + "/"}, True, True),  # trailing slash
        ({"iss": "HTTPS://auth.example.com/tenant"}, True, True),  # scheme case
        ({"iss": "https://AUTH.example.com/tenant"}, True, True),  # host case
        ({"iss": "https://auth.example.com:443/tenant"}, True, True),  # default port
        ({"iss": "https://auth.example.com/%74enant"}, True, True),  # percent-encoding
        ({"iss": ""}, False, True),
        # Error answers alike: a mismatched one is refused before its error is looked at.
        ({"error": "access_denied", "iss": "https://evil.example"}, False, True),
        ({"error": "access_denied", "iss": ISSUER}, True, False),
    ],
)
def test_iss_is_compared_as_rfc_9207_says(
    params: dict[str, str], required: bool, refused: bool
) -> None:
    problem = issuer_problem(params, ISSUER, required=required)
    assert (problem is not None) is refused
    if problem is not None:
        assert "RFC 9207" in problem


def test_the_refusal_names_both_issuers() -> None:
    problem = issuer_problem({"iss": "https://evil.example"}, ISSUER, required=False)
    assert problem is not None
    assert "https://evil.example" in problem
    assert ISSUER in problem
    missing = issuer_problem({}, ISSUER, required=True)
    assert missing is not None
    assert "authorization_response_iss_parameter_supported" in missing


# ---------------------------------------------------------------- a mock network

Handler = Callable[[httpx.Request], httpx.Response]


def as_metadata(issuer: str, **changes: Any) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        **changes,
    }


def documents(docs: dict[str, Any], seen: list[httpx.Request]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        url = str(request.url)
        if request.method == "POST" and url.endswith("/register"):
            body = json.loads(request.content)
            issuer = url.removesuffix("/register")
            number = sum(1 for r in seen if str(r.url) == url)
            return httpx.Response(201, json={"client_id": f"{issuer}#client{number}", **body})
        if url in docs:
            return httpx.Response(200, json=docs[url])
        return httpx.Response(404)

    return handle


async def run_discover(docs: dict[str, Any]) -> Discovery:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(documents(docs, seen))) as http:
        return await discover(http, MCP)


# ---------------------------------------------------------------- RFC 9728 resource


async def test_protected_resource_metadata_without_resource_is_refused() -> None:
    docs = {
        PRM: {"authorization_servers": [AS1]},  # RFC 9728 §2: "resource" is REQUIRED
        f"{AS1}/.well-known/oauth-authorization-server": as_metadata(AS1),
    }
    with pytest.raises(OAuthError) as caught:
        await run_discover(docs)
    message = caught.value.advice()
    assert PRM in message  # where the mistake is
    assert '"resource"' in message
    assert "RFC 9728" in message
    assert f'"resource": "{MCP}"' in message  # what the operator should add


async def test_protected_resource_metadata_with_resource_is_used() -> None:
    docs = {
        PRM: {"resource": MCP, "authorization_servers": [AS1]},
        f"{AS1}/.well-known/oauth-authorization-server": as_metadata(AS1),
    }
    found = await run_discover(docs)
    assert found.resource == MCP
    assert found.server.issuer == AS1


# ---------------------------------------------------------------- 2025-03-26 root metadata

ROOT_METADATA = "https://mcp.example.com/.well-known/oauth-authorization-server"


async def test_2025_03_26_root_metadata_may_name_an_issuer_with_a_path_on_its_own_origin() -> None:
    issuer = "https://mcp.example.com/oauth"
    docs = {
        ROOT_METADATA: {
            **as_metadata(issuer),
            "authorization_response_iss_parameter_supported": True,
        }
    }
    found = await run_discover(docs)  # no protected resource metadata at all
    assert found.resource_metadata_url is None
    # The document's own issuer is recorded: the one an RFC 9207 iss must equal.
    assert found.server.issuer == issuer
    assert found.server.authorization_endpoint == f"{issuer}/authorize"
    assert issuer_problem({"iss": issuer}, found.server.issuer, required=True) is None


@pytest.mark.parametrize(
    "issuer",
    [
        "https://auth.example.com",  # another host
        "https://auth.example.com/oauth",
        "http://mcp.example.com/oauth",  # another scheme
        "https://mcp.example.com:8443/oauth",  # another port
        "https://mcp.example.com/oauth?tenant=1",  # an issuer has no query (RFC 8414 §2)
    ],
)
async def test_2025_03_26_root_metadata_naming_another_origin_is_refused(issuer: str) -> None:
    with pytest.raises(OAuthError, match="RFC 8414 §3.3"):
        await run_discover({ROOT_METADATA: as_metadata(issuer)})


async def test_metadata_found_through_prm_must_name_the_issuer_looked_up() -> None:
    """The same-origin leniency is the 2025-03-26 fallback's alone."""
    docs = {
        PRM: {"resource": MCP, "authorization_servers": ["https://mcp.example.com"]},
        ROOT_METADATA: as_metadata("https://mcp.example.com/oauth"),
    }
    with pytest.raises(OAuthError, match="RFC 8414 §3.3"):
        await run_discover(docs)


def test_from_metadata_keeps_the_strict_check_by_default() -> None:
    with pytest.raises(OAuthError):
        AuthorizationServer.from_metadata(
            as_metadata("https://mcp.example.com/oauth"),
            issuer="https://mcp.example.com",
            metadata_url=ROOT_METADATA,
            allow_http=False,
        )


# ---------------------------------------------------------------- SEP-837 application_type


def test_application_type_is_native_for_a_loopback_redirect() -> None:
    assert application_type("http://127.0.0.1:5000/callback") == "native"
    assert application_type("http://localhost:5000/callback") == "native"
    assert application_type("http://[::1]:5000/callback") == "native"
    assert application_type("https://app.example.com/callback") == "web"


# ---------------------------------------------------------------- SEP-2352 binding


def server(issuer: str, **changes: Any) -> Discovery:
    metadata = as_metadata(issuer, **changes)
    return Discovery(
        AuthorizationServer.from_metadata(
            metadata,
            issuer=issuer,
            metadata_url=f"{issuer}/.well-known/oauth-authorization-server",
            allow_http=False,
        ),
        MCP,
        PRM,
    )


async def sign_in_client(
    discovery: Discovery,
    old: dict[str, Any],
    seen: list[httpx.Request],
    options: OAuthOptions | None = None,
) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(documents({}, seen))) as http:
        return await client_for_sign_in(
            http,
            discovery,
            options or OAuthOptions(),
            REDIRECT,
            None,
            old,
            display=MCP,
            notify=lambda _: None,
        )


def stored_after(client: dict[str, Any], old: dict[str, Any], issuer: str) -> dict[str, Any]:
    """The credential's ``client`` as ``TokenFlow`` stores it after a sign-in."""
    return {
        **client,
        "issuer": issuer,
        "registrations": remember_registration(old, client, issuer),
    }


def registrations(seen: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in seen if r.method == "POST" and r.url.path == "/register"]


async def test_registration_sends_application_type_native() -> None:
    seen: list[httpx.Request] = []
    client = await sign_in_client(server(AS1), {}, seen)
    (request,) = registrations(seen)
    body = json.loads(request.content)
    assert body["application_type"] == "native"  # 2026-07-28 §Application Type (SEP-837)
    assert body["redirect_uris"] == [REDIRECT]
    assert client["issuer"] == AS1


async def test_a_registration_is_reused_only_with_the_server_that_issued_it() -> None:
    seen: list[httpx.Request] = []
    first = await sign_in_client(server(AS1), {}, seen)
    stored = stored_after(first, {}, AS1)
    # The same authorization server: the registration is reused, nothing is sent.
    again = await sign_in_client(server(AS1), stored, seen)
    assert again["client_id"] == first["client_id"]
    assert len(registrations(seen)) == 1
    # The MCP server moved to another authorization server: a new registration there.
    moved = await sign_in_client(server(AS2), stored, seen)
    assert moved["client_id"] != first["client_id"]
    assert moved["client_id"].startswith(AS2)
    assert [r.url.host for r in registrations(seen)] == ["as1.example.com", "as2.example.com"]
    stored = stored_after(moved, stored, AS2)
    assert set(registrations_by_issuer(stored)) == {AS1, AS2}
    # And back: AS1's registration is found by its issuer and reused.
    back = await sign_in_client(server(AS1), stored, seen)
    assert back["client_id"] == first["client_id"]
    assert len(registrations(seen)) == 2


async def test_a_credential_stored_before_the_binding_map_is_still_bound() -> None:
    seen: list[httpx.Request] = []
    old = {  # what an earlier version stored: one registration and its issuer
        "registration": "dynamic",
        "client_id": "old-client",
        "token_endpoint_auth_method": "none",
        "redirect_uris": [REDIRECT],
        "issuer": AS1,
    }
    assert (await sign_in_client(server(AS1), old, seen))["client_id"] == "old-client"
    assert registrations(seen) == []
    assert (await sign_in_client(server(AS2), old, seen))["client_id"] != "old-client"
    assert len(registrations(seen)) == 1


async def test_a_pre_registered_client_used_with_another_server_is_an_error() -> None:
    seen: list[httpx.Request] = []
    options = OAuthOptions(client_id="desk-app", client_secret="s3cret-value")
    first = await sign_in_client(server(AS1), {}, seen, options)
    stored = stored_after(first, {}, AS1)
    with pytest.raises(OAuthError) as caught:
        await sign_in_client(server(AS2), stored, seen, options)
    message = caught.value.advice()
    for named in (AS1, AS2, "desk-app"):
        assert named in message
    assert "s3cret-value" not in message
    assert "mcp-remote-py auth delete" in message
    # Another client id, registered with the new server, is fine.
    other = OAuthOptions(client_id="desk-app-2")
    assert (await sign_in_client(server(AS2), stored, seen, other))["client_id"] == "desk-app-2"
    assert registrations(seen) == []


async def test_a_client_id_metadata_document_is_portable() -> None:
    seen: list[httpx.Request] = []
    options = OAuthOptions(client_metadata_url="https://app.example.com/client.json")
    cimd = {"client_id_metadata_document_supported": True}
    first = await sign_in_client(server(AS1, **cimd), {}, seen, options)
    assert first["client_id"] == "https://app.example.com/client.json"
    stored = stored_after(first, {}, AS1)
    # 2026-07-28 §Authorization Server Binding: no re-registration when the server changes.
    moved = await sign_in_client(server(AS2, **cimd), stored, seen)
    assert moved["client_id"] == "https://app.example.com/client.json"
    assert registrations(seen) == []
