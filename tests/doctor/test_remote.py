"""doctor URL against real servers: the SDK peer on both transports, a 401 server with
protected-resource metadata, a redirect loop, Cloudflare's 522, a wrong path, a web page."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from mcp_remote_py.auth.store import Credential, CredentialStore
from tests.integration.harness import sdk_server
from tests.peers.doctor_peer import AUTH_SERVER, TOKEN, doctor_peer

from .helpers import assert_no_secret, run_doctor, text_of

pytestmark = pytest.mark.timeout(180)

FAST = ("--connect-timeout", "2", "--json")


@pytest.mark.parametrize(
    ("flags", "path", "transport"),
    [
        (("--transport", "streamable-http"), "/mcp", "Streamable HTTP"),
        (("--transport", "sse"), "/sse", "legacy HTTP+SSE"),
    ],
)
async def test_a_working_server_on_each_transport(
    tmp_path: Path, flags: tuple[str, ...], path: str, transport: str
) -> None:
    async with sdk_server(*flags) as server:
        run = await run_doctor(server.base + path, *FAST, tmp_path=tmp_path)
    assert run.code == 0, run.stdout
    session = run.check("mcp.session")
    assert session["status"] == "pass"
    assert session["data"]["transport"] == transport
    assert session["data"]["server"] == "sdk-peer 1.2.3"
    assert session["data"]["protocolVersion"] == "2025-11-25"
    assert session["data"]["tools"] == 11
    assert run.check("network.connect")["status"] == "pass"
    assert run.check("auth.status")["summary"] == "the server asked for no credentials"
    if transport == "legacy HTTP+SSE":
        assert run.check("http.legacy")["status"] == "pass"
        assert run.check("streaming.get")["status"] == "pass"  # the endpoint event came at once


async def test_text_output_one_line_per_check(tmp_path: Path) -> None:
    async with doctor_peer() as peer:
        run = await run_doctor(peer.base + "/mcp", "--connect-timeout", "2", tmp_path=tmp_path)
    assert run.code == 0
    assert "[ ok ] initialize over Streamable HTTP" in run.stdout
    assert "server mcp-remote-py-selftest 1, protocol 2025-11-25; tools/list: 2 tools" in run.stdout
    assert "\x1b[" not in run.stdout  # not a terminal, and NO_COLOR
    assert run.stdout.rstrip().endswith("nothing failed")


async def test_401_names_what_the_server_wants_and_the_fix(tmp_path: Path) -> None:
    async with doctor_peer() as peer:
        url = peer.base + "/auth/mcp"
        run = await run_doctor(url, *FAST, tmp_path=tmp_path)
    assert run.code == 1
    auth = run.check("auth.status")
    assert auth["status"] == "fail"
    assert "wants credentials (HTTP 401) and none is stored" in auth["summary"]
    said = text_of(auth)
    assert "WWW-Authenticate asks for Bearer" in said
    assert "invalid_token" in said
    assert f"authorization server {AUTH_SERVER}" in said
    assert "mcp.read mcp.write" in said
    assert f"mcp-remote-py auth set {url}" in auth["fix"]
    assert run.check("http.status")["status"] == "info"
    assert not run.has("mcp.session")  # the auth check says it all


async def test_a_stored_token_is_used_reported_and_never_shown(tmp_path: Path) -> None:
    async with doctor_peer() as peer:
        url = peer.base + "/auth/mcp"
        store = CredentialStore("file", config_dir=tmp_path / "config")
        store.put(url, Credential(access_token=TOKEN, expires_at=time.time() + 7 * 86400))
        run = await run_doctor(url, *FAST, tmp_path=tmp_path)
        assert f"Bearer {TOKEN}" in peer.seen_authorization
        text = await run_doctor(url, "--connect-timeout", "2", tmp_path=tmp_path)
        store.put(url, Credential(access_token="stale-" + TOKEN, expires_at=time.time() - 3600))
        refused = await run_doctor(url, *FAST, tmp_path=tmp_path)
    assert run.code == 0, run.stdout
    auth = run.check("auth.status")
    assert auth["status"] == "pass"
    assert "stored bearer token" in auth["summary"]
    assert "expires in 7.0 days" in auth["summary"]
    assert run.check("mcp.session")["status"] == "pass"
    stale = refused.check("auth.status")
    assert stale["status"] == "fail"
    assert "refused a stored bearer token" in stale["summary"]
    assert "expired" in stale["summary"]
    assert f"auth set {url}" in stale["fix"]
    for each in (run, text, refused):
        assert_no_secret(each, TOKEN)


async def test_a_refused_header_is_reported_without_its_value(tmp_path: Path) -> None:
    secret = "wrong-but-secret-value-42"
    async with doctor_peer() as peer:
        run = await run_doctor(
            peer.base + "/auth/mcp",
            "--header",
            f"Authorization: Bearer {secret}",
            "--header",
            "X-Tenant: tenant-secret-9",
            *FAST,
            tmp_path=tmp_path,
        )
        text = await run_doctor(
            peer.base + "/auth/mcp",
            "--header",
            f"Authorization: Bearer {secret}",
            "--connect-timeout",
            "2",
            "--debug",
            tmp_path=tmp_path,
        )
    auth = run.check("auth.status")
    assert auth["status"] == "fail"
    assert "refused the Authorization header you gave" in auth["summary"]
    assert_no_secret(run, secret, "tenant-secret-9")
    assert_no_secret(text, secret)


async def test_redirect_loop(tmp_path: Path) -> None:
    async with sdk_server("--transport", "streamable-http") as server:
        async with httpx.AsyncClient() as client:
            await client.post(
                f"{server.base}/_faults", json={"redirect_to": server.mcp_url, "count": 100}
            )
        run = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
    assert run.code == 1
    redirects = run.check("http.redirects")
    assert redirects["status"] == "fail"
    assert "redirect loop" in redirects["summary"]
    assert "Always Use HTTPS" in redirects["fix"]
    assert run.check("mcp.session")["status"] == "skip"


async def test_a_redirect_to_no_url_is_a_failed_check_not_a_crashed_stage(tmp_path: Path) -> None:
    async with sdk_server("--transport", "streamable-http") as server:
        async with httpx.AsyncClient() as client:
            await client.post(
                f"{server.base}/_faults", json={"redirect_to": "http://[::1", "count": 100}
            )
        run = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
    # httpx refuses the Location itself (doctor sends through it); the relay's own check
    # (net.resolve_location) says the same where httpx lets one through.
    failed = [c for c in run.report["checks"] if c["status"] == "fail"]
    assert any("location" in c["summary"].lower() for c in failed), failed
    assert "crashed" not in run.stdout


async def test_cross_origin_redirect_is_not_followed(tmp_path: Path) -> None:
    async with sdk_server("--transport", "streamable-http") as server:
        elsewhere = server.mcp_url.replace("127.0.0.1", "localhost")
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.base}/_faults", json={"redirect_to": elsewhere, "count": 5})
        run = await run_doctor(
            server.mcp_url, "--header", "X-Key: k-secret-1", *FAST, tmp_path=tmp_path
        )
    redirects = run.check("http.redirects")
    assert redirects["status"] == "fail"
    assert "another origin" in redirects["summary"]
    assert "localhost" in redirects["fix"]


async def test_cloudflare_522(tmp_path: Path) -> None:
    async with doctor_peer() as peer:
        run = await run_doctor(peer.base + "/cf/mcp", *FAST, tmp_path=tmp_path)
    status = run.check("http.status")
    assert status["status"] == "fail"
    assert "HTTP 522 from Cloudflare" in status["summary"]
    assert "timed out" in status["summary"]


async def test_wrong_path_suggests_the_endpoint(tmp_path: Path) -> None:
    async with doctor_peer() as peer:
        run = await run_doctor(peer.base + "/api/v1", *FAST, tmp_path=tmp_path)
    assert run.code == 1
    path = run.check("http.path")
    assert path["status"] == "fail"
    assert path["fix"] == f"Use {peer.base}/mcp as the URL"


async def test_a_web_page_is_not_an_endpoint(tmp_path: Path) -> None:
    async with doctor_peer() as peer:
        run = await run_doctor(peer.base + "/page", *FAST, tmp_path=tmp_path)
    status = run.check("http.status")
    assert status["status"] == "fail"
    assert "not an MCP answer" in status["summary"]
    assert "Welcome" in status["summary"]


async def test_nothing_listening(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = await run_doctor(f"http://127.0.0.1:{port}/mcp", *FAST, tmp_path=tmp_path)
    assert run.code == 1
    connect = run.check("network.connect")
    assert connect["status"] == "fail"
    assert "nothing accepts connections" in connect["summary"]
    assert run.check("http.reach")["status"] == "skip"


async def test_options_the_relay_would_refuse(tmp_path: Path) -> None:
    run = await run_doctor(
        "https://mcp.example.com/mcp", "--header", "Authorization: Bearer ${UNSET_VAR_X}", *FAST,
        tmp_path=tmp_path,
    )  # fmt: skip
    options = run.check("remote.options")
    assert options["status"] == "fail"
    assert "UNSET_VAR_X" in options["summary"]
