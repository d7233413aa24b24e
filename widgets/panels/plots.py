"""Interactive plots (bqplot: zoom, pan, tooltips) of light curves and spectra, with errors and units."""

from __future__ import annotations

import bqplot as bq
import ipywidgets as w
import numpy as np

from ..data import Curve

__all__ = ["curve_figure", "spectrum_view"]

BLUE, RED = "#1f77b4", "#d62728"


def _errorbars(x: np.ndarray, y: np.ndarray, err: np.ndarray, scales: dict, horizontal: bool = False) -> bq.Lines:
    if horizontal:
        xs, ys = np.stack([x - err, x + err], 1), np.stack([y, y], 1)
    else:
        xs, ys = np.stack([x, x], 1), np.stack([y - err, y + err], 1)
    return bq.Lines(x=xs, y=ys, scales=scales, colors=[BLUE], stroke_width=1, opacities=[0.6])


def curve_figure(c: Curve, title: str, log: bool = False, height: str = "320px") -> bq.Figure:
    """Points with error bars (and the model, if any); axes labelled with units."""
    sx = bq.LogScale() if log else bq.LinearScale()
    sy = bq.LogScale() if log else bq.LinearScale()
    scales = {"x": sx, "y": sy}
    ok = np.isfinite(c.y) & np.isfinite(c.yerr) & ((c.y - c.yerr > 0) if log else True)
    x, y, e = c.x[ok], c.y[ok], c.yerr[ok]
    marks = [_errorbars(x, y, e, scales)]
    if c.xerr is not None:
        marks.append(_errorbars(x, y, c.xerr[ok], scales, horizontal=True))
    pts = bq.Scatter(x=x, y=y, scales=scales, colors=[BLUE], default_size=16,
                     tooltip=bq.Tooltip(fields=["x", "y"], formats=[".4g", ".4g"]))
    marks.append(pts)
    if c.model is not None:
        marks.append(bq.Lines(x=x, y=c.model[ok], scales=scales, colors=[RED], stroke_width=2,
                              labels=["model"], display_legend=True))
    axes = [bq.Axis(scale=sx, label=f"{'energy' if c.x_unit == 'keV' else 'time'} [{c.x_unit}]"),
            bq.Axis(scale=sy, side="left", label=f"rate [{c.y_unit}]", label_offset="50px")]
    fig = bq.Figure(marks=marks, axes=axes, title=title, interaction=bq.interacts.PanZoom(scales={"x": [sx], "y": [sy]}),
                    layout=w.Layout(width="100%", height=height), fig_margin={"top": 40, "bottom": 45, "left": 70, "right": 20})
    fig.add_class("mmoda-plot")
    return fig


def spectrum_view(c: Curve, title: str, fit_text: str = "") -> w.VBox:
    """A spectrum (log-log) and, when a model is known, its residuals in σ below."""
    parts: list[w.Widget] = [curve_figure(c, title, log=True)]
    res = c.residuals
    if res is not None:
        sx, sy = bq.LogScale(), bq.LinearScale()
        ok = np.isfinite(res)
        marks = [bq.Scatter(x=c.x[ok], y=res[ok], scales={"x": sx, "y": sy}, colors=[BLUE], default_size=12),
                 bq.Lines(x=[float(c.x[ok].min()), float(c.x[ok].max())], y=[0, 0], scales={"x": sx, "y": sy},
                          colors=[RED])]
        axes = [bq.Axis(scale=sx, label="energy [keV]"),
                bq.Axis(scale=sy, side="left", label="(data−model)/σ", label_offset="50px")]
        fig = bq.Figure(marks=marks, axes=axes, layout=w.Layout(width="100%", height="170px"),
                        fig_margin={"top": 10, "bottom": 45, "left": 70, "right": 20})
        fig.add_class("mmoda-residuals")
        parts.append(fig)
    if fit_text:
        parts.append(w.HTML(f"<code>{fit_text}</code>"))
    return w.VBox(parts)
