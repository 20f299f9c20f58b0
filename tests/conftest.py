"""Shared fixtures: a clean network environment for every test; skips that keep their reason."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Generator
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "MCP_HTTP_URL",
)


@pytest.fixture(autouse=True)
def _own_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The era cache lives in the user state directory: a server that spoke only 2026-07-28 on a
    # port in one test must not decide how a relay meets another server on that port later.
    monkeypatch.setenv("MCP_REMOTE_PY_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def _clean_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Like httpx's own test suite: a proxy or CA setting of the machine must not change results.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# pytest-trio (0.8) runs an async test in a task, so a ``pytest.skip(reason)`` in it reaches the
# plugin inside an exception group, and the plugin raises a bare ``pytest.skip()`` instead:
# ``-rs`` then shows "_pytest/python.py:187: Skipped" for every such test. The skip the test
# raised is still there, as that bare skip's context: its reason and place go back on the report.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and call.excinfo is not None and isinstance(report.longrepr, tuple):
        original = skip_inside(call.excinfo.value.__context__)
        if original is not None and original.msg:
            path, line = where_raised(original, item)
            report.longrepr = (path, line, f"Skipped: {original.msg}")
    return report


def skip_inside(error: BaseException | None) -> pytest.skip.Exception | None:
    """The one skip in ``error``, an exception group of one skip however deeply nested."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, pytest.skip.Exception) else None


def where_raised(error: BaseException, item: pytest.Item) -> tuple[str, int]:
    """The last frame outside pytest's own code (the ``pytest.skip`` call), else the test."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if "_pytest" not in Path(frame.filename).parts and frame.lineno is not None
    ]
    if frames:
        return frames[-1].filename, int(frames[-1].lineno or 0)
    path, line = item.reportinfo()[:2]
    return str(path), (line or 0) + 1
