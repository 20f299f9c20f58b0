"""Test peer: a modern-only (2026-07-28) server on the TypeScript SDK v2 (Node).

``tests/peers/ts_modern_server.mjs`` serves ``/mcp`` with ``@modelcontextprotocol/server``'s
``createMcpHandler(factory, {legacy: 'reject'})`` (see that file for its tools and its control
endpoints ``/_seen`` and ``/_listeners``). Plain helpers, no pytest import.  Typical use::

    from tests.peers.ts_modern import TsModernServer, ts_modern_available

    if not ts_modern_available():
        pytest.skip("node or @modelcontextprotocol/server not installed (run `npm ci`)")
    with TsModernServer() as srv:
        srv.url      # http://127.0.0.1:PORT/mcp

The server binds 127.0.0.1 itself (port 0: the OS picks) and prints one line,
``READY http://127.0.0.1:PORT``, once listening; we read that line (no fixed sleep), then check
from ``/proc`` that every listening socket of the process is on loopback.  Its stdin is a pipe
from us: node exits when it closes, so it never outlives this process; ``stop()`` sends SIGTERM.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .everything import PeerError, _is_loopback, _listening_inet, node_bin

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@modelcontextprotocol/server"
SCRIPT = Path(__file__).with_name("ts_modern_server.mjs")


def ts_sdk_version(root: Path = REPO_ROOT) -> str | None:
    """The installed ``@modelcontextprotocol/server`` version, or None when it is missing."""
    try:
        manifest = json.loads((root / "node_modules" / PACKAGE / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version")
    return version if isinstance(version, str) else None


def ts_modern_available(root: Path = REPO_ROOT) -> bool:
    """True when node and the TypeScript SDK server package are installed."""
    return node_bin() is not None and ts_sdk_version(root) is not None


def ensure_installed(root: Path = REPO_ROOT, timeout: float = 300) -> bool:
    """Like ``everything.ensure_installed``: ``npm ci`` from the lockfile when the package is
    missing but node and npm are present.  False when that is impossible or fails."""
    if ts_modern_available(root):
        return True
    npm = shutil.which("npm")
    if node_bin() is None or npm is None or not (root / "package-lock.json").exists():
        return False
    try:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=root,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return ts_modern_available(root)


class TsModernServer:
    """One ``ts_modern_server.mjs`` process.  Use as a context manager, or ``start``/``stop``."""

    def __init__(self, *, startup_timeout: float = 20.0, root: Path = REPO_ROOT) -> None:
        self.startup_timeout = startup_timeout
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.base: str | None = None
        self.listening: list[tuple[str, int]] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None
        self.final_log = ""  # node's stderr, kept after stop()

    def __enter__(self) -> TsModernServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self.base is None:
            raise PeerError("server not started")
        return f"{self.base}/mcp"

    def start(self) -> str:
        if self.proc is not None:
            raise PeerError("already started")
        node = node_bin()
        if node is None or not ts_modern_available(self.root):
            raise PeerError("node or @modelcontextprotocol/server not installed (run `npm ci`)")
        self._tmp = tempfile.TemporaryDirectory(prefix="mcp-ts-modern-")
        self.log_path = Path(self._tmp.name) / "server.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": self._tmp.name,
            "NODE_NO_WARNINGS": "1",
        }
        try:
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [node, str(SCRIPT), "--port", "0"],
                    cwd=self.root,  # node_modules/ is found from the script's own directory
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                )
            self.base = self._wait_ready()
            self._check_loopback_only()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_ready(self) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise PeerError(f"the TS peer is not ready after {self.startup_timeout}s")
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.proc.wait(5)
            raise PeerError(f"the TS peer exited before it was ready: {line!r}\n{self.log()}")
        return line.split()[1]

    def _check_loopback_only(self) -> None:
        assert self.proc is not None
        socks = _listening_inet(self.proc.pid)
        bad = [s for s in socks if not _is_loopback(s[0])]
        if not socks or bad:
            raise PeerError(f"the TS peer listens on {socks}, not only on loopback; killed it")
        self.listening = socks

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return self.final_log
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._tmp is not None:
            self.final_log = self.log()
            self._tmp.cleanup()
            self._tmp = None
