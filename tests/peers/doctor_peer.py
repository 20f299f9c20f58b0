"""Test peer for the doctor: HTTP answers that only a server can give, in front of the self-test's
MCP server, served by hypercorn under trio inside the test itself.

Routes (everything else goes to the self-test server: ``/mcp`` Streamable HTTP, ``/sse`` legacy):

* ``/auth/mcp``: the MCP endpoint behind a bearer token (``TOKEN``). Without it (or with another
  one): 401 with ``WWW-Authenticate: Bearer realm="doctor-peer", error="invalid_token",
  resource_metadata="…/.well-known/oauth-protected-resource/auth/mcp"``.
* ``/.well-known/oauth-protected-resource/auth/mcp``: RFC 9728 metadata naming
  ``https://auth.example.test`` as the authorization server.
* ``/cf/mcp``: 522 as Cloudflare sends it (``Server: cloudflare``, ``CF-RAY``, an HTML page).
* ``/page``: 200 ``text/html``, a web page where an MCP endpoint was expected.
* ``/moved``: a redirect: ``peer.redirect = (status, location)``.

``async with doctor_peer() as peer:`` gives ``peer.base`` (``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from mcp_remote_py.doctor.selftest_server import SelfTestServer

TOKEN = "doctor-peer-good-token-0123456789"
AUTH_SERVER = "https://auth.example.test"


class DoctorPeer:
    def __init__(self) -> None:
        self.mcp = SelfTestServer()
        self.base = ""
        self.seen_authorization: list[str] = []
        self.redirect: tuple[int, str] = (308, "/mcp")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.mcp(scope, receive, send)
            return
        path = scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if path == "/auth/mcp":
            given = headers.get("authorization", "")
            self.seen_authorization.append(given)
            if given != f"Bearer {TOKEN}":
                metadata = f"{self.base}/.well-known/oauth-protected-resource/auth/mcp"
                challenge = (
                    f'Bearer realm="doctor-peer", error="invalid_token", '
                    f'resource_metadata="{metadata}"'
                )
                await _respond(
                    send,
                    401,
                    b'{"error":"invalid_token"}',
                    [(b"www-authenticate", challenge.encode())],
                )
                return
            await self.mcp({**scope, "path": "/mcp"}, receive, send)
            return
        if path == "/.well-known/oauth-protected-resource/auth/mcp":
            document = {
                "resource": f"{self.base}/auth/mcp",
                "authorization_servers": [AUTH_SERVER],
                "scopes_supported": ["mcp.read", "mcp.write"],
            }
            await _respond(send, 200, json.dumps(document).encode(), [])
            return
        if path == "/cf/mcp":
            page = b"<html><head><title>Connection timed out | Error 522</title></head></html>"
            await _respond(
                send,
                522,
                page,
                [
                    (b"content-type", b"text/html"),
                    (b"server", b"cloudflare"),
                    (b"cf-ray", b"8a1b2c3d4e5f-AMS"),
                ],
            )
            return
        if path == "/moved":
            status, location = self.redirect
            await _respond(send, status, b"", [(b"location", location.encode())])
            return
        if path == "/page":
            page = b"<html><head><title>Welcome</title></head><body>hi</body></html>"
            await _respond(send, 200, page, [(b"content-type", b"text/html")])
            return
        await self.mcp(scope, receive, send)


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if not any(name == b"content-type" for name, _ in headers):
        headers = [*headers, (b"content-type", b"application/json")]
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def doctor_peer() -> AsyncIterator[DoctorPeer]:
    peer = DoctorPeer()
    async with trio.open_nursery() as nursery:
        peer.base = await nursery.start(partial(peer.mcp.serve, app=peer))
        try:
            yield peer
        finally:
            nursery.cancel_scope.cancel()
