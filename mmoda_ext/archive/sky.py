"""The simulated hard-X sky: real bright sources with spectra and variability.

The built-in catalogue is ``mmoda_ext/data/sky_model.ecsv``: about two hundred of the brightest
hard-X sources of the INTEGRAL/IBIS sky (instruments.md §7; Bird et al. 2016; Krivonos et al.
2012/2022; Swift/BAT 105-month for AGN), each row with its provenance in the ``ref`` column. Rows
marked ``[R]`` were written from recall and are not yet checked against the published catalogue
(see the README's sky-model line). Operators and tests add sources with an extra ECSV file of
the same columns (``MMODA_SKY_EXTRA`` or ``Archive(extra_sources=...)``); a row whose name is
already known replaces the built-in one.

Flux convention: the Crab has the physical spectrum of Roques & Jourdain (2018) (20-40 keV energy
flux 7.58e-9 erg/cm2/s, between the OSA10.2-normalised 7.1e-9 and the OSA11 8.3e-9); the
instrument response maps it to 136.3 cts/s (OSA10.2 scale). Sources with no explicit ``K`` are
normalised so that their 20-40 keV photon flux is ``mcrab``/1000 of the Crab's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..errors import ParameterError
from ..science import spectra
from .variability import Variability

__all__ = ["SkySource", "SkyModel", "BUILTIN_SKY", "COLUMNS", "normalise_name", "CRAB_PHOTON_FLUX_20_40"]

BUILTIN_SKY = Path(__file__).resolve().parents[1] / "data" / "sky_model.ecsv"

#: column -> default (None = required)
COLUMNS: dict[str, object] = {
    "id": None,
    "name": None,
    "aliases": "",
    "ra": None,
    "dec": None,
    "kind": "source",
    "mcrab": None,
    "spectrum": "pl",
    "K": math.nan,
    "epivot": 100.0,
    "gamma1": 2.0,
    "gamma2": math.nan,
    "ebreak": math.nan,
    "ecut": math.nan,
    "variability": "",
    "elow": math.nan,
    "gamma0": math.nan,
    "ref": "",
}

# The Crab spectrum (instruments.md §1.5), used as the mCrab reference.
_CRAB = dict(model="band", epivot=100.0, g1=1.98, g2=2.33, ebreak=math.nan, ecut=500.0)
_CRAB_K = 7.417e-4
CRAB_PHOTON_FLUX_20_40 = float(
    _CRAB_K * spectra.integrate(
        lambda e: spectra.shape(e=e, **_CRAB), np.array([20.0, 40.0]),
        spectra.breaks(_CRAB["model"], _CRAB["g1"], _CRAB["g2"], _CRAB["ebreak"], _CRAB["ecut"]),
    )[0]
)


def normalise_name(name: str) -> str:
    """Case- and spacing-insensitive key: ``"Cyg X-1"``, ``"cygx1"``, ``"CYG_X-1"`` -> ``"cygx1"``."""
    return re.sub(r"[\s_\-.]+", "", str(name)).lower()


@dataclass(eq=False)
class SkySource:
    """One point source: position, spectral shape and time variability."""

    id: int
    name: str
    ra: float
    dec: float
    kind: str = "source"
    mcrab: float = 1.0
    spectrum: str = "pl"
    K: float = math.nan
    epivot: float = 100.0
    gamma1: float = 2.0
    gamma2: float = math.nan
    ebreak: float = math.nan
    ecut: float = math.nan
    variability: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: optional low-energy segment: photon index ``gamma0`` below ``elow`` keV (continuous there)
    elow: float = math.nan
    gamma0: float = math.nan
    #: provenance of the row (catalogue; ``[R]`` = recalled, not yet checked against it)
    ref: str = ""

    def __post_init__(self) -> None:
        if self.spectrum not in spectra.MODELS:
            raise ValueError(f"source {self.name}: spectrum {self.spectrum!r} not in {spectra.MODELS}")
        if self.spectrum in ("cutoffpl", "band") and not (self.ecut > 0):
            raise ValueError(f"source {self.name}: spectrum {self.spectrum} needs ecut > 0")
        if self.spectrum == "bknpl" and not (self.ebreak > 0 and math.isfinite(self.gamma2)):
            raise ValueError(f"source {self.name}: bknpl needs ebreak and gamma2")
        if not self.mcrab > 0:
            raise ValueError(f"source {self.name}: mcrab must be > 0 (the reference 20-40 keV level)")
        self.var = Variability(self.variability, self.id)
        self._kinks = spectra.breaks(self.spectrum, self.gamma1, self.gamma2, self.ebreak, self.ecut)
        self._low = math.isfinite(self.elow) and self.elow > 0 and math.isfinite(self.gamma0)
        if self._low:
            self._kinks = sorted([*self._kinks, float(self.elow)])
        if not math.isfinite(self.K):
            # normalise the 20-40 keV photon flux to mcrab of the Crab's
            unit = self._integral(np.array([20.0, 40.0]))[0]
            self.K = self.mcrab / 1000.0 * CRAB_PHOTON_FLUX_20_40 / unit
        self._ref_20_40 = self.K * self._integral(np.array([20.0, 40.0]))[0]

    # -- spectrum -----------------------------------------------------------------------------
    def _shape(self, e: np.ndarray) -> np.ndarray:
        out = spectra.shape(self.spectrum, e, self.epivot, self.gamma1, self.gamma2, self.ebreak, self.ecut)
        if self._low:
            e = np.asarray(e, float)
            at = spectra.shape(self.spectrum, np.array([self.elow]), self.epivot, self.gamma1, self.gamma2,
                               self.ebreak, self.ecut)[0]
            out = np.where(e < self.elow, at * (e / self.elow) ** (-self.gamma0), out)
        return out

    def _integral(self, edges: np.ndarray, moment: int = 0) -> np.ndarray:
        """Shape integral per bin, memoised for the few energy grids instruments reuse."""
        cache = self.__dict__.setdefault("_icache", {})
        key = (edges.tobytes(), moment)
        out = cache.get(key)
        if out is None:
            out = spectra.integrate(self._shape, edges, self._kinks, moment)
            out.setflags(write=False)
            if len(cache) >= 16:
                cache.pop(next(iter(cache)))
            cache[key] = out
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_icache", None)  # memo only; keeps pickles (Dask tasks) small
        return state

    def dnde(self, e_keV: np.ndarray, ijd: float | None = None) -> np.ndarray:
        """Differential photon flux, ph cm^-2 s^-1 keV^-1 (at the reference level if ijd is None)."""
        f = self.K * self._shape(np.asarray(e_keV, dtype=float))
        return f if ijd is None else f * self.factor(ijd)

    def factor(self, ijd: float | np.ndarray) -> np.ndarray | float:
        """Flux relative to the ``mcrab`` reference level at time(s) ijd."""
        lev = self.var.level(ijd, self.mcrab) / self.mcrab
        return float(lev[0]) if np.ndim(ijd) == 0 else lev

    def photon_flux(self, e_edges_keV: np.ndarray, ijd: float | np.ndarray) -> np.ndarray:
        """ph cm^-2 s^-1 in each bin; shape (n_bins,) for a scalar ijd, (n_times, n_bins) otherwise."""
        per_bin = self.K * self._integral(np.asarray(e_edges_keV, dtype=float))
        fac = self.factor(ijd)
        return per_bin * fac if np.ndim(ijd) == 0 else np.outer(fac, per_bin)

    def energy_flux(self, e1: float, e2: float, ijd: float | np.ndarray) -> np.ndarray | float:
        """erg cm^-2 s^-1 between e1 and e2 keV."""
        ef = self.K * self._integral(np.array([e1, e2], dtype=float), moment=1)[0] * spectra.KEV_TO_ERG
        return ef * self.factor(ijd)

    def mcrab_20_40(self, ijd: float | np.ndarray) -> np.ndarray | float:
        """20-40 keV photon flux in mCrab at time(s) ijd (for documentation and tests)."""
        return 1000.0 * self._ref_20_40 / CRAB_PHOTON_FLUX_20_40 * self.factor(ijd)

    @property
    def unit_vector(self) -> np.ndarray:
        ra, dec = np.radians(self.ra), np.radians(self.dec)
        return np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])

    def row(self) -> dict:
        d = {k: getattr(self, k) for k in COLUMNS if k != "aliases"}
        d["aliases"] = "|".join(self.aliases)
        return d

    def __repr__(self) -> str:
        return f"SkySource({self.id}, {self.name!r}, ra={self.ra:.3f}, dec={self.dec:.3f}, {self.mcrab:g} mCrab)"


class SkyModel:
    """A list of sources with name lookup and cone search."""

    def __init__(self, sources: Sequence[SkySource], files: Sequence[Path] = ()) -> None:
        self.sources: list[SkySource] = list(sources)
        self.files = [Path(f) for f in files]
        self._by_name: dict[str, SkySource] = {}
        for s in self.sources:
            for n in (s.name, *s.aliases):
                self._by_name.setdefault(normalise_name(n), s)
        ids = [s.id for s in self.sources]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"sky model: duplicate source ids {dup}")
        self._xyz = np.array([s.unit_vector for s in self.sources]).reshape(-1, 3)
        self._digest: str | None = None

    # -- loading ------------------------------------------------------------------------------
    @staticmethod
    def read_sources(path: str | Path) -> list[SkySource]:
        """Sources of one ECSV file; missing optional columns take their defaults."""
        path = Path(path)
        if not path.is_file():
            raise ParameterError("extra_sources", str(path), "an existing ECSV file", "No such file")
        tab = Table.read(path, format="ascii.ecsv")
        missing = [c for c, d in COLUMNS.items() if d is None and c not in tab.colnames]
        if missing:
            raise ValueError(f"{path}: missing required columns {missing}; columns: {list(COLUMNS)}")
        out = []
        for row in tab:
            kw = {}
            for col, default in COLUMNS.items():
                v = row[col] if col in tab.colnames else default
                if np.ma.is_masked(v):
                    v = default
                if isinstance(default, float) or col in ("ra", "dec", "mcrab"):
                    v = float(v)
                elif col == "id":
                    v = int(v)
                else:
                    v = "" if v is None else str(v)
                kw[col] = v
            kw["aliases"] = tuple(a.strip() for a in kw["aliases"].split("|") if a.strip())
            out.append(SkySource(**kw))
        return out

    @classmethod
    def from_files(cls, builtin: str | Path | None = None,
                   extra: str | Path | Iterable[str | Path] | None = None) -> SkyModel:
        """The built-in catalogue plus extension files (same columns; same name replaces)."""
        builtin = Path(builtin) if builtin else BUILTIN_SKY
        files = [builtin]
        sources = {normalise_name(s.name): s for s in cls.read_sources(builtin)}
        extras = [] if extra is None else [extra] if isinstance(extra, (str, Path)) else list(extra)
        for path in extras:
            files.append(Path(path))
            for s in cls.read_sources(path):
                sources[normalise_name(s.name)] = s
        return cls(list(sources.values()), files)

    # -- queries ------------------------------------------------------------------------------
    def get(self, name: str) -> SkySource:
        """The source named ``name`` (or one of its aliases), case/space-insensitive."""
        src = self.find(name)
        if src is None:
            raise ParameterError("src_name", name, "a source of the sky model, e.g. " +
                                 ", ".join(s.name for s in self.sources[:6]), "Unknown source")
        return src

    def find(self, name: str) -> SkySource | None:
        return self._by_name.get(normalise_name(name))

    def by_id(self, source_id: int) -> SkySource:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def near(self, ra: float, dec: float, radius_deg: float) -> list[SkySource]:
        """Sources within ``radius_deg`` of (ra, dec), nearest first."""
        if not self.sources:
            return []
        r, d = np.radians(ra), np.radians(dec)
        v = np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])
        cos = np.clip(self._xyz @ v, -1.0, 1.0)
        idx = np.nonzero(cos >= np.cos(np.radians(radius_deg)))[0]
        return [self.sources[i] for i in idx[np.argsort(-cos[idx], kind="stable")]]

    @property
    def digest(self) -> str:
        """Stable hash of the model content: part of the seed of every simulated window.

        Computed once (hashing ~200 sources costs milliseconds and every window asks for it).
        """
        if self._digest is None:
            text = json.dumps([s.row() for s in sorted(self.sources, key=lambda s: s.id)],
                              sort_keys=True, default=repr)
            self._digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._digest

    def to_table(self) -> Table:
        return Table(rows=[s.row() for s in self.sources], names=list(COLUMNS))

    def __len__(self) -> int:
        return len(self.sources)

    def __iter__(self):
        return iter(self.sources)
