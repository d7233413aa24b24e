"""A deterministic INTEGRAL observing plan for the whole mission (no I/O).

Faithful to how INTEGRAL observed (instruments.md §1.6, §9):

* revolutions of 3 sidereal days (2.984 d) until the 2015 perigee burns, 2.74 d after; revolution
  1626 starts 2015-12-26T02:03:13 (OSA11 validity start); science from revolution 26 (end of
  2002) to the end of science operations, 2025-02-28; no science near perigee (radiation belts);
* each revolution holds one to three observation blocks on fields that satisfy the solar aspect
  constraint (Sun 50-130 deg from the pointing axis); a block is a dither pattern (5x5 with
  2.17 deg steps, 7-point hexagon), a Galactic plane scan or the Galactic centre deep exposure;
* pointings of 1800-3600 s (longer later in the mission) separated by slews;
* a few campaigns are fixed on real dates: Crab calibrations in revolutions 102 and 665 (the
  windows 010200230010 and 066500220010 used by MMODA's own tests), XTE J1550-564 in 2003, the V404
  Cyg outburst in June 2015 (from revolution 1555), the Crab in February 2016, the Galactic centre in
  March 2017 (``FORCED``);
* further campaigns interrupt the plan as real ToOs and monitoring programmes did (``TOO_CAMPAIGNS``,
  ``BULGE_MONITORING``, ``PROGRAMME_FIELDS``): the planned pointings they overlap are replaced, the
  revolutions they do not touch keep every pointing (id, time, attitude) of the plan, and monitoring
  and programme blocks sit at a revolution's end (its first pointings stay). Each entry names its
  source of information; ``[R]`` marks dates recalled from the literature, not yet checked against
  the INTEGRAL archive.

Everything is drawn from ``numpy.random.default_rng`` seeded per revolution, so the plan does not
depend on the order of evaluation. ``build_plan(seed)`` returns plain numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fitsutil import to_ijd

__all__ = ["build_plan", "rev_start", "sun_radec", "FIELDS", "GENERATOR_VERSION", "PRIVATE_FROM",
           "FIRST_REV", "END_IJD"]

GENERATOR_VERSION = 1

FIRST_REV = 26
P_EARLY = 2.98382  # d, 3 sidereal days
P_LATE = 2.7385  # d, after the 2015 perigee burns
REV_CHANGE = 1500
ANCHOR_REV, ANCHOR_IJD = 1626, to_ijd("2015-12-26T02:03:13")
END_IJD = to_ijd("2025-02-28T00:00:00")
PRIVATE_FROM = to_ijd("2024-02-28T00:00:00")
SCIENCE_PHASE = (0.065, 0.925)  # outside the radiation belts
SUN_RANGE = (50.0, 130.0)

_G2E = np.array([  # galactic -> ICRS rotation (transpose of ICRS -> galactic)
    [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
    [0.4941094278755837, -0.4448296299600112, 0.7469822444972189],
    [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669],
]).T


def rev_start(rev: np.ndarray | int) -> np.ndarray:
    """IJD at which revolution ``rev`` starts (piecewise-constant period)."""
    rev = np.asarray(rev, dtype=float)
    t_change = ANCHOR_IJD - (ANCHOR_REV - REV_CHANGE) * P_LATE
    return np.where(rev >= REV_CHANGE, ANCHOR_IJD + (rev - ANCHOR_REV) * P_LATE,
                    t_change + (rev - REV_CHANGE) * P_EARLY)


def last_rev() -> int:
    t_change = ANCHOR_IJD - (ANCHOR_REV - REV_CHANGE) * P_LATE
    return int(ANCHOR_REV + math.floor((END_IJD - ANCHOR_IJD) / P_LATE)) if END_IJD > t_change else 0


def sun_radec(ijd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apparent Sun RA/Dec (deg), low-precision almanac formula (0.01 deg), vectorised."""
    n = np.asarray(ijd, dtype=float) - 0.5  # days from J2000.0
    L = np.radians(280.460 + 0.9856474 * n)
    g = np.radians(357.528 + 0.9856003 * n)
    lam = L + np.radians(1.915) * np.sin(g) + np.radians(0.020) * np.sin(2 * g)
    eps = np.radians(23.439 - 4e-7 * n)
    ra = np.degrees(np.arctan2(np.cos(eps) * np.sin(lam), np.cos(lam))) % 360.0
    dec = np.degrees(np.arcsin(np.sin(eps) * np.sin(lam)))
    return ra, dec


def unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra = np.degrees(np.arctan2(xyz[..., 1], xyz[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[..., 2], -1, 1)))
    return ra, dec


def offset(lon0, lat0, dx, dy):
    """Gnomonic de-projection: tangent-plane offsets (deg, east/north) -> lon, lat (deg)."""
    lon0, lat0 = np.radians(lon0), np.radians(lat0)
    x, y = np.radians(dx), np.radians(dy)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    safe = np.where(rho > 0, rho, 1.0)
    lat = np.arcsin(np.cos(c) * np.sin(lat0) + np.where(rho > 0, y * np.sin(c) * np.cos(lat0) / safe, 0))
    lon = lon0 + np.arctan2(x * np.sin(c), rho * np.cos(lat0) * np.cos(c) - y * np.sin(lat0) * np.sin(c))
    return np.degrees(lon) % 360.0, np.degrees(lat)


def gal_to_icrs(l_deg, b_deg):
    return radec(unit(l_deg, b_deg) @ _G2E.T)


def position_angle(ra, dec, ra2, dec2):
    """Position angle (deg, east of north) of point 2 seen from point 1."""
    r1, d1, r2, d2 = (np.radians(v) for v in (ra, dec, ra2, dec2))
    dra = r2 - r1
    pa = np.arctan2(np.sin(dra) * np.cos(d2), np.cos(d1) * np.sin(d2) - np.sin(d1) * np.cos(d2) * np.cos(dra))
    return np.degrees(pa) % 360.0


# --- patterns: offsets (deg) indexed by pointing number in the block --------------------------
def _raster(nx, ny, step):
    pts = []
    for j in range(ny):
        cols = range(nx) if j % 2 == 0 else range(nx - 1, -1, -1)  # snake
        pts += [((i - (nx - 1) / 2) * step, (j - (ny - 1) / 2) * step) for i in cols]
    return np.array(pts)


_HEX = np.array([(0.0, 0.0)] + [(2.0 * math.cos(math.radians(a)), 2.0 * math.sin(math.radians(a)))
                                 for a in range(0, 360, 60)])
_GPS_L = 6.0 * np.array([0, 1, 2, 3, 2, 1, 0, -1, -2, -3, -2, -1])  # triangle wave, 6 deg steps
_GPS_B = np.array([0.0, 2.5, 0.0, -2.5] * 3)
PATTERNS = {
    "5x5": _raster(5, 5, 2.17),
    "hex": _HEX,
    "gps": np.stack([_GPS_L, _GPS_B], axis=1),
    "gcde": _raster(9, 5, 4.0),
}
PATTERN_IDS = {name: i for i, name in enumerate(PATTERNS)}
GALACTIC_PATTERNS = {"gps", "gcde"}
HALF_SIZE = {"5x5": 4.4, "hex": 2.0, "gps": 18.0, "gcde": 16.0}


@dataclass(frozen=True)
class Field:
    name: str
    ra: float  # for galactic patterns: l
    dec: float  # for galactic patterns: b
    weight: float
    patterns: tuple[str, ...] = ("5x5", "hex")
    private_rate: float = 0.0  # fraction of blocks of private programmes


