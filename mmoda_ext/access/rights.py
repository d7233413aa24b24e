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
    #: this caller's jobs running at once on a shared job server (None: the server's default)
    running_jobs: int | None = None
    #: for each right this caller lacks (``private_data``, ``restricted_osa``), which tier of the
    #: table grants it and that tier's ``how_to_get_more``: refusals quote it instead of guessing
    upgrades: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def anonymous(self) -> bool:
        return self.user in ("", "anonymous")

    def check_scw_count(self, n: int, parameter: str = "scw_list") -> None:
        """Refuse a request for ``n`` science windows beyond this caller's limit.

        The message says what was asked, this caller's limit and what to do, from the tier
        table (the tier's ``how_to_get_more``), never a sentence written for another tier.
        """
        if n > self.max_scw:
            from ..errors import AccessError

            raise AccessError(
                f"You asked for {n} science windows ({parameter}), but your tier "
                f"'{self.tier}' allows at most {self.max_scw} per request. Lower {parameter} to "
                f"{self.max_scw} or split the request in time. "
                + (self.how_to_get_more or "Ask the MMODA team for a higher tier."),
                parameter=parameter,
                value=n,
            )

    def how_to_get(self, right: str) -> str:
        """What to do to get ``right`` (``private_data``, ``restricted_osa``), from the tier table."""
        if right in self.upgrades:
            return self.upgrades[right]
        from .tiers import TierTable  # rights made without a table (mmoda run): the default one

        return TierTable.load().how_to_get(right)

    @classmethod
    def local(cls, user: str = "local") -> Rights:
        """A single user on their own laptop (``mmoda run``): public data, generous limits."""
        return cls(user=user, tier="local", max_scw=100000, requests_per_hour=100000)
