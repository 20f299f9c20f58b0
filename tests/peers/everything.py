"""Test peer: the reference TypeScript MCP server ``@modelcontextprotocol/server-everything``.

Plain helpers, no pytest import.  Typical use::

    from tests.peers.everything import EverythingServer, server_everything_bin

    if server_everything_bin() is None:
        pytest.skip("node or @modelcontextprotocol/server-everything not installed")
    with EverythingServer("streamableHttp") as srv:   # or "sse"
        srv.url      # http://127.0.0.1:PORT/mcp   (sse mode: .../sse)

Loopback only
-------------
server-everything calls ``app.listen(PORT)`` with no host, i.e. it binds every
interface, and it has no HOST / bind-address setting.  By default
(``isolation="loopback"``) we start node with a tiny ``--import`` preload
(written to a temp dir) that rewrites every TCP ``net.Server.listen()`` to host
127.0.0.1 before the server code runs, then *verify* from ``/proc`` that every
listening socket of the process is on a loopback address (the server is killed
and an error raised otherwise).  The test's client and the relay need nothing special.

``isolation="netns"`` instead runs node in a fresh network namespace that has
only ``lo`` (``unshare --net``; needs root/CAP_SYS_ADMIN and iproute2).  Then
everything that talks to it must run inside that namespace too: prefix its argv
with ``srv.netns_prefix()`` (``nsenter --net=/proc/PID/ns/net --``).

Ports: the server is given ``PORT=0`` (ephemeral); the preload reports the port
actually bound on stderr, which is also our readiness signal (no fixed sleep).
Output of node goes to ``srv.log_path`` (read it with ``srv.log()``).
If the Python process dies without ``stop()``, the preload notices within
0.5 s and node exits by itself (no orphans).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@modelcontextprotocol/server-everything"
MODES = ("streamableHttp", "sse")
# Path the server serves in each mode.  In sse mode the client GETs /sse and is
# told (``event: endpoint``) to POST to /message?sessionId=...
PATHS = {"streamableHttp": "/mcp", "sse": "/sse"}

_READY_RE = re.compile(r"MCP_TEST_PEER_LISTENING host=(\S+) port=(\d+)")

# ESM preload (written to the server's temp dir, loaded with `node --import`).  Forces every
# TCP listen onto 127.0.0.1 and announces the bound address on stderr.
_PRELOAD_JS = r"""
import net from 'node:net';
const orig = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  let opts;
  const a0 = args[0];
  if (a0 !== null && typeof a0 === 'object' && !(a0 instanceof net.Server)) {
    opts = { ...a0 };
  } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    opts = { port: Number(a0) };
  } else if (a0 === undefined) {
    opts = { port: 0 };
  } else {
    throw new Error('loopback preload: refusing listen(' + String(a0) + ')');
  }
  if (opts.path !== undefined || opts.fd !== undefined || opts.handle !== undefined) {
    throw new Error('loopback preload: only TCP port listens are allowed');
  }
  opts.host = '127.0.0.1';
  delete opts.ipv6Only;
  this.once('listening', () => {
    const a = this.address();
    process.stderr.write(`MCP_TEST_PEER_LISTENING host=${a.address} port=${a.port}\n`);
  });
  return cb ? orig.call(this, opts, cb) : orig.call(this, opts);
};
// Orphan guard: exit when the Python process that started us is gone.
const owner = Number(process.env.MCP_TEST_PEER_OWNER_PID || 0);
if (owner > 0) {
  setInterval(() => {
    try { process.kill(owner, 0); } catch (e) { if (e.code === 'ESRCH') process.exit(0); }
  }, 500).unref();
}
"""


class PeerError(RuntimeError):
    pass


# --------------------------------------------------------------------------- locate


def node_bin() -> str | None:
    return shutil.which("node")


def server_everything_bin(root: Path = REPO_ROOT) -> Path | None:
    """The installed server's entry script, or None when node or the package is missing."""
    if node_bin() is None:
        return None
    b = root / "node_modules" / ".bin" / "mcp-server-everything"
    return b.resolve() if b.exists() else None


