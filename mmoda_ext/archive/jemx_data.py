"""Per-window JEM-X data: simulated event lists, written and read as FITS.

JEM-X data are event lists (time, detector position, PHA), so each (science window, unit)
is simulated as one, deterministically from the window id, the unit and the sky-model
content (:attr:`SkyModel.digest`): regenerating gives byte-identical files.

Per source in the field (within 7°, the zero-response radius is 6.6°): the on-axis count
rate per PHA channel is the source's ``photon_flux`` through :mod:`..science.jemx_response`;
pixel counts follow ``T_live · R · PIF · eff / n_on_axis`` (:mod:`..science.jemx`), event times
follow the source's variability over 64 sub-intervals of the window.

Detector background, calibrated on the real MMODA JEM-X1 Crab light curve (ScW 010200230010,
1920 s, 3.04–34.88 keV, 3.74° off axis, VIGNET 0.30: RATE 136 ± 15 cts/s in 20 s bins,
DETSIG 82.9 for the window). A PIF fit of a source whose shadow carries S counts over a
background of B counts on a 25 %-open mask has variance ≈ S + B/3 (counts), so those figures
need B ≈ 1000–1400 cts/s in the analysed band. With :data:`BACKGROUND_RATE` = 1000 cts/s
(×0.85–1.15 per window, +5 % for JEM-X2) the Crab window at 3.77° (012700100010, VIGNET
0.335) gives a PIF-fit significance ≈ 92, an image peak ≈ 70 (OSA's DETSIG is an imaging
figure) and a 20 s error ≈ 12.3 cts/s (≈ 13.8 scaled to VIGNET 0.30): a compromise between
the two real figures, see ``tests/instruments/test_jemx_noise.py``.
The level stands for everything that is not the sky sources (particles, cosmic X-ray
background through the 13° field, unresolved sources, detector noise); the spectrum is
slightly harder than flat and the spatial shape is known (the ``BKG.-MAP`` extension, what
the analysis uses as a background map). Dead time is a non-paralysable 160 µs per event,
so DEADC ≈ 0.86 on an empty field and ≈ 0.84 with the Crab on axis, as in a real JEM-X1 LC
(0.84, ``instruments.md`` §1.5).

Units: JEM-X1 and JEM-X2 were both on until revolution 169 and from revolution 1000; in
between only one was on, alternating every 50 revolutions (:func:`unit_on`), a simple
stand-in for the real operations history.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..science import jemx, jemx_response
from .fitsutil import standard_header

__all__ = [
    "JemxWindow",
    "unit_on",
    "units_on",
    "load_window",
    "generate_window",
    "window_path",
    "is_current",
    "GENERATOR_VERSION",
]

GENERATOR_VERSION = "jemx-3"  # 3: event times on JEM-X's 1/8192 s clock, 7 bytes per event
#: event-time resolution, days: JEM-X's 122 us clock. Times are stored as 32-bit ticks since
#: TSTART (FITS TSCAL/TZERO, so any FITS reader sees times in IJD): 7 bytes per event instead
#: of 11, ~18 MB per unit-window instead of 35 MB, still memory-mappable and byte-identical on
#: regeneration (gzip would save 15 % more at ~1 s per read: not worth it).
TIME_TICK_D = 1.0 / 8192.0 / 86400.0
FIELD_RADIUS_DEG = 7.0
BACKGROUND_RATE = 1000.0  # cts/s, 3.04-34.88 keV, whole detector (noise calibration above)
DEAD_TIME_S = 1.6e-4
N_SEGMENTS = 64


def unit_on(unit: int, revolution: int) -> bool:
    """Whether JEM-X ``unit`` (1 or 2) was switched on in ``revolution`` (simple rule)."""
    if revolution < 170 or revolution >= 1000:
        return True
    on = 1 if (revolution // 50) % 2 == 1 else 2
    return unit == on


def units_on(revolution: int) -> tuple[int, ...]:
    return tuple(u for u in (1, 2) if unit_on(u, revolution))


@dataclass
class JemxWindow:
    """One unit's events of one science window, with its maps and live time."""

    scw: Any
    unit: int
    time: np.ndarray  # IJD
    dety: np.ndarray  # detector pixel row
    detx: np.ndarray  # detector pixel column
    pha: np.ndarray  # PHA channel (0.16 keV)
    efficiency: np.ndarray
    background: np.ndarray  # background spatial shape (mean 1 on live pixels)
    ontime: float
    deadc: float
    header: fits.Header = field(default_factory=fits.Header)

    @property
    def exposure(self) -> float:
        """Dead-time corrected exposure, s."""
        return self.ontime * self.deadc

    @property
    def telapse(self) -> float:
        return (self.scw.tstop - self.scw.tstart) * 86400.0

    def _select(self, c1: int, c2: int, t1: float | None, t2: float | None) -> np.ndarray:
        sel = (self.pha >= c1) & (self.pha <= c2)
        if t1 is not None:
            sel &= self.time >= t1
        if t2 is not None:
            sel &= self.time < t2
        return sel

    def band(self, e1: float, e2: float, t1: float | None = None, t2: float | None = None
             ) -> tuple[np.ndarray, tuple[float, float]]:
        """Shadowgram (counts) in [e1, e2] keV (and [t1, t2) IJD), with the effective band."""
        c1, c2, lo, hi = jemx_response.band_channels(e1, e2)
        sel = self._select(c1, c2, t1, t2)
        return self._image(sel), (lo, hi)

    def _image(self, sel: np.ndarray) -> np.ndarray:
        n = self.efficiency.shape[0]
        flat = self.dety[sel].astype(np.int64) * n + self.detx[sel]
        return np.bincount(flat, minlength=n * n).reshape(n, n).astype(np.float32)

    def spectral_cube(self) -> np.ndarray:
        """Shadowgrams in the 16 standard spectral bins: (16, n, n) counts."""
        edges = jemx_response.SPEC_PHA
        k = np.searchsorted(edges, self.pha, side="right") - 1
        ok = (k >= 0) & (k < len(edges) - 1)
        n = self.efficiency.shape[0]
        flat = (k[ok] * n + self.dety[ok].astype(np.int64)) * n + self.detx[ok]
        nb = len(edges) - 1
        return np.bincount(flat, minlength=nb * n * n).reshape(nb, n, n).astype(np.float32)

    def time_binned(self, e1: float, e2: float, edges_ijd: np.ndarray) -> np.ndarray:
        """Shadowgrams per time bin: (n_bins, n, n) counts in [e1, e2] keV."""
        c1, c2, _, _ = jemx_response.band_channels(e1, e2)
        sel = self._select(c1, c2, None, None)
        k = np.searchsorted(edges_ijd, self.time[sel], side="right") - 1
        nb, n = len(edges_ijd) - 1, self.efficiency.shape[0]
        ok = (k >= 0) & (k < nb)
        flat = (k[ok] * n + self.dety[sel][ok].astype(np.int64)) * n + self.detx[sel][ok]
        return np.bincount(flat, minlength=nb * n * n).reshape(nb, n, n).astype(np.float32)


