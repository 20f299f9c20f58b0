"""The SDK's client → mcp-remote-py → @modelcontextprotocol/server-everything (Node).

The reference server of the MCP project, in both of its HTTP modes: ``streamableHttp``
(``/mcp``) and the legacy ``sse`` transport (``/sse`` + ``/message``). Every tool that needs no
language model is called through the relay and its real answer is checked; the tools that ask
the client something back (roots, elicitation, sampling) are answered by the harness's
callbacks, so those answers must cross the relay in both directions.

Not covered: ``simulate-research-query`` and the ``*-async`` tools need the tasks API, which the
SDK client does not declare (the async ones are not even registered without it).

The server is started by ``tests/peers/everything.py`` (bound to 127.0.0.1 only, minimal
environment). These tests skip only when ``node`` or the npm package is missing
(``npm ci`` at the repository root installs it).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
import trio
from mcp.client import ClientSession

from ..peers.everything import MODES, EverythingServer, server_everything_bin
from .harness import ClientSide, relay_session

pytestmark = pytest.mark.timeout(120)

DOCS = Path(__file__).resolve().parents[2] / (
    "node_modules/@modelcontextprotocol/server-everything/dist/docs"
)
ALWAYS_TOOLS = {
    "echo",
    "get-annotated-message",
    "get-env",
    "get-resource-links",
    "get-resource-reference",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "toggle-simulated-logging",
    "toggle-subscriber-updates",
    "trigger-long-running-operation",
}
# registered once notifications/initialized arrives, from the capabilities the client declared
CONDITIONAL_TOOLS = {
    "get-roots-list",
    "trigger-elicitation-request",
    "trigger-url-elicitation",
    "trigger-sampling-request",
    "simulate-research-query",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEADLINE = 15  # seconds for one whole session; the slowest takes about 1


@pytest.fixture(scope="module", params=MODES)
def everything(request: pytest.FixtureRequest) -> Iterator[EverythingServer]:
    """One server-everything per mode, shared by the module's tests (each gets its own session)."""
    if server_everything_bin() is None:
        pytest.skip("node or @modelcontextprotocol/server-everything missing (run `npm ci`)")
    server = EverythingServer(request.param)
    server.start()  # a failure to start is an error, not a skip
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def relay(
    server: EverythingServer, tmp_path: Path, **kwargs: Any
) -> AsyncIterator[tuple[ClientSession, ClientSide]]:
    """``relay_session`` to ``server``, with a deadline: a broken relay fails, it does not hang."""
    assert server.url is not None
    with trio.fail_after(DEADLINE):
        async with relay_session(server.url, tmp_path, **kwargs) as pair:
            yield pair


def tool_result(result: Any) -> types.CallToolResult:
    assert isinstance(result, types.CallToolResult), result
    return result


def texts(result: Any) -> list[str]:
    return [b.text for b in tool_result(result).content if isinstance(b, types.TextContent)]


def ok_text(result: Any) -> str:
    """The text of a successful tool result (all its text blocks, joined)."""
    assert not tool_result(result).is_error, result
    return "\n".join(texts(result))


class Watched(list[Any]):
    """A list that wakes waiters on append: replaces ``side.logs`` to wait without polling."""

    def __init__(self, items: list[Any]) -> None:
        super().__init__(items)
        self._appended = trio.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self._appended.set()
        self._appended = trio.Event()

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10) -> Any:
        with trio.fail_after(timeout):
            while True:
                for item in self:
                    if predicate(item):
                        return item
                await self._appended.wait()


def no_traceback(side: ClientSide) -> None:
    stderr = side.stderr()
    assert "Traceback" not in stderr, stderr


# --------------------------------------------------------------------------- lifecycle


async def test_initialize_reports_the_servers_identity(
    everything: EverythingServer, tmp_path: Path
) -> None:
    async with relay(everything, tmp_path, initialize=False) as (session, side):
        result = await session.initialize()
        assert result.server_info.name == "mcp-servers/everything"
        assert result.server_info.version == "2.0.0"
        assert result.server_info.title == "Everything Reference Server"
        assert result.capabilities.tools is not None
        assert result.capabilities.resources is not None
        assert result.capabilities.resources.subscribe is True
        assert result.instructions == (DOCS / "instructions.md").read_text(encoding="utf-8")
    no_traceback(side)


