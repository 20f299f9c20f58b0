"""OAuth scopes: space-separated sets of names, their union, and whether a grant covers a need."""

from __future__ import annotations

from .credential import Credential

__all__ = ["covers", "granted_scope", "scope_union"]


def scope_union(*scopes: str | None) -> str | None:
    """Space-separated scopes of all arguments, each once, in first-seen order."""
    seen: dict[str, None] = {}
    for scope in scopes:
        for item in (scope or "").split():
            seen.setdefault(item, None)
    return " ".join(seen) or None


def covers(granted: str | None, wanted: str | None) -> bool:
    return set((wanted or "").split()) <= set((granted or "").split())


def granted_scope(credential: Credential) -> str | None:
    """The scope the authorization server granted ``credential`` (kept in its ``client``)."""
    scope = (credential.client or {}).get("scope")
    return scope if isinstance(scope, str) else None