FIELDS = [
    Field("Galactic Centre", 266.405, -28.936, 30.0, ("5x5", "hex")),
    Field("GCDE", 0.0, 0.0, 15.0, ("gcde",)),
    Field("Galactic plane scan", 0.0, 0.0, 12.0, ("gps",)),
    Field("Crab", 83.633, 22.015, 2.5),
    Field("Cygnus region", 305.0, 37.5, 4.0),
    Field("Vela region", 135.5, -42.0, 3.0),
    Field("Carina-Crux", 182.0, -62.0, 2.0),
    Field("Norma arm", 250.0, -46.0, 5.0),
    Field("Scorpius-Ophiuchus", 252.0, -30.0, 3.0),
    Field("Scutum-Sagittarius arm", 281.0, -5.0, 3.0),
    Field("GRS 1915+105", 288.798, 10.946, 2.0),
    Field("Her X-1", 254.458, 35.342, 0.7),
    Field("Cas A region", 350.85, 58.81, 1.0),
    Field("Galactic anticentre", 92.0, 25.0, 1.2),
    Field("Perseus cluster", 49.95, 41.51, 1.0, private_rate=0.05),
    Field("Cen A", 201.365, -43.019, 2.0, private_rate=0.05),
    Field("NGC 4151", 182.636, 39.406, 1.5, private_rate=0.05),
    Field("3C 273 / Virgo", 187.278, 5.0, 2.0, private_rate=0.05),
    Field("Coma cluster", 194.95, 27.98, 1.0, private_rate=0.05),
    Field("M31", 10.685, 41.269, 0.7, private_rate=0.05),
    Field("LMC", 80.894, -69.756, 1.5),
    Field("SMC", 13.187, -72.829, 0.7),
    Field("Mrk 421", 166.114, 38.209, 0.7, private_rate=0.05),
    Field("3C 454.3", 343.491, 16.148, 0.7, private_rate=0.05),
    Field("North ecliptic pole", 270.0, 66.56, 0.8),
    Field("South ecliptic pole", 90.0, -66.56, 0.5),
]

# (field, pattern, start, end): campaigns on real dates; ``None`` field coordinates -> FIELDS
FORCED = [
    ("Crab", "5x5", "rev:102"),
    ("XTE J1550-564 ToO", "hex", "rev:60", 237.745, -56.477),
    ("Crab", "5x5", "rev:665"),
    ("V404 Cyg ToO", "hex", ("2015-06-17T00:00:00", "2015-07-01T00:00:00"), 306.016, 33.867),
    ("Crab", "5x5", ("2016-02-05T00:00:00", "2016-02-12T00:00:00")),
    ("Galactic Centre", "5x5", ("2017-03-04T00:00:00", "2017-03-09T00:00:00")),
]
#: (start, end) without science (e.g. the 2020 safe mode)
OUTAGES = [(to_ijd("2020-09-22T00:00:00"), to_ijd("2020-10-05T00:00:00"))]

#: (name, pattern, (start, end), ra, dec, source): ToOs on their real dates, laid over the plan
TOO_CAMPAIGNS = [
    ("3C 279 ToO", "5x5", ("2015-06-15T12:00:00", "2015-06-17T00:00:00"), 194.0465, -5.7893,
     "INTEGRAL ToO on the 2015 June 16 gamma-ray flare of 3C 279, just before the V404 Cyg ToO "
     "(Bottacini et al. 2016, ApJ 832, 17) [R]"),
    ("MAXI J1820+070 ToO", "hex", ("2018-03-16T00:00:00", "2018-04-08T00:00:00"), 275.0914, 7.1854,
     "INTEGRAL ToO on the 2018 outburst of MAXI J1820+070, hard state in March-April 2018 "
     "(Roques & Jourdain 2019, ApJ 870, 92) [R]"),
]
#: the Galactic bulge monitoring programme: one 7-pointing hexagon of 1800 s on the Galactic centre
#: in every revolution in which the bulge is visible (Kuulkers et al. 2007, A&A 466, 595: from
#: 2005 February, ~3.5 h per revolution) [R]; kept here until the end of 2013
BULGE_MONITORING = dict(name="Galactic bulge monitoring", pattern="hex", ra=266.405, dec=-28.936,
                        start="2005-02-17T00:00:00", end="2014-01-01T00:00:00", pointing_s=1800.0,
                        source="Kuulkers et al. 2007, A&A 466, 595 [R]")
