"""TLS checks against the SDK peer serving HTTPS with trustme chains."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme

from tests.integration.harness import Server, sdk_server
from tests.peers.doctor_peer import doctor_peer

from .helpers import run_doctor, text_of

pytestmark = pytest.mark.timeout(180)

FAST = ("--connect-timeout", "2", "--json")


@asynccontextmanager
async def https_server(
    tmp_path: Path, *names: str, not_after: dt.datetime | None = None
) -> AsyncIterator[tuple[Server, Path]]:
    ca = trustme.CA(organization_name="Corp TLS Inspection CA")
    cert = ca.issue_cert(*(names or ("127.0.0.1", "localhost")), not_after=not_after)
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(key)
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(ca_file)
    async with sdk_server("--ssl-certfile", str(chain), "--ssl-keyfile", str(key)) as server:
        yield server, ca_file


async def test_an_unknown_root_suggests_ca_file(tmp_path: Path) -> None:
    async with https_server(tmp_path) as (server, _):
        run = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
    assert run.code == 1
    assert run.check("tls.handshake")["status"] == "pass"
    chain = run.check("tls.chain")
    assert chain["status"] == "fail"
    assert "neither the system store nor certifi" in chain["summary"]
    assert "Corp TLS Inspection CA" in chain["summary"]
    assert "--ca-file" in chain["fix"]
    assert "TLS-inspecting proxy" in chain["fix"]
    assert run.check("tls.hostname")["status"] == "pass"
    assert run.check("http.reach")["status"] == "skip"


async def test_ca_file_makes_it_pass(tmp_path: Path) -> None:
    async with https_server(tmp_path) as (server, ca_file):
        run = await run_doctor(server.mcp_url, "--ca-file", str(ca_file), *FAST, tmp_path=tmp_path)
    assert run.code == 0, run.stdout
    assert run.check("local.ca_file")["status"] == "pass"
    assert "--ca-file" in run.check("tls.chain")["summary"]
    assert run.check("tls.expiry")["status"] == "pass"
    assert run.check("mcp.session")["status"] == "pass"


async def test_hostname_mismatch(tmp_path: Path) -> None:
    async with https_server(tmp_path, "other.example.test") as (server, ca_file):
        run = await run_doctor(server.mcp_url, "--ca-file", str(ca_file), *FAST, tmp_path=tmp_path)
    hostname = run.check("tls.hostname")
    assert hostname["status"] == "fail"
    assert "not for 127.0.0.1" in hostname["summary"]
    assert "other.example.test" in hostname["summary"]


@pytest.mark.parametrize(
    ("days", "status", "words"),
    [(5, "warn", "expires in"), (-3, "fail", "expired")],
)
async def test_expiry(tmp_path: Path, days: int, status: str, words: str) -> None:
    not_after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days, hours=1)
    async with https_server(tmp_path, "127.0.0.1", not_after=not_after) as (server, ca_file):
        run = await run_doctor(server.mcp_url, "--ca-file", str(ca_file), *FAST, tmp_path=tmp_path)
    expiry = run.check("tls.expiry")
    assert expiry["status"] == status
    assert words in expiry["summary"]


async def test_insecure_turns_failures_into_warnings(tmp_path: Path) -> None:
    async with https_server(tmp_path) as (server, _):
        run = await run_doctor(server.mcp_url, "--insecure", *FAST, tmp_path=tmp_path)
    chain = run.check("tls.chain")
    assert chain["status"] == "warn"
    assert "--insecure hides this" in text_of(chain)
    assert run.check("mcp.session")["status"] == "pass"


@pytest.mark.parametrize("status", [308, 301])
async def test_http_to_https_redirect_to_another_port_is_another_origin(
    tmp_path: Path, status: int
) -> None:
    # Only http:80 -> https:443 of one host is an upgrade the relay follows (net.redirect_allowed;
    # the unit table in test_net.py has that row): test servers here listen on other ports, so
    # this redirect goes to another origin, which the relay refuses and doctor reports as such.
    async with https_server(tmp_path) as (server, ca_file), doctor_peer() as peer:
        peer.redirect = (status, server.mcp_url)
        run = await run_doctor(
            peer.base + "/moved", "--ca-file", str(ca_file), *FAST, tmp_path=tmp_path
        )
    redirects = run.check("http.redirects")
    assert redirects["status"] == "fail"
    assert "another origin" in redirects["summary"]
    assert server.mcp_url in redirects["fix"]
