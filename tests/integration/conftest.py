"""Peer servers shared by the integration tests: started once per run, stopped at the end."""

from __future__ import annotations

import selectors
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from .harness import READY_TIMEOUT, REPO, SERVER_MODES


class RunningServer:
    def __init__(self, mode: str, flags: tuple[str, ...]) -> None:
        self.mode = mode
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.peers.sdk_server", *flags],
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        self.base = self._wait_ready()

    def _wait_ready(self) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + READY_TIMEOUT
            while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"the {self.mode} peer server did not start")
        line = self.process.stdout.readline().decode()
        assert line.startswith("READY "), line
        return line.split()[1]

    @property
    def url(self) -> str:
        return f"{self.base}/sse" if self.mode == "legacy-sse" else f"{self.base}/mcp"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="session")
def sdk_servers() -> Iterator[dict[str, RunningServer]]:
    servers: dict[str, RunningServer] = {}
    try:
        for mode, flags in SERVER_MODES.items():
            servers[mode] = RunningServer(mode, flags)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(params=list(SERVER_MODES))
def server(request: pytest.FixtureRequest, sdk_servers: dict[str, RunningServer]) -> RunningServer:
    """Each SDK server mode in turn: Streamable HTTP with SSE and JSON answers, stateless, SSE."""
    return sdk_servers[request.param]