#: pointed fields of the extragalactic and Galactic programmes that the plan's FIELDS miss (each is
#: the position of its main source in the sky model): one 7-pointing hexagon a year in a revolution
#: where the field is visible. The dates are simulated, not historical; they give every sky-model
#: source some exposure, as INTEGRAL's all-sky exposure map does (Bird et al. 2016).
PROGRAMME_FIELDS = [
    ("NGC 2110", 88.047, -7.456), ("Sco X-1", 244.979, -15.640), ("S5 0716+714", 110.472, 71.343),
    ("NGC 7172", 330.508, -31.870), ("Cyg X-2", 326.171, 38.321), ("4U 1626-67", 248.070, -67.462),
    ("NGC 3516", 166.698, 72.569), ("H 0557-385", 89.508, -38.334), ("4U 2129+12", 322.493, 12.167),
    ("GRO J1008-57", 152.445, -58.293), ("Mrk 509", 311.040, -10.724), ("NGC 3783", 174.757, -37.739),
    ("NGC 2992", 146.425, -14.326), ("NGC 3227", 155.877, 19.865), ("NGC 5506", 213.312, -3.208),
    ("NGC 6814", 295.669, -10.324), ("NGC 7582", 349.598, -42.371), ("NGC 5548", 214.498, 25.137),
    ("NGC 7213", 332.318, -47.167), ("NGC 3281", 157.967, -34.854), ("NGC 526A", 20.977, -35.066),
    ("NGC 788", 30.277, -6.816), ("NGC 1365", 53.402, -36.140), ("NGC 1068", 40.670, -0.013),
    ("NGC 6240", 253.245, 2.401), ("Mrk 110", 141.304, 52.286), ("Mrk 279", 208.264, 69.308),
    ("ESO 103-035", 279.585, -65.427), ("IGR J21247+5058", 321.164, 50.974), ("Ark 120", 79.047, -0.150),
    ("3C 120", 68.296, 5.354), ("3C 382", 278.764, 32.696), ("PKS 1510-089", 228.210, -9.100),
    ("MCG+8-11-11", 88.723, 46.440),
]
PROGRAMME_BLOCK_D = 0.35  # about 12 pointings
PROGRAMME_YEARS = (2003, 2024)


def _forced_blocks():
    """[(t0, t1, name, ra, dec, pattern)] of the fixed campaigns, in IJD."""
    by_name = {f.name: f for f in FIELDS}
    out = []
    for entry in FORCED:
        name, pattern, when = entry[:3]
        ra, dec = (entry[3], entry[4]) if len(entry) > 3 else (by_name[name].ra, by_name[name].dec)
        if isinstance(when, str) and when.startswith("rev:"):
            r = int(when[4:])
            t0, t1 = float(rev_start(r)), float(rev_start(r + 1))
        else:
            t0, t1 = to_ijd(when[0]), to_ijd(when[1])
        out.append((t0, t1, name, ra, dec, pattern))
    return out


def _weighted_pick(rng, weights: np.ndarray, n: int) -> list[int]:
    """n distinct indices drawn with probability ~ weights (with repeats if too few are allowed)."""
    w = weights.astype(float).copy()
    out = []
    for _ in range(n):
        if w.sum() <= 0:
            w = weights.astype(float).copy()
        c = np.cumsum(w)
        i = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
        out.append(min(i, w.size - 1))
        w[out[-1]] = 0.0
    return out


