"""Name and network: which addresses a host name gives, in which order, and which of them accept
a connection.

The case that hurts most: ``localhost`` resolving to ``::1`` first while the server listens on
127.0.0.1 only. Every connection then tries ``::1`` first; on Windows a refused connection is
retried for about two seconds before the next address is tried, so each request is slow or times
out. The cure is ``--ipv4`` or ``127.0.0.1`` in the URL.

``MCP_REMOTE_PY_DOCTOR_HOSTS`` names a file in hosts format (``ADDRESS NAME...`` a line) whose
names the doctor resolves from it, in file order, instead of asking the system: it answers "what
would happen if this name resolved like that", and lets the tests make a name resolve to ``::1``
first. It applies to every connection the doctor makes (a trio hostname resolver), and to nothing
else: the relay never reads it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

__all__ = [
    "HOSTS_ENV",
    "Attempt",
    "HostsResolver",
    "connect_all",
    "family_verdict",
    "load_hosts",
    "lookup",
]

HOSTS_ENV = "MCP_REMOTE_PY_DOCTOR_HOSTS"
PER_FAMILY = 2  # addresses tried per family


def load_hosts(environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """The override file's names and their addresses, in file order; {} when unset."""
    env = os.environ if environ is None else environ
    path = env.get(HOSTS_ENV, "").strip()
    if not path:
        return {}
    table: dict[str, list[str]] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        address = words[0]
        ipaddress.ip_address(address.split("%", 1)[0])  # ValueError for a bad line
        for name in words[1:]:
            table.setdefault(name.lower(), []).append(address)
    return table


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _sockaddr(address: str, port: int) -> tuple[Any, ...]:
    return (address, port, 0, 0) if _family(address) == socket.AF_INET6 else (address, port)


def _from_table(
    table: Mapping[str, list[str]], host: str, port: int, family: int
) -> list[tuple[Any, ...]] | None:
    addresses = table.get(host.lower())
    if addresses is None:
        return None
    return [
        (_family(a), socket.SOCK_STREAM, socket.IPPROTO_TCP, "", _sockaddr(a, port))
        for a in addresses
        if family in (0, socket.AF_UNSPEC, _family(a))
    ]


class HostsResolver(trio.abc.HostnameResolver):
    """getaddrinfo from the override table first, then the system; IPv4 only with --ipv4."""

    def __init__(self, table: Mapping[str, list[str]], ipv4: bool) -> None:
        self.table = table
        self.ipv4 = ipv4

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if self.ipv4:
            family = socket.AF_INET
        if name is not None and port is not None:
            number = int(port.decode() if isinstance(port, bytes) else port)
            found = _from_table(self.table, name, number, family)
            if found is not None:
                if not found:
                    raise socket.gaierror(socket.EAI_NONAME, f"{name} has no usable address")
                return found
        return await trio.to_thread.run_sync(
            socket.getaddrinfo, host, port, family, type, proto, flags, abandon_on_cancel=True
        )

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        result: tuple[str, str] = await trio.to_thread.run_sync(
            socket.getnameinfo, sockaddr, flags, abandon_on_cancel=True
        )
        return result


async def lookup(
    host: str, port: int, table: Mapping[str, list[str]]
) -> tuple[list[str], str | None]:
    """The addresses for ``host`` in the order a client tries them (both families), or an error."""
    from_table = _from_table(table, host, port, 0)
    found: list[Any]
    if from_table is not None:
        found = from_table
    else:
        try:
            found = await trio.to_thread.run_sync(
                socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM, 0, 0,
                abandon_on_cancel=True,
            )  # fmt: skip
        except socket.gaierror as exc:
            return [], exc.strerror or str(exc)
    ordered: list[str] = []
    for info in found:
        address = str(info[4][0])
        if address not in ordered:
            ordered.append(address)
    return ordered, None


