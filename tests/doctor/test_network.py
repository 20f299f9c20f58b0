"""Name and network: localhost resolving to ::1 first while the server listens on IPv4 only.

The machine's own resolver may not put ::1 first, so the doctor's hosts override
(MCP_REMOTE_PY_DOCTOR_HOSTS) makes `localhost` resolve to ::1 then 127.0.0.1; the connection to
::1 is real (and refused: nothing listens there)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.peers.doctor_peer import doctor_peer

from .helpers import run_doctor

pytestmark = pytest.mark.timeout(120)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_localhost_to_ipv6_first_with_an_ipv4_only_server(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 localhost\n127.0.0.1 localhost\n")
    env = {"MCP_REMOTE_PY_DOCTOR_HOSTS": str(hosts)}
    async with doctor_peer() as peer:  # listens on 127.0.0.1 only
        url = peer.base.replace("127.0.0.1", "localhost") + "/mcp"
        run = await run_doctor(url, "--connect-timeout", "2", "--json", tmp_path=tmp_path, env=env)
        forced = await run_doctor(
            url, "--ipv4", "--connect-timeout", "2", "--json", tmp_path=tmp_path, env=env
        )
    dns = run.check("network.dns")
    assert dns["data"]["order"] == ["::1", "127.0.0.1"]
    connect = run.check("network.connect")
    assert connect["status"] == "warn"
    assert "resolves to ::1 (IPv6) first, which refuses the connection" in connect["summary"]
    assert connect["fix"] == "Use 127.0.0.1 instead of localhost in the URL, or pass --ipv4"
    assert run.check("mcp.session")["status"] == "pass"  # slow on Windows, but it connects
    assert forced.check("network.connect")["status"] == "pass"
    assert "--ipv4 is set" in forced.check("network.connect")["summary"]
    assert forced.check("mcp.session")["status"] == "pass"
    assert forced.code == 0


async def test_a_name_that_does_not_resolve(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# nothing\n")
    run = await run_doctor(
        "https://does-not-exist.invalid/mcp", "--json", tmp_path=tmp_path,
        env={"MCP_REMOTE_PY_DOCTOR_HOSTS": str(hosts)},
    )  # fmt: skip
    dns = run.check("network.dns")
    assert dns["status"] == "fail"
    assert "does not resolve" in dns["summary"]
    assert run.code == 1
