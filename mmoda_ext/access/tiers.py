"""The tier table: hub groups and token roles → limits (a :class:`Rights`).

Operators edit ``hub_config/tiers.yaml``. A caller matches every tier whose ``groups`` or
``roles`` they have (plus ``anonymous`` always, and ``registered`` once authenticated); their
limits are the most generous of those tiers (DESIGN.md "Tiers").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rights import Rights

__all__ = ["DEFAULT_TABLE", "Tier", "TierTable", "default_tiers_path"]


def default_tiers_path() -> Path:
    """``hub_config/tiers.yaml`` next to the package (the repository layout)."""
    return Path(__file__).resolve().parents[2] / "hub_config" / "tiers.yaml"


@dataclass(frozen=True)
class Tier:
    name: str
    description: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    authenticated: bool = False
    max_scw: int | None = None
    requests_per_hour: int | None = None
    private_data: bool = False
    restricted_osa: bool = False
    how_to_get_more: str = ""

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> Tier:
        known = {f for f in cls.__dataclass_fields__ if f != "name"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"tier {name!r}: unknown keys {sorted(unknown)} (known: {sorted(known)})")
        d = dict(d)
        d["groups"] = frozenset(d.get("groups") or ())
        d["roles"] = frozenset(d.get("roles") or ())
        for key in ("max_scw", "requests_per_hour"):
            if d.get(key) is not None and int(d[key]) < 0:
                raise ValueError(f"tier {name!r}: {key} must be >= 0")
        return cls(name=name, **d)

    def matches(self, groups: frozenset[str], roles: frozenset[str], authenticated: bool) -> bool:
        if self.name == "anonymous":
            return True
        if self.authenticated and authenticated:
            return True
        return bool(self.groups & groups or self.roles & roles)


#: the defaults of DESIGN.md, used when no table file is found
DEFAULT_TABLE: dict[str, Any] = {
    "tiers": {
        "anonymous": {"max_scw": 50, "requests_per_hour": 50,
                      "how_to_get_more": "Log in: registered users may request up to 500 science windows."},
        "registered": {"groups": ["mmoda-registered"], "roles": ["general"], "authenticated": True,
                       "max_scw": 500, "requests_per_hour": 50,
                       "how_to_get_more": "Larger requests need the role unige-hpc-full: ask the MMODA team."},
        "hpc": {"groups": ["mmoda-hpc"], "roles": ["unige-hpc-full"], "max_scw": 5000,
                "requests_per_hour": 500,
                "how_to_get_more": "Beyond 5000 science windows you need the role unige-hpc-extreme."},
        "private": {"groups": ["integral-private"], "roles": ["integral-private-qla"],
                    "private_data": True, "restricted_osa": True},
    },
    "admin_groups": ["mmoda-admin"],
    "admin_roles": ["mmoda-admin"],
}


class TierTable:
    """Resolve callers to :class:`Rights`."""

    def __init__(self, table: dict[str, Any] | None = None) -> None:
        table = DEFAULT_TABLE if table is None else table
        self.tiers = [Tier.from_dict(n, d or {}) for n, d in table["tiers"].items()]
        if not any(t.name == "anonymous" for t in self.tiers):
            raise ValueError("the tier table needs an 'anonymous' tier")
        self.admin_groups = frozenset(table.get("admin_groups") or ())
        self.admin_roles = frozenset(table.get("admin_roles") or ())

    @classmethod
    def load(cls, path: str | Path | None = None) -> TierTable:
        """Read a YAML or JSON table; without a path, ``hub_config/tiers.yaml`` or the defaults."""
        if path is None:
            path = default_tiers_path()
            if not path.exists():
                return cls()
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return cls(yaml.safe_load(text))
        return cls(json.loads(text))

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    def rights(
        self,
        user: str | None = None,
        *,
        groups: Iterable[str] = (),
        roles: Iterable[str] = (),
        email: str | None = None,
    ) -> Rights:
        """The most generous combination of every tier the caller matches."""
        groups, roles = frozenset(groups), frozenset(roles)
        authenticated = bool(user) and user != "anonymous"
        matched = [t for t in self.tiers if t.matches(groups, roles, authenticated)]
        anonymous = self.tier("anonymous")

        def best(attr: str) -> int:
            values = [getattr(t, attr) for t in matched if getattr(t, attr) is not None]
            return max(values) if values else int(getattr(anonymous, attr) or 0)

        max_scw = best("max_scw")
        # the tier that sets the science-window limit names the caller's tier; others add to it
        by_scw = [t for t in matched if t.max_scw == max_scw] or [anonymous]
        main = by_scw[-1]
        extra = [t.name for t in matched if t is not main and t.name not in ("anonymous", "registered")
                 and t.max_scw is None]
        return Rights(
            user=user if authenticated else "anonymous",
            tier="+".join([main.name, *extra]),
            max_scw=max_scw,
            requests_per_hour=best("requests_per_hour"),
            private_data=any(t.private_data for t in matched),
            restricted_osa=any(t.restricted_osa for t in matched),
            roles=roles,
            email=email,
            groups=groups,
            admin=bool(groups & self.admin_groups or roles & self.admin_roles),
            how_to_get_more=main.how_to_get_more,
        )

    def anonymous(self) -> Rights:
        return self.rights(None)

    def for_claims(self, claims: dict[str, Any]) -> Rights:
        """Rights of a token holder (see :mod:`.tokens`)."""
        from .tokens import roles_of, subject_of

        return self.rights(
            subject_of(claims),
            roles=roles_of(claims),
            groups=claims.get("groups") or (),
            email=claims.get("email") or claims.get("sub"),
        )
