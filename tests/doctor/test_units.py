"""The pure parts: masking, the report, WWW-Authenticate, the family verdict, certificates."""

from __future__ import annotations

import datetime as dt
import json
import ssl

import trustme

from mcp_remote_py.doctor.http_checks import (
    buffering_fixes,
    cloudflare_meaning,
    idle_cut_advice,
    parse_www_authenticate,
    proxy_kind,
)
from mcp_remote_py.doctor.network import Attempt, family_verdict
from mcp_remote_py.doctor.report import FAIL, PASS, WARN, Masker, Report, use_colour
from mcp_remote_py.doctor.tls import hostname_matches, parse_certificate


def test_masker_removes_secrets_but_keeps_advice() -> None:
    mask = Masker(["known-secret-value"])
    assert mask("header known-secret-value here") == "header *** here"
    assert mask("Authorization: Bearer eyJhbGciOi.abc.def") == "Authorization: Bearer ***"
    assert mask("Authorization: Bearer plainword") == "Authorization: Bearer ***"
    assert mask("Authorization: rawvalue123") == "Authorization: ***"
    assert mask("X-API-Key: abc123") == "X-API-Key: ***"
    assert mask("https://me:pw@proxy:3128/") == "https://me:***@proxy:3128/"
    assert mask("GET https://h/x?token=abc&b=1 now") == "GET https://h/x?*** now"
    # advice stays readable
    for text in (
        "--header 'Authorization: Bearer ${API_TOKEN}'",
        "put the token in the entry's env block",
        "takes a Bearer header",
    ):
        assert mask(text) == text


def test_report_text_json_and_exit_status() -> None:
    report = Report(Masker(["s3cret-token"]))
    report.add("a", "Section", PASS, "all good")
    report.add("b", "Section", WARN, "hmm s3cret-token", fix="do this")
    assert report.exit_status() == 0
    report.add("c", "Other", FAIL, "broken", details=["why"], fix="line one\nline two")
    assert report.exit_status() == 1
    text = report.render_text()
    assert "s3cret-token" not in text
    assert "[FAIL] broken" in text
    assert "fix: line one\n" in text
    assert "line two" in text
    assert "\x1b[" not in text
    assert "\x1b[31" in report.render_text(colour=True)
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["counts"]["fail"] == 1
    assert "s3cret-token" not in report.to_json()
    assert report.summary_line() == "1 passed, 1 warning, 1 failed: problems found"


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    assert use_colour(Tty(), {}) is True  # type: ignore[arg-type]
    assert use_colour(Tty(), {"NO_COLOR": "1"}) is False  # type: ignore[arg-type]
    assert use_colour(Tty(), {"TERM": "dumb"}) is False  # type: ignore[arg-type]


def test_www_authenticate() -> None:
    parsed = parse_www_authenticate(
        'Bearer realm="example", error="invalid_token", '
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", '
        'Basic realm="other"'
    )
    assert parsed[0][0] == "bearer"
    assert parsed[0][1]["resource_metadata"].endswith("/oauth-protected-resource")
    assert parsed[0][1]["error"] == "invalid_token"
    assert parsed[1] == ("basic", {"realm": "other"})
    assert parse_www_authenticate("Bearer") == [("bearer", {})]


def test_proxy_hints() -> None:
    assert proxy_kind({"server": "nginx/1.25"}) == "nginx"
    assert proxy_kind({"server": "cloudflare", "cf-ray": "x"}) == "cloudflare"
    assert proxy_kind({"via": "1.1 Caddy"}) == "caddy"
    assert buffering_fixes("caddy").startswith("Caddy: `flush_interval -1`")
    assert "proxy_buffering off;" in buffering_fixes(None)
    assert "proxy_read_timeout 3600s;" in idle_cut_advice(60.2, None)
    assert "100 s" in idle_cut_advice(100.0, None)
    assert cloudflare_meaning(522) is not None
    assert cloudflare_meaning(502) is None


def test_family_verdict_localhost_ipv6_first_but_ipv4_only_server() -> None:
    attempts = [
        Attempt("::1", False, 0.3, "refuses the connection"),
        Attempt("127.0.0.1", True, 0.2),
    ]
    verdict = family_verdict("localhost", 8000, ["::1", "127.0.0.1"], attempts, ipv4=False)
    assert verdict.status == WARN
    assert "::1" in verdict.summary
    assert "127.0.0.1 instead of localhost" in verdict.fix
    assert "--ipv4" in verdict.fix
    ok = family_verdict("localhost", 8000, ["::1", "127.0.0.1"], attempts, ipv4=True)
    assert ok.status == PASS
    other = family_verdict("mcp.example.com", 443, ["2001:db8::1", "192.0.2.1"], [
        Attempt("2001:db8::1", False, 5000, "did not answer within 5 s"),
        Attempt("192.0.2.1", True, 20),
    ], ipv4=False)  # fmt: skip
    assert other.status == WARN
    assert other.fix.startswith("Pass --ipv4")
    none = family_verdict("h", 1, ["192.0.2.1"], [Attempt("192.0.2.1", False, 1, "x")], ipv4=False)
    assert none.status == FAIL
    only6 = family_verdict("h", 1, ["::1"], [Attempt("::1", True, 1)], ipv4=True)
    assert only6.status == FAIL
    assert "Remove --ipv4" in only6.fix


def test_certificate_reader_and_hostname_matching() -> None:
    ca = trustme.CA(organization_name="Example Inspection CA")
    not_after = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    cert = ca.issue_cert("mcp.example.com", "*.api.example.com", "10.1.2.3", not_after=not_after)
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    parsed = parse_certificate(der)
    assert parsed.dns_names == ["mcp.example.com", "*.api.example.com"]
    assert parsed.ip_addresses == ["10.1.2.3"]
    assert parsed.not_after == not_after
    assert "Example Inspection CA" in parsed.issuer_text()
    assert not parsed.self_signed
    assert hostname_matches(parsed, "mcp.example.com")
    assert hostname_matches(parsed, "v1.api.example.com")
    assert not hostname_matches(parsed, "a.b.api.example.com")
    assert not hostname_matches(parsed, "api.example.com")
    assert hostname_matches(parsed, "10.1.2.3")
    assert not hostname_matches(parsed, "10.1.2.4")
    root = ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())
    assert parse_certificate(root).self_signed
