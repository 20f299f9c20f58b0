"""A protected MCP server and its OAuth 2.1 authorization server, real, on 127.0.0.1.

Built from the official SDK (``mcp`` 2.3.0):

* the resource server is the SDK's ``MCPServer`` over Streamable HTTP with its own bearer-token
  verification (``AuthSettings`` with ``validate_token_resource``: a token must have been issued
  for this server's URL, RFC 8707), required scope ``mcp:read``;
* the authorization server is the SDK's authorization, token and registration endpoints
  (``mcp.server.auth.handlers``: PKCE S256 checked, client authentication none /
  client_secret_post / client_secret_basic, RFC 7591 registration) over a provider of ours that
  keeps codes and tokens in memory and approves every request at once (the "user" always says
  yes), redirecting straight back to the client's redirect URI.

What the SDK does not vary, a front ASGI layer does, per ``AuthServerConfig``: where the
protected resource metadata is (named in the 401's ``WWW-Authenticate``, only at a well-known
URI, or nowhere as in 2025-03-26), where and whether the authorization server metadata is (RFC
8414 or OpenID Connect, path insertion or appending, the 2025-03-26 default endpoints), what
it advertises (PKCE methods, client ID metadata documents, authentication methods), token
lifetimes and refresh token rotation, and a tool that needs more scope (403
``insufficient_scope``, for step-up).

Two grants the SDK does not have are ours, on the same token endpoint and with the SDK's client
authentication:

* device authorization (RFC 8628), with ``AuthServerConfig.device``: a
  ``device_authorization_endpoint``, a user code that the test enters "on another device" by
  POSTing it to ``device_approve_url`` (``approve_device``; ``decision=deny`` declines), and
  polls answered ``authorization_pending`` until then; ``device_slow_down`` polls answered
  ``slow_down`` first (and any poll sooner than the interval asked for), ``device_expire``
  answers ``expired_token``, ``device_expires_in``/``device_interval`` are what the answer
  says. Dynamic registration for the device grant (no redirect URI) is ours too, since the
  SDK's insists on ``authorization_code``. ``device_polls`` records each poll's time and answer.
* client credentials (RFC 6749 §4.4), for a pre-registered client whose ``grant_types``
  include it (``StaticClient``): a token for the client itself, no refresh token.

Everything the client sends is recorded (``authorize_requests``, ``token_requests``,
``registrations``, ``metadata_requests``, ``device_requests``) for the tests to check.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import uvicorn
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPDeprecationWarning
from pydantic import AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

ASGIApp = Callable[..., Any]
ALL_SCOPES = ["mcp:read", "mcp:admin"]
ADMIN_TOOL = "admin_tool"
CUSTOM_PRM_PATH = "/meta/protected-resource.json"
CLIENT_METADATA_PATH = "/client-metadata.json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 §6.1: user codes of consonants only, with a dash for readability.
USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"
SLOW_DOWN_STEP = 5.0
POLL_TOLERANCE = 0.05  # a poll this much early still counts as on time


@dataclass
class StaticClient:
    """A client registered ahead of time (``--oauth-client-id``)."""

    secret: str | None = None
    method: str = "none"  # token_endpoint_auth_method
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])


@dataclass
class DevicePending:
    """One device authorization (RFC 8628) the user has not finished yet."""

    client_id: str
    user_code: str
    scopes: list[str]
    resource: str | None
    expires_at: float  # time.monotonic()
    interval: float  # the interval the client must keep now (grows with each slow_down)
    slow_downs_left: int
    status: str = "pending"  # pending | approved | denied | used
    last_poll: float | None = None


@dataclass
class AuthServerConfig:
    # Protected resource metadata: "header" (only at a custom URL that the 401 names),
    # "path" (path-inserted well-known only), "root" (root well-known only), "none" (2025-03-26).
    prm: str = "header"
    # Authorization server metadata: "oauth" (RFC 8414), "openid" (OpenID path insertion),
    # "openid-append" (OpenID path appending), "none" (2025-03-26 default endpoints).
    as_metadata: str = "oauth"
    issuer_path: str = ""  # e.g. "/tenant1"
    same_origin: bool = False  # the authorization server on the MCP server's own origin
    pkce_methods: list[str] | None = field(default_factory=lambda: ["S256"])
    cimd: bool = False
    registration: bool = True
    auth_methods: list[str] = field(
        default_factory=lambda: ["none", "client_secret_post", "client_secret_basic"]
    )
    access_ttl: int = 3600
    rotate_refresh: bool = True
    issue_refresh: bool = True
    scopes_supported: list[str] = field(default_factory=lambda: ["mcp:read"])
    challenge_scope: str | None = "mcp:read"  # the scope= of the 401 challenge
    admin_scope: str = "mcp:admin"  # what ADMIN_TOOL needs
    grant_admin: bool = True  # False: the "user" never grants admin (step-up cannot help)
    validate_resource: bool = True
    iss_in_response: bool = False
    deny: bool = False  # the "user" clicks "Deny"
    static_clients: dict[str, StaticClient] = field(default_factory=dict)
    # A CIMD document served on the MCP server's origin, listing this redirect URI.
    cimd_redirect_uri: str = "http://127.0.0.1/callback"
    # RFC 8628 device authorization: offered (in the metadata too) when True.
    device: bool = False
    device_interval: float | None = 0.2  # the answer's interval (None: left out, 5 s then)
    device_expires_in: float = 60.0
    device_slow_down: int = 0  # answer this many polls slow_down before anything else
    device_expire: bool = False  # answer every poll expired_token


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Client(OAuthClientInformationFull):
    """A registered client. Pre-registered and metadata-document clients may use any port on
    a loopback redirect URI (RFC 8252 §7.3); dynamically registered ones get the SDK's exact
    match."""

    any_loopback_port: bool = False

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if self.any_loopback_port and redirect_uri is not None:
            wanted = urlsplit(str(redirect_uri))
            for registered in self.redirect_uris or []:
                known = urlsplit(str(registered))
                if (known.scheme, known.hostname, known.path) == (
                    wanted.scheme,
                    wanted.hostname,
                    wanted.path,
                ) and wanted.hostname == "127.0.0.1":
                    return redirect_uri
        return super().validate_redirect_uri(redirect_uri)


class _Provider:
    """The authorization server's state and decisions (the SDK's provider protocol)."""

    def __init__(self, server: AuthServer) -> None:
        self.server = server
        self.config = server.config

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client = self.server.clients.get(client_id)
        if client is None and self.config.cimd and client_id.startswith("http"):
            client = await self._fetch_client_metadata(client_id)
        return client

    async def _fetch_client_metadata(self, url: str) -> _Client | None:
        self.server.cimd_fetches.append(url)
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        if response.status_code != 200:
            return None
        document = response.json()
        if document.get("client_id") != url:  # draft-ietf-oauth-client-id-metadata-document
            return None
        return _Client(
            client_id=url,
            redirect_uris=document["redirect_uris"],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            scope=" ".join(ALL_SCOPES),
            any_loopback_port=True,
        )

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.server.clients[client_info.client_id] = _Client.model_validate(
            client_info.model_dump()
        )

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        if self.config.deny:
            raise AuthorizeError("access_denied", "the user declined")
        scopes = list(params.scopes or [])
        if not self.config.grant_admin:
            scopes = [s for s in scopes if s != self.config.admin_scope]
        code = secrets.token_urlsafe(24)
        self.server.codes[code] = AuthorizationCode(
            code=code,
            scopes=scopes,
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        if self.config.iss_in_response:
            return construct_redirect_uri(
                str(params.redirect_uri), code=code, state=params.state, iss=self.server.issuer
            )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.server.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.server.codes.pop(authorization_code.code, None)
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        return self.server.refresh_tokens.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if self.config.rotate_refresh:
            self.server.refresh_tokens.pop(refresh_token.token, None)
        return self._issue(
            client.client_id,
            scopes,
            refresh_token.resource,
            keep_refresh=None if self.config.rotate_refresh else refresh_token.token,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.server.access_tokens.get(token)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.server.access_tokens.pop(token.token, None)
        self.server.refresh_tokens.pop(token.token, None)

    def _issue(
        self,
        client_id: str,
        scopes: list[str],
        resource: str | None,
        keep_refresh: str | None = None,
        refresh: bool = True,
    ) -> OAuthToken:
        access = "at_" + secrets.token_urlsafe(24)
        self.server.access_tokens[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time() + self.config.access_ttl),
            resource=resource,
        )
        refresh_token = keep_refresh
        if refresh_token is None and refresh and self.config.issue_refresh:
            refresh_token = "rt_" + secrets.token_urlsafe(24)
            self.server.refresh_tokens[refresh_token] = RefreshToken(
                token=refresh_token, client_id=client_id, scopes=scopes, resource=resource
            )
        self.server.issued.append(access)
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.config.access_ttl,
            scope=" ".join(scopes) or None,
            refresh_token=refresh_token,
        )


class _Verifier:
    """The resource server's token verification: the authorization server's token table."""

    def __init__(self, server: AuthServer) -> None:
        self.server = server

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self.server.access_tokens.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found


class _Front:
    """ASGI in front of the SDK's MCP app: metadata placement, challenges, step-up, and the
    authorization server's routes when it shares the origin."""

    def __init__(self, server: AuthServer, mcp_app: ASGIApp, as_app: ASGIApp | None) -> None:
        self.server = server
        self.config = server.config
        self.mcp_app = mcp_app
        self.as_app = as_app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.mcp_app(scope, receive, send)
            return
        path: str = scope["path"]
        server = self.server
        if "/.well-known/" in path or path == CUSTOM_PRM_PATH:
            server.metadata_requests.append(path)
        inserted = "/.well-known/oauth-protected-resource/mcp"
        root = "/.well-known/oauth-protected-resource"
        prm_here = {"header": CUSTOM_PRM_PATH, "path": inserted, "root": root}.get(self.config.prm)
        if path in (inserted, root, CUSTOM_PRM_PATH):
            if path == prm_here:
                await _json(send, 200, server.protected_resource_metadata())
            else:
                await _json(send, 404, {"error": "not_found"})
            return
        if path == CLIENT_METADATA_PATH:
            await _json(send, 200, server.client_metadata_document())
            return
        if self.as_app is not None and path != "/mcp":
            await self.as_app(scope, receive, send)
            return
        if path == "/mcp" and scope["method"] == "POST":
            body, receive = await _buffer(receive)
            if await self._step_up_needed(scope, body, send):
                return
        await self.mcp_app(scope, receive, self._rewrite_challenge(send))

    async def _step_up_needed(self, scope: dict[str, Any], body: bytes, send: Any) -> bool:
        try:
            message = json.loads(body)
        except ValueError:
            return False
        if not (
            isinstance(message, dict)
            and message.get("method") == "tools/call"
            and message.get("params", {}).get("name") == ADMIN_TOOL
        ):
            return False
        token = _bearer(scope)
        found = self.server.access_tokens.get(token or "")
        if found is None or self.config.admin_scope in found.scopes:
            return False  # no token: the SDK's 401; enough scope: go ahead
        self.server.forbidden += 1
        # 2025-11-25 §Runtime Insufficient Scope Errors, "minimum approach": only the new scope.
        challenge = (
            f'Bearer error="insufficient_scope", scope="{self.config.admin_scope}", '
            f'resource_metadata="{self.server.prm_url}", '
            'error_description="this tool needs the admin scope"'
        )
        await _json(send, 403, {"error": "insufficient_scope"}, [("www-authenticate", challenge)])
        return True

    def _rewrite_challenge(self, send: Any) -> Any:
        """Replace the SDK's 401 challenge with the one this configuration calls for."""

        async def rewriting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.server.unauthorized += 1
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"www-authenticate"
                ]
                headers.append((b"www-authenticate", self.server.challenge().encode()))
                message = {**message, "headers": headers}
            await send(message)

        return rewriting


