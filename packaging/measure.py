"""Size on disk and start-up time of the builds, side by side, as a Markdown table.

    python packaging/measure.py [--runs 15] [--onefile PATH] [--onedir PATH]

Compares the one-file executable, the one-folder executable and the pip-installed package
(``python -m mcp_remote_py``, with the Python running this script). Start-up is the time from
starting the process to reading its answer to ``initialize`` (sent at once on stdin), against
the SDK test peer on loopback (``tests.peers.sdk_server --transport streamable-http``). The
variants take turns, run by run, so that a busy machine slows them alike; one warm-up run each
is not counted. Run it from the repository root with the test extra installed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""
TIMEOUT = 60.0
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "measure", "version": "1"},
    },
}


@dataclass
class Variant:
    label: str
    command: list[str]
    size: int
    size_note: str
    startup: list[float] = field(default_factory=list)
    exit: list[float] = field(default_factory=list)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def installed_size() -> tuple[int, int]:
    """Bytes of the installed mcp-remote-py and every distribution it needs at run time, and
    how many distributions that is (the Python interpreter itself not counted)."""
    from packaging.requirements import Requirement

    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = ["mcp-remote-py"]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    total = 0
    for name, dist in seen.items():
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
        if name == "mcp-remote-py":  # an editable install lists a .pth, not the sources
            package = REPO / "mcp_remote_py"
            if not any(str(f).startswith("mcp_remote_py/") for f in dist.files or []):
                total += folder_size(package)
    return total, len(seen)


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "tests.peers.sdk_server", "--transport", "streamable-http"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO)
    assert server.stdout is not None
    line = read_line(server.stdout).decode()
    if not line.startswith("READY "):
        server.kill()
        raise SystemExit(f"the SDK peer did not start: {line!r}")
    return server, line.split()[1] + "/mcp"


def read_line(stream, timeout: float = TIMEOUT) -> bytes:  # type: ignore[no-untyped-def]
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise SystemExit(f"no answer within {timeout} s")
    return lines[0]


def one_run(variant: Variant, url: str, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Seconds from start to the initialize answer, and from stdin EOF to exit."""
    request = json.dumps(INITIALIZE).encode() + b"\n"
    args = [url, "--log-level", "warning", "--log-file", str(log)]
    started = time.perf_counter()
    relay = subprocess.Popen(
        [*variant.command, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    assert relay.stdin is not None
    assert relay.stdout is not None
    relay.stdin.write(request)
    relay.stdin.flush()
    answer = json.loads(read_line(relay.stdout))
    startup = time.perf_counter() - started
    if "result" not in answer:
        relay.kill()
        raise SystemExit(f"{variant.label}: initialize failed: {answer}")
    ending = time.perf_counter()
    relay.stdin.close()
    relay.stdout.read()
    relay.wait(TIMEOUT)
    exit_time = time.perf_counter() - ending
    relay.stdout.close()
    return startup, exit_time


def mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="counted runs per variant (>= 10)")
    parser.add_argument(
        "--onefile", type=Path, default=REPO / "dist" / f"mcp-remote-py{EXE_SUFFIX}"
    )
    parser.add_argument(
        "--onedir",
        type=Path,
        default=REPO / "dist" / "mcp-remote-py-onedir" / f"mcp-remote-py{EXE_SUFFIX}",
    )
    args = parser.parse_args(argv)

    variants = []
    if args.onefile.is_file():
        size = args.onefile.stat().st_size
        variants.append(Variant("one-file executable", [str(args.onefile)], size, "the file"))
    else:
        print(f"no one-file build at {args.onefile}: skipped", file=sys.stderr)
    if args.onedir.is_file():
        size = folder_size(args.onedir.parent)
        variants.append(Variant("one-folder executable", [str(args.onedir)], size, "the folder"))
    else:
        print(f"no one-folder build at {args.onedir}: skipped", file=sys.stderr)
    size, count = installed_size()
    variants.append(
        Variant(
            "pip package (`python -m mcp_remote_py`)",
            [sys.executable, "-m", "mcp_remote_py"],
            size,
            f"{count} installed distributions, Python {platform.python_version()} not counted",
        )
    )

    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as temp:
            log = Path(temp) / "relay.log"
            for variant in variants:  # warm-up: file caches, .pyc files
                one_run(variant, url, env, log)
            for run in range(args.runs):
                order = variants[run % len(variants) :] + variants[: run % len(variants)]
                for variant in order:
                    startup, exit_time = one_run(variant, url, env, log)
                    variant.startup.append(startup)
                    variant.exit.append(exit_time)
                print(f"run {run + 1}/{args.runs}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()

    command = shlex.join(["python", "packaging/measure.py", *(argv or sys.argv[1:])])
    print(
        f"Measured {datetime.date.today().isoformat()} with `{command}` on {platform.system()} "
        f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}; "
        f"median of {args.runs} runs each, start-up = process start to the `initialize` answer "
        "from the SDK peer on loopback.\n"
    )
    print("| build | size on disk | start-up, median | min – max | stdin EOF → exit, median |")
    print("|---|---|---|---|---|")
    for v in variants:
        low, high = min(v.startup) * 1000, max(v.startup) * 1000
        print(
            f"| {v.label} | {mib(v.size)} ({v.size_note}) | {ms(v.startup)} | "
            f"{low:.0f} – {high:.0f} ms | {ms(v.exit)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
