"""Writers for the ISGRI image products: mosaic FITS, catalogue FITS + DS9 regions, PNG.

Mosaic layout (``isgri_mosa_ima.fits`` conventions, ``instruments.md`` §6.2): HDU 0 primary,
HDU 1 ``GROUPING`` index table (one row per image: IMATYPE, HDU number, band), then four
``ISGR-MOSA-IMA`` images with ``IMATYPE`` = INTENSITY, VARIANCE, SIGNIFICANCE, EXPOSURE, so that
MMODA's "data unit 4" is the SIGNIFICANCE map. Each image carries a RA---TAN/DEC--TAN WCS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..archive.fitsutil import ijd_to_time, standard_header
from ..science.coded_mask import DecodedImage
from ..science.tangent import TangentFrame
from .fitsfile import write_hdus
from .plots import save_png

__all__ = ["write_mosaic", "write_catalog", "write_regions", "plot_mosaic", "IMATYPES"]

IMATYPES = ("INTENSITY", "VARIANCE", "SIGNIFICANCE", "EXPOSURE")
_BUNIT = {"INTENSITY": "count/s", "VARIANCE": "count2/s2", "SIGNIFICANCE": "", "EXPOSURE": "s"}


def write_mosaic(path: Path, image: DecodedImage, frame: TangentFrame, meta: dict[str, Any]) -> Path:
    """The mosaic FITS; ``meta`` has e1, e2, tstart, tstop (IJD), n_scw, osa_version, ontime."""
    e1, e2 = meta["e1"], meta["e2"]
    prim = fits.PrimaryHDU(header=standard_header("IBIS", meta["tstart"], meta["tstop"]))
    prim.header["DETNAM"] = "ISGRI"
    prim.header["CREATOR"] = ("mmoda-hub isgri_image", "program that made this file")
    index = fits.table_to_hdu(Table({
        "MEMBER_POSITION": np.arange(2, 2 + len(IMATYPES), dtype=np.int16),
        "IMATYPE": list(IMATYPES),
        "E_MIN": np.full(len(IMATYPES), e1, np.float32),
        "E_MAX": np.full(len(IMATYPES), e2, np.float32),
    }))
    index.name = "GROUPING"
    wcs_header = frame.wcs_header()
    arrays = {
        "INTENSITY": image.intensity,
        "VARIANCE": image.variance,
        "SIGNIFICANCE": image.significance,
        "EXPOSURE": image.exposure,
    }
    hdus = [prim, index]
    for kind in IMATYPES:
        h = standard_header("IBIS", meta["tstart"], meta["tstop"], extname="ISGR-MOSA-IMA")
        h["HDUCLAS1"] = "IMAGE"
        h["IMATYPE"] = (kind, "type of image")
        h["BUNIT"] = _BUNIT[kind]
        h["E_MIN"], h["E_MAX"] = (float(e1), "[keV]"), (float(e2), "[keV]")
        h["E_MEAN"] = (0.5 * (e1 + e2), "[keV]")
        h["CHANMIN"], h["CHANMAX"] = int(round(e1)), int(round(e2))
        h["TFIRST"], h["TLAST"] = meta["tstart"], meta["tstop"]
        h["ONTIME"] = (float(meta["ontime"]), "[s] sum of window ONTIMEs")
        h["EXPOSURE"] = (float(meta["exposure"]), "[s] sum of window exposures")
        h["NUM_SCW"] = (int(meta["n_scw"]), "science windows in the mosaic")
        h["NSCW_ALL"] = (int(meta.get("n_scw_matched", meta["n_scw"])), "science windows that matched")
        h["OSA_VERS"] = (meta["osa_version"], "rate scale of the intensities")
        h["MOSASPR"] = (0, "nearest-neighbour reprojection")
        h["CREATOR"] = "mmoda-hub isgri_image"
        h.update(wcs_header)
        hdus.append(fits.ImageHDU(np.asarray(arrays[kind], np.float32), header=h))
    write_hdus(hdus, path)
    return path


CATALOG_COLUMNS = ("meta_ID", "src_names", "significance", "ra", "dec", "NEW_SOURCE",
                   "ISGRI_FLAG", "FLAG", "ERR_RAD", "FLUX", "FLUX_ERR")


def catalog_table(rows: list[dict[str, Any]]) -> Table:
    """The MMODA catalogue columns (plus FLUX, FLUX_ERR in cts/s) from detection records."""
    t = Table(
        {
            "meta_ID": np.arange(len(rows), dtype=np.int64),
            "src_names": [r["name"] for r in rows] or np.array([], dtype="U16"),
            "significance": np.array([r["significance"] for r in rows], float),
            "ra": np.array([r["ra"] for r in rows], float),
            "dec": np.array([r["dec"] for r in rows], float),
            "NEW_SOURCE": np.array([int(r["new"]) for r in rows], np.int16),
            "ISGRI_FLAG": np.array([0 if r["new"] else 1 for r in rows], np.int16),
            "FLAG": np.zeros(len(rows), np.int16),
            "ERR_RAD": np.array([r["err_rad"] for r in rows], float),
            "FLUX": np.array([r["flux"] for r in rows], float),
            "FLUX_ERR": np.array([r["flux_err"] for r in rows], float),
        }
    )
    for col, unit in (("ra", "deg"), ("dec", "deg"), ("ERR_RAD", "deg"), ("FLUX", "count/s"),
                      ("FLUX_ERR", "count/s")):
        t[col].unit = unit
    return t


def write_catalog(path: Path, table: Table, meta: dict[str, Any]) -> Path:
    hdu = fits.table_to_hdu(table)
    hdu.name = "ISGR-SRCL-RES"
    hdu.header["RADECSYS"] = "FK5"
    hdu.header["E_MIN"], hdu.header["E_MAX"] = float(meta["e1"]), float(meta["e2"])
    hdu.header["OSA_VERS"] = meta["osa_version"]
    hdu.header["DET_THR"] = (float(meta["threshold"]), "detection threshold (sigma)")
    prim = fits.PrimaryHDU(header=standard_header("IBIS", meta["tstart"], meta["tstop"]))
    write_hdus([prim, hdu], path)
    return path


def write_regions(path: Path, table: Table) -> Path:
    lines = ["# Region file format: DS9 version 4.1", "fk5"]
    for row in table:
        color = "yellow" if row["NEW_SOURCE"] else "green"
        lines.append(
            f'circle({row["ra"]:.5f},{row["dec"]:.5f},0.2) # color={color} '
            f'text={{{row["src_names"]} {row["significance"]:.1f}σ}}'
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: label positions tried in turn around a source (points; horizontal alignment)
_LABEL_OFFSETS = ((9, 9, "left"), (9, -16, "left"), (-9, 9, "right"), (-9, -16, "right"),
                  (9, 24, "left"), (-9, 24, "right"), (9, -31, "left"), (-9, -31, "right"))


def plot_mosaic(path: Path, image: DecodedImage, frame: TangentFrame, table: Table,
                meta: dict[str, Any]) -> Path:
    """A significance map with RA/Dec axes, colour bar, labelled detections and a title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import AsinhNorm
    from matplotlib.patches import Circle
    from matplotlib.text import Text

    sig = image.significance
    covered = np.isfinite(sig)
    rows, cols = np.nonzero(covered)
    fig = plt.figure(figsize=(9.0, 7.6), dpi=110)
    ax = fig.add_subplot(projection=frame.wcs())
    vmax = max(10.0, float(np.nanmax(sig)) if covered.any() else 10.0)
    norm = AsinhNorm(linear_width=2.0, vmin=-5.0, vmax=vmax)
    cmap = plt.get_cmap("inferno").with_extremes(bad="#e6e6e6")
    im = ax.imshow(sig, origin="lower", cmap=cmap, norm=norm, interpolation="nearest")
    if rows.size:
        pad = 5
        ax.set_xlim(cols.min() - pad, cols.max() + pad)
        ax.set_ylim(rows.min() - pad, rows.max() + pad)
    ra_c, dec_c = ax.coords[0], ax.coords[1]
    ra_c.set_axislabel("Right ascension (J2000)")
    dec_c.set_axislabel("Declination (J2000)")
    ra_c.set_major_formatter("hh:mm")
    dec_c.set_major_formatter("dd")
    ra_c.set_ticks_position("bt")
    ra_c.set_ticklabel_position("b")
    ra_c.set_axislabel_position("b")
    dec_c.set_ticks_position("lr")
    # near a pole the declination circles may not cross the left edge: label them wherever they cross
    polar_cap = abs(frame.dec0) > 55.0
    dec_c.set_ticklabel_position("lr" if polar_cap else "l")
    if polar_cap:  # declination circles every 2°, few converging meridians (labels do not collide)
        import astropy.units as u

        dec_c.set_ticks(spacing=2.0 * u.deg)
        ra_c.set_ticks(spacing=(4.0 if abs(frame.dec0) > 80.0 else 2.0) * u.hourangle)
    for c in (ra_c, dec_c):  # converging meridians near a pole: drop labels that would overlap
        c.set_ticklabel(exclude_overlapping=True)
    dec_c.set_axislabel_position("l")
    ax.coords.grid(color="white", alpha=0.25, linestyle=":")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.09 if polar_cap else 0.03)
    ticks = [t for t in (-5, -3, 0, 3, 5, 10, 30, 100, 300, 1000, 3000) if t <= vmax]
    cb.set_ticks(ticks, labels=[str(t) for t in ticks])
    cb.set_label("significance (σ, asinh scale)")
    renderer = fig.canvas.get_renderer()
    placed: list = []  # label boxes already drawn (display coordinates): crowded fields stay legible
    order = np.argsort(-np.asarray(table["significance"], float)) if len(table) else []
    circles = {}  # every source's circle first: a label covers no other source's circle either
    for i in order:
        row = table[int(i)]
        x, y = frame.to_pixel(row["ra"], row["dec"])
        color = "#ffd54f" if row["NEW_SOURCE"] else "#4fc3f7"
        circle = ax.add_patch(Circle((float(x), float(y)), 6.0, fill=False, edgecolor=color, linewidth=1.4))
        circles[int(i)] = (float(x), float(y), color, circle.get_window_extent(renderer))
    for i in order:
        row = table[int(i)]
        x, y, color, _ = circles[int(i)]
        others = [b for j, (*_, b) in circles.items() if j != int(i)]
        label = None
        offsets = [*_LABEL_OFFSETS, *((48, 14 * k, "left") for k in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6))]
        for dx, dy, ha in offsets:  # next to the source, else stacked beside it with a leader line
            if label is not None:
                label.remove()
            far = abs(dx) > 20
            label = ax.annotate(
                f'{row["src_names"]}  {row["significance"]:.0f}σ', (x, y), xytext=(dx, dy),
                textcoords="offset points", color=color, fontsize=9, weight="bold", ha=ha, va="center" if far else "baseline",
                arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6} if far else None,
            )
            label.update_positions(renderer)  # an annotation's text is placed only when drawn
            box = Text.get_window_extent(label, renderer)  # the text only, not its leader line
            if not any(box.overlaps(b) for b in [*placed, *others]):
                break
        placed.append(box)
    t1 = ijd_to_time(meta["tstart"]).utc.iso[:16]
    t2 = ijd_to_time(meta["tstop"]).utc.iso[:16]
    ax.set_title(
        f'{meta.get("instrument", "ISGRI")} {meta["e1"]:g}–{meta["e2"]:g} keV significance mosaic ({meta["osa_version"]})\n'
        f'{t1} – {t2} UTC · {meta["n_scw"]} of {meta.get("n_scw_matched", meta["n_scw"])} science windows · exposure {meta["exposure"] / 1e3:.1f} ks',
        fontsize=10, pad=10,
    )
    save_png(fig, path, bbox_inches="tight")
    plt.close(fig)
    return path
