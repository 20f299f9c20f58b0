"""doctor's ``auth.setup``: what a server's authorization setup asks for under 2026-07-28, and
what the relay will do, found by the relay's own discovery against a real authorization server
(tests/auth_server, on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.auth_server.server import AuthServer, AuthServerConfig

from .helpers import run_doctor

pytestmark = pytest.mark.timeout(120)

FAST = ("--connect-timeout", "2", "--json")


@contextmanager
def auth_server(config: AuthServerConfig) -> Iterator[AuthServer]:
    server = AuthServer(config)
    try:
        yield server
    finally:
        server.close()


async def test_a_plain_setup_is_explained_with_what_the_relay_will_do(tmp_path: Path) -> None:
    with auth_server(AuthServerConfig()) as server:
        run = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
    setup = run.check("auth.setup")
    assert setup["status"] == "pass", setup
    assert setup["summary"].startswith(f"sign-in at {server.issuer}: the relay opens the browser")
    said = "\n".join(setup["details"])
    assert f"tokens are asked for the resource {server.mcp_url} (RFC 8707)" in said
    assert "iss in the authorization response (RFC 9207): not promised" in said
    assert "Client ID Metadata Documents: not supported; Dynamic Client Registration: offered" in (
        said
    )
    assert "register by Dynamic Client Registration (application_type native" in said
    assert setup["data"]["iss_parameter"] is False


async def test_iss_and_client_id_metadata_documents_are_reported(tmp_path: Path) -> None:
    config = AuthServerConfig(iss_in_response=True, cimd=True)
    with auth_server(config) as server:
        run = await run_doctor(
            server.mcp_url,
            "--client-metadata-url",
            f"{server.origin}/client.json",
            *FAST,
            tmp_path=tmp_path,
        )
    setup = run.check("auth.setup")
    said = "\n".join(setup["details"])
    assert "iss in the authorization response (RFC 9207): promised, so the relay refuses" in said
    assert "Client ID Metadata Documents: supported" in said
    assert f"use the Client ID Metadata Document {server.origin}/client.json" in said
    assert setup["data"]["client_id_metadata_documents"] is True


async def test_a_server_the_relay_cannot_register_with_fails_with_the_fix(tmp_path: Path) -> None:
    config = AuthServerConfig(registration=False, cimd=False)
    with auth_server(config) as server:
        run = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
    setup = run.check("auth.setup")
    assert setup["status"] == "fail"
    assert "find no way to register" in "\n".join(setup["details"])
    assert "--oauth-client-id" in setup["fix"]


async def test_a_server_without_pkce_s256_is_refused_as_the_relay_refuses_it(
    tmp_path: Path,
) -> None:
    with auth_server(AuthServerConfig(pkce_methods=["plain"])) as server:
        run = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
    setup = run.check("auth.setup")
    assert setup["status"] == "fail"
    assert "the relay cannot sign in to this server: refusing to sign in at" in setup["summary"]
    assert "not S256" in setup["summary"]


async def test_the_device_grant_is_offered_and_what_oauth_device_would_do(tmp_path: Path) -> None:
    with auth_server(AuthServerConfig(device=True)) as server:
        plain = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
        device = await run_doctor(server.mcp_url, "--oauth-device", *FAST, tmp_path=tmp_path)
    assert "it offers the device grant too (--oauth-device" in plain.check("auth.setup")["summary"]
    setup = device.check("auth.setup")
    assert setup["status"] == "pass", setup
    assert "shows a code to enter on another device (RFC 8628)" in setup["summary"]
    assert setup["data"]["grant"] == "device_code"


async def test_oauth_device_against_a_server_without_the_grant_fails(tmp_path: Path) -> None:
    with auth_server(AuthServerConfig()) as server:
        run = await run_doctor(server.mcp_url, "--oauth-device", *FAST, tmp_path=tmp_path)
    setup = run.check("auth.setup")
    assert setup["status"] == "fail"
    assert "has no device_authorization_endpoint" in setup["summary"]
    assert "Drop --oauth-device" in setup["fix"]