async def test_tools_list(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, side):
        # The conditional tools are registered when notifications/initialized arrives. The relay
        # sends a request only once every notification before it has been accepted, so they are
        # already there for the tools/list that immediately follows initialize.
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) >= ALWAYS_TOOLS | CONDITIONAL_TOOLS
        if everything.mode == "sse":
            # The registration is announced with notifications/tools/list_changed. (In
            # streamableHttp mode the server sends it at once, before any client could have
            # opened its GET stream, and drops it: nothing to check there.)
            with trio.fail_after(10):
                await side.tools_changed.wait()
    assert tools["echo"].input_schema["required"] == ["message"]
    output_schema = tools["get-structured-content"].output_schema
    assert output_schema is not None
    assert set(output_schema["properties"]) == {"temperature", "conditions", "humidity"}
    no_traceback(side)


# --------------------------------------------------------------------------- plain tools


async def test_echo_and_get_sum(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, side):
        message = 'héllo\n"world" ✓'
        assert ok_text(await session.call_tool("echo", {"message": message})) == f"Echo: {message}"
        assert (
            ok_text(await session.call_tool("get-sum", {"a": 2.5, "b": -7}))
            == "The sum of 2.5 and -7 is -4.5."
        )
        # a bad argument is a tool error (isError), passed through as such
        bad = tool_result(await session.call_tool("get-sum", {"a": "x", "b": 1}))
        assert bad.is_error is True
    no_traceback(side)


async def test_get_env_answers_with_the_servers_environment(
    everything: EverythingServer, tmp_path: Path
) -> None:
    sentinel = "relay-side-sentinel-5f1c"
    async with relay(everything, tmp_path, env={"EVERYTHING_TEST_SENTINEL": sentinel}) as (
        session,
        _,
    ):
        text = ok_text(await session.call_tool("get-env", {}))
    # Assert on booleans only, so that a failure does not print the environment.
    server_env = json.loads(text)
    is_mapping = isinstance(server_env, dict)
    assert is_mapping, "get-env did not return a JSON object"
    domains = server_env.get("GZIP_ALLOWED_DOMAINS")
    assert domains == "localhost"  # set by the fixture: this is the server's environment
    leaked = sentinel in text or "EVERYTHING_TEST_SENTINEL" in text
    assert not leaked, "the relay's environment reached the server"


async def test_get_tiny_image(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, _):
        result = tool_result(await session.call_tool("get-tiny-image", {}))
    assert [block.type for block in result.content] == ["text", "image", "text"]
    image = result.content[1]
    assert isinstance(image, types.ImageContent)
    assert image.mime_type == "image/png"
    png = base64.b64decode(image.data, validate=True)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1000
    assert texts(result) == ["Here's the image you requested:", "The image above is the MCP logo."]


async def test_get_annotated_message(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, _):
        error = tool_result(
            await session.call_tool("get-annotated-message", {"messageType": "error"})
        )
        success = tool_result(
            await session.call_tool(
                "get-annotated-message", {"messageType": "success", "includeImage": True}
            )
        )
    (block,) = error.content
    assert isinstance(block, types.TextContent)
    assert block.text == "Error: Operation failed"
    assert block.annotations is not None
    assert block.annotations.priority == 1.0
    assert block.annotations.audience == ["user", "assistant"]
    text, image = success.content
    assert isinstance(text, types.TextContent)
    assert text.text == "Operation completed successfully"
    assert text.annotations is not None
    assert text.annotations.priority == 0.7
    assert isinstance(image, types.ImageContent)
    assert base64.b64decode(image.data).startswith(PNG_SIGNATURE)
    assert image.annotations is not None
    assert image.annotations.priority == 0.5
    assert image.annotations.audience == ["user"]


