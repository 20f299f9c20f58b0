"""The grants without a browser here, their pure parts, on an in-memory authorization server
(``httpx.MockTransport``) and in virtual time (``autojump_clock``): RFC 8628's polling rules,
the device and client credentials answers, what is registered, and the relay's new options."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import trio
import trio.testing

from mcp_remote_py.auth.discovery import AuthorizationServer, Discovery
from mcp_remote_py.auth.errors import AuthorizationRequired, OAuthError
from mcp_remote_py.auth.grants import (
    DEFAULT_INTERVAL,
    DEVICE_GRANT,
    SLOW_DOWN_STEP,
    DeviceCode,
    client_credentials,
    device_endpoint,
    poll_for_tokens,
    request_device_code,
)
from mcp_remote_py.auth.oauth_options import (
    CLIENT_CREDENTIALS,
    DEVICE_CODE,
    GrantSettings,
    OAuthOptions,
)
from mcp_remote_py.auth.registration import client_for_sign_in
from mcp_remote_py.auth.token_endpoint import Tokens
from mcp_remote_py.core.errors import UsageError
from mcp_remote_py.options import build_parser, relay_options, unknown_argument

AS = "https://as.example.com"
PUBLIC = {"client_id": "dev-1", "token_endpoint_auth_method": "none"}
CONFIDENTIAL = {
    "client_id": "svc",
    "client_secret": "s3cr3t:with%odd",
    "token_endpoint_auth_method": "client_secret_basic",
}

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


def device(interval: float = 1.0, expires_in: float | None = 600.0) -> DeviceCode:
    return DeviceCode(
        device_code="dc_secret_value",
        user_code="WDJB-MJHT",
        verification_uri=f"{AS}/device",
        verification_uri_complete=None,
        expires_in=expires_in,
        expires_at=trio.current_time() + expires_in if expires_in else math.inf,
        interval=interval,
    )


def scripted(answers: list[tuple[int, dict[str, Any]]], seen: list[float]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(trio.current_time())
        assert form(request)["grant_type"] == DEVICE_GRANT
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    return handle


async def keep(tokens: Tokens) -> Tokens:
    return tokens


async def poll(http: httpx.AsyncClient, code: DeviceCode) -> Any:
    return await poll_for_tokens(
        http,
        f"{AS}/token",
        PUBLIC,
        code,
        resource="https://mcp.example.com/mcp",
        display="https://mcp.example.com/mcp",
        login_command="mcp-remote-py auth login https://mcp.example.com/mcp --device",
        keep=keep,
    )


TOKENS = (200, {"access_token": "at_x", "token_type": "Bearer", "expires_in": 60})


async def test_polls_keep_the_interval_and_slow_down_adds_five_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[float] = []
    answers = [
        (400, {"error": "authorization_pending"}),
        (400, {"error": "slow_down"}),
        (400, {"error": "authorization_pending"}),
        TOKENS,
    ]
    start = trio.current_time()
    async with client_for(scripted(answers, seen)) as http:
        tokens = await poll(http, device(interval=2))
    assert tokens.access_token == "at_x"
    gaps = [round(b - a, 3) for a, b in zip([start, *seen], seen, strict=False)]
    assert gaps == [2, 2, 2 + SLOW_DOWN_STEP, 2 + SLOW_DOWN_STEP]


async def test_a_device_answer_without_interval_means_five_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert form(request) == {"client_id": "dev-1", "scope": "mcp:read", "resource": "r:x"}
        return httpx.Response(
            200,
            json={
                "device_code": "dc_1",
                "user_code": "ABCD-EFGH",
                "verification_url": f"{AS}/device",  # Google's name for it
                "expires_in": "900",
            },
        )

    async with client_for(handle) as http:
        code = await request_device_code(
            http, f"{AS}/device_authorization", PUBLIC, scope="mcp:read", resource="r:x",
            allow_http=False,
        )  # fmt: skip
    assert code.interval == DEFAULT_INTERVAL
    assert code.verification_uri == f"{AS}/device"
    assert code.expires_in == 900
    assert "dc_1" not in repr(code)
    assert "dc_1" not in code.prompt("https://mcp.example.com/mcp")
    assert "enter the code ABCD-EFGH" in code.prompt("https://mcp.example.com/mcp")
    assert "15 minutes" in code.prompt("https://mcp.example.com/mcp")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"user_code": "A", "verification_uri": f"{AS}/d"}, "no device_code"),
        ({"device_code": "d", "verification_uri": f"{AS}/d"}, "no user_code"),
        ({"device_code": "d", "user_code": "A", "verification_uri": "javascript:x"}, "http"),
        ({"device_code": "d", "user_code": "A", "verification_uri": "http://evil/d"}, "plain"),
    ],
)
async def test_a_device_answer_that_cannot_be_used_is_refused(
    answer: dict[str, str], problem: str
) -> None:
    async with client_for(lambda _: httpx.Response(200, json=answer)) as http:
        with pytest.raises(OAuthError, match=problem):
            await request_device_code(
                http, f"{AS}/da", PUBLIC, scope=None, resource=None, allow_http=False
            )


async def test_a_refused_device_request_names_the_error() -> None:
    answer = {"error": "unauthorized_client", "error_description": "no device grant"}
    async with client_for(lambda _: httpx.Response(400, json=answer)) as http:
        with pytest.raises(OAuthError, match=r"HTTP 400: unauthorized_client \(no device grant\)"):
            await request_device_code(
                http, f"{AS}/da", PUBLIC, scope=None, resource=None, allow_http=False
            )


@pytest.mark.parametrize(
    ("error", "message"),
    [("access_denied", "was declined"), ("expired_token", "expired before the sign-in")],
)
async def test_declined_and_expired_end_the_polling(
    autojump_clock: trio.testing.MockClock, error: str, message: str
) -> None:
    async with client_for(scripted([(400, {"error": error})], [])) as http:
        with pytest.raises(AuthorizationRequired, match=message) as caught:
            await poll(http, device())
    assert "WDJB-MJHT" in caught.value.advice()
    assert "--device" in caught.value.advice()
    assert "dc_secret_value" not in caught.value.advice()


async def test_polling_stops_when_expires_in_has_passed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[float] = []
    answers = [(400, {"error": "authorization_pending"})] * 100
    start = trio.current_time()
    async with client_for(scripted(answers, seen)) as http:
        with pytest.raises(AuthorizationRequired, match="expired before the sign-in"):
            await poll(http, device(interval=5, expires_in=30))
    assert [t - start for t in seen] == [5, 10, 15, 20, 25]  # none once the code has expired
    assert trio.current_time() - start == pytest.approx(30)


async def test_an_unavailable_server_slows_the_polls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[float] = []
    answers = [(503, {}), (503, {}), TOKENS]
    start = trio.current_time()
    async with client_for(scripted(answers, seen)) as http:
        await poll(http, device(interval=1))
    gaps = [round(b - a, 3) for a, b in zip([start, *seen], seen, strict=False)]
    assert gaps == [1, 2, 4]


async def test_another_error_is_an_oauth_error(autojump_clock: trio.testing.MockClock) -> None:
    async with client_for(scripted([(400, {"error": "invalid_grant"})], [])) as http:
        with pytest.raises(OAuthError, match="invalid_grant"):
            await poll(http, device())


def test_a_server_without_a_device_endpoint_is_named() -> None:
    server = AuthorizationServer(
        issuer=AS,
        authorization_endpoint=f"{AS}/a",
        token_endpoint=f"{AS}/t",
        metadata_url=f"{AS}/.well-known/oauth-authorization-server",
    )
    with pytest.raises(OAuthError, match="does not offer the device authorization grant"):
        device_endpoint(server, allow_http=False)


async def test_client_credentials_are_sent_as_registered() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "at_m", "token_type": "Bearer"})

    async with client_for(handle) as http:
        tokens = await client_credentials(
            http, f"{AS}/token", CONFIDENTIAL, scope="a b", resource="https://r/mcp", display="x"
        )
    assert tokens.refresh_token is None
    (request,) = seen
    assert form(request) == {
        "grant_type": "client_credentials",
        "scope": "a b",
        "resource": "https://r/mcp",
        "client_id": "svc",
    }
    basic = base64.b64decode(request.headers["authorization"].split()[1]).decode()
    assert basic == "svc:s3cr3t%3Awith%25odd"  # RFC 6749 §2.3.1: form-encoded first


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("invalid_client", "refused the credentials of the client svc"),
        ("unauthorized_client", "may not use the client credentials grant"),
        ("invalid_scope", "would not grant the client svc the scope"),
    ],
)
async def test_client_credentials_errors_say_what_to_do(error: str, message: str) -> None:
    async with client_for(lambda _: httpx.Response(401, json={"error": error})) as http:
        with pytest.raises(OAuthError, match=message) as caught:
            await client_credentials(
                http, f"{AS}/token", CONFIDENTIAL, scope="a", resource=None, display="x"
            )
    assert "s3cr3t" not in caught.value.advice()


# --------------------------------------------------------------------------- registration


def _discovery() -> Discovery:
    server = AuthorizationServer(
        issuer=AS,
        authorization_endpoint=f"{AS}/a",
        token_endpoint=f"{AS}/t",
        registration_endpoint=f"{AS}/register",
        token_endpoint_auth_methods=("none",),
        metadata_url=f"{AS}/.well-known/oauth-authorization-server",
    )
    return Discovery(server, "https://mcp.example.com/mcp", None)


async def test_dynamic_registration_for_the_device_grant_has_no_redirect() -> None:
    registered: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        metadata = json.loads(request.content)
        registered.append(metadata)
        return httpx.Response(201, json={**metadata, "client_id": "new-device-client"})

    old = {  # a browser registration stored before grant_types were kept: not for the device
        "registration": "dynamic",
        "client_id": "browser-client",
        "redirect_uris": ["http://127.0.0.1:5000/callback"],
        "issuer": AS,
    }
    async with client_for(handle) as http:
        client = await client_for_sign_in(
            http, _discovery(), OAuthOptions(), None, "mcp:read", old, display="x",
            notify=lambda _: None, grant=DEVICE_CODE,
        )  # fmt: skip
        again = await client_for_sign_in(
            http, _discovery(), OAuthOptions(), None, "mcp:read", client | {"issuer": AS},
            display="x", notify=lambda _: None, grant=DEVICE_CODE,
        )  # fmt: skip
    (metadata,) = registered  # the second sign-in reused the device registration
    assert metadata["grant_types"] == [DEVICE_GRANT, "refresh_token"]
    assert metadata["response_types"] == []
    assert "redirect_uris" not in metadata
    assert metadata["application_type"] == "native"
    assert client["client_id"] == again["client_id"] == "new-device-client"
    assert client["redirect_uris"] == []


# --------------------------------------------------------------------------- the relay's options


def _options(*argv: str, environ: dict[str, str] | None = None) -> Any:
    args = build_parser().parse_args(["https://mcp.example.com/mcp", *argv])
    return relay_options(args, {"MCP_REMOTE_PY_CONFIG_DIR": "/nonexistent", **(environ or {})})


def test_the_grant_reaches_the_relay_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_REMOTE_PY_CONFIG_DIR", "/nonexistent/mcp-remote-py-test")
    device_options = _options("--oauth-device").oauth
    assert isinstance(device_options, GrantSettings)
    assert device_options.grant == DEVICE_CODE
    machine = _options(
        "--oauth-client-credentials", "--oauth-client-id", "svc",
        environ={"MCP_REMOTE_PY_CLIENT_SECRET": "from-the-fixed-variable"},
    ).oauth  # fmt: skip
    assert machine.grant == CLIENT_CREDENTIALS
    assert machine.client_secret == "from-the-fixed-variable"
    assert "from-the-fixed-variable" not in repr(machine)


@pytest.mark.parametrize("flag", ["--oauth-client-secret", "--client-secret"])
def test_a_secret_option_is_refused_by_name(flag: str) -> None:
    problem = unknown_argument(build_parser(), ["https://h/mcp", flag, "s3cr3t-value"])
    assert problem is not None
    assert "never taken from the command line" in problem
    assert "--oauth-client-secret-env" in problem
    assert "s3cr3t-value" not in problem


def test_a_secret_in_place_of_a_variable_name_is_not_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_REMOTE_PY_CONFIG_DIR", "/nonexistent/mcp-remote-py-test")
    with pytest.raises(UsageError) as caught:
        _options("--oauth-client-id", "svc", "--oauth-client-secret-env", "s3cr3t/value+x=")
    assert "NAME of an environment variable" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
