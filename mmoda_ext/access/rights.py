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
    #: groups the caller belongs to (hub groups), and whether they administer the service
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    #: one sentence telling the caller how to get larger limits (shown in every refusal)
    how_to_get_more: str = ""
    #: compute limits of the caller's Dask Gateway cluster, from the tier table (None: no tier
    #: sets one, e.g. :meth:`local`); the gateway enforces them (``mmoda_ext.access.gateway``)
    max_workers: int | None = None
    worker_cores: int | None = None
    worker_memory: int | None = None  # bytes
    cluster_idle_timeout: float | None = None  # seconds

    @property
    def anonymous(self) -> bool:
        return self.user in ("", "anonymous")

    def check_scw_count(self, n: int, parameter: str = "scw_list") -> None:
        """Refuse a request for ``n`` science windows beyond this caller's limit.

        The message says what was asked, what the limit is and how to get more.
        """
        if n > self.max_scw:
            from ..errors import AccessError

            raise AccessError(
                f"You asked for {n} science windows ({parameter}), but your tier "
                f"'{self.tier}' allows at most {self.max_scw} per request. "
                + (self.how_to_get_more or "Split the request or ask the MMODA team for more."),
                parameter=parameter,
                value=n,
            )

    @classmethod
    def local(cls, user: str = "local") -> Rights:
        """A single user on their own laptop (``mmoda run``): public data, generous limits."""
        return cls(user=user, tier="local", max_scw=100000, requests_per_hour=100000)
