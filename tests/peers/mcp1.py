"""The legacy peer: a real MCP server on the 2025-era SDK (`mcp` 1.x), in its own virtualenv.

The project's venv has `mcp` 2.x, so the 1.x server (`mcp1_server.py`) runs under another
interpreter: `mcp1_python()` makes that venv once (`mcp==MCP1_VERSION`, about a minute the first
time), and `Mcp1Server` runs the server with it, as a subprocess on 127.0.0.1::

    with Mcp1Server("streamable-http", json_response=True) as server:
        ...  # server.url is http://127.0.0.1:PORT/mcp (or .../sse for "sse")
        server.restart()  # same port: the relay sees a server restart (its sessions are gone)

The venv is `$MCP_REMOTE_PY_MCP1_VENV` when set, else `<repo>/.venv-mcp1`. What the server
offers, and how it answers a 2026-07-28 request, is in `mcp1_notes.md`.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

MCP1_VERSION = "1.30.0"
"""The `mcp` release the legacy peer runs on (the last 1.x)."""

VENV_ENV = "MCP_REMOTE_PY_MCP1_VENV"
"""Where the venv is, when set (else `<repo>/.venv-mcp1`)."""

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).resolve().with_name("mcp1_server.py")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

Transport = Literal["streamable-http", "sse"]

_ready: set[Path] = set()
"""The interpreters this process has already found with the pinned `mcp` installed."""


def mcp1_venv() -> Path:
    """Where the 1.x venv is (or will be): `$MCP_REMOTE_PY_MCP1_VENV`, else `<repo>/.venv-mcp1`."""
    configured = os.environ.get(VENV_ENV)
    return Path(configured).expanduser().absolute() if configured else REPO / ".venv-mcp1"


def _venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _installed_mcp(python: Path) -> str | None:
    """The `mcp` version `python` has: None if it does not run, "" if it has no `mcp`."""
    probe = (
        "import importlib.metadata as m\n"
        "try:\n    print(m.version('mcp'))\n"
        "except m.PackageNotFoundError:\n    print()\n"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made if missing): one builder among pytest processes."""
    with path.open("a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s: wait on
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def mcp1_python() -> Path:
    """The python of a venv that has `mcp==MCP1_VERSION`, made or repaired first if need be.

    Safe to call from concurrent processes (pytest-xdist, two runs at once): the build holds a
    lock on `<venv>.lock` beside the venv, and each waiter checks again once it has the lock.
    Raises `subprocess.CalledProcessError` if `venv` or `pip` fails, RuntimeError if the pinned
    version is still not what the venv has afterwards.
    """
    venv = mcp1_venv()
    python = _venv_python(venv)
    if python in _ready:
        return python
    if _installed_mcp(python) == MCP1_VERSION:
        _ready.add(python)
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.with_name(venv.name + ".lock")):
        found = _installed_mcp(python)
        if found != MCP1_VERSION:
            if found is None:  # missing, or its interpreter no longer runs: make it anew
                command = [sys.executable, "-m", "venv", "--clear", str(venv)]
                subprocess.run(command, check=True)
            # Keep git (and so ruff) out of it, as Python 3.13's venv does by itself.
            (venv / ".gitignore").write_text("*\n", encoding="utf-8")
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, f"mcp=={MCP1_VERSION}"], check=True)
            found = _installed_mcp(python)
            if found != MCP1_VERSION:
                raise RuntimeError(f"{venv} has mcp {found!r} after installing {MCP1_VERSION}")
    _ready.add(python)
    return python


class Mcp1Server:
    """`mcp1_server.py` under the 1.x venv's python, on 127.0.0.1; started on construction.

    `port=0` lets the OS pick one; `restart()` and `start()` after `stop()` reuse the port the
    first start got, so clients can reconnect to the same URL. Blocking calls: from a trio test
    use e.g. `await trio.to_thread.run_sync(server.restart)`.
    """

    def __init__(
        self,
        transport: Transport = "streamable-http",
        *,
        json_response: bool = False,
        stateless: bool = False,
        port: int = 0,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        if transport not in ("streamable-http", "sse"):
            raise ValueError(f"unknown transport {transport!r}")
        if transport == "sse" and (json_response or stateless):
            raise ValueError("json_response and stateless apply to streamable-http only")
        self.transport: Transport = transport
        self.json_response = json_response
        self.stateless = stateless
        self.port = port
        self.ready_timeout = ready_timeout
        self.python = mcp1_python()
        self.process: subprocess.Popen[bytes] | None = None
        self._base: str | None = None
        self.start()

    @property
    def flags(self) -> list[str]:
        """The server's command-line flags, less `--port`."""
        flags = ["--transport", self.transport]
        if self.json_response:
            flags.append("--json-response")
        if self.stateless:
            flags.append("--stateless")
        return flags

    @property
    def base(self) -> str:
        """`http://127.0.0.1:PORT`, the same across restarts."""
        if self._base is None:
            raise RuntimeError("the mcp1 peer has not started")
        return self._base

    @property
    def url(self) -> str:
        """The MCP endpoint: `<base>/mcp` (streamable-http) or `<base>/sse` (sse)."""
        return f"{self.base}/sse" if self.transport == "sse" else f"{self.base}/mcp"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (on `self.port`, once known) and wait for its READY line."""
        if self.running:
            raise RuntimeError("the mcp1 peer is running already")
        command = [str(self.python), str(SERVER_SCRIPT), *self.flags, "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO)
        assert self.process.stdout is not None
        try:
            line = _ready_line(self.process.stdout, self.ready_timeout)
        except BaseException:
            self.stop(kill=True)
            raise
        if not line.startswith("READY "):
            status = self.process.poll()
            self.stop(kill=True)
            raise RuntimeError(f"the mcp1 peer did not start (exit {status}): {line!r}")
        self._base = line.split()[1]
        self.port = int(self._base.rsplit(":", 1)[1])

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (graceful, exit 0) or, with `kill`, SIGKILL (a crash). Idempotent."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server and start a new one on the same port (all its sessions are gone)."""
        self.stop(kill=kill)
        self.start()

    def __enter__(self) -> Mcp1Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _ready_line(stdout: IO[bytes], timeout: float) -> str:
    """The server's first stdout line ("" if it exited first), within `timeout` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the mcp1 peer printed no READY line within {timeout} s")
    return stdout.readline().decode()
