"""What a user meets when something is wrong: bad lines, bad flags, an unreachable server, and
how the relay ends. Each error must say what went wrong and lose nothing else."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from .conftest import RunningServer
from .harness import raw_relay, relay_command, run_relay_to_exit, sdk_server

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def assert_still_serving(relay, request_id: int = 99) -> None:  # type: ignore[no-untyped-def]
    await relay.request(request_id, "tools/list")
    answer = await relay.read_message()
    assert answer["id"] == request_id
    assert "echo" in {tool["name"] for tool in answer["result"]["tools"]}


@pytest.fixture
def streamable(sdk_servers: dict[str, RunningServer]) -> RunningServer:
    return sdk_servers["streamable-sse"]


async def test_non_json_and_invalid_utf8_lines_get_parse_errors(
    streamable: RunningServer, tmp_path: Path
) -> None:
    async with raw_relay([streamable.url], tmp_path) as relay:
        await relay.initialize()
        await relay.send(b"this is not json\n")
        error = await relay.read_message()
        assert error["id"] is None
        assert error["error"]["code"] == -32700
        assert "not valid JSON" in error["error"]["message"]
        await relay.send(b'{"jsonrpc":"2.0","id":5,"method":"ping","x":"\xff"}\n')
        error = await relay.read_message()
        assert error["error"]["code"] == -32700
        assert "UTF-8" in error["error"]["message"]
        await relay.send(b'{"jsonrpc":"2.0","id":6}\n')
        error = await relay.read_message()
        assert error["id"] == 6
        assert error["error"]["code"] == -32600
        await assert_still_serving(relay)
    assert "Traceback" not in relay.stderr()


async def test_a_50mb_line_is_handled_and_the_relay_goes_on(
    streamable: RunningServer, tmp_path: Path
) -> None:
    async with raw_relay([streamable.url], tmp_path) as relay:
        await relay.initialize()
        text = "y" * (50 * 1024 * 1024)
        await relay.request(7, "tools/call", {"name": "echo", "arguments": {"text": text}})
        answer = await relay.read_message(timeout=60)
        assert answer["id"] == 7
        if "result" in answer:
            assert answer["result"]["content"][0]["text"] == text
        else:  # the server may refuse a body that large: then the error says so, with the status
            assert answer["error"]["code"] == -32001
            assert "HTTP 413" in answer["error"]["message"]
        await relay.send(b"[" * (50 * 1024 * 1024) + b"\n")  # 50 MB of garbage
        error = await relay.read_message(timeout=60)
        assert error["error"]["code"] == -32700
        await assert_still_serving(relay)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--bogus", "https://x/mcp"], {}, "error: unknown option --bogus\n"),
        (
            ["--hedaer", "X:1", "https://x/mcp"],
            {},
            "error: unknown option --hedaer (did you mean --header?)",
        ),
        (["docter", "https://x/mcp"], {}, "error: unknown command docter (did you mean doctor?)"),
        (["not a url"], {}, "not an http:// or https:// URL"),
        (["ftp://example.com/mcp"], {}, "not an http:// or https:// URL"),
        (["http://example.com/mcp"], {}, "refusing plain http:// to example.com"),
        ([], {}, "no server URL"),
        (
            ["https://x/mcp", "--header", "Authorization: Bearer ${NOT_SET_ANYWHERE}"],
            {},
            "NOT_SET_ANYWHERE is not set",
        ),
        (["https://x/mcp", "--header", "broken"], {}, "is not of the form 'Name: value'"),
        (["https://x/mcp", "--header-file", "/nonexistent/h.txt"], {}, "cannot read --header-file"),
        (["https://x/mcp", "--connect-timeout", "soon"], {}, "is not a number of seconds"),
        (
            ["https://x/mcp", "--header", "Authorization: Bearer t\u2014k"],
            {},
            "Authorization: the value contains a non-ASCII character (U+2014)",
        ),
        (
            ["https://x/mcp", "--header", "X-Key: ${KEY}"],
            {"KEY": "caf\u00e9"},
            "X-Key: the value contains a non-ASCII character (U+00E9)",
        ),
        (["https://x/mcp", "--header", "X-Key: a\x01b"], {}, "contains a control character"),
    ],
)
async def test_usage_errors_exit_2_and_say_what_is_wrong(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    result = await run_relay_to_exit(args, env=env)
    assert result.returncode == 2
    assert expected in result.stderr.decode()
    assert result.stdout == b""


async def test_url_from_mcp_http_url(streamable: RunningServer, tmp_path: Path) -> None:
    async with raw_relay([], tmp_path, env={"MCP_HTTP_URL": streamable.url}) as relay:
        answer = await relay.initialize()
        assert answer["result"]["serverInfo"]["name"] == "sdk-peer"


async def test_a_client_id_that_looks_like_the_relays_own_is_answered(
    streamable: RunningServer, tmp_path: Path
) -> None:
    # The relay's own ids carry a random part: "mcp-remote-py/1" from a client is the client's.
    async with raw_relay([streamable.url], tmp_path) as relay:
        await relay.initialize()
        for request_id in ("mcp-remote-py/1", "mcp-remote-py/2"):
            await relay.request(
                request_id, "tools/call", {"name": "echo", "arguments": {"text": "mine"}}
            )
        answers = [await relay.read_message(timeout=20) for _ in range(2)]
    assert sorted(a["id"] for a in answers) == ["mcp-remote-py/1", "mcp-remote-py/2"]
    assert all(a["result"]["content"][0]["text"] == "mine" for a in answers)


async def test_a_duplicate_id_in_flight_gets_one_error_and_the_original_its_one_answer(
    streamable: RunningServer, tmp_path: Path
) -> None:
    async with raw_relay([streamable.url], tmp_path) as relay:
        await relay.initialize()
        await relay.start_slow_call(7, seconds=0.5, steps=1)
        await relay.request(7, "tools/call", {"name": "echo", "arguments": {"text": "twin"}})
        lines = [await relay.read_message(timeout=20) for _ in range(3)]
        await relay.close_stdin()
        rest = await relay.read_until_eof()
    answers = [m for m in lines if m.get("id") == 7]
    (refused,) = [m for m in answers if "error" in m]
    (result,) = [m for m in answers if "result" in m]
    assert refused["error"]["code"] == -32600
    assert "request id 7 is already in flight; ids must be unique" in refused["error"]["message"]
    assert result["result"]["content"][0]["text"] == "done"  # the slow call's, not the twin's
    assert b'"id":7' not in rest  # nothing more for id 7


async def test_refused_connection_at_start_is_named_within_the_startup_timeout(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    async with raw_relay([url, "--startup-timeout", "3"], tmp_path) as relay:
        started = trio.current_time()
        answer = await relay.initialize()
        assert trio.current_time() - started < 10
        message = answer["error"]["message"]
        assert answer["error"]["code"] == -32001
        assert "refused the connection" in message
        assert f"mcp-remote-py doctor {url}" in message
        # The relay is still there for the client's next try.
        await relay.request(2, "ping")
        again = await relay.read_message()
        assert again["id"] == 2
        assert "refused" in again["error"]["message"]


async def test_a_refused_port_is_tried_for_the_whole_startup_timeout(tmp_path: Path) -> None:
    # The answer is owed within --startup-timeout, and the relay uses all of it: the last wait
    # is cut to what is left, not skipped (it gave up after 6 s of 8, 23 s of 30).
    url = f"http://127.0.0.1:{free_port()}/mcp"
    async with raw_relay([url, "--startup-timeout", "8"], tmp_path) as relay:
        started = trio.current_time()
        answer = await relay.initialize()
        waited = trio.current_time() - started
    assert "refused the connection" in answer["error"]["message"]
    assert 6.5 <= waited <= 9.5, waited


async def test_http_error_status_reaches_the_client_with_an_excerpt(
    streamable: RunningServer, tmp_path: Path
) -> None:
    url = streamable.base + "/no-such-path"
    async with raw_relay([url, "--transport", "http-only"], tmp_path) as relay:
        answer = await relay.initialize()
        error = answer["error"]
        assert error["code"] == -32001
        assert "HTTP 404" in error["message"]
        assert "/mcp" in error["message"]  # the hint names the usual paths
        assert error["data"]["status"] == 404


async def test_stdin_eof_deletes_the_session_and_exits_0(
    streamable: RunningServer, tmp_path: Path
) -> None:
    async with raw_relay([streamable.url], tmp_path) as relay:
        await relay.initialize()
        await relay.request(1, "tools/call", {"name": "headers", "arguments": {}})
        seen = json.loads((await relay.read_message())["result"]["content"][0]["text"])
        session_id = {k.lower(): v for k, v in seen.items()}["mcp-session-id"]
        await relay.close_stdin()
        assert await relay.read_until_eof() == b""
        with trio.fail_after(10):
            assert await relay.process.wait() == 0
    # DELETE reached the server: the session is gone.
    async with httpx.AsyncClient() as client:
        response = await client.post(
            streamable.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={
                "Mcp-Session-Id": session_id,
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25",
            },
        )
    assert response.status_code == 404


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is TerminateProcess on Windows")
async def test_sigterm_answers_what_is_in_flight_and_exits_0(
    streamable: RunningServer, tmp_path: Path
) -> None:
    async with raw_relay([streamable.url], tmp_path) as relay:
        await relay.initialize()
        await relay.start_slow_call(1, seconds=30, steps=30)
        progress = await relay.read_message()  # the call is running on the server
        assert progress["method"] == "notifications/progress"
        relay.process.send_signal(signal.SIGTERM)
        rest = await relay.read_until_eof(timeout=10)
        answers = [json.loads(line) for line in rest.splitlines()]
        final = [m for m in answers if m.get("id") == 1]
        assert len(final) == 1
        assert final[0]["error"]["code"] == -32006
        with trio.fail_after(10):
            assert await relay.process.wait() == 0
    assert "Traceback" not in relay.stderr()


async def test_http_first_falls_back_to_legacy_sse(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "sse", "--sse-path", "/events") as server,
        raw_relay([server.base + "/events"], tmp_path) as relay,
    ):
        answer = await relay.initialize()
        assert answer["result"]["serverInfo"]["name"] == "sdk-peer"
        await assert_still_serving(relay)
    assert "trying legacy HTTP+SSE" in relay.stderr()
    assert "over legacy HTTP+SSE" in relay.stderr()


async def test_sse_first_falls_back_to_streamable_http(
    streamable: RunningServer, tmp_path: Path
) -> None:
    async with raw_relay([streamable.url, "--transport", "sse-first"], tmp_path) as relay:
        answer = await relay.initialize()
        assert answer["result"]["serverInfo"]["name"] == "sdk-peer"
        await assert_still_serving(relay)
    assert "over Streamable HTTP" in relay.stderr()


async def test_only_modes_do_not_fall_back(streamable: RunningServer, tmp_path: Path) -> None:
    async with raw_relay([streamable.url, "--transport", "sse-only"], tmp_path) as relay:
        answer = await relay.initialize()
        assert answer["error"]["code"] == -32001
        assert "HTTP 400" in answer["error"]["message"]
        # It says what the mistake is: this endpoint speaks Streamable HTTP.
        assert "does not serve legacy HTTP+SSE" in answer["error"]["message"]
        assert "remove --transport sse-only" in answer["error"]["message"]
        assert "If the server speaks only MCP 2026-07-28" not in answer["error"]["message"]


async def test_same_origin_redirect_is_followed(streamable: RunningServer, tmp_path: Path) -> None:
    async with raw_relay([streamable.url + "/"], tmp_path) as relay:  # the SDK redirects /mcp/
        answer = await relay.initialize()
        assert answer["result"]["serverInfo"]["name"] == "sdk-peer"
        await assert_still_serving(relay)


async def test_ipv4_keeps_environment_proxies(streamable: RunningServer, tmp_path: Path) -> None:
    # The proxy is a closed port: that the relay reports *the proxy* shows it was used.
    proxy = f"http://user:hunter2@127.0.0.1:{free_port()}"
    env = {"HTTP_PROXY": proxy, "http_proxy": proxy}
    args = [streamable.url, "--ipv4", "--startup-timeout", "1"]
    async with raw_relay(args, tmp_path, env=env) as relay:
        error = (await relay.initialize())["error"]
    assert "the proxy http://127.0.0.1:" in error["message"]
    assert "refused the connection" in error["message"]
    assert "hunter2" not in error["message"] + relay.stderr()


def has_exited(pid: int) -> bool:
    """Gone, or a zombie that init has yet to reap: exited either way."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_exits_when_its_launcher_dies_though_stdin_stays_open() -> None:
    """The desktop client is killed, but another process (this test) still holds the relay's
    stdin: the relay must notice that its launcher is gone and exit."""
    launcher = (
        "import subprocess, sys\n"
        "relay = subprocess.Popen(sys.argv[1:])\n"  # inherits our stdin and stdout
        "print(relay.pid, flush=True)\n"
        "relay.wait()\n"
    )
    command = [sys.executable, "-c", launcher, *relay_command(), "https://127.0.0.1:9/mcp"]
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        seen = b""
        with trio.fail_after(30):
            while b"\n" not in seen:
                seen += await process.stdout.receive_some(100)
            relay_pid = int(seen.split()[0])
            await process.stdin.send_all(b"not json\n")  # answered once the relay is running
            while b"-32700" not in seen:
                seen += await process.stdout.receive_some(1000)
        process.kill()  # the launcher dies at once; the relay still has our stdin and stdout
        await process.wait()
        with trio.fail_after(20):  # the relay notices and exits: then its stdout pipe ends
            while await process.stdout.receive_some(100):
                pass
        # Its pipes close a moment before the process is gone: no event marks that last step.
        with trio.fail_after(5):
            while not has_exited(relay_pid):  # noqa: ASYNC110
                await trio.sleep(0.01)
    finally:
        await process.stdin.aclose()
