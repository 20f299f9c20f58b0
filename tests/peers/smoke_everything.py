#!/usr/bin/env python3
"""Smoke test of the server-everything peer: start it in both HTTP modes and drive
a short real MCP session with httpx (initialize, notifications/initialized,
tools/list, tools/call echo).  Prints PASS/FAIL per check and exits non-zero on
any failure.  Everything stays on 127.0.0.1.

    python tests/peers/smoke_everything.py                      # loopback-bound server
    python tests/peers/smoke_everything.py --isolation netns    # server (and client) in a netns
    python tests/peers/smoke_everything.py --isolation both

In netns isolation the client part re-runs this script inside the server's
network namespace (``nsenter``), as a relay under test would have to.
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from everything import MODES, EverythingServer, PeerError, ensure_installed, netns_available  # noqa: E402

PROTOCOL_VERSION = "2025-06-18"
TIMEOUT = httpx.Timeout(10.0)
ECHO = "hello from smoke_everything"


class Checks:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.passed, self.failed = prefix, 0, 0

    def check(self, name: str, ok: bool, detail: object = "") -> bool:
        tag = "PASS" if ok else "FAIL"
        print(f"{tag} [{self.prefix}] {name}" + ("" if ok else f": {detail!r}"[:500]), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def _sse_events(lines):
    """Yield (event, id, data) from an iterator of SSE lines."""
    ev, eid, data = "message", None, []
    for line in lines:
        if line == "":
            if data:
                yield ev, eid, "\n".join(data)
            ev, eid, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                ev = value
            elif field == "id":
                eid = value
            elif field == "data":
                data.append(value)


def _init_msg():
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "smoke_everything", "version": "0"},
        },
    }


def _check_echo_and_list(ck: Checks, tools_resp, echo_resp) -> None:
    names = [t["name"] for t in (tools_resp or {}).get("result", {}).get("tools", [])]
    ck.check("tools/list contains echo", "echo" in names, names)
    content = (echo_resp or {}).get("result", {}).get("content", [])
    ck.check(
        "tools/call echo",
        content[:1] == [{"type": "text", "text": f"Echo: {ECHO}"}],
        echo_resp,
    )


def drive_streamable(url: str, ck: Checks) -> None:
    base = {"accept": "application/json, text/event-stream", "content-type": "application/json"}

    def rpc(c: httpx.Client, headers, msg):
        r = c.post(url, json=msg, headers=headers)
        msgs = []
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            msgs = [
                json.loads(d) for _, _, d in _sse_events(r.text.splitlines() + [""]) if d.strip()
            ]
        elif r.content:
            msgs = [r.json()]
        reply = next((m for m in msgs if m.get("id") == msg.get("id")), None)
        return r, reply

    with httpx.Client(timeout=TIMEOUT) as c:
        r, reply = rpc(c, base, _init_msg())
        sid = r.headers.get("mcp-session-id")
        ck.check(
            "initialize -> 200 + Mcp-Session-Id",
            r.status_code == 200 and bool(sid),
            (r.status_code, r.text[:200]),
        )
        ck.check(
            "initialize result",
            (reply or {}).get("result", {}).get("protocolVersion") == PROTOCOL_VERSION,
            reply,
        )
        if not sid:
            return
        h = {**base, "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL_VERSION}
        r = c.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
        ck.check("notifications/initialized -> 202", r.status_code == 202, (r.status_code, r.text))
        _, tools = rpc(c, h, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        _, echo = rpc(
            c,
            h,
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": ECHO}},
            },
        )
        _check_echo_and_list(ck, tools, echo)
        r = c.delete(url, headers=h)
        ck.check("DELETE session -> 200", r.status_code == 200, r.status_code)


def drive_sse(url: str, ck: Checks) -> None:
    base_url = url.rsplit("/", 1)[0]
    incoming: queue.Queue = queue.Queue()
    ready = threading.Event()
    stop = threading.Event()

    def reader() -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as c2,
                c2.stream("GET", url, headers={"accept": "text/event-stream"}) as g,
            ):
                incoming.put(("status", g.status_code))
                for ev in _sse_events(g.iter_lines()):
                    incoming.put(ev)
                    if stop.is_set():
                        return
        except Exception as e:  # reported through the queue
            incoming.put(("error", repr(e)))
        finally:
            ready.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def next_item(timeout=10.0):
        try:
            return incoming.get(timeout=timeout)
        except queue.Empty:
            return ("timeout", None)

    def wait_reply(rid, timeout=10.0):
        while True:
            item = next_item(timeout)
            if item[0] in ("timeout", "error"):
                return None
            if item[0] == "message":
                m = json.loads(item[2])
                if m.get("id") == rid and ("result" in m or "error" in m):
                    return m

    st = next_item()
    ck.check("GET /sse -> 200", st == ("status", 200), st)
    ep = next_item()
    ok = ep[0] == "endpoint" and str(ep[2]).startswith("/message?sessionId=")
    ck.check("endpoint event", ok, ep)
    if not ok:
        return
    post_url = base_url + ep[2]
    with httpx.Client(timeout=TIMEOUT) as c:
        r = c.post(post_url, json=_init_msg())
        ck.check("POST initialize -> 202", r.status_code == 202, (r.status_code, r.text))
        init = wait_reply(1)
        ck.check(
            "initialize result on stream",
            (init or {}).get("result", {}).get("protocolVersion") == PROTOCOL_VERSION,
            init,
        )
        r = c.post(post_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        ck.check("notifications/initialized -> 202", r.status_code == 202, (r.status_code, r.text))
        c.post(post_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = wait_reply(2)
        c.post(
            post_url,
            json={
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"message": ECHO}},
            },
        )
        echo = wait_reply(3)
        _check_echo_and_list(ck, tools, echo)
    stop.set()


def drive(mode: str, url: str, ck: Checks) -> None:
    try:
        (drive_streamable if mode == "streamableHttp" else drive_sse)(url, ck)
    except Exception as e:  # any exception is a failure, not a crash
        ck.check("no exception", False, repr(e))


def run_one(mode: str, isolation: str) -> tuple[int, int]:
    ck = Checks(f"{mode}/{isolation}")
    try:
        with EverythingServer(mode, isolation=isolation) as srv:
            ck.check(f"server up at {srv.url}, listening {srv.listening}", True)
            if isolation == "loopback":
                drive(mode, srv.url, ck)
            else:
                # The client must live in the server's netns: re-run ourselves there.
                cmd = srv.netns_prefix() + [sys.executable, __file__, "--client", mode, srv.url]
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                sys.stdout.write(p.stdout)
                for line in p.stdout.splitlines():
                    if line.startswith("PASS "):
                        ck.passed += 1
                    elif line.startswith("FAIL "):
                        ck.failed += 1
                ck.check("client in netns exited 0", p.returncode == 0, p.stderr[-500:])
                # And from outside the namespace it must be unreachable.
                try:
                    httpx.get(srv.url, timeout=2.0)
                    reached = True
                except httpx.TransportError:
                    reached = False
                ck.check("unreachable from the host netns", not reached)
    except PeerError as e:
        ck.check("server start", False, str(e))
    return ck.passed, ck.failed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--isolation", choices=("loopback", "netns", "both"), default="loopback")
    ap.add_argument("--client", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        ck = Checks(f"{a.client[0]}/in-netns")
        drive(a.client[0], a.client[1], ck)
        return 1 if ck.failed else 0

    if ensure_installed() is None:
        print("SKIP: node or @modelcontextprotocol/server-everything not available")
        return 0
    isolations = ["loopback", "netns"] if a.isolation == "both" else [a.isolation]
    if "netns" in isolations and not netns_available():
        print("SKIP netns: cannot create a network namespace here")
        isolations.remove("netns")
    passed = failed = 0
    for iso in isolations:
        for mode in MODES:
            p, f = run_one(mode, iso)
            passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
