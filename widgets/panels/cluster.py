"""Cluster panel: the Dask cluster jobs run on, against the tier's limits, and its dashboard."""

from __future__ import annotations

import html

import ipywidgets as w

from ..state import ClusterState

__all__ = ["ClusterPanel"]


def _gib(n: float | None) -> str:
    return "—" if not n else f"{n / 2**30:.1f} GiB"


class ClusterPanel(w.VBox):
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.table = w.HTML()
        self.refresh_btn = w.Button(description="refresh", icon="refresh")
        self.refresh_btn.on_click(lambda _: state.refresh())
        state.observe(lambda _: self.draw(), names=["info", "error"])
        super().__init__([self.refresh_btn, self.table])
        self.add_class("mmoda-cluster")
        self.draw()

    def draw(self) -> None:
        info, s = self.state.info or {}, self.state
        lim = info.get("limits") or {}
        workers = info.get("workers") or []
        threads = sum(x["threads"] for x in workers)
        memory = sum(x["memory"] for x in workers)
        dash = info.get("dashboard")
        link = (f"<a href='{html.escape(dash)}' target='_blank'>Dask dashboard</a> · the "
                "<i>Dask</i> side bar (dask-labextension) shows its panes" if dash else "no dashboard")
        rows = [("kind", info.get("kind", "?"), ""),
                ("workers", len(workers), lim.get("max_workers") or "—"),
                ("cores per worker", max((x["threads"] for x in workers), default=0), lim.get("worker_cores") or "—"),
                ("memory per worker", _gib(max((x["memory"] for x in workers), default=0)), _gib(lim.get("worker_memory"))),
                ("total threads / memory", f"{threads} / {_gib(memory)}", ""),
                ("science windows per request", "", lim.get("max_scw") or "—")]
        body = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows)
        err = f"<div style='color:#b00020'>{html.escape(s.error)}</div>" if s.error else ""
        note = html.escape(info.get("message", ""))
        self.table.value = (f"<table class='mmoda-cluster-table'><tr><th></th><th>now</th><th>your tier's limit</th></tr>"
                            f"{body}</table><div>{link}</div><div style='color:#666'>{note}</div>{err}")