async def test_get_resource_links_and_read_one(
    everything: EverythingServer, tmp_path: Path
) -> None:
    async with relay(everything, tmp_path) as (session, _):
        result = tool_result(await session.call_tool("get-resource-links", {"count": 4}))
        intro, *links = result.content
        assert isinstance(intro, types.TextContent)
        assert intro.text == "Here are 4 resource links to resources available in this server:"
        assert all(isinstance(link, types.ResourceLink) for link in links)
        assert [str(link.uri) for link in links] == [  # type: ignore[union-attr]
            "demo://resource/dynamic/blob/1",
            "demo://resource/dynamic/text/2",
            "demo://resource/dynamic/blob/3",
            "demo://resource/dynamic/text/4",
        ]
        assert [link.name for link in links] == [  # type: ignore[union-attr]
            "Blob Resource 1",
            "Text Resource 2",
            "Blob Resource 3",
            "Text Resource 4",
        ]
        read = await session.read_resource("demo://resource/dynamic/text/2")
    assert isinstance(read, types.ReadResourceResult)
    (contents,) = read.contents
    assert isinstance(contents, types.TextResourceContents)
    assert contents.text.startswith("Resource 2: This is a plaintext resource created at ")


async def test_get_resource_reference(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, _):
        text_ref = tool_result(
            await session.call_tool(
                "get-resource-reference", {"resourceType": "Text", "resourceId": 7}
            )
        )
        blob_ref = tool_result(
            await session.call_tool(
                "get-resource-reference", {"resourceType": "Blob", "resourceId": 3}
            )
        )
    first, embedded, last = text_ref.content
    assert isinstance(first, types.TextContent)
    assert first.text == "Returning resource reference for Resource 7:"
    assert isinstance(embedded, types.EmbeddedResource)
    assert isinstance(embedded.resource, types.TextResourceContents)
    assert str(embedded.resource.uri) == "demo://resource/dynamic/text/7"
    assert embedded.resource.text.startswith("Resource 7: This is a plaintext resource")
    assert isinstance(last, types.TextContent)
    assert last.text == "You can access this resource using the URI: demo://resource/dynamic/text/7"
    blob = blob_ref.content[1]
    assert isinstance(blob, types.EmbeddedResource)
    assert isinstance(blob.resource, types.BlobResourceContents)
    assert str(blob.resource.uri) == "demo://resource/dynamic/blob/3"
    decoded = base64.b64decode(blob.resource.blob).decode()
    assert decoded.startswith("Resource 3: This is a base64 blob created at ")


async def test_get_structured_content(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, _):
        chicago = tool_result(
            await session.call_tool("get-structured-content", {"location": "Chicago"})
        )
        la = tool_result(
            await session.call_tool("get-structured-content", {"location": "Los Angeles"})
        )
    expected = {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}
    assert chicago.structured_content == expected
    assert json.loads(texts(chicago)[0]) == expected  # the backward-compatible text block
    assert la.structured_content == {
        "temperature": 73,
        "conditions": "Sunny / Clear",
        "humidity": 48,
    }


async def test_gzip_file_as_resource_from_a_data_uri(
    everything: EverythingServer, tmp_path: Path
) -> None:
    payload = ("mcp-remote-py relays bytes faithfully. ü ✓\n" * 200).encode()
    data_uri = "data:text/plain;base64," + base64.b64encode(payload).decode()
    async with relay(everything, tmp_path) as (session, _):
        inline = tool_result(
            await session.call_tool(
                "gzip-file-as-resource",
                {"name": "inline.txt.gz", "data": data_uri, "outputType": "resource"},
            )
        )
        linked = tool_result(
            await session.call_tool(
                "gzip-file-as-resource",
                {"name": "linked.txt.gz", "data": data_uri, "outputType": "resourceLink"},
            )
        )
        (link,) = linked.content
        assert isinstance(link, types.ResourceLink)
        assert str(link.uri) == "demo://resource/session/linked.txt.gz"
        assert link.mime_type == "application/gzip"
        read = await session.read_resource(str(link.uri))
    assert not inline.is_error, inline
    (embedded,) = inline.content
    assert isinstance(embedded, types.EmbeddedResource)
    assert isinstance(embedded.resource, types.BlobResourceContents)
    assert str(embedded.resource.uri) == "demo://resource/session/inline.txt.gz"
    assert embedded.resource.mime_type == "application/gzip"
    assert gzip.decompress(base64.b64decode(embedded.resource.blob)) == payload
    assert isinstance(read, types.ReadResourceResult)
    (contents,) = read.contents
    assert isinstance(contents, types.BlobResourceContents)
    assert gzip.decompress(base64.b64decode(contents.blob)) == payload


