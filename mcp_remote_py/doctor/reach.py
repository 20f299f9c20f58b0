"""The checks below HTTP: does the name resolve, does an address connect, does TLS verify?

Both go the way the relay's connections go: to the environment's proxy when there is one (TLS
through its CONNECT tunnel), with ``--ipv4``, ``--ca-file`` and ``MCP_REMOTE_PY_DOCTOR_HOSTS``.
When either fails, nothing above it can work, so ``run_remote`` stops there.
"""

from __future__ import annotations

import httpx
import trio

from ..shell.net import proxy_for
from . import network
from .report import FAIL, INFO, PASS, SKIP, WARN, Report
from .target import Target
from .tls import Tunnel, hostname_matches, probe_tls

__all__ = ["check_network", "check_tls"]


async def check_network(report: Report, target: Target) -> bool:
    """Resolve and connect; True when something accepts connections (or a proxy does)."""
    section = "Name and network"
    url = target.url
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy_shown = proxy_for(target.url)
    host = url.host
    if proxy_shown:
        proxy_url = httpx.URL(proxy_shown)
        report.add(
            "network.proxy",
            section,
            INFO,
            f"requests to {host} go through the proxy {proxy_shown} (from the environment)",
        )
        host = proxy_url.host
        port = proxy_url.port or (443 if proxy_url.scheme == "https" else 80)
    ordered, error = await network.lookup(host, port, target.hosts)
    if error is not None:
        report.add(
            "network.dns",
            section,
            FAIL,
            f"the name {host} does not resolve ({error})",
            fix="Check the spelling of the URL, and your DNS or VPN (a name that only resolves "
            "on the company network needs the VPN)",
        )
        return False
    v4 = [a for a in ordered if ":" not in a]
    v6 = [a for a in ordered if ":" in a]
    overridden = " (from " + network.HOSTS_ENV + ")" if host.lower() in target.hosts else ""
    literal = ordered == [host.strip("[]")]
    report.add(
        "network.dns",
        section,
        PASS,
        f"{host} is an address (no name to resolve)"
        if literal
        else f"{host} resolves{overridden}: A {', '.join(v4) or 'none'}; "
        f"AAAA {', '.join(v6) or 'none'}",
        details=[f"order tried: {', '.join(ordered)}"] if v4 and v6 else [],
        data={"a": v4, "aaaa": v6, "order": ordered},
    )
    timeout = min(target.net.connect_timeout, 5.0)
    attempts = await network.connect_all(ordered, port, timeout)
    verdict = network.family_verdict(host, port, ordered, attempts, ipv4=target.net.ipv4)
    report.add(
        "network.connect",
        section,
        verdict.status,
        verdict.summary,
        details=[a.describe() for a in attempts],
        fix=verdict.fix,
        data={"attempts": [a.__dict__ for a in attempts]},
    )
    return any(a.ok for a in attempts)