@dataclass
class Attempt:
    """One connection attempt: ``ok`` and how long it took, or what went wrong."""

    address: str
    ok: bool
    ms: float
    error: str = ""

    @property
    def family(self) -> str:
        return "IPv6" if ":" in self.address else "IPv4"

    def describe(self) -> str:
        shown = f"[{self.address}]" if ":" in self.address else self.address
        if self.ok:
            return f"{shown} connects in {self.ms:.0f} ms"
        return f"{shown} {self.error} after {self.ms:.0f} ms"


def _error_text(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "refuses the connection"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return f"is unreachable ({exc.strerror})"
    return f"fails ({exc.strerror or exc})"


async def _connect(address: str, port: int, wait: float) -> Attempt:
    started = time.monotonic()
    sock = trio.socket.socket(_family(address), socket.SOCK_STREAM)
    try:
        with trio.move_on_after(wait):
            await sock.connect(_sockaddr(address, port))
            return Attempt(address, True, (time.monotonic() - started) * 1000)
        return Attempt(address, False, wait * 1000, f"did not answer within {wait:g} s")
    except OSError as exc:
        return Attempt(address, False, (time.monotonic() - started) * 1000, _error_text(exc))
    finally:
        sock.close()


async def connect_all(addresses: list[str], port: int, wait: float) -> list[Attempt]:
    """Try the first ``PER_FAMILY`` addresses of each family, concurrently."""
    chosen: list[str] = []
    for family in (socket.AF_INET6, socket.AF_INET):
        chosen += [a for a in addresses if _family(a) == family][:PER_FAMILY]
    results: dict[str, Attempt] = {}

    async def one(address: str) -> None:
        results[address] = await _connect(address, port, wait)

    async with trio.open_nursery() as nursery:
        for address in chosen:
            nursery.start_soon(one, address)
    return [results[a] for a in addresses if a in results]


@dataclass
class Verdict:
    status: str
    summary: str
    fix: str = ""


def family_verdict(
    host: str, port: int, ordered: list[str], attempts: list[Attempt], *, ipv4: bool
) -> Verdict:
    """What the resolution order and the connection results mean for the relay (pure)."""
    if not ordered:
        return Verdict("fail", f"{host} has no address")
    families = {a.family for a in attempts}
    working = [a for a in attempts if a.ok]
    if ipv4:
        v4 = [a for a in attempts if a.family == "IPv4"]
        if not v4:
            return Verdict(
                "fail",
                f"{host} has only IPv6 addresses, and --ipv4 allows IPv4 only",
                "Remove --ipv4",
            )
        if any(a.ok for a in v4):
            return Verdict("pass", f"IPv4 connects to port {port} (--ipv4 is set)")
    if not working:
        return Verdict(
            "fail",
            f"nothing accepts connections on port {port} at any address of {host}",
            "Is the server running, and listening on that port? A firewall may drop the "
            "connection; check the URL's port",
        )
    first = next((a for a in attempts if a.address == ordered[0]), attempts[0])
    if first.ok:
        if len(families) > 1 and not all(a.ok for a in attempts):
            broken = next(a for a in attempts if not a.ok)
            return Verdict(
                "pass",
                f"{first.family} (tried first) connects; {broken.family} {broken.error} "
                "(not used while the first works)",
            )
        return Verdict("pass", f"{first.family} connects to port {port}")
    good = working[0]
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        fix = (
            f"Use {good.address} instead of localhost in the URL, or pass --ipv4"
            if good.family == "IPv4"
            else f"Use [{good.address}] instead of localhost in the URL, or make the server "
            "listen on 127.0.0.1 too"
        )
    elif good.family == "IPv4":
        fix = "Pass --ipv4 (the relay then resolves IPv4 addresses only)"
    else:
        fix = "This network's IPv4 path to the host is broken; check VPN/firewall settings"
    return Verdict(
        "warn",
        f"{host} resolves to {first.address} ({first.family}) first, which {first.error}, "
        f"while {good.address} ({good.family}) works: every connection loses time on the first "
        "(on Windows about 2 s each, enough for timeouts)",
        fix,
    )
