"""A hostile server's HTTP (issue 16, classes 1 and 8): every value it decides is parsed into a
value or the project's own error, and every count it decides is bounded.

Against the scripted raw-trio servers of ``test_http1.py``, through ``Http1Transport`` and the
relay's ``net.send``: an unparsable redirect Location, a Content-Length of thousands of digits,
NUL or a bare CR in a header, endless interim answers or trailers, HTTP/1.0 keep-alive. Each
failed once as an exception that is not the project's own (``httpx.InvalidURL``, ``ValueError``:
a crash, wherever nothing expected it) or as a request that never ended.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from mcp_remote_py.core.errors import ConnectionLost, MessageTooLarge, ProtocolViolation
from mcp_remote_py.shell import http1
from mcp_remote_py.shell.http1 import MalformedAnswer
from mcp_remote_py.shell.net import (
    NetworkOptions,
    build_client,
    describe_network_error,
    resolve_location,
    send,
)
from mcp_remote_py.shell.transports.base import read_body

from .test_http1 import (
    OK,
    Peer,
    answer_then_wait,
    answers,
    client_for,
    idle_connections,
    serving,
)

# --- class 1: a redirect Location that is no URL ----------------------------------------------

BAD_LOCATIONS = [
    b"http://[::1",  # an IPv6 literal that never closes
    b"http://127.0.0.1:80x/mcp",  # a port that is no number
    b"/a\x01b",  # a control character
    b"/a\x7fb",
    b"http://\xe2\x84\x80/",  # a host name IDNA refuses (U+2100, as UTF-8)
    b"/" + b"x" * 70000,  # longer than httpx takes (and than a head: not in a redirect)
]


def _redirect(location: bytes) -> bytes:
    return (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
        + location
        + b"\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize("location", BAD_LOCATIONS[:-1], ids=repr)
async def test_an_unparsable_redirect_location_is_a_protocol_violation(location: bytes) -> None:
    async with serving(answers(_redirect(location))) as server, build_client(NetworkOptions()) as c:
        with pytest.raises(ProtocolViolation, match="redirect Location that is not a URL"):
            await send(c, c.build_request("POST", server.url(), content=b"{}"))


def test_resolve_location_never_raises_anything_but_a_protocol_violation() -> None:
    base = httpx.URL("http://127.0.0.1:8000/mcp")
    for location in [*BAD_LOCATIONS, b"http://a:b", b"http://a b/", b"//[", b"ht!tp://x"]:
        text = location.decode("utf-8", "replace")
        try:
            target = resolve_location(base, text)
        except ProtocolViolation:
            continue
        assert isinstance(target, httpx.URL)
    assert resolve_location(base, "/v2?x=1") == httpx.URL("http://127.0.0.1:8000/v2?x=1")


def test_the_violation_does_not_quote_the_location() -> None:
    with pytest.raises(ProtocolViolation) as caught:
        resolve_location(httpx.URL("http://h/mcp"), "http://[::1/cb?token=s3cret")
    assert "s3cret" not in caught.value.advice()


# --- class 1: a Content-Length that is no length -------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"9" * 5000, b"99999999999999999999999", b"-5", b"1e3", b"\xd9\xa3", b"0x10"],
    ids=["5000-digits", "23-digits", "negative", "exponent", "arabic-digit", "hex"],
)
async def test_an_absurd_content_length_is_a_malformed_answer(value: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with trio.fail_after(3):
            with pytest.raises(MalformedAnswer, match="Content-Length"):
                await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


async def test_a_large_but_plausible_content_length_meets_the_message_limit() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    answer += b"9" * http1.MAX_LENGTH_DIGITS + b"\r\n\r\n{"
    async with serving(answer_then_wait(answer)) as server, build_client(NetworkOptions()) as c:
        response = await send(c, c.build_request("POST", server.url(), content=b"{}"))
        with pytest.raises(MessageTooLarge):
            await read_body(response, 1 << 20)
        await response.aclose()


@pytest.mark.parametrize("value", ["9" * 5000, "³", "٣"])
async def test_read_body_takes_any_content_length_text(value: str) -> None:
    # httpx's own transport (h11) hands read_body whatever the header says.
    request = httpx.Request("POST", "http://h/mcp")
    response = httpx.Response(
        200,
        headers=[(b"Content-Length", value.encode())],
        stream=httpx.ByteStream(b"{}"),
        request=request,
    )
    if value.isascii():
        with pytest.raises(MessageTooLarge):
            await read_body(response, 1 << 20)
    else:
        assert await read_body(response, 1 << 20) == b"{}"


# --- class 8 (1): NUL or a bare CR in a header ---------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (b"X-Trace: a\x00b", "X-Trace"),
        (b"X-Trace: a\rb", "X-Trace"),
        (b"X-Trace: ab\r", "X-Trace"),  # a CR, then the CRLF
        (b"X-Trace: a\r\n folded\x00", "folded"),  # in an obsolete continuation line
        (b"X-Tr\x00ce: ab", "X-Tr"),
    ],
    ids=["nul", "bare-cr", "cr-before-crlf", "nul-in-fold", "nul-in-name"],
)
async def test_nul_or_a_bare_cr_in_a_header_is_refused(fields: bytes, named: str) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\n" + fields + b"\r\nX-Secret: s3cret\r\nContent-Length: 2\r\n\r\nok"
    )
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(MalformedAnswer, match="NUL or a bare CR") as caught:
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()
    assert named in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "ab" not in str(caught.value)


async def test_a_bare_cr_in_the_reason_phrase_is_refused() -> None:
    answer = b"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(MalformedAnswer, match="status line"):
            await client.get(server.url())


@pytest.mark.parametrize("name", [b"X Trace", b"X(Trace)", b"X\x01Trace", b"X\xffTrace"])
async def test_a_header_name_that_is_not_a_token_is_refused(name: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + name + b": v\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(MalformedAnswer, match="bad header line"):
            await client.get(server.url())


async def test_other_control_characters_and_obs_text_in_values_are_kept() -> None:
    # RFC 9110 §5.5 lets a recipient keep them; only NUL, CR and LF must go.
    answer = b"HTTP/1.1 200 OK\r\nX-Odd: a\x01b\xe9c\tz\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answers(answer)) as server, client_for() as client:
        response = await client.get(server.url())
    assert response.headers.raw[0] == (b"X-Odd", b"a\x01b\xe9c\tz")


async def test_a_malformed_answer_is_a_protocol_violation_for_its_request() -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Trace: a\x00b\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, build_client(NetworkOptions()) as c:
        request = c.build_request("POST", server.url(), content=b"{}")
        with pytest.raises(httpx.TransportError) as caught:
            await send(c, request)
    error = describe_network_error(caught.value, request.url, NetworkOptions())
    assert isinstance(error, ProtocolViolation)
    assert "not valid HTTP/1.1" in str(error)
    assert "doctor" in error.hint
    # A connection that broke is still what it was.
    broken = describe_network_error(
        httpx.RemoteProtocolError("peer closed"), request.url, NetworkOptions()
    )
    assert isinstance(broken, ConnectionLost)


# --- class 8 (2): HTTP/1.0 is never reused ----------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=60\r\n"
        b"Content-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["1.0-keep-alive", "1.0-keep-alive-timeout", "1.1-close"],
)
async def test_an_http_1_0_or_closing_answer_ends_its_connection(head: bytes) -> None:
    async with serving(answers(head + b"hi", OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"hi"  # came whole with its head
        assert idle_connections(client) == []
        await server.peers[0].closed_by_client.wait()
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


# --- class 8 (3): interim answers and trailers are bounded -----------------------------------

INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n"


async def test_up_to_max_interim_answers_are_skipped() -> None:
    answer = INTERIM * http1.MAX_INTERIM + OK
    async with serving(answers(answer)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"


async def test_one_interim_answer_too_many_is_a_malformed_answer() -> None:
    answer = INTERIM * (http1.MAX_INTERIM + 1) + OK
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(MalformedAnswer, match="interim"):
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


async def endless(peer: Peer, opening: bytes, each: bytes) -> None:
    """Answer the one request with ``opening``, then ``each`` until the client hangs up."""
    await peer.read_request()
    await peer.send(opening)
    try:
        while True:
            await peer.send(each * 64)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def test_endless_interim_answers_do_not_hang_the_request() -> None:
    async def handler(peer: Peer) -> None:
        await endless(peer, b"", b"HTTP/1.1 102 Processing\r\n\r\n")

    async with serving(handler) as server, client_for() as client:
        with trio.fail_after(3), pytest.raises(MalformedAnswer, match="interim"):
            await client.get(server.url())


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"


async def test_trailers_within_the_bounds_are_read_and_dropped() -> None:
    trailers = b"".join(b"X-T%d: v\r\n" % i for i in range(http1.MAX_TRAILERS))
    async with serving(answers(CHUNKED + trailers + b"\r\n", OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize(
    "trailers",
    [
        b"".join(b"X-T%d: v\r\n" % i for i in range(http1.MAX_TRAILERS + 1)),
        b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 8000) for i in range(9)),  # 72 KiB in 9 lines
    ],
    ids=["too-many", "too-large"],
)
async def test_trailers_past_the_bounds_are_a_malformed_answer(trailers: bytes) -> None:
    handler = answer_then_wait(CHUNKED + trailers + b"\r\n")
    async with serving(handler) as server, client_for() as client:
        await _read_expecting_trailer_error(client, server.url())


async def _read_expecting_trailer_error(client: httpx.AsyncClient, url: str) -> None:
    async with client.stream("GET", url) as response:
        with trio.fail_after(3), pytest.raises(MalformedAnswer, match="trailer"):
            await response.aread()


async def test_endless_trailers_do_not_hang_the_body() -> None:
    async def handler(peer: Peer) -> None:
        await endless(peer, CHUNKED, b"X-More: v\r\n")

    async with serving(handler) as server, client_for() as client:
        await _read_expecting_trailer_error(client, server.url())
