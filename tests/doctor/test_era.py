"""doctor URL's Era section against the SDK peer in each of its modes (dual-era, --modern-only,
--header-tools, legacy SSE), the relay's era cache beside it, and the rule table for what a 2025
client gets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from mcp_remote_py.doctor.era import (
    DUAL_ERA,
    LEGACY_ONLY,
    MODERN_ERA_ONLY,
    Discovery,
    EraFound,
    legacy_client_line,
)
from mcp_remote_py.doctor.http_probe import Probe
from mcp_remote_py.doctor.report import FAIL, PASS, WARN
from mcp_remote_py.doctor.target import Target
from mcp_remote_py.shell.era_cache import LEGACY, MODERN_ONLY, EraCache
from mcp_remote_py.shell.relay_options import RelayOptions
from tests.integration.harness import sdk_server

from .helpers import Run, assert_no_secret, run_doctor, state_dir, text_of

pytestmark = pytest.mark.timeout(180)

FAST = ("--connect-timeout", "2", "--json")
ERA_CHECKS = ("era.server", "era.legacy_client", "era.modern_client")


async def doctor_on_peer(
    tmp_path: Path,
    *flags: str,
    args: tuple[str, ...] = FAST,
    cached: str | None = None,
) -> tuple[Run, str]:
    """``doctor URL ARGS`` against the SDK peer started with ``flags`` (its /sse URL with
    ``--transport sse``, else /mcp), with ``cached`` in the relay's era cache for that URL."""
    async with sdk_server(*flags) as server:
        url = server.url()
        if cached is not None:
            EraCache(httpx.URL(url), directory=state_dir(tmp_path)).learn(cached)
        return await run_doctor(url, *args, tmp_path=tmp_path), url


async def test_dual_era_server_relays_2025_clients_and_passes_2026_clients_through(
    tmp_path: Path,
) -> None:
    run, _ = await doctor_on_peer(tmp_path, "--transport", "streamable-http")
    legacy = run.check("era.legacy_client")
    assert (legacy["status"], legacy["data"]["presents"]) == ("pass", "relayed")
    assert "relayed as they come (Streamable HTTP, protocol 2025-11-25)" in legacy["summary"]
    modern = run.check("era.modern_client")
    assert (modern["status"], modern["data"]["presents"]) == ("pass", "pass-through")
    era = run.check("era.server")
    assert era["summary"].startswith("dual-era: ")
    assert era["data"] == {
        "era": DUAL_ERA,
        "supportedVersions": ["2026-07-28"],
        "legacyVersion": "2025-11-25",
        "server": "sdk-peer 1.2.3",
    }
    assert run.code == 0, run.stdout
    tools = run.check("era.tools")
    assert tools["status"] == "pass"
    assert tools["data"] == {"tools": 11, "pages": 1, "rejected": []}
    cache = run.check("era.cache")
    assert cache["data"] == {"cached": None}
    assert not run.has("era.cache.stale")


async def test_modern_only_server_gets_the_bridge_up_for_2025_clients(tmp_path: Path) -> None:
    secret = "tenant-secret-for-era-7"
    run, _ = await doctor_on_peer(
        tmp_path, "--modern-only", args=("--header", f"X-Tenant: {secret}", *FAST)
    )
    assert run.code == 0, run.stdout
    era = run.check("era.server")
    assert era["status"] == "pass"
    assert era["data"]["era"] == MODERN_ERA_ONLY
    assert era["data"]["supportedVersions"] == ["2026-07-28"]
    assert era["data"]["legacyVersion"] is None
    # The SDK refuses initialize with -32602 (no _meta), which names no version.
    assert "refuses initialize (HTTP 400, error -32602" in era["summary"]
    assert any("names no protocol version" in line for line in era["details"])
    legacy = run.check("era.legacy_client")
    assert (legacy["status"], legacy["data"]["presents"]) == ("pass", "bridge up")
    assert "answers its initialize from server/discover" in legacy["summary"]
    assert run.check("era.modern_client")["data"]["presents"] == "pass-through"
    assert run.check("era.tools")["data"]["rejected"] == []
    assert_no_secret(run, secret)


