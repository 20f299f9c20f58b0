"""TLS: does the handshake work, and does the server's certificate verify against the system
trust store (what the relay uses) and against certifi's bundle (what most other tools use)?

The combination says what is going on:

* both verify: fine;
* the system store only: a CA that IT installed on this machine, typically a TLS-inspecting
  corporate proxy. The relay trusts it (truststore); tools that use certifi (mcp-remote, curl
  builds with their own bundle) do not;
* neither, and the certificate is issued by a CA nobody knows: a self-signed server, or an
  inspection CA that is not installed in the system store → ``--ca-file``.

The leaf certificate is read without verifying (a small DER reader: subject, issuer, names,
expiry), so the doctor can say who issued it even when nothing trusts it. Sockets are blocking
and run in a worker thread; through an HTTP proxy the check goes through a CONNECT tunnel, as the
relay's connections do.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Certificate", "TlsReport", "hostname_matches", "parse_certificate", "probe_tls"]

# ---------------------------------------------------------------------------- a tiny DER reader

_OID_CN = bytes.fromhex("550403")
_OID_O = bytes.fromhex("55040a")
_OID_SAN = bytes.fromhex("551d11")
_STRING_TAGS = {0x0C, 0x13, 0x14, 0x16, 0x1E, 0x1C}


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, value_start, value_end = _tlv(data, pos)
        out.append((tag, value_start, value_end))
        pos = value_end
    return out


def _string(data: bytes, tag: int, start: int, end: int) -> str:
    raw = data[start:end]
    if tag == 0x1E:
        return raw.decode("utf-16-be", "replace")
    if tag == 0x1C:
        return raw.decode("utf-32-be", "replace")
    return raw.decode("utf-8", "replace")


def _name(data: bytes, start: int, end: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for _, set_start, set_end in _children(data, start, end):
        for _, seq_start, seq_end in _children(data, set_start, set_end):
            parts = _children(data, seq_start, seq_end)
            if len(parts) < 2:
                continue
            oid = data[parts[0][1] : parts[0][2]]
            tag, value_start, value_end = parts[1]
            if tag not in _STRING_TAGS:
                continue
            if oid == _OID_CN:
                out.setdefault("CN", _string(data, tag, value_start, value_end))
            elif oid == _OID_O:
                out.setdefault("O", _string(data, tag, value_start, value_end))
    return out


def _time(data: bytes, tag: int, start: int, end: int) -> dt.datetime:
    text = data[start:end].decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime YYMMDDHHMM[SS]
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    fmt = "%Y%m%d%H%M%S" if len(text) >= 14 else "%Y%m%d%H%M"
    return dt.datetime.strptime(text[:14], fmt).replace(tzinfo=dt.timezone.utc)


@dataclass
class Certificate:
    subject: dict[str, str]
    issuer: dict[str, str]
    not_before: dt.datetime
    not_after: dt.datetime
    dns_names: list[str] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    def issuer_text(self) -> str:
        parts = [self.issuer.get("CN", ""), self.issuer.get("O", "")]
        return " / ".join(p for p in parts if p) or "an unnamed issuer"

    def subject_text(self) -> str:
        return self.subject.get("CN") or (self.dns_names[:1] or ["(no name)"])[0]

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400


def parse_certificate(der: bytes) -> Certificate:
    """Subject, issuer, validity and subjectAltName of an X.509 certificate (DER)."""
    _, cert_start, cert_end = _tlv(der, 0)
    _, tbs_start, tbs_end = _children(der, cert_start, cert_end)[0]
    items = _children(der, tbs_start, tbs_end)
    if items and items[0][0] == 0xA0:  # [0] version
        items = items[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, [1] [2] [3]
    issuer = _name(der, items[2][1], items[2][2])
    validity = _children(der, items[3][1], items[3][2])
    subject = _name(der, items[4][1], items[4][2])
    cert = Certificate(
        subject=subject,
        issuer=issuer,
        not_before=_time(der, *validity[0]),
        not_after=_time(der, *validity[1]),
    )
    for tag, start, end in items[6:]:
        if tag != 0xA3:
            continue
        (_, ext_start, ext_end) = _children(der, start, end)[0]
        for _, one_start, one_end in _children(der, ext_start, ext_end):
            parts = _children(der, one_start, one_end)
            if der[parts[0][1] : parts[0][2]] != _OID_SAN:
                continue
            _, octet_start, octet_end = parts[-1]
            _, names_start, names_end = _tlv(der, octet_start)
            for name_tag, name_start, name_end in _children(der, names_start, names_end):
                value = der[name_start:name_end]
                if name_tag == 0x82:
                    cert.dns_names.append(value.decode("ascii", "replace"))
                elif name_tag == 0x87 and len(value) in (4, 16):
                    cert.ip_addresses.append(str(ipaddress.ip_address(value)))
    return cert


def hostname_matches(cert: Certificate, host: str) -> bool:
    """RFC 6125: IP addresses against iPAddress names, names against dNSName (one leftmost
    wildcard label). The subject CN is not consulted, as modern clients do not."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return any(ipaddress.ip_address(a) == address for a in cert.ip_addresses)
    for pattern in cert.dns_names:
        pattern = pattern.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:]:
                return True
    return False