def server_everything_version(root: Path = REPO_ROOT) -> str | None:
    import json

    p = root / "node_modules" / PACKAGE / "package.json"
    try:
        return json.loads(p.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_installed(root: Path = REPO_ROOT, timeout: float = 300) -> Path | None:
    """Locate the server; if absent but node/npm are present, run ``npm ci`` (from the lockfile).

    Returns None when node/npm are missing or the install fails (callers skip).
    """
    found = server_everything_bin(root)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if node_bin() is None or npm is None or not (root / "package-lock.json").exists():
        return None
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
        return None
    return server_everything_bin(root)


def netns_available() -> bool:
    """True if this process may create a network namespace (root + unshare/nsenter/ip)."""
    if not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
        return False
    try:
        r = subprocess.run(["unshare", "--net", "true"], timeout=10, capture_output=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


# --------------------------------------------------------------------------- /proc


def _listening_inet(pid: int) -> list[tuple[str, int]]:
    """(address, port) of TCP sockets in LISTEN state owned by *pid* (from /proc)."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    out: list[tuple[str, int]] = []
    for fam in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{fam}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state != "0A" or inode not in inodes:  # 0A == LISTEN
                continue
            hexaddr, hexport = local.split(":")
            raw = bytes.fromhex(hexaddr)
            # /proc stores each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addr = str(ipaddress.ip_address(raw))
            out.append((addr, int(hexport, 16)))
    return out


def _is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


# --------------------------------------------------------------------------- server


class EverythingServer:
    """One server-everything process in ``mode`` (``"streamableHttp"`` or ``"sse"``).

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        mode: str = "streamableHttp",
        *,
        isolation: str = "loopback",
        startup_timeout: float = 20.0,
        extra_env: dict[str, str] | None = None,
        root: Path = REPO_ROOT,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if isolation not in ("loopback", "netns"):
            raise ValueError("isolation must be 'loopback' or 'netns'")
        self.mode = mode
        self.isolation = isolation
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.node_pid: int | None = None
        self.port: int | None = None
        self.base_url: str | None = None
        self.url: str | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None
        self.final_log = ""  # node's output, kept after stop()
        self.listening: list[tuple[str, int]] = []

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> EverythingServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _env(self) -> dict[str, str]:
        # Minimal environment: the server has a `get-env` tool that returns its
        # whole environment, so do not hand it ours.
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": self._tmp.name if self._tmp else "/tmp",
            "PORT": "0",
            # `gzip-file-as-resource` fetches a URL (default: a GitHub URL).
            # Only allow localhost so a careless call can't leave the machine.
            "GZIP_ALLOWED_DOMAINS": "localhost",
            "GZIP_MAX_FETCH_TIME_MILLIS": "5000",
            "NODE_NO_WARNINGS": "1",
            # the preload exits node if this process dies without calling stop()
            "MCP_TEST_PEER_OWNER_PID": str(os.getpid()),
        }
        env.update(self.extra_env)
        return env

    def start(self) -> str:
        if self.proc is not None:
            raise PeerError("already started")
        entry = server_everything_bin(self.root)
        node = node_bin()
        if entry is None or node is None:
            raise PeerError("node or server-everything not installed (see ensure_installed)")
        if self.isolation == "netns" and not netns_available():
            raise PeerError("cannot create a network namespace (need root, unshare, ip)")
        self._tmp = tempfile.TemporaryDirectory(prefix="mcp-everything-")
        try:
            self.log_path = Path(self._tmp.name) / "server.log"
            preload_path = Path(self._tmp.name) / "loopback-preload.mjs"
            preload_path.write_text(_PRELOAD_JS)
            node_argv = [node, "--import", preload_path.as_uri(), str(entry), self.mode]
            if self.isolation == "loopback":
                argv = node_argv
            else:
                # sh prints its pid, then execs node (same pid), inside the new netns.
                script = 'ip link set lo up && echo "MCP_TEST_PEER_NODE_PID=$$" >&2 && exec "$@"'
                argv = ["unshare", "--net", "--fork", "sh", "-c", script, "sh", *node_argv]
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    argv,
                    cwd=self._tmp.name,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop() kills it whole
                )
            self._wait_ready()
            self._check_loopback_only()
        except BaseException:
            self.stop()
            raise
        return self.url  # type: ignore[return-value]

    def _wait_ready(self) -> None:
        assert self.proc is not None
        assert self.log_path is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            text = self.log()
            m = _READY_RE.search(text)
            if self.isolation == "netns" and self.node_pid is None:
                pm = re.search(r"MCP_TEST_PEER_NODE_PID=(\d+)", text)
                if pm:
                    self.node_pid = int(pm.group(1))
            if m and (self.isolation == "loopback" or self.node_pid is not None):
                break
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                raise PeerError(f"server-everything exited with {rc} before listening:\n{text}")
            if time.monotonic() > deadline:
                raise PeerError(
                    f"server-everything not ready after {self.startup_timeout}s:\n{text}"
                )
            time.sleep(0.05)
        if self.isolation == "loopback":
            self.node_pid = self.proc.pid
        self.port = int(m.group(2))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = self.base_url + PATHS[self.mode]

    def _check_loopback_only(self) -> None:
        assert self.node_pid is not None
        socks = _listening_inet(self.node_pid)
        if not socks:
            raise PeerError("no listening socket found for server-everything")
        bad = [s for s in socks if not _is_loopback(s[0])]
        if bad:
            raise PeerError(f"server-everything listens on non-loopback {bad}; killed it")
        self.listening = socks

    def netns_prefix(self) -> list[str]:
        """argv prefix that runs a command in the server's network namespace.

        Empty list in ``loopback`` isolation (nothing needed there).
        """
        if self.isolation == "loopback":
            return []
        if self.node_pid is None:
            raise PeerError("server not started")
        return ["nsenter", f"--net=/proc/{self.node_pid}/ns/net", "--"]

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL it if still alive after *timeout*."""
        proc, self.proc = self.proc, None
        if proc is not None:
            pgid = proc.pid  # start_new_session: leader pid == pgid
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
                # leader gone; make sure no straggler stays in the group
                if not _group_alive(pgid):
                    break
                deadline = time.monotonic() + wait
                while _group_alive(pgid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not _group_alive(pgid):
                    break
        if self._tmp is not None:
            self.final_log = self.log()
            self._tmp.cleanup()
            self._tmp = None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
