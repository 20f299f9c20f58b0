"""The local checks: this install, the platform, the credential store, the trust store, proxy
variables and Claude Desktop's config file. No network."""

from __future__ import annotations

import json
import os
import platform
import ssl
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from .._version import __version__
from ..config import check_entries, command_for_this_install, load_config
from .report import FAIL, INFO, PASS, SKIP, WARN, Report

__all__ = ["install_kind", "mask_proxy", "run_local"]

PROXY_NAMES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def install_kind() -> str:
    """How this copy was installed: a frozen executable, or a Python package and where."""
    if getattr(sys, "frozen", False):
        mode = "one-file" if hasattr(sys, "_MEIPASS") and _onefile() else "one-folder"
        return f"standalone executable ({mode}) at {sys.executable}"
    prefix = sys.prefix.replace("\\", "/")
    if "/pipx/venvs/" in prefix:
        how = "pipx"
    elif "/uv/tools/" in prefix:
        how = "uv tool"
    elif "/uv/" in prefix or "/.cache/uv" in prefix or "/archive-v" in prefix:
        how = "uvx (cached environment)"
    elif sys.prefix != sys.base_prefix:
        how = "a virtual environment"
    else:
        how = "the system Python"
    editable = ""
    try:
        from importlib.metadata import distribution

        direct = distribution("mcp-remote-py").read_text("direct_url.json")
        if direct and json.loads(direct).get("dir_info", {}).get("editable"):
            editable = ", editable"
    except Exception:  # metadata is missing in odd installs; not worth failing over
        pass
    return f"Python package ({how}{editable}) in {sys.prefix}"


def _onefile() -> bool:
    meipass = Path(getattr(sys, "_MEIPASS", ""))
    return meipass != Path(sys.executable).parent and "_MEI" in meipass.name


def mask_proxy(value: str) -> str:
    """A proxy URL without its password (the user name stays: it helps and is not secret)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(value)
        if parts.password is None:
            return value
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(unparsable)"


def proxy_secrets(environ: Mapping[str, str]) -> list[str]:
    """The passwords in the environment's proxy URLs, for the masker."""
    from urllib.parse import unquote, urlsplit

    found = []
    for name, value in environ.items():
        if name.upper() in PROXY_NAMES:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password:
                found += [password, unquote(password)]
    return found


def check_install(report: Report) -> None:
    section = "This install"
    report.add(
        "local.version",
        section,
        INFO,
        f"mcp-remote-py {__version__}, {install_kind()}",
        data={"version": __version__, "frozen": bool(getattr(sys, "frozen", False))},
    )
    report.add(
        "local.platform",
        section,
        INFO,
        f"{platform.system()} {platform.release()} ({platform.machine()}), Python "
        f"{platform.python_version()}",
        data={"platform": sys.platform, "python": platform.python_version()},
    )
    command = command_for_this_install()
    report.add(
        "local.command",
        section,
        INFO,
        "a desktop client starts this install with: "
        + " ".join([command.command, *command.prefix]),
        details=[command.note] if command.note else [],
    )


def check_credential_store(report: Report, store_kind: str | None) -> None:
    section = "This install"
    from ..auth.store import CredentialStore, CredentialStoreError

    warnings: list[str] = []
    try:
        store = CredentialStore(store_kind, warn=warnings.append)
        described = store.describe()
        keys = store.list()
    except CredentialStoreError as exc:
        report.add(
            "local.credentials",
            section,
            FAIL,
            f"the credential store cannot be used: {exc}",
            fix="Choose the file store with --credential-store file, or set up the OS keyring",
        )
        return
    count = f"{len(keys)} server(s) with a stored token"
    if store.uses_keyring:
        report.add("local.credentials", section, PASS, f"credential store: {described}; {count}")
        return
    from ..auth.os_keyring import no_keyring_advice as _no_keyring_advice

    chosen = store.store_kind == "file"
    report.add(
        "local.credentials",
        section,
        INFO if chosen else WARN,
        f"credential store: {described}; {count}",
        details=[] if chosen else [_no_keyring_advice(os.environ)],
        fix="Tokens in the file are readable only by you; an OS keyring protects them better",
    )


