"""Pure helpers for the HTTP checks: what a status, a header or a timing means, and what fixes it.

No I/O here: ``http_probe``, ``legacy_sse``, ``authorization`` and ``streaming`` measure,
these functions explain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "buffering_fixes",
    "cloudflare_meaning",
    "idle_cut_advice",
    "parse_www_authenticate",
    "proxy_kind",
]

_CLOUDFLARE = {
    520: "the origin server answered with something Cloudflare could not use (empty, or reset)",
    521: "the origin server refused Cloudflare's connection (is it running?)",
    522: "Cloudflare's connection to the origin server timed out",
    523: "Cloudflare cannot reach the origin server (DNS or routing at the origin)",
    524: "the origin server took longer than 100 s to answer (Cloudflare's limit)",
    525: "the TLS handshake between Cloudflare and the origin failed (SSL/TLS mode Full with an "
    "origin that does not serve HTTPS? choose Flexible or give the origin a certificate)",
    526: "the origin's certificate is not valid for Cloudflare (SSL/TLS mode Full (strict))",
    527: "Railgun error between Cloudflare and the origin",
    530: "Cloudflare could not resolve or reach the origin (a Cloudflare Tunnel that is down, or "
    "a 1xxx error: see the page's error code)",
}


def cloudflare_meaning(status: int) -> str | None:
    return _CLOUDFLARE.get(status) if 520 <= status <= 530 else None


def proxy_kind(headers: Mapping[str, str]) -> str | None:
    """Which reverse proxy answered, as far as its headers tell: nginx, caddy, traefik,
    cloudflare, or None."""
    server = headers.get("server", "").lower()
    if "cf-ray" in headers or server.startswith("cloudflare"):
        return "cloudflare"
    via = headers.get("via", "").lower()
    for name in ("nginx", "caddy", "traefik"):
        if name in server or name in via:
            return name
    return None


_FIXES = {
    "nginx": "nginx: in the location for this path, `proxy_buffering off;` (or let the server send "
    "the header `X-Accel-Buffering: no`), `gzip off;` (or leave text/event-stream out of "
    "gzip_types), `proxy_http_version 1.1;` and `proxy_set_header Connection '';`",
    "caddy": "Caddy: `flush_interval -1` inside the reverse_proxy block, and no `encode` for "
    "text/event-stream",
    "traefik": "Traefik: leave text/event-stream out of the compress middleware "
    "(`excludedContentTypes`); check any buffering middleware on this router",
    "cloudflare": "Cloudflare: streams pass unbuffered only when the origin answers "
    "`Content-Type: text/event-stream` (and `Cache-Control: no-cache`); disable compression or "
    "Rocket Loader rules for this path",
}


def buffering_fixes(kind: str | None) -> str:
    """The settings that stop a reverse proxy from holding events back, the detected one first."""
    order = ["nginx", "caddy", "traefik", "cloudflare"]
    if kind in order:
        order.remove(kind)
        order.insert(0, kind)
    return "\n".join(_FIXES[k] for k in order)


def idle_cut_advice(seconds: float, kind: str | None) -> str:
    """What probably cut a quiet stream after ``seconds``, and the setting that stops it (the
    likeliest first)."""
    nginx = (
        "nginx closes a quiet upstream after proxy_read_timeout (default 60 s): "
        "`proxy_read_timeout 3600s;` (and `proxy_send_timeout 3600s;`) in the location"
    )
    cloudflare = (
        "Cloudflare ends a proxied request after 100 s without data: have the server send an "
        "SSE comment (`: ping`) at least every 30 s"
    )
    caddy = "Caddy: check `stream_timeout` / `read_timeout` in the reverse_proxy block"
    traefik = "Traefik: raise `respondingTimeouts.readTimeout` / `idleTimeout`"
    likely: list[str] = []
    if 55 <= seconds <= 66 or kind == "nginx":
        likely.append(nginx)
    if 95 <= seconds <= 106 or kind == "cloudflare":
        likely.append(cloudflare)
    if kind == "caddy":
        likely.append(caddy)
    if kind == "traefik":
        likely.append(traefik)
    rest = [line for line in (nginx, cloudflare, caddy, traefik) if line not in likely]
    general = (
        "Any proxy or load balancer (AWS ALB: idle timeout 60 s): raise its idle timeout above "
        "an hour, or have the server send an SSE comment every 15-30 s. The relay reopens a cut "
        "GET stream at once, but a legacy SSE session is lost with its stream"
    )
    return "\n".join([*likely, *rest, general])


_TOKEN68 = r"[A-Za-z0-9._~+/-]+=*"
_PARAM = re.compile(r'\s*([A-Za-z0-9_!#$%&\'*+.^`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


def parse_www_authenticate(value: str) -> list[tuple[str, dict[str, str]]]:
    """``WWW-Authenticate`` challenges as (scheme, params), e.g.
    ``Bearer realm="x", resource_metadata="https://…"`` → [("bearer", {...})]."""
    challenges: list[tuple[str, dict[str, str]]] = []
    rest = value.strip()
    while rest:
        match = re.match(r"\s*([A-Za-z0-9_!#$%&'*+.^`|~-]+)(?:\s+|$|,)", rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end() :]
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(rest)
            if not param:
                break
            # a new challenge starts with a scheme word not followed by '='
            raw = param.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[param.group(1).lower()] = raw
            rest = rest[param.end() :]
        token = re.match(rf"\s*({_TOKEN68})\s*,?", rest) if not params else None
        if token and not re.match(r"\s*[A-Za-z0-9_-]+\s*=", rest):
            rest = rest[token.end() :]
        challenges.append((scheme, params))
        rest = rest.lstrip(", ")
    return challenges