@pytest.mark.parametrize(
    ("flags", "who"),
    [
        ((), "a 2026-07-28 client cannot see or call it"),
        (("--modern-only",), "neither a 2026-07-28 client nor a 2025 client bridged up can"),
    ],
    ids=["dual-era", "modern-only"],
)
async def test_each_tool_with_an_invalid_x_mcp_header_is_a_warning_naming_it_and_why(
    tmp_path: Path, flags: tuple[str, ...], who: str
) -> None:
    run, _ = await doctor_on_peer(tmp_path, "--header-tools", *flags)
    tools = run.check("era.tools")
    assert tools["status"] == "info"
    assert tools["data"] == {
        "tools": 14,
        "pages": 1,
        "rejected": ["bad_number_header", "bad_duplicate_header"],
    }
    assert "the relay leaves 2 out (below), passes 12" in tools["summary"]
    assert (
        "route: mirrors Mcp-Param-Region, Mcp-Param-Dry-Run, Mcp-Param-Shard, Mcp-Param-Zone"
        in tools["details"]
    )
    number = run.check("era.tool.bad_number_header")
    assert number["status"] == "warn"
    assert "'bad_number_header' out of tools/list" in number["summary"]
    assert "type 'number' is not integer, string or boolean" in number["summary"]
    assert number["data"]["tool"] == "bad_number_header"
    duplicate = run.check("era.tool.bad_duplicate_header")
    assert duplicate["status"] == "warn"
    assert "repeats the one on parameter region" in duplicate["summary"]
    for check in (number, duplicate):
        assert who in check["fix"]
    assert not run.has("era.tool.route")
    assert run.code == 0  # warnings, not failures
    assert run.report["counts"]["warn"] == 2


def untimed(text: str) -> str:
    """``text`` without its timings, which differ from one run to the next."""
    return re.sub(r"\b\d+ ms\b", "N ms", text)


async def test_text_and_json_carry_the_same_era_checks(tmp_path: Path) -> None:
    async with sdk_server("--transport", "streamable-http", "--header-tools") as server:
        as_json = await run_doctor(server.mcp_url, *FAST, tmp_path=tmp_path)
        as_text = await run_doctor(server.mcp_url, "--connect-timeout", "2", tmp_path=tmp_path)
    checks = [c for c in as_json.report["checks"] if c["section"] == "Era"]
    assert [c["id"] for c in checks][:3] == list(ERA_CHECKS)
    era_text = untimed(as_text.stdout.split("\nEra\n", 1)[1].split("\n\n", 1)[0])
    for check in checks:
        label = {"pass": " ok ", "warn": "warn", "info": "info"}[check["status"]]
        assert f"[{label}] {untimed(check['summary'])}" in era_text, era_text
    assert "fix: Until the server's maintainers fix its inputSchema" in era_text


async def test_legacy_sse_server_is_legacy_only_and_2026_clients_get_the_bridge_down(
    tmp_path: Path,
) -> None:
    run, _ = await doctor_on_peer(tmp_path, "--transport", "sse")
    assert run.code == 0, run.stdout
    era = run.check("era.server")
    assert era["status"] == "info"
    assert era["data"]["era"] == LEGACY_ONLY
    assert era["summary"].startswith("legacy only: it takes initialize (protocol 2025-11-25 over ")
    assert "no 2026-07-28 server/discover (HTTP 405" in era["summary"]
    legacy = run.check("era.legacy_client")
    assert (legacy["status"], legacy["data"]["presents"]) == ("pass", "relayed")
    assert "legacy HTTP+SSE" in legacy["summary"]
    modern = run.check("era.modern_client")
    assert (modern["status"], modern["data"]["presents"]) == ("pass", "bridge down")
    assert modern["summary"].startswith("a 2026-07-28 client gets the bridge down")
    assert "answers server/discover from it" in modern["summary"]
    assert not run.has("era.tools")  # nothing to screen: no 2026-07-28 tools/list


@pytest.mark.parametrize(
    ("flags", "cached", "says"),
    [
        (("--modern-only",), LEGACY, "forgets the entry and re-probes, and bridges"),
        (("--transport", "sse"), MODERN_ONLY, "re-probe with initialize"),
    ],
    ids=["cached-legacy-server-modern-only", "cached-modern-only-server-legacy"],
)
async def test_a_cache_that_disagrees_says_the_relay_will_re_probe(
    tmp_path: Path, flags: tuple[str, ...], cached: str, says: str
) -> None:
    run, url = await doctor_on_peer(tmp_path, *flags, cached=cached)
    cache = run.check("era.cache")
    assert (cache["status"], cache["data"]) == ("info", {"cached": cached})
    assert f"says {cached} for {url}" in cache["summary"]
    stale = run.check("era.cache.stale")
    assert stale["status"] == "info"
    assert "the cache is out of date" in stale["summary"]
    assert says in stale["summary"]
    assert stale["data"]["cached"] == cached


