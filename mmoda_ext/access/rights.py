"""What one caller may do, resolved from their tier(s) before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rights:
    """The effective limits of a caller.

    Built by the tier table from the caller's groups or token roles; instruments read it to
    refuse early (science windows per request, private data, restricted OSA versions).
    """

    user: str = "anonymous"
    tier: str = "anonymous"
    max_scw: int = 50
    requests_per_hour: int = 50
    private_data: bool = False
    restricted_osa: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    email: str | None = None

    @classmethod
    def local(cls, user: str = "local") -> Rights:
        """A single user on their own laptop (``mmoda run``): public data, generous limits."""
        return cls(user=user, tier="local", max_scw=100000, requests_per_hour=100000)
