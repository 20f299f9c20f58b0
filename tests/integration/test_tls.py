"""TLS: the system trust store by default, --ca-file for a private CA, --insecure loudly."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trustme

from .harness import Server, raw_relay, sdk_server

pytestmark = pytest.mark.timeout(120)


def server_certificate(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1: (chain, key, CA) files."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(key)
    with chain.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    ca.cert_pem.write_to_path(ca_file)
    return chain, key, ca_file


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    chain, key, ca_file = server_certificate(tmp_path)
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


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
@pytest.mark.parametrize("http2", [False, True])
async def test_http2_is_used_only_when_asked(transport: str, http2: bool, tmp_path: Path) -> None:
    chain, key, ca_file = server_certificate(tmp_path)
    flags = ["--transport", transport, "--hypercorn"]
    flags += ["--ssl-certfile", str(chain), "--ssl-keyfile", str(key)]
    async with sdk_server(*flags) as server:
        url = server.mcp_url if transport == "streamable-http" else server.base + "/sse"
        args = [url, "--ca-file", str(ca_file)] + (["--http2"] if http2 else [])
        async with raw_relay(args, tmp_path) as relay:
            assert "result" in await relay.initialize()
            for call in range(3):
                text = f"over h2? {call}"
                await relay.request(
                    call + 1, "tools/call", {"name": "echo", "arguments": {"text": text}}
                )
                assert (await relay.read_message())["result"]["content"][0]["text"] == text
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_file)) as client:
            versions = (await client.get(f"{server.base}/_faults")).json()["http_versions"]
    assert set(versions) == ({"2"} if http2 else {"1.1"}), versions