def _plan_blocks(seed: int):
    """Loop over revolutions (cheap: visibility is precomputed): observation blocks in time order."""
    forced = _forced_blocks()
    names = [f.name for f in FIELDS] + sorted({b[2] for b in forced} - {f.name for f in FIELDS})
    name_id = {n: i for i, n in enumerate(names)}
    fw = np.array([f.weight for f in FIELDS])
    fgal = np.array([f.patterns[0] in GALACTIC_PATTERNS for f in FIELDS])
    fra = np.where(fgal, 266.405, [f.ra for f in FIELDS])
    fdec = np.where(fgal, -28.936, [f.dec for f in FIELDS])
    fmargin = np.array([max(HALF_SIZE[p] for p in f.patterns) for f in FIELDS])
    plane_l = np.arange(0.0, 360.0, 10.0)
    plane_ra, plane_dec = gal_to_icrs(plane_l, np.zeros_like(plane_l))
    revs = np.arange(FIRST_REV, last_rev() + 1)
    rs = rev_start(revs)
    period = rev_start(revs + 1) - rs
    s0_all = rs + SCIENCE_PHASE[0] * period
    s1_all = np.minimum(rs + SCIENCE_PHASE[1] * period, END_IJD)
    tmid_all = 0.5 * (s0_all + s1_all)
    sun = unit(*sun_radec(tmid_all))
    ang_f = np.degrees(np.arccos(np.clip(sun @ unit(fra, fdec).T, -1, 1)))
    vis_f_all = (ang_f >= SUN_RANGE[0] + fmargin) & (ang_f <= SUN_RANGE[1] - fmargin)
    ang_p = np.degrees(np.arccos(np.clip(sun @ unit(plane_ra, plane_dec).T, -1, 1)))
    m = HALF_SIZE["gps"]
    vis_p_all = (ang_p >= SUN_RANGE[0] + m) & (ang_p <= SUN_RANGE[1] - m)
    nominal_all = 2000.0 + 1300.0 * np.clip((tmid_all - 1100.0) / 2900.0, 0.0, 1.0)
    blocks = []  # (rev, t0, t1, field_id, lon, lat, pattern_id, private, nominal_s)
    for j, rev in enumerate(revs.tolist()):
        s0, s1, tmid, nominal = float(s0_all[j]), float(s1_all[j]), float(tmid_all[j]), float(nominal_all[j])
        if s1 <= s0 or any(a < s1 and s0 < b for a, b in OUTAGES):
            continue
        rng = np.random.default_rng([seed, rev])
        # free intervals of this revolution once the fixed campaigns are placed
        spans = []
        cuts = sorted((max(a, s0), min(b, s1), n, ra, dec, p) for a, b, n, ra, dec, p in forced
                      if a < s1 and b > s0)
        cursor = s0
        for a, b, n, ra, dec, p in cuts:
            if a - cursor > 0.25:
                spans.append((cursor, a, None))
            spans.append((a, b, (n, ra, dec, p)))
            cursor = b
        if s1 - cursor > 0.25:
            spans.append((cursor, s1, None))
        vis_plane = vis_p_all[j]
        weights = fw * (vis_f_all[j] & (vis_plane.any() | ~fgal))
        for a, b, fixed in spans:
            if fixed is not None:
                n, ra, dec, p = fixed
                nom = min(max(nominal * rng.uniform(0.9, 1.1), 1800.0), 3600.0)
                blocks.append((rev, a, b, name_id[n], ra, dec, PATTERN_IDS[p], False, nom))
                continue
            u = rng.random()
            nblk = 1 if u < 0.4 else 2 if u < 0.82 else 3
            bounds = np.sort(rng.uniform(0.2, 0.8, nblk - 1))
            edges = a + (b - a) * np.concatenate([[0.0], bounds, [1.0]])
            for k, fi in enumerate(_weighted_pick(rng, weights, nblk)):
                f = FIELDS[fi]
                pat = f.patterns[int(rng.integers(len(f.patterns)))]
                if pat == "gps":
                    lon, lat = float(rng.choice(plane_l[vis_plane])), 0.0
                elif pat == "gcde":
                    lon, lat = 0.0, 0.0
                else:
                    lon, lat = f.ra, f.dec
                private = bool(rng.random() < f.private_rate) and tmid > 6000.0
                nom = min(max(nominal * rng.uniform(0.85, 1.15), 1800.0), 3600.0)
                blocks.append((rev, edges[k], edges[k + 1], int(fi), lon, lat, PATTERN_IDS[pat], private, nom))
    cols = list(zip(*blocks, strict=True))
    dtypes = [np.int32, float, float, np.int16, float, float, np.int8, bool, float]
    return [np.array(c, dtype=d) for c, d in zip(cols, dtypes, strict=True)], names