async def test_toggle_simulated_logging_sends_a_log_through_the_relay(
    everything: EverythingServer, tmp_path: Path
) -> None:
    async with relay(everything, tmp_path) as (session, side):
        logs = side.logs = Watched(side.logs)
        started = ok_text(await session.call_tool("toggle-simulated-logging", {}))
        assert started.startswith("Started simulated, random-leveled logging for session ")
        session_id = started.split("for session ", 1)[1].split(" ", 1)[0]
        assert session_id not in ("", "undefined")
        # the first simulated message is sent at once, tagged with the session id
        entry = await logs.wait_for(lambda e: f"SessionId {session_id}" in str(e.data))
        assert entry.level in {
            "debug",
            "info",
            "notice",
            "warning",
            "error",
            "critical",
            "alert",
            "emergency",
        }
        stopped = ok_text(await session.call_tool("toggle-simulated-logging", {}))
        assert stopped == f"Stopped simulated logging for session {session_id}"


async def test_toggle_subscriber_updates(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, _):
        started = ok_text(await session.call_tool("toggle-subscriber-updates", {}))
        assert started.startswith("Started simulated resource updated notifications for session ")
        session_id = started.split("for session ", 1)[1].split(" ", 1)[0]
        assert session_id not in ("", "undefined")
        stopped = ok_text(await session.call_tool("toggle-subscriber-updates", {}))
        assert stopped == f"Stopped simulated resource updates for session {session_id}"