async def test_a_cache_that_agrees_is_reported_without_a_re_probe(tmp_path: Path) -> None:
    run, _ = await doctor_on_peer(tmp_path, "--modern-only", cached=MODERN_ONLY)
    assert run.check("era.cache")["data"] == {"cached": MODERN_ONLY}
    assert not run.has("era.cache.stale")


async def test_protocol_legacy_against_a_modern_only_server_fails_with_the_fix(
    tmp_path: Path,
) -> None:
    run, _ = await doctor_on_peer(tmp_path, "--modern-only", args=("--protocol", "legacy", *FAST))
    assert run.code == 1
    legacy = run.check("era.legacy_client")
    assert (legacy["status"], legacy["data"]["presents"]) == ("fail", "error")
    assert legacy["fix"] == "Remove --protocol legacy (the default, auto, bridges)"
    modern = run.check("era.modern_client")
    assert (modern["status"], modern["data"]["presents"]) == ("warn", "bridge down")
    assert "which this server refuses: it speaks only 2026-07-28" in text_of(modern)
    assert "--protocol legacy" in text_of(modern)
    assert not run.has("era.tools")  # the relay lists no 2026-07-28 tools with it
    assert "not use" in run.check("era.cache")["summary"]


# -- what a 2025 client gets, rule by rule (Relay._send_request, negotiate.open_transport)

URL = "https://mcp.example.com/mcp"
MODERN_REFUSAL = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "error": {"code": -32022, "message": "Unsupported"}}
).encode()


@pytest.mark.parametrize(
    ("era", "protocol", "transport", "cached", "status", "refusal", "expected"),
    [
        (LEGACY_ONLY, "auto", "http-first", None, 200, b"", (PASS, "relayed")),
        (DUAL_ERA, "auto", "http-first", None, 200, b"", (PASS, "relayed")),
        (DUAL_ERA, "auto", "http-first", MODERN_ONLY, 200, b"", (PASS, "bridge up")),
        (DUAL_ERA, "modern", "http-first", None, 200, b"", (PASS, "bridge up")),
        (LEGACY_ONLY, "modern", "http-first", None, 200, b"", (FAIL, "error")),
        (MODERN_ERA_ONLY, "auto", "http-first", None, 400, b"", (PASS, "bridge up")),
        (MODERN_ERA_ONLY, "legacy", "http-first", None, 400, b"", (FAIL, "error")),
        (MODERN_ERA_ONLY, "modern", "sse-only", None, 400, b"", (PASS, "bridge up")),
        (MODERN_ERA_ONLY, "auto", "sse-only", None, 400, b"", (FAIL, "error")),
        (MODERN_ERA_ONLY, "auto", "sse-only", MODERN_ONLY, 400, b"", (WARN, "bridge up")),
        (MODERN_ERA_ONLY, "auto", "http-first", None, 406, MODERN_REFUSAL, (PASS, "bridge up")),
        (MODERN_ERA_ONLY, "auto", "http-first", None, 500, b"", (WARN, "error")),
    ],
    ids=[
        "legacy-relayed",
        "dual-relayed",
        "dual-cached-modern-only-bridged",
        "dual-protocol-modern-bridged",
        "legacy-protocol-modern-fails",
        "modern-only-bridged",
        "modern-only-protocol-legacy-fails",
        "modern-only-protocol-modern-sse-only-bridged",
        "modern-only-sse-only-never-finds-it",
        "modern-only-sse-only-bridged-while-cached",
        "modern-only-refusal-proves-it-whatever-the-status",
        "modern-only-refused-with-500-is-not-recognised",
    ],
)
def test_what_a_2025_client_gets(
    era: str,
    protocol: str,
    transport: str,
    cached: str | None,
    status: int,
    refusal: bytes,
    expected: tuple[str, str],
) -> None:
    target = Target(RelayOptions(url=httpx.URL(URL), transport=transport, protocol=protocol))
    probe = Probe(status=status, body=refusal, streamable=era != MODERN_ERA_ONLY)
    found = EraFound(era, "2025-11-25", "Streamable HTTP", Discovery(), cached)
    line_status, summary, fix, presents = legacy_client_line(target, probe, found)
    assert (line_status, presents) == expected, summary
    assert bool(fix) == (line_status != PASS)