def check_trust_store(report: Report, ca_file: str | None) -> None:
    section = "This install"
    try:
        import truststore

        truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except Exception as exc:  # any failure here means TLS will not work
        report.add(
            "local.truststore",
            section,
            FAIL,
            f"the system trust store cannot be loaded: {exc}",
            fix="Reinstall mcp-remote-py (truststore is one of its dependencies)",
        )
        return
    details = []
    if sys.platform.startswith("linux"):
        paths = ssl.get_default_verify_paths()
        existing = [p for p in (paths.cafile, paths.capath) if p and Path(p).exists()]
        details.append(f"OpenSSL CA locations: {', '.join(existing) or 'none found'}")
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if os.environ.get(name):
            details.append(f"{name}={os.environ[name]} changes where CA certificates are read")
    try:
        import certifi

        details.append(f"certifi bundle (for comparison): {certifi.where()}")
    except ImportError:  # pragma: no cover - httpx depends on it
        pass
    report.add(
        "local.truststore",
        section,
        PASS,
        f"the system trust store loads (truststore {truststore.__version__})",
        details=details,
    )
    if ca_file:
        path = Path(os.path.expanduser(ca_file))
        try:
            text = path.read_text(encoding="ascii", errors="replace")
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            report.add(
                "local.ca_file",
                section,
                FAIL,
                f"--ca-file {ca_file} cannot be used: {exc}",
                fix="Give a PEM file (-----BEGIN CERTIFICATE-----); convert DER with "
                "`openssl x509 -inform der -in ca.cer -out ca.pem`",
            )
            return
        count = text.count("-----BEGIN CERTIFICATE-----")
        report.add(
            "local.ca_file", section, PASS, f"--ca-file {ca_file} holds {count} certificate(s)"
        )


def check_proxies(report: Report, environ: Mapping[str, str]) -> None:
    section = "This install"
    found = []
    problems = []
    for name in sorted(environ):
        if name.upper() not in PROXY_NAMES:
            continue
        value = environ[name]
        found.append(f"{name}={mask_proxy(value) if name.upper() != 'NO_PROXY' else value}")
        if name.upper() != "NO_PROXY":
            scheme = value.split("://", 1)[0].lower() if "://" in value else ""
            if scheme.startswith("socks"):
                import importlib.util

                if importlib.util.find_spec("socksio") is None:
                    problems.append(f"{name} is a SOCKS proxy, which needs the socksio package")
            elif scheme not in ("http", "https", ""):
                problems.append(f"{name} has an unknown scheme {scheme}://")
    if not found:
        report.add("local.proxy", section, INFO, "no proxy variables set (direct connections)")
        return
    if problems:
        report.add(
            "local.proxy",
            section,
            FAIL,
            "proxy variables: " + "; ".join(problems),
            details=found,
            fix="`pip install socksio` into mcp-remote-py's environment, or use an http:// proxy",
        )
        return
    report.add(
        "local.proxy",
        section,
        INFO,
        "proxy variables in effect (the relay uses them): " + ", ".join(found),
    )


def check_claude_config(report: Report, path: Path | None) -> None:
    from ..config import default_config_path

    section = "Claude Desktop config"
    path = path or default_config_path()
    loaded = load_config(path)
    if not loaded.exists:
        report.add(
            "claude.file",
            section,
            INFO,
            f"no config file at {path} (Claude Desktop not set up here)",
            details=["`mcp-remote-py config install URL --name NAME` creates it"],
        )
        return
    if loaded.error is not None:
        report.add(
            "claude.file",
            section,
            FAIL,
            f"{path} {loaded.error}",
            fix="Claude Desktop ignores a file it cannot parse; correct it there"
            + (f" (line {loaded.line}, column {loaded.column})" if loaded.line else ""),
        )
        return
    data = loaded.data or {}
    servers = data.get("mcpServers") or {}
    report.add(
        "claude.file",
        section,
        WARN if loaded.bom else PASS,
        f"{path} is valid JSON with {len(servers)} server "
        + ("entry" if len(servers) == 1 else "entries"),
        fix="The file starts with a byte order mark (Notepad adds one), which some JSON readers "
        "reject: save it as UTF-8 without BOM",
    )
    for finding in check_entries(data):
        details = list(finding.details)
        fix = finding.fix
        if finding.suggestion is not None:
            fix += "\n" + json.dumps({finding.name: finding.suggestion}, indent=2)
        report.add(
            f"claude.entry.{finding.name}",
            section,
            finding.status,
            finding.summary,
            details=details,
            fix=fix,
            data={"suggestion": finding.suggestion} if finding.suggestion else None,
        )


def run_local(
    report: Report,
    *,
    store_kind: str | None,
    ca_file: str | None,
    claude_config: Path | None,
    environ: Mapping[str, str],
    skip_claude: bool = False,
) -> None:
    checks: list[tuple[str, Callable[[], None]]] = [
        ("install", lambda: check_install(report)),
        ("credentials", lambda: check_credential_store(report, store_kind)),
        ("truststore", lambda: check_trust_store(report, ca_file)),
        ("proxy", lambda: check_proxies(report, environ)),
    ]
    if skip_claude:
        report.add("claude.file", "Claude Desktop config", SKIP, "not checked")
    else:
        checks.append(("claude", lambda: check_claude_config(report, claude_config)))
    for name, check in checks:
        try:
            check()
        except Exception as exc:  # the doctor must always report, whatever broke
            report.add(
                f"doctor.{name}",
                "Doctor",
                FAIL,
                f"the {name} check stopped on an unexpected error: {type(exc).__name__}: {exc}",
                fix="Please report this (with `mcp-remote-py doctor --json`)",
            )