# --------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------


def _seed(scw_id: str, unit: int, digest: str) -> int:
    h = hashlib.blake2b(f"{GENERATOR_VERSION}|{scw_id}|{unit}|{digest}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def background_shape(unit: int, tilt: float = 0.0) -> np.ndarray:
    """Spatial background shape: rising 8 % towards the rim, a few % gradient, mean 1."""
    g = jemx.geometry(unit)
    n = g.n_det
    c = (np.arange(n) - (n - 1) / 2.0) / (n / 2.0)
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    shape = (1.0 + 0.08 * r2 + tilt * c[None, :] + (0.02 if unit == 1 else -0.02) * c[:, None])
    live = g.detector > 0
    return (shape / shape[live].mean()).astype(np.float32)


def _background_spectrum() -> np.ndarray:
    """Relative background per PHA channel (sum 1 over 3.04-34.88 keV)."""
    e = (np.arange(jemx_response.N_PHA) + 0.5) * jemx_response.PHA_KEV
    spec = 1.0 + 0.5 * e / 35.0
    spec[: jemx_response.PHA_FIRST] = 0.0
    spec[jemx_response.PHA_LAST + 1 :] = 0.0
    return spec / spec.sum()


def simulate_window(scw: Any, unit: int, sky: Any) -> JemxWindow:
    """Simulate one unit's event list for one window (no I/O)."""
    rng = np.random.default_rng(_seed(scw.scw_id, unit, sky.digest))
    g = jemx.geometry(unit)
    frame = jemx.window_frame(scw.ra, scw.dec, scw.pa, unit)
    eff = np.asarray(g.detector, np.float32)
    n = g.n_det
    seg_edges = np.linspace(scw.tstart, scw.tstop, N_SEGMENTS + 1)
    seg_mid = 0.5 * (seg_edges[1:] + seg_edges[:-1])

    # (rate per PHA channel on axis, per-pixel weights, time weights) per component
    comps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    total_rate = 0.0
    for src in sky.near(scw.ra, scw.dec, FIELD_RADIUS_DEG):
        x, y = frame.to_pixel(src.ra, src.dec)
        if not np.isfinite(x):
            continue
        c = g.sky_centre
        weights = g.pif((float(y) - c, float(x) - c)) * eff
        wsum = float(weights.sum())
        if wsum <= 0.0:
            continue
        flux_t = np.asarray(src.photon_flux(jemx_response.ENERGY_EDGES, seg_mid))  # (n_t, n_e)
        level = flux_t.sum(axis=1)
        mean_flux = flux_t.mean(axis=0)
        pha_rate = jemx_response.expected_pha_rate(mean_flux) * wsum / g.n_on_axis
        comps.append((pha_rate, weights, level))
        total_rate += float(pha_rate.sum())
    tilt = rng.uniform(-0.03, 0.03)
    bshape = background_shape(unit, tilt)
    bscale = rng.uniform(0.85, 1.15) * (1.0 if unit == 1 else 1.05)
    bkg_rate = BACKGROUND_RATE * bscale * _background_spectrum() * float((bshape * eff).sum() / (g.detector > 0).sum())
    comps.append((bkg_rate, bshape * eff, np.ones(N_SEGMENTS)))
    total_rate += float(bkg_rate.sum())

    deadc = 1.0 / (1.0 + DEAD_TIME_S * total_rate)
    live = float(scw.ontime) * deadc
    times, ys, xs, phas = [], [], [], []
    for pha_rate, weights, level in comps:
        counts = rng.poisson(pha_rate * live)
        total = int(counts.sum())
        if total == 0:
            continue
        pha = np.repeat(np.arange(pha_rate.size, dtype=np.uint8), counts)
        cdf = np.cumsum(weights.ravel(), dtype=np.float64)
        pix = np.searchsorted(cdf, rng.random(total) * cdf[-1], side="right")
        pix = np.minimum(pix, n * n - 1)
        p_t = level / level.sum()
        seg = rng.choice(N_SEGMENTS, size=total, p=p_t)
        t = seg_edges[seg] + rng.random(total) * (seg_edges[1] - seg_edges[0])
        times.append(t)
        ys.append((pix // n).astype(np.uint8))
        xs.append((pix % n).astype(np.uint8))
        phas.append(pha)
    if times:
        t = np.concatenate(times)
        order = np.argsort(t, kind="stable")
        t, y, x, p = t[order], np.concatenate(ys)[order], np.concatenate(xs)[order], np.concatenate(phas)[order]
    else:
        t, y, x, p = (np.zeros(0), np.zeros(0, np.uint8), np.zeros(0, np.uint8), np.zeros(0, np.uint8))
    t = ticks_to_ijd(np.round((t - scw.tstart) / TIME_TICK_D).astype(np.int32), scw.tstart)
    header = standard_header(
        f"JMX{unit}", tstart=scw.tstart, tstop=scw.tstop, revol=scw.revolution, swid=scw.scw_id,
        ONTIME=(float(scw.ontime), "[s] good time"), DEADC=(deadc, "dead-time correction (live fraction)"),
        EXPOSURE=(live, "[s] ONTIME x DEADC"), JEMX_NUM=(unit, "JEM-X unit"),
        BKGRATE=(float(bkg_rate.sum()), "[cts/s] simulated background 3.04-34.88 keV"),
        RA_SCX=(scw.ra, "pointing axis RA"), DEC_SCX=(scw.dec, "pointing axis Dec"),
        POSANGLE=(scw.pa, "position angle of the detector axes"),
        SKYHASH=(sky.digest, "sky model digest"), GENVER=(GENERATOR_VERSION, "generator version"),
    )
    return JemxWindow(scw, unit, t, y, x, p, eff, bshape, float(scw.ontime), deadc, header)


# --------------------------------------------------------------------------------------------
# FITS
# --------------------------------------------------------------------------------------------


def ticks_to_ijd(ticks: np.ndarray, tstart: float) -> np.ndarray:
    """Event times from clock ticks, computed as a FITS reader applies TSCAL and TZERO."""
    return np.asarray(ticks, np.float64) * TIME_TICK_D + float(tstart)


def window_path(archive: Any, scw: Any, unit: int) -> Path:
    return Path(archive.path_for(f"jemx{unit}", scw))


def write_window(w: JemxWindow, path: Path) -> Path:
    u = w.unit
    prim = fits.PrimaryHDU(header=w.header)
    ticks = np.round((w.time - w.scw.tstart) / TIME_TICK_D).astype(np.int32)
    cols = fits.ColDefs([
        fits.Column("TIME", "J", unit="d", array=ticks),  # TSCAL1/TZERO1 below: readers see IJD
        fits.Column("DETY", "B", array=w.dety),
        fits.Column("DETX", "B", array=w.detx),
        fits.Column("PHA", "B", array=w.pha),
    ])
    ev = fits.BinTableHDU.from_columns(cols, header=standard_header(
        f"JMX{u}", tstart=w.scw.tstart, tstop=w.scw.tstop, revol=w.scw.revolution,
        swid=w.scw.scw_id, extname=f"JMX{u}-FULL-ALL"))
    ev.header.insert("TFORM1", ("TSCAL1", TIME_TICK_D, "[d] 1/8192 s clock tick"), after=True)
    ev.header.insert("TSCAL1", ("TZERO1", float(w.scw.tstart), "[d] TSTART (IJD)"), after=True)
    eff = fits.ImageHDU(w.efficiency, name=f"JMX{u}-EFFI-MAP")
    bkg = fits.ImageHDU(w.background, name=f"JMX{u}-BKG.-MAP")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fits.HDUList([prim, ev, eff, bkg]).writeto(tmp, overwrite=True, checksum=False)
    os.replace(tmp, path)
    return path


def read_window(path: Path, scw: Any) -> JemxWindow:
    with fits.open(path, memmap=False) as hdul:
        h = hdul[0].header.copy()
        unit = int(h["JEMX_NUM"])
        ev = hdul[f"JMX{unit}-FULL-ALL"].data
        return JemxWindow(  # TIME: ticks * TSCAL + TZERO, the same numbers as ticks_to_ijd
            scw, unit, np.asarray(ev["TIME"], np.float64), np.asarray(ev["DETY"], np.uint8),
            np.asarray(ev["DETX"], np.uint8), np.asarray(ev["PHA"], np.uint8),
            np.asarray(hdul[f"JMX{unit}-EFFI-MAP"].data, np.float32),
            np.asarray(hdul[f"JMX{unit}-BKG.-MAP"].data, np.float32),
            float(h["ONTIME"]), float(h["DEADC"]), h,
        )


def generate_window(archive: Any, scw: Any, unit: int = 2) -> Path:
    """Simulate and write one unit's window file (used by ``mmoda archive build``)."""
    return write_window(simulate_window(scw, unit, archive.sky), window_path(archive, scw, unit))


def is_current(archive: Any, path: Path) -> bool:
    """Whether the file at ``path`` exists and was made from this sky model and generator."""
    if not path.is_file():
        return False
    try:
        h = fits.getheader(path)
    except (OSError, KeyError):
        return False
    return h.get("SKYHASH") == archive.sky.digest and h.get("GENVER") == GENERATOR_VERSION


def load_window(archive: Any, scw: Any, unit: int = 2) -> JemxWindow:
    """Read a window's events, generating (or regenerating) the cached file when needed."""
    if not getattr(archive, "local_data", True):  # a RemoteArchive: the service makes the file
        return read_window(archive.ensure_window(f"jemx{unit}", scw), scw)
    path = window_path(archive, scw, unit)
    if is_current(archive, path):
        try:
            return read_window(path, scw)
        except (OSError, KeyError):
            pass
    w = simulate_window(scw, unit, archive.sky)
    write_window(w, path)
    return w
