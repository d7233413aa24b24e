"""The tier table: hub groups and token roles → limits (a :class:`Rights`).

Operators edit ``hub_config/tiers.yaml``. A caller matches every tier whose ``groups`` or
``roles`` they have (plus ``anonymous`` always, and ``registered`` once authenticated); their
limits are the most generous of those tiers (DESIGN.md "Tiers"). The table also holds each
tier's compute limits (Dask Gateway workers, cores and memory per worker, idle timeout), read by
:mod:`.gateway`; no limit is written in code.

Which table: an explicit path, else ``$MMODA_TIERS``, else ``hub_config/tiers.yaml`` of the
checkout, else the copy shipped in the package (``mmoda_ext/data/tiers.yaml``, a link to the
same file in the repository, so an installed wheel carries the table).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rights import Rights

__all__ = ["Tier", "TierTable", "default_tiers_path", "packaged_tiers_path", "repo_tiers_path"]


def repo_tiers_path() -> Path:
    """``hub_config/tiers.yaml`` next to the package (an editable checkout)."""
    return Path(__file__).resolve().parents[2] / "hub_config" / "tiers.yaml"


def packaged_tiers_path() -> Path:
    """The table shipped as package data (present in a wheel as in the checkout)."""
    from importlib.resources import files

    return Path(str(files("mmoda_ext") / "data" / "tiers.yaml"))


def default_tiers_path() -> Path:
    """``$MMODA_TIERS``, else the checkout's ``hub_config/tiers.yaml``, else the packaged copy."""
    env = os.environ.get("MMODA_TIERS")
    if env:
        return Path(env)
    repo = repo_tiers_path()
    return repo if repo.exists() else packaged_tiers_path()


def _quantity(tier: str, key: str, value: Any, unit: str) -> float:
    """A table entry with a unit (``"1 GiB"``, ``"30 min"``) as a number of ``unit``."""
    import astropy.units as u

    try:
        q = u.Quantity(str(value))
        number = float(q.to_value(unit))
    except (TypeError, ValueError, u.UnitsError) as exc:
        raise ValueError(f"tier {tier!r}: {key}={value!r} is not a quantity convertible to "
                         f"{unit} (e.g. '1 GiB', '30 min')") from exc
    if number <= 0:
        raise ValueError(f"tier {tier!r}: {key}={value!r} must be > 0")
    return number


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
    #: compute limits of the user's Dask Gateway cluster (None: the tier does not raise them)
    max_workers: int | None = None
    worker_cores: int | None = None
    worker_memory: int | None = None  # bytes
    cluster_idle_timeout: float | None = None  # seconds
    #: jobs of one caller running at once on a shared job server (fair share of its slots)
    running_jobs: int | None = None

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
        for key in ("max_workers", "worker_cores", "running_jobs"):
            if d.get(key) is not None:
                if not isinstance(d[key], int) or d[key] < 1:
                    raise ValueError(f"tier {name!r}: {key}={d[key]!r} must be an integer >= 1")
        if d.get("worker_memory") is not None:
            d["worker_memory"] = int(_quantity(name, "worker_memory", d["worker_memory"], "byte"))
        if d.get("cluster_idle_timeout") is not None:
            d["cluster_idle_timeout"] = _quantity(name, "cluster_idle_timeout",
                                                  d["cluster_idle_timeout"], "s")
        return cls(name=name, **d)

    def matches(self, groups: frozenset[str], roles: frozenset[str], authenticated: bool) -> bool:
        if self.name == "anonymous":
            return True
        if self.authenticated and authenticated:
            return True
        return bool(self.groups & groups or self.roles & roles)


class TierTable:
    """Resolve callers to :class:`Rights`."""

    def __init__(self, table: dict[str, Any] | None = None) -> None:
        if table is None:  # the operators' table (see the module docstring)
            table = self.read(default_tiers_path())
        self.tiers = [Tier.from_dict(n, d or {}) for n, d in table["tiers"].items()]
        if not any(t.name == "anonymous" for t in self.tiers):
            raise ValueError("the tier table needs an 'anonymous' tier")
        self.admin_groups = frozenset(table.get("admin_groups") or ())
        self.admin_roles = frozenset(table.get("admin_roles") or ())

    @staticmethod
    def read(path: str | Path) -> dict[str, Any]:
        """The raw table of a YAML or JSON file."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"tier table {str(path)!r} does not exist (MMODA_TIERS / --tiers)")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)

    @classmethod
    def load(cls, path: str | Path | None = None) -> TierTable:
        """Read a YAML or JSON table; without a path, the default one (:func:`default_tiers_path`)."""
        return cls(cls.read(path if path is not None else default_tiers_path()))

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

        def most(attr: str) -> Any:  # compute limits: None when no matched tier sets one
            values = [getattr(t, attr) for t in matched if getattr(t, attr) is not None]
            return max(values) if values else None

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
            max_workers=most("max_workers"),
            worker_cores=most("worker_cores"),
            worker_memory=most("worker_memory"),
            cluster_idle_timeout=most("cluster_idle_timeout"),
            running_jobs=most("running_jobs"),
            upgrades={right: self.how_to_get(right) for right in ("private_data", "restricted_osa")
                      if not any(getattr(t, right) for t in matched)},
        )

    def how_to_get(self, right: str) -> str:
        """Which tier grants ``right`` (its roles and groups) and that tier's ``how_to_get_more``."""
        for t in self.tiers:
            if getattr(t, right, False):
                who = " or ".join(x for x in (
                    ("role " + ", ".join(sorted(t.roles))) if t.roles else "",
                    ("group " + ", ".join(sorted(t.groups))) if t.groups else "") if x)
                return f"The tier '{t.name}' ({who}) has it. {t.how_to_get_more}".strip()
        return "No tier of this service grants it."

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