async def test_long_running_operation_reports_progress(
    everything: EverythingServer, tmp_path: Path
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with relay(everything, tmp_path) as (session, side):
        result = await session.call_tool(
            "trigger-long-running-operation",
            {"duration": 0.6, "steps": 3},
            progress_callback=on_progress,
        )
        assert (
            ok_text(result) == "Long running operation completed. Duration: 0.6 seconds, Steps: 3."
        )
    assert [(value, total) for value, total, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    no_traceback(side)


# --------------------------------------------------------------------------- server → client


async def test_get_roots_list_returns_the_clients_roots(
    everything: EverythingServer, tmp_path: Path
) -> None:
    async with relay(everything, tmp_path) as (session, side):
        text = ok_text(await session.call_tool("get-roots-list", {}))
    assert text.startswith(
        "Current MCP Roots (1 total):\n\n1. Unnamed Root\n   URI: file:///work/project"
    )
    no_traceback(side)


async def test_elicitation_request_is_answered_by_the_client(
    everything: EverythingServer, tmp_path: Path
) -> None:
    # The tool asks for a form (name*, check, email, ...); the harness accepts with
    # {"answer": "blue"}, which fills none of those fields: the tool still completes, and
    # echoes the raw answer it received.
    async with relay(everything, tmp_path) as (session, side):
        text = ok_text(await session.call_tool("trigger-elicitation-request", {}))
    assert "✅ User provided the requested information!" in text
    raw = json.loads(text.split("Raw result: ", 1)[1])
    assert raw == {"action": "accept", "content": {"answer": "blue"}}


async def test_url_elicitation_request_is_answered_by_the_client(
    everything: EverythingServer, tmp_path: Path
) -> None:
    url = "https://example.invalid/consent"  # shown to the user only: nothing fetches it
    async with relay(everything, tmp_path) as (session, side):
        text = ok_text(
            await session.call_tool(
                "trigger-url-elicitation", {"url": url, "elicitationId": "elicit-77"}
            )
        )
    assert "✅ User completed the URL elicitation flow." in text
    assert "Elicitation ID: elicit-77" in text
    assert f"URL: {url}" in text


async def test_sampling_request_is_answered_by_the_client(
    everything: EverythingServer, tmp_path: Path
) -> None:
    async with relay(everything, tmp_path) as (session, side):
        text = ok_text(
            await session.call_tool(
                "trigger-sampling-request", {"prompt": "what is 6 x 7?", "maxTokens": 17}
            )
        )
    assert text.startswith("LLM sampling result: \n")
    sampled = json.loads(text.split("\n", 1)[1])
    assert sampled["model"] == "test-model"
    assert sampled["role"] == "assistant"
    assert sampled["content"] == {"type": "text", "text": "42"}
    (request,) = side.sampled
    assert request.max_tokens == 17
    assert request.system_prompt == "You are a helpful test server."
    content = request.messages[0].content
    assert isinstance(content, types.TextContent)
    assert content.text == "Resource trigger-sampling-request context: what is 6 x 7?"
    no_traceback(side)


# --------------------------------------------------------------------------- resources, prompts


async def test_resources_list_and_read(everything: EverythingServer, tmp_path: Path) -> None:
    docs = sorted(p.name for p in DOCS.iterdir() if p.is_file())
    async with relay(everything, tmp_path) as (session, _):
        listed = await session.list_resources()
        templates = await session.list_resource_templates()
        read = await session.read_resource("demo://resource/static/document/architecture.md")
        dynamic = await session.read_resource("demo://resource/dynamic/blob/12")
    assert isinstance(listed, types.ListResourcesResult)
    uris = {str(r.uri) for r in listed.resources}
    assert {f"demo://resource/static/document/{name}" for name in docs} <= uris
    assert "architecture.md" in docs
    assert isinstance(templates, types.ListResourceTemplatesResult)
    assert {t.uri_template for t in templates.resource_templates} == {
        "demo://resource/dynamic/text/{resourceId}",
        "demo://resource/dynamic/blob/{resourceId}",
    }
    assert isinstance(read, types.ReadResourceResult)
    (contents,) = read.contents
    assert isinstance(contents, types.TextResourceContents)
    assert contents.mime_type == "text/markdown"
    assert contents.text == (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert isinstance(dynamic, types.ReadResourceResult)
    (blob,) = dynamic.contents
    assert isinstance(blob, types.BlobResourceContents)
    assert base64.b64decode(blob.blob).decode().startswith("Resource 12: This is a base64 blob")


async def test_prompts_list_and_get(everything: EverythingServer, tmp_path: Path) -> None:
    async with relay(everything, tmp_path) as (session, _):
        listed = await session.list_prompts()
        simple = await session.get_prompt("simple-prompt")
        args = await session.get_prompt("args-prompt", {"city": "Paris", "state": "Texas"})
    assert isinstance(listed, types.ListPromptsResult)
    assert {p.name for p in listed.prompts} == {
        "simple-prompt",
        "args-prompt",
        "completable-prompt",
        "resource-prompt",
    }
    args_prompt = next(p for p in listed.prompts if p.name == "args-prompt")
    assert {(a.name, a.required) for a in args_prompt.arguments or []} == {
        ("city", True),
        ("state", False),
    }
    for result, expected in (
        (simple, "This is a simple prompt without arguments."),
        (args, "What's weather in Paris, Texas?"),
    ):
        assert isinstance(result, types.GetPromptResult)
        (message,) = result.messages
        assert message.role == "user"
        assert isinstance(message.content, types.TextContent)
        assert message.content.text == expected


# --------------------------------------------------------------------------- concurrency


async def test_20_concurrent_echo_calls_each_get_their_own_answer(
    everything: EverythingServer, tmp_path: Path
) -> None:
    answers: dict[int, str] = {}
    async with relay(everything, tmp_path) as (session, side):

        async def call(n: int) -> None:
            answers[n] = ok_text(await session.call_tool("echo", {"message": f"call {n}"}))

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(call, n)
    assert answers == {n: f"Echo: call {n}" for n in range(20)}
    no_traceback(side)