async def check_tls(report: Report, target: Target) -> bool:
    """True when the relay's TLS settings accept the server (or the URL is http)."""
    section = "TLS"
    url = target.url
    if url.scheme != "https":
        return True
    tunnel: Tunnel | None = None
    proxy_shown = proxy_for(url)
    if proxy_shown:
        raw = _raw_proxy(url)
        parsed = httpx.URL(raw) if raw else httpx.URL(proxy_shown)
        if parsed.scheme != "http":
            report.add(
                "tls.handshake",
                section,
                SKIP,
                f"not checked through the {parsed.scheme} proxy (the HTTP checks below still "
                "use it)",
            )
            return True
        tunnel = Tunnel(
            parsed.host, parsed.port or 80, parsed.username or "", parsed.password or ""
        )
    port = url.port or 443
    address: str | None = None
    if tunnel is None and (target.net.ipv4 or url.host.lower() in target.hosts):
        ordered, _ = await network.lookup(url.host, port, target.hosts)
        usable = [a for a in ordered if ":" not in a] if target.net.ipv4 else ordered
        address = usable[0] if usable else None
    result = await trio.to_thread.run_sync(
        lambda: probe_tls(
            url.host,
            port,
            ca_file=target.net.ca_file,
            timeout=min(target.net.connect_timeout, 10.0),
            tunnel=tunnel,
            address=address,
        ),
        abandon_on_cancel=True,
    )
    insecure = target.net.insecure
    soft = WARN if insecure else FAIL
    off = " (--insecure hides this from the relay; fix it instead)" if insecure else ""
    if result.error is not None:
        report.add(
            "tls.handshake",
            section,
            FAIL,
            f"the TLS handshake with {url.host}:{port} failed: {result.error}",
            fix="Check that the port serves HTTPS; a proxy or firewall may intercept it",
        )
        return False
    report.add(
        "tls.handshake",
        section,
        PASS,
        f"{result.version} handshake with {url.host}:{port} in {result.handshake_ms:.0f} ms "
        f"({result.cipher})",
    )
    cert = result.certificate
    issuer = cert.issuer_text() if cert else "an unknown issuer"
    extra = " and --ca-file" if target.net.ca_file else ""
    chain_ok = result.system_error is None
    if result.system_error is None and result.certifi_error is None:
        report.add(
            "tls.chain",
            section,
            PASS,
            f"the certificate chain (issued by {issuer}) is trusted by the system store{extra} "
            "and by certifi",
        )
    elif result.system_error is None and target.net.ca_file:
        report.add(
            "tls.chain",
            section,
            PASS,
            f"trusted thanks to --ca-file (issued by {issuer}); certifi's bundle does not know it",
        )
    elif result.system_error is None:
        report.add(
            "tls.chain",
            section,
            PASS,
            f"trusted by the system store (which the relay uses), not by certifi's bundle: "
            f"issued by {issuer}",
            details=[
                "a CA installed on this machine, e.g. a corporate TLS-inspection proxy; tools "
                "with their own CA bundle (Node's mcp-remote, Python's certifi) would refuse it"
            ],
        )
    elif result.certifi_error is None:
        report.add(
            "tls.chain",
            section,
            soft,
            f"not trusted by the system store ({result.system_error}), though certifi's bundle "
            f"trusts it{off}",
            fix="The system's CA certificates may be outdated: update them (e.g. "
            "`sudo apt install --reinstall ca-certificates`, or the OS updates), or pass "
            "--ca-file with the issuing CA",
        )
    else:
        self_signed = cert is not None and cert.self_signed
        if self_signed:
            summary = (
                f"the certificate is self-signed ({cert.subject_text() if cert else ''}) and "
                f"trusted by neither the system store nor certifi{off}"
            )
            fix = (
                "Give the server's certificate (PEM) to the relay with --ca-file PATH, or "
                "install it in the system trust store"
            )
        else:
            summary = (
                f"the chain is trusted by neither the system store{extra} nor certifi: issued by "
                f"{issuer}, a CA neither knows{off}"
            )
            fix = (
                "If you are on a corporate network, a TLS-inspecting proxy probably issued it: "
                "get its CA certificate (PEM) from IT and pass --ca-file PATH (or install it in "
                "the system store). Otherwise the server's chain is incomplete or private"
            )
        report.add(
            "tls.chain",
            section,
            soft,
            summary,
            details=[f"system store: {result.system_error}", f"certifi: {result.certifi_error}"],
            fix=fix,
        )
    ok = chain_ok or insecure
    if cert is not None:
        names = cert.dns_names + cert.ip_addresses
        if hostname_matches(cert, url.host):
            report.add("tls.hostname", section, PASS, f"the certificate is valid for {url.host}")
        else:
            report.add(
                "tls.hostname",
                section,
                soft,
                f"the certificate is not for {url.host}: it names {', '.join(names) or 'nothing'}"
                f"{off}",
                fix="Use a URL with one of the certificate's names, or fix the server's "
                "certificate (a proxy may be answering for another site)",
            )
            ok = ok and insecure
        days = cert.days_left()
        when = cert.not_after.strftime("%Y-%m-%d")
        if days < 0:
            report.add(
                "tls.expiry",
                section,
                soft,
                f"the certificate expired {-days:.0f} days ago ({when}){off}",
                fix="The server's operator must renew it",
            )
            ok = ok and insecure
        elif days < 14:
            report.add(
                "tls.expiry",
                section,
                WARN,
                f"the certificate expires in {days:.0f} days ({when})",
                fix="The server's operator should renew it soon",
            )
        else:
            report.add(
                "tls.expiry", section, PASS, f"the certificate expires in {days:.0f} days ({when})"
            )
    return ok


def _raw_proxy(url: httpx.URL) -> str | None:
    """The environment's proxy URL for ``url`` with its credentials (for the CONNECT tunnel)."""
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass_environment(url.host, proxies):  # type: ignore[attr-defined]
        return None
    return proxies.get(url.scheme) or proxies.get("all")