# ---------------------------------------------------------------------------- the probe


@dataclass
class TlsReport:
    """What the handshakes found. ``error`` is set when not even an unverified handshake worked."""

    version: str = ""
    cipher: str = ""
    certificate: Certificate | None = None
    system_error: str | None = None  # None: verified against the system store (+ --ca-file)
    certifi_error: str | None = None  # None: verified against certifi
    certifi_available: bool = True
    handshake_ms: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class Tunnel:
    """An HTTP proxy to reach the server through (CONNECT)."""

    host: str
    port: int
    username: str = ""
    password: str = ""


def _open(host: str, port: int, timeout: float, tunnel: Tunnel | None) -> socket.socket:
    if tunnel is None:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.create_connection((tunnel.host, tunnel.port), timeout=timeout)
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if tunnel.username or tunnel.password:
            token = base64.b64encode(f"{tunnel.username}:{tunnel.password}".encode()).decode()
            request += f"Proxy-Authorization: Basic {token}\r\n"
        sock.sendall((request + "\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
            if len(answer) > 65536:
                break
        status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split()
        if len(parts) < 2 or parts[1] != "200":
            raise OSError(f"the proxy refused the tunnel: {status_line or 'no answer'}")
        return sock
    except BaseException:
        sock.close()
        raise


def _handshake(
    context: ssl.SSLContext, host: str, port: int, sni: str | None, timeout: float, tunnel: Any
) -> ssl.SSLSocket:
    sock = _open(host, port, timeout, tunnel)
    try:
        return context.wrap_socket(sock, server_hostname=sni)
    except BaseException:
        sock.close()
        raise


def _verify_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message or exc.reason or exc)
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return str(exc)


def _sni(host: str) -> str | None:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return None


def probe_tls(
    host: str,
    port: int,
    *,
    ca_file: str | None,
    timeout: float,
    tunnel: Tunnel | None = None,
    address: str | None = None,
) -> TlsReport:
    """Blocking: three handshakes (unverified, system store, certifi). Run in a thread.
    ``address`` connects there instead of resolving ``host`` (which stays the SNI name)."""
    import time

    report = TlsReport()
    sni = _sni(host)
    if address is not None and tunnel is None:
        host = address
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    try:
        with _handshake(bare, host, port, sni, timeout, tunnel) as tls:
            report.handshake_ms = (time.monotonic() - started) * 1000
            report.version = tls.version() or ""
            cipher = tls.cipher()
            report.cipher = cipher[0] if cipher else ""
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        text = _verify_error(exc)
        if "WRONG_VERSION_NUMBER" in text.upper() or "wrong version number" in text:
            text = "the port does not speak TLS (a plain-HTTP server? then use http://)"
        report.error = text
        return report
    if der:
        try:
            report.certificate = parse_certificate(der)
        except (ValueError, IndexError):
            report.certificate = None

    import truststore

    system: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    system.check_hostname = False
    if ca_file:
        system.load_verify_locations(cafile=ca_file)
    report.system_error = _try_verified(system, host, port, sni, timeout, tunnel)

    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        report.certifi_available = False
    else:
        bundle = ssl.create_default_context(cafile=certifi.where())
        bundle.check_hostname = False
        report.certifi_error = _try_verified(bundle, host, port, sni, timeout, tunnel)
    return report


def _try_verified(
    context: ssl.SSLContext, host: str, port: int, sni: str | None, timeout: float, tunnel: Any
) -> str | None:
    try:
        with _handshake(context, host, port, sni, timeout, tunnel):
            return None
    except (OSError, ssl.SSLError) as exc:
        return _verify_error(exc)
