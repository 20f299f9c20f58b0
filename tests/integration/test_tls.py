"""TLS: the system trust store by default, --ca-file for a private CA, --insecure loudly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from .harness import Server, raw_relay, sdk_server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(key)
    with chain.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    ca.cert_pem.write_to_path(ca_file)
    async with sdk_server("--ssl-certfile", str(chain), "--ssl-keyfile", str(key)) as server:
        assert server.base.startswith("https://")
        yield server, ca_file


async def test_an_unknown_ca_is_refused_with_advice(
    tls_server: tuple[Server, Path], tmp_path: Path
) -> None:
    server, _ = tls_server
    async with raw_relay([server.mcp_url], tmp_path) as relay:
        error = (await relay.initialize())["error"]
    assert "TLS certificate of 127.0.0.1 was not accepted" in error["message"]
    assert "--ca-file" in error["message"]


async def test_ca_file_makes_a_private_ca_trusted(
    tls_server: tuple[Server, Path], tmp_path: Path
) -> None:
    server, ca_file = tls_server
    async with raw_relay([server.mcp_url, "--ca-file", str(ca_file)], tmp_path) as relay:
        answer = await relay.initialize()
    assert answer["result"]["serverInfo"]["name"] == "sdk-peer"


async def test_insecure_works_and_warns(tls_server: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = tls_server
    async with raw_relay([server.mcp_url, "--insecure"], tmp_path) as relay:
        answer = await relay.initialize()
    assert answer["result"]["serverInfo"]["name"] == "sdk-peer"
    assert "--insecure is set: TLS certificates are NOT checked" in relay.stderr()
