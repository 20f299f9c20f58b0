"""doctor --selftest: an in-process MCP server (hypercorn on trio) and a scripted session
through the real relay, on both transports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_remote_py.doctor.report import Report
from mcp_remote_py.doctor.selftest import run_selftest

from .helpers import run_doctor

pytestmark = pytest.mark.timeout(120)

STEPS = (
    "initialize",
    "tools/list",
    "tools/call echo",
    "server -> client request",
    "session lost and recovered",
    "ping",
    "shutdown",
)


async def test_selftest_command(tmp_path: Path) -> None:
    run = await run_doctor("--selftest", tmp_path=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    for transport in ("Streamable HTTP", "legacy HTTP+SSE"):
        for step in STEPS[:-1]:
            assert f"[ ok ] {transport}: {step} (" in run.stdout, run.stdout
    assert "re-established" in run.stdout
    assert run.stdout.rstrip().endswith("15 passed, 0 warnings, 0 failed: nothing failed")
    assert run.stderr == ""


async def test_selftest_json(tmp_path: Path) -> None:
    run = await run_doctor("--selftest", "--json", tmp_path=tmp_path)
    data = json.loads(run.stdout)
    assert data["ok"] is True
    assert data["selftest"] is True
    ids = [c["id"] for c in data["checks"]]
    for mode in ("http-only", "sse-only"):
        for step in STEPS:
            assert f"selftest.{mode}.{step}" in ids


async def test_selftest_in_process() -> None:
    report = Report()
    await run_selftest(report)
    assert not report.failed, report.render_text()
    assert report.counts()["pass"] == 15
