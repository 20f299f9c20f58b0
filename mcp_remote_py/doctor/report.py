"""What the doctor found: one line per check (pass, warn, fail, info, skip), the fix under each
problem, as text for people (colour only on a terminal, never with NO_COLOR) or JSON for machines.

Nothing secret may reach the output: every string goes through the ``Masker`` on its way out,
which removes the secrets it was told about (header values, stored tokens, proxy passwords) and
anything secret-shaped (``Bearer …``, ``?token=…``, ``Authorization: …``, a URL's password or
query), on top of the care the checks take to show URLs without user info or query
(``display_url``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["FAIL", "INFO", "PASS", "SKIP", "STATUSES", "WARN", "Check", "Masker", "Report"]

PASS, WARN, FAIL, INFO, SKIP = "pass", "warn", "fail", "info", "skip"
STATUSES = (PASS, WARN, FAIL, INFO, SKIP)

_LABELS = {PASS: " ok ", WARN: "warn", FAIL: "FAIL", INFO: "info", SKIP: "skip"}
_COLOURS = {PASS: "32", WARN: "33", FAIL: "31;1", INFO: "36", SKIP: "2"}
REDACTED = "***"
# Credentials after an auth scheme: not a ${VAR} reference, and not a lower-case word (prose).
_SCHEME_VALUE = re.compile(
    r"(?i)\b(bearer|basic|token|apikey)(\s+)(?!\$\{)(?!\*\*\*)(?-i:(?![a-z]+\b))"
    r"([A-Za-z0-9._~+/=-]{6,})"
)
# A credential header's value without a scheme word.
_HEADER_VALUE = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|cookie)(\s*[:=]\s*)"
    r"(?!\$\{)(?!\*\*\*)(?!(?:bearer|basic|token|apikey)\s)([^\s\"',}]+)"
)
# After "Authorization: Bearer" anything but a ${VAR} reference is the credential.
_HEADER_SCHEME_VALUE = re.compile(
    r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*(?:bearer|basic|token|apikey)\s+)"
    r"(?!\$\{)(?!\*\*\*)([^\s\"',}]+)"
)
# Token-like query parameters, and any query string on a URL we print.
_QUERY_PARAM = re.compile(
    r"(?i)([?&](?:access_token|token|api[_-]?key|key|secret|password|code|client_secret|sig)=)"
    r"[^&\s\"']+"
)
_QUERY = re.compile(r"(?i)(\bhttps?://[^\s?#\"']+)\?[^\s#\"']*")
# URLs with user info: the password goes, the user name may stay.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]*):([^/\s@]+)@")


class Masker:
    """Removes secrets from text: the known values first, then anything shaped like one.

    ``${VAR}`` references stay (they are the advice), and so does prose ("a token in the
    file"): only values that look like credentials are replaced.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        known = set(self.secrets)
        known.update(s for s in secrets if s and len(s) >= 4)
        self.secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _SCHEME_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        text = _HEADER_SCHEME_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        text = _HEADER_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        text = _QUERY_PARAM.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        text = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", text)
        return _QUERY.sub(lambda m: f"{m.group(1)}?{REDACTED}", text)

    def deep(self, value: Any) -> Any:
        """``value`` (JSON-like) with every string masked."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


@dataclass
class Check:
    """One finding. ``summary`` is the one line; ``details`` more lines under it; ``fix`` what
    to do about a warn or fail; ``data`` machine-readable facts for ``--json``."""

    id: str
    section: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "section": self.section,
            "status": self.status,
            "summary": self.summary,
        }
        if self.details:
            out["details"] = list(self.details)
        if self.fix:
            out["fix"] = self.fix
        if self.data:
            out["data"] = self.data
        return out


class Report:
    """The checks in the order they ran; ``failed`` decides the exit status."""

    def __init__(self, masker: Masker | None = None) -> None:
        self.checks: list[Check] = []
        self.masker = masker or Masker()
        self.facts: dict[str, Any] = {}
        self._listeners: list[IO[str]] = []
        self._colour = False
        self._section: str | None = None

    def stream_to(self, out: IO[str], colour: bool) -> None:
        """Print each check as it is added (long checks: the user sees progress)."""
        self._listeners.append(out)
        self._colour = colour

    def add(
        self,
        id: str,
        section: str,
        status: str,
        summary: str,
        *,
        details: Iterable[str] = (),
        fix: str = "",
        data: dict[str, Any] | None = None,
    ) -> Check:
        check = Check(id, section, status, summary, list(details), fix, dict(data or {}))
        self.checks.append(check)
        for out in self._listeners:
            self._print(check, out)
        return check

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in STATUSES}

    def exit_status(self) -> int:
        return 1 if self.failed else 0

    # -- text

    def _print(self, check: Check, out: IO[str]) -> None:
        if check.section != self._section:
            if self._section is not None:
                out.write("\n")
            out.write(self._paint(check.section, "1") + "\n")
            self._section = check.section
        out.write(self.render_check(check, self._colour))
        out.flush()

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self._colour else text

    def render_check(self, check: Check, colour: bool = False) -> str:
        mask = self.masker
        label = f"[{_LABELS[check.status]}]"
        if colour:
            label = f"\x1b[{_COLOURS[check.status]}m{label}\x1b[0m"
        lines = [f"  {label} {mask(check.summary)}"]
        lines += [f"         {mask(line)}" for line in check.details]
        if check.fix and check.status in (WARN, FAIL):
            fix_lines = mask(check.fix).splitlines()
            lines.append(f"         fix: {fix_lines[0]}")
            lines += [f"              {line}" for line in fix_lines[1:]]
        return "\n".join(lines) + "\n"

    def render_text(self, colour: bool = False) -> str:
        parts: list[str] = []
        section = None
        for check in self.checks:
            if check.section != section:
                if section is not None:
                    parts.append("\n")
                parts.append((f"\x1b[1m{check.section}\x1b[0m" if colour else check.section) + "\n")
                section = check.section
            parts.append(self.render_check(check, colour))
        parts.append("\n" + self.summary_line() + "\n")
        return "".join(parts)

    def summary_line(self) -> str:
        counts = self.counts()
        warnings = f"{counts[WARN]} warning" + ("" if counts[WARN] == 1 else "s")
        words = [f"{counts[PASS]} passed", warnings, f"{counts[FAIL]} failed"]
        verdict = "problems found" if self.failed else "nothing failed"
        return f"{', '.join(words)}: {verdict}"

    # -- JSON

    def to_json(self) -> str:
        document = {
            **self.facts,
            "ok": not self.failed,
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }
        return json.dumps(self.masker.deep(document), indent=2, ensure_ascii=False)


def use_colour(out: IO[str], environ: dict[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