async def _buffer(receive: Any) -> tuple[bytes, Any]:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        result: dict[str, Any] = await receive()
        return result

    return body, replay


def _bearer(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    return None


async def _json(
    send: Any, status: int, data: object, headers: list[tuple[str, str]] | None = None
) -> None:
    body = json.dumps(data).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers or []]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _Thread:
    """uvicorn serving the app ``build()`` makes, on a bound socket, in a thread of its own.

    The app is built in that thread: the SDK creates anyio primitives when it builds its app,
    and built inside a trio test they would belong to trio, not to uvicorn's asyncio loop.
    """

    def __init__(self, build: Callable[[], ASGIApp], sock: socket.socket) -> None:
        self.build = build
        self.sock = sock
        self.server: uvicorn.Server | None = None
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            config = uvicorn.Config(
                self.build(),
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=1,
            )
            self.server = uvicorn.Server(config)
        except BaseException as exc:
            self.failed = exc
            raise
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while self.server is None or not self.server.started:
            if self.failed is not None or not self.thread.is_alive():
                raise RuntimeError("the test server did not start") from self.failed
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start in 20 s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class AuthServer:
    """The MCP server (``mcp_url``) and its authorization server (``issuer``), running."""

    def __init__(self, config: AuthServerConfig | None = None) -> None:
        self.config = config or AuthServerConfig()
        self.clients: dict[str, _Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.issued: list[str] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.registrations: list[dict[str, Any]] = []
        self.metadata_requests: list[str] = []
        self.cimd_fetches: list[str] = []
        self.unauthorized = 0
        self.forbidden = 0
        # RFC 8628: by device code; the device authorization requests; each poll's
        # (time.monotonic(), answer), the answer an error code or "tokens"; polls that came
        # sooner than the interval the client was asked to keep.
        self.devices: dict[str, DevicePending] = {}
        self.device_requests: list[dict[str, str]] = []
        self.device_polls: list[tuple[float, str]] = []
        self.polls_too_soon = 0

        mcp_sock = _bind()
        self.origin = f"http://127.0.0.1:{mcp_sock.getsockname()[1]}"
        self.mcp_url = f"{self.origin}/mcp"
        as_sock = None if self.config.same_origin else _bind()
        as_origin = (
            self.origin if as_sock is None else f"http://127.0.0.1:{as_sock.getsockname()[1]}"
        )
        self.as_origin = as_origin
        self.issuer = as_origin + self.config.issuer_path
        self.prm_url = {
            "header": self.origin + CUSTOM_PRM_PATH,
            "path": self.origin + "/.well-known/oauth-protected-resource/mcp",
            "root": self.origin + "/.well-known/oauth-protected-resource",
        }.get(self.config.prm, "")
        self.provider = _Provider(self)
        for client_id, static in self.config.static_clients.items():
            self.clients[client_id] = _Client(
                client_id=client_id,
                client_secret=static.secret,
                token_endpoint_auth_method=static.method,
                redirect_uris=[AnyUrl("http://127.0.0.1/callback")],
                grant_types=static.grant_types,
                scope=" ".join(ALL_SCOPES),
                any_loopback_port=True,
            )

        as_app = Starlette(routes=self._as_routes())
        shared = as_sock is None

        def front() -> ASGIApp:
            return _Front(self, self._mcp_app(), as_app if shared else None)

        async def as_origin_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and "/.well-known/" in scope["path"]:
                self.metadata_requests.append(scope["path"])
            await as_app(scope, receive, send)

        self._threads = [_Thread(front, mcp_sock)]
        if as_sock is not None:
            self._threads.append(_Thread(lambda: as_origin_app, as_sock))
        for thread in self._threads:
            thread.start()

    # ---- pieces

    def _mcp_app(self) -> ASGIApp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            server = MCPServer(
                "oauth-test-server",
                version="1.0",
                token_verifier=_Verifier(self),
                auth=AuthSettings(
                    issuer_url=self.issuer,  # type: ignore[arg-type]
                    resource_server_url=self.mcp_url,  # type: ignore[arg-type]
                    required_scopes=["mcp:read"],
                    validate_token_resource=self.config.validate_resource,
                ),
                log_level="WARNING",
            )

        @server.tool()
        def whoami() -> str:
            """Say who is calling."""
            return "hello from the protected server"

        @server.tool(name=ADMIN_TOOL)
        def admin_tool() -> str:
            """Needs the admin scope (checked in front of the SDK, with a 403 for step-up)."""
            return "admin done"

        app: ASGIApp = server.streamable_http_app(json_response=True, host="127.0.0.1")
        return app

    def _as_routes(self) -> list[Route]:
        config = self.config
        base = config.issuer_path
        provider: Any = self.provider
        routes = [
            Route(base + "/authorize", self._authorize, methods=["GET", "POST"]),
            Route(base + "/token", self._token, methods=["POST"]),
        ]
        if config.registration:
            handler = RegistrationHandler(
                provider,
                ClientRegistrationOptions(
                    enabled=True, valid_scopes=ALL_SCOPES, default_scopes=["mcp:read"]
                ),
            )

            async def register(request: Request) -> Response:
                metadata = json.loads(await request.body())
                self.registrations.append(metadata)
                grants = metadata.get("grant_types") or []
                if DEVICE_GRANT in grants and "authorization_code" not in grants:
                    return self._register_device_client(metadata)
                return await handler.handle(request)

            routes.append(Route(base + "/register", register, methods=["POST"]))
        locations = {
            "oauth": f"/.well-known/oauth-authorization-server{base}",
            "openid": f"/.well-known/openid-configuration{base}",
            "openid-append": f"{base}/.well-known/openid-configuration",
        }
        if config.as_metadata in locations:
            routes.append(Route(locations[config.as_metadata], self._metadata, methods=["GET"]))
        if config.device:
            routes += [
                Route(base + "/device_authorization", self._device_authorization, methods=["POST"]),
                Route(base + "/device", self._device_page, methods=["GET"]),
                Route(base + "/device/approve", self._device_approve, methods=["POST"]),
            ]
        self._authorize_handler = AuthorizationHandler(provider)
        self._client_auth = ClientAuthenticator(provider)
        self._token_handler = TokenHandler(provider, self._client_auth)
        return routes

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(self.authorization_server_metadata())

    async def _authorize(self, request: Request) -> Response:
        self.authorize_requests.append(dict(request.query_params))
        return await self._authorize_handler.handle(request)

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        record = {k: str(v) for k, v in form.items()}
        if "authorization" in request.headers:
            record["authorization_header"] = request.headers["authorization"]
        self.token_requests.append(record)
        if record.get("grant_type") == DEVICE_GRANT:
            return await self._device_token(request, record)
        if record.get("grant_type") == "client_credentials":
            return await self._client_credentials_token(request, record)
        return await self._token_handler.handle(request)

    # ---- the grants the SDK does not have

    async def _client(self, request: Request, grant: str) -> _Client | Response:
        """The authenticated client, allowed ``grant``; or the error answer."""
        try:
            client = await self._client_auth.authenticate_request(request)
        except AuthenticationError as exc:
            return _oauth_error("invalid_client", exc.message, 401)
        if grant not in (client.grant_types or []):
            return _oauth_error("unauthorized_client", f"this client may not use {grant}")
        assert isinstance(client, _Client)
        return client

    def _scopes(self, client: _Client, asked: str | None) -> list[str] | None:
        allowed = (client.scope or " ".join(ALL_SCOPES)).split()
        wanted = asked.split() if asked else ["mcp:read"]
        return wanted if set(wanted) <= set(allowed) else None

    def _register_device_client(self, metadata: dict[str, Any]) -> Response:
        """RFC 7591 registration of a device-flow client: no redirect URI, no response type."""
        method = metadata.get("token_endpoint_auth_method") or "client_secret_post"
        client = _Client(
            client_id=str(uuid.uuid4()),
            client_secret=None if method == "none" else secrets.token_hex(32),
            client_id_issued_at=int(time.time()),
            token_endpoint_auth_method=method,
            redirect_uris=None,
            grant_types=metadata["grant_types"],
            response_types=[],
            scope=metadata.get("scope") or "mcp:read",
            client_name=metadata.get("client_name"),
        )
        self.clients[client.client_id] = client
        return JSONResponse(client.model_dump(mode="json", exclude_none=True), status_code=201)

    async def _device_authorization(self, request: Request) -> Response:
        form = await request.form()
        record = {k: str(v) for k, v in form.items()}
        if "authorization" in request.headers:
            record["authorization_header"] = request.headers["authorization"]
        self.device_requests.append(record)
        client = await self._client(request, DEVICE_GRANT)
        if isinstance(client, Response):
            return client
        scopes = self._scopes(client, record.get("scope"))
        if scopes is None:
            return _oauth_error("invalid_scope", "not a scope this client may have")
        config = self.config
        device_code = "dc_" + secrets.token_urlsafe(24)
        letters = "".join(secrets.choice(USER_CODE_LETTERS) for _ in range(8))
        user_code = f"{letters[:4]}-{letters[4:]}"
        self.devices[device_code] = DevicePending(
            client_id=client.client_id,
            user_code=user_code,
            scopes=scopes,
            resource=record.get("resource"),
            expires_at=time.monotonic() + config.device_expires_in,
            interval=config.device_interval if config.device_interval is not None else 5.0,
            slow_downs_left=config.device_slow_down,
        )
        answer: dict[str, Any] = {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": self.issuer + "/device",
            "verification_uri_complete": self.issuer
            + "/device?"
            + urlencode({"user_code": user_code}),
            "expires_in": config.device_expires_in,
        }
        if config.device_interval is not None:
            answer["interval"] = config.device_interval
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    async def _device_page(self, request: Request) -> Response:
        return HTMLResponse("<form method=post action=device/approve>Enter the code</form>")

    async def _device_approve(self, request: Request) -> Response:
        """The user, on another device, enters the code and approves (or declines)."""
        form = await request.form()
        user_code = str(form.get("user_code", "")).strip().upper()
        decision = str(form.get("decision", "approve"))
        for pending in self.devices.values():
            if pending.user_code == user_code and pending.status == "pending":
                pending.status = "denied" if decision == "deny" else "approved"
                return JSONResponse({"status": pending.status})
        return JSONResponse({"error": "no such code"}, status_code=404)

    async def _device_token(self, request: Request, record: dict[str, str]) -> Response:
        client = await self._client(request, DEVICE_GRANT)
        if isinstance(client, Response):
            return client
        now = time.monotonic()
        pending = self.devices.get(record.get("device_code", ""))
        answer = self._device_answer(pending, client.client_id, now)
        self.device_polls.append((now, answer))
        if answer != "tokens":
            return _oauth_error(answer, "")
        assert pending is not None
        pending.status = "used"
        token = self.provider._issue(client.client_id, pending.scopes, pending.resource)
        return JSONResponse(
            token.model_dump(mode="json", exclude_none=True), headers={"Cache-Control": "no-store"}
        )

    def _device_answer(self, pending: DevicePending | None, client_id: str, now: float) -> str:
        if pending is None or pending.client_id != client_id or pending.status == "used":
            return "invalid_grant"
        if self.config.device_expire or now >= pending.expires_at:
            return "expired_token"
        last, pending.last_poll = pending.last_poll, now
        if last is not None and now - last < pending.interval - POLL_TOLERANCE:
            self.polls_too_soon += 1
            pending.interval += SLOW_DOWN_STEP
            return "slow_down"
        if pending.slow_downs_left > 0:
            pending.slow_downs_left -= 1
            pending.interval += SLOW_DOWN_STEP
            return "slow_down"
        if pending.status == "denied":
            return "access_denied"
        if pending.status == "pending":
            return "authorization_pending"
        return "tokens"

    async def _client_credentials_token(self, request: Request, record: dict[str, str]) -> Response:
        client = await self._client(request, "client_credentials")
        if isinstance(client, Response):
            return client
        scopes = self._scopes(client, record.get("scope"))
        if scopes is None:
            return _oauth_error("invalid_scope", "not a scope this client may have")
        # RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
        token = self.provider._issue(
            client.client_id, scopes, record.get("resource"), refresh=False
        )
        return JSONResponse(
            token.model_dump(mode="json", exclude_none=True), headers={"Cache-Control": "no-store"}
        )

    # ---- documents

    def authorization_server_metadata(self) -> dict[str, Any]:
        config = self.config
        data: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": config.auth_methods,
            "scopes_supported": ALL_SCOPES + ["openid", "profile", "email"],
        }
        if config.registration:
            data["registration_endpoint"] = self.issuer + "/register"
        if config.pkce_methods is not None:
            data["code_challenge_methods_supported"] = config.pkce_methods
        if config.cimd:
            data["client_id_metadata_document_supported"] = True
        if config.iss_in_response:
            data["authorization_response_iss_parameter_supported"] = True
        if config.device:
            data["device_authorization_endpoint"] = self.issuer + "/device_authorization"
            data["grant_types_supported"].append(DEVICE_GRANT)
        if any("client_credentials" in c.grant_types for c in config.static_clients.values()):
            data["grant_types_supported"].append("client_credentials")
        return data

    def protected_resource_metadata(self) -> dict[str, Any]:
        return {
            "resource": self.mcp_url,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.config.scopes_supported,
            "bearer_methods_supported": ["header"],
        }

    def client_metadata_document(self) -> dict[str, Any]:
        return {
            "client_id": self.client_metadata_url,
            "client_name": "mcp-remote-py (test document)",
            "redirect_uris": [self.config.cimd_redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }

    @property
    def client_metadata_url(self) -> str:
        return self.origin + CLIENT_METADATA_PATH

    def challenge(self) -> str:
        parts = ['error="invalid_token"', 'error_description="Authentication required"']
        if self.config.prm == "header":
            parts.append(f'resource_metadata="{self.prm_url}"')
        if self.config.challenge_scope:
            parts.append(f'scope="{self.config.challenge_scope}"')
        return "Bearer " + ", ".join(parts)

    # ---- what tests do to it

    def expire_access_tokens(self) -> None:
        for token in self.access_tokens.values():
            token.expires_at = int(time.time()) - 1

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()

    @property
    def device_approve_url(self) -> str:
        """Where the "user on another device" enters the code (``approve_device``)."""
        return self.issuer + "/device/approve"

    def close(self) -> None:
        for thread in self._threads:
            thread.stop()


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    body: dict[str, str] = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def approve_device(server: AuthServer, user_code: str, decision: str = "approve") -> None:
    """Enter ``user_code`` at the authorization server and approve it (or ``deny``), as a
    user on another device would."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            server.device_approve_url, data={"user_code": user_code, "decision": decision}
        )
    assert response.status_code == 200, response.text