def _block_clock(ra: np.ndarray, dec: np.ndarray, dur: np.ndarray, k: np.ndarray, n_max: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(slew, seconds from its block's start to each pointing's end): a slew grows with the angle
    from the previous pointing, and a block's first one is a longer set-up."""
    xyz = unit(ra, dec)
    sep = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", xyz[1:], xyz[:-1]), -1, 1)))
    slew = np.round(120.0 + 6.0 * np.concatenate([[30.0], sep]))
    slew[k == 0] = np.round(rng.uniform(300, 900, (k == 0).sum()))
    slot = slew + dur
    cum = np.cumsum(slot)
    start_idx = np.cumsum(n_max) - n_max
    return slew, cum - np.repeat(cum[start_idx] - slot[start_idx], n_max)


def _base_plan(seed: int) -> dict[str, np.ndarray | list]:
    """The planned pointings (random fields and ``FORCED`` campaigns), vectorised over pointings."""
    (b_rev, b_t0, b_t1, b_field, b_lon, b_lat, b_pat, b_priv, b_nom), names = _plan_blocks(seed)
    rng = np.random.default_rng([seed, 0x5C3])
    length_s = (b_t1 - b_t0) * 86400.0
    n_max = np.ceil(length_s / (0.95 * b_nom + 120.0)).astype(int) + 1
    blk = np.repeat(np.arange(b_t0.size), n_max)
    k = np.arange(blk.size) - np.repeat(np.cumsum(n_max) - n_max, n_max)
    n = blk.size
    # attitude from the block pattern
    ra = np.empty(n)
    dec = np.empty(n)
    pat = b_pat[blk]
    for name, pid in PATTERN_IDS.items():
        m = pat == pid
        if not m.any():
            continue
        offs = PATTERNS[name]
        start = rng.integers(len(offs), size=b_t0.size)[blk[m]] if name in ("5x5", "hex") else 0
        o = offs[(k[m] + start) % len(offs)]
        lon, lat = offset(b_lon[blk[m]], b_lat[blk[m]], o[:, 0], o[:, 1])
        if name in GALACTIC_PATTERNS:
            lon, lat = gal_to_icrs(lon, lat)
        ra[m], dec[m] = lon, lat
    # durations and slews
    dur = np.clip(np.round(b_nom[blk] * (1.0 + 0.04 * rng.standard_normal(n))), 1800, 3600)
    slew, cum_in_block = _block_clock(ra, dec, dur, k, n_max, rng)
    t_end = b_t0[blk] + cum_in_block / 86400.0
    keep = t_end <= b_t1[blk]
    blk, ra, dec, dur, slew, t_end = blk[keep], ra[keep], dec[keep], dur[keep], slew[keep], t_end[keep]
    n = blk.size
    tstop = t_end
    tstart = tstop - dur / 86400.0
    rev = b_rev[blk]
    first = np.searchsorted(rev, rev, side="left")
    pnum = (np.arange(n) - first + 1).astype(np.int64)
    # good time and dead time
    gap = rng.exponential(6.0, n) + (rng.random(n) < 0.03) * rng.uniform(0.0, 0.3, n) * dur
    ontime = np.round(np.clip(dur - gap, 0.5 * dur, dur), 1)
    trend = 0.775 + 0.065 * np.clip((tstart - 1100.0) / 7000.0, 0.0, 1.0)
    deadc = np.clip(trend + 0.006 * rng.standard_normal(n), 0.75, 0.85)
    sra, sdec = sun_radec(0.5 * (tstart + tstop))
    pa = position_angle(ra, dec, sra, sdec)
    private = b_priv[blk] | (tstart >= PRIVATE_FROM)
    return dict(
        rev=rev.astype(np.int32), pnum=pnum, ra=ra, dec=dec, pa=pa, tstart=tstart, tstop=tstop,
        ontime=ontime, deadc=deadc, private=private, target=b_field[blk].astype(np.int16),
        slew_s=slew, names=names,
    )


# --- campaigns laid over the plan --------------------------------------------------------------
_SLEW_MARGIN_S = 1200.0  # room left at a block's end for the slew to the next planned pointing


def _science_spans(revs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rs = rev_start(revs)
    period = rev_start(revs + 1) - rs
    return rs + SCIENCE_PHASE[0] * period, np.minimum(rs + SCIENCE_PHASE[1] * period, END_IJD)


def _overlay_blocks(seed: int) -> list[tuple[float, float, str, float, float, str, float]]:
    """[(t0, t1, rev, name, ra, dec, pattern, pointing_s)] of the overlay campaigns, disjoint, by time."""
    busy = [(a, b) for a, b, *_ in _forced_blocks()] + list(OUTAGES)
    revs = np.arange(FIRST_REV, last_rev() + 1)
    s0, s1 = _science_spans(revs)
    blocks = []
    for name, pattern, (start, end), ra, dec, _source in TOO_CAMPAIGNS:
        t0, t1 = to_ijd(start), to_ijd(end)
        for j in np.nonzero((s0 < t1) & (s1 > t0))[0]:
            a, b = max(float(s0[j]), t0), min(float(s1[j]), t1)
            if b - a > 0.1:
                blocks.append((a, b, int(revs[j]), name, ra, dec, pattern, 0.0))
        busy.append((t0, t1))
    # revolutions touched by a fixed campaign or an outage take no monitoring or programme block
    taken = np.zeros(revs.size, bool)
    for x, y in busy:
        taken |= (s0 < y) & (s1 > x)
    sun = unit(*sun_radec(0.5 * (s0 + s1)))
    # bulge monitoring: the last 3.5 h of every revolution in which the Galactic centre is visible
    bm = BULGE_MONITORING
    ang = np.degrees(np.arccos(np.clip(sun @ unit(bm["ra"], bm["dec"]), -1, 1)))
    length = (7 * (1.06 * bm["pointing_s"] + 140.0) + 900.0 + _SLEW_MARGIN_S) / 86400.0  # room for 7
    ok = ((ang >= SUN_RANGE[0] + HALF_SIZE["hex"]) & (ang <= SUN_RANGE[1] - HALF_SIZE["hex"]) & ~taken
          & (s1 - length >= to_ijd(bm["start"])) & (s1 <= to_ijd(bm["end"])) & (s1 - s0 > length + 1.0))
    for j in np.nonzero(ok)[0]:  # at the revolution's end: its first pointings stay as planned
        blocks.append((float(s1[j] - length), float(s1[j]), int(revs[j]), bm["name"], bm["ra"], bm["dec"],
                       bm["pattern"], bm["pointing_s"]))
    taken |= ok  # one overlay block per revolution
    # programme fields: the last PROGRAMME_BLOCK_D days of one visible revolution a year
    year = np.floor(2000.0 + (0.5 * (s0 + s1)) / 365.25).astype(int)
    years = range(PROGRAMME_YEARS[0], PROGRAMME_YEARS[1] + 1)
    bounds = np.searchsorted(year, [*years, years[-1] + 1])  # revolutions are in time order
    pf = np.array([(ra, dec) for _, ra, dec in PROGRAMME_FIELDS])
    ang_all = np.degrees(np.arccos(np.clip(sun @ unit(pf[:, 0], pf[:, 1]).T, -1, 1)))
    vis_all = ((ang_all >= SUN_RANGE[0] + HALF_SIZE["hex"]) & (ang_all <= SUN_RANGE[1] - HALF_SIZE["hex"])
               & (s1 - s0 > 1.0)[:, None])
    u = np.random.default_rng([seed, 0x9F0]).random((len(PROGRAMME_FIELDS), len(years)))
    for k, (name, ra, dec) in enumerate(PROGRAMME_FIELDS):
        for iy in range(len(years)):
            lo, hi = bounds[iy], bounds[iy + 1]
            cand = lo + np.nonzero(vis_all[lo:hi, k] & ~taken[lo:hi])[0]
            if not cand.size:
                continue
            j = int(cand[int(u[k, iy] * cand.size)])
            taken[j] = True
            blocks.append((float(s1[j] - PROGRAMME_BLOCK_D), float(s1[j]), int(revs[j]), f"{name} field",
                           ra, dec, "hex", 0.0))
    return sorted(blocks)


def _overlay_pointings(seed: int, blocks: list, names: list[str]) -> dict[str, np.ndarray]:
    """The pointings of the overlay blocks (attitude from the pattern, durations, dead time), vectorised."""
    rng = np.random.default_rng([seed, 0x0E7])
    t0, t1 = np.array([b[0] for b in blocks]), np.array([b[1] for b in blocks])
    b_rev = np.array([b[2] for b in blocks], dtype=np.int32)
    for b in blocks:
        if b[3] not in names:
            names.append(b[3])
    b_target = np.array([names.index(b[3]) for b in blocks], dtype=np.int16)
    b_ra, b_dec = np.array([b[4] for b in blocks]), np.array([b[5] for b in blocks])
    b_pat = np.array([PATTERN_IDS[b[6]] for b in blocks])
    tmid = 0.5 * (t0 + t1)
    planned = np.clip((2000.0 + 1300.0 * np.clip((tmid - 1100.0) / 2900.0, 0, 1)) * rng.uniform(0.9, 1.1, t0.size),
                      1800.0, 3600.0)
    nominal = np.where(np.array([b[7] for b in blocks]) > 0, [b[7] for b in blocks], planned)
    n_max = ((t1 - t0) * 86400.0 / (nominal + 120.0)).astype(int) + 2
    blk = np.repeat(np.arange(t0.size), n_max)
    k = np.arange(blk.size) - np.repeat(np.cumsum(n_max) - n_max, n_max)
    ra, dec = np.empty(blk.size), np.empty(blk.size)
    for name, pid in PATTERN_IDS.items():
        m = b_pat[blk] == pid
        if m.any():
            o = PATTERNS[name][k[m] % len(PATTERNS[name])]
            ra[m], dec[m] = offset(b_ra[blk[m]], b_dec[blk[m]], o[:, 0], o[:, 1])
    dur = np.clip(np.round(nominal[blk] * (1.0 + 0.02 * rng.standard_normal(blk.size))), 1800, 3600)
    slew, in_block = _block_clock(ra, dec, dur, k, n_max, rng)
    tstop = t0[blk] + in_block / 86400.0
    keep = tstop <= t1[blk] - _SLEW_MARGIN_S / 86400.0
    blk, ra, dec, dur, slew, tstop = blk[keep], ra[keep], dec[keep], dur[keep], slew[keep], tstop[keep]
    m = blk.size
    tstart = tstop - dur / 86400.0
    gap = rng.exponential(6.0, m) + (rng.random(m) < 0.03) * rng.uniform(0.0, 0.3, m) * dur
    trend = 0.775 + 0.065 * np.clip((tstart - 1100.0) / 7000.0, 0.0, 1.0)
    sra, sdec = sun_radec(0.5 * (tstart + tstop))
    return dict(
        rev=b_rev[blk], ra=ra, dec=dec, tstart=tstart, tstop=tstop, slew_s=slew, target=b_target[blk],
        ontime=np.round(np.clip(dur - gap, 0.5 * dur, dur), 1),
        deadc=np.clip(trend + 0.006 * rng.standard_normal(m), 0.75, 0.85),
        pa=position_angle(ra, dec, sra, sdec), private=tstart >= PRIVATE_FROM,
    )


def build_plan(seed: int) -> dict[str, np.ndarray | list]:
    """The pointing and slew science windows of the whole mission, vectorised over pointings.

    The planned pointings that overlap an overlay campaign are replaced by the campaign's; the
    others keep their time and attitude (and their id, in the revolutions no campaign touches).
    """
    plan = _base_plan(seed)
    names = list(plan["names"])
    blocks = _overlay_blocks(seed)
    extra = _overlay_pointings(seed, blocks, names)
    b0 = np.array([b[0] for b in blocks])
    b1 = np.array([b[1] for b in blocks])
    i = np.searchsorted(b0, plan["tstop"], side="left") - 1  # last block starting before the pointing ends
    hit = (i >= 0) & (plan["tstart"] < b1[np.maximum(i, 0)])
    keep = ~hit
    merged = {}
    for k in ("rev", "ra", "dec", "pa", "tstart", "tstop", "ontime", "deadc", "private", "target", "slew_s"):
        merged[k] = np.concatenate([np.asarray(plan[k])[keep], extra[k].astype(np.asarray(plan[k]).dtype)])
    order = np.argsort(merged["tstart"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    rev = merged["rev"]
    first = np.searchsorted(rev, rev, side="left")
    merged["pnum"] = (np.arange(rev.size) - first + 1).astype(np.int64)
    merged["names"] = names
    return merged
