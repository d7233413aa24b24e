"""Jobs panel: the user's jobs with live progress (per science window), feedback, cancel, products."""

from __future__ import annotations

import html
import time
from collections.abc import Callable

import ipywidgets as w

from ..state import JobsState

__all__ = ["JobsPanel"]

COLORS = {"done": "success", "failed": "danger", "cancelled": "warning", "progress": "info", "submitted": ""}


def describe(job: dict) -> str:
    p = job.get("params") or {}
    what = f"<b>{html.escape(job['instrument'])} {html.escape(job['product'])}</b>"
    where = html.escape(str(p.get("src_name") or "")) + (f" {p['T1'][:10]}…{p['T2'][:10]}" if p.get("T1") and p.get("T2") else "")
    return f"{what} {where} <span style='color:#888'>{job['job_id'][:10]}</span>"


class JobRow(w.HBox):
    """One job: label, progress bar, status text, buttons."""

    def __init__(self, job: dict, on_cancel: Callable, on_show: Callable) -> None:
        self.job_id = job["job_id"]
        self.label = w.HTML(layout=w.Layout(width="380px"))
        self.bar = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="200px"))
        self.text = w.HTML(layout=w.Layout(width="330px"))
        self.cancel = w.Button(description="cancel", icon="stop", layout=w.Layout(width="90px"))
        self.show = w.Button(description="show products", icon="image", layout=w.Layout(width="130px"))
        self.cancel.on_click(lambda _: on_cancel(self.job_id))
        self.show.on_click(lambda _: on_show(self.job))
        super().__init__([self.label, self.bar, self.text, self.cancel, self.show])
        self.add_class("mmoda-job")
        self.update(job)

    def update(self, job: dict) -> None:
        self.job = job
        status = job["status"]
        self.label.value = describe(job)
        self.bar.value = float(job.get("progress") or (1.0 if status == "done" else 0.0))
        self.bar.bar_style = COLORS.get(status, "")
        msg = job.get("error") if status == "failed" else job.get("message") or ""
        msg = "" if msg == status else msg
        fb = "".join(f"<br><span style='color:#8a4b00'>team: {html.escape(f.get('message', ''))}</span>"
                     for f in job.get("feedback") or [])
        self.text.value = f"<span class='mmoda-status-{status}'>{status}</span> {html.escape(str(msg))}{fb}"
        self.cancel.disabled = bool(job.get("finished"))
        self.show.disabled = status != "done"


class JobsPanel(w.VBox):
    """All jobs of the user, newest first; rows update in place while jobs run."""

    def __init__(self, state: JobsState, on_show: Callable[[dict], None] | None = None) -> None:
        self.state, self.on_show = state, on_show or (lambda job: None)
        self.rows: dict[str, JobRow] = {}
        self.refresh_btn = w.Button(description="refresh", icon="refresh")
        self.refresh_btn.on_click(lambda _: (state.refresh(), state.start()))
        self.list = w.VBox()
        self.error = w.HTML()
        self.updated = w.HTML()
        state.observe(lambda _: self._draw(), names="jobs")
        state.observe(lambda c: setattr(self.error, "value", html.escape(c["new"])), names="error")
        super().__init__([w.HBox([self.refresh_btn, self.updated]), self.error, self.list])
        self.add_class("mmoda-jobs")
        self._draw()

    def _draw(self) -> None:
        rows = []
        for job in self.state.jobs:
            row = self.rows.get(job["job_id"])
            if row is None:
                row = self.rows[job["job_id"]] = JobRow(job, self.state.cancel, self.on_show)
            else:
                row.update(job)
            rows.append(row)
        if [r.job_id for r in rows] != [r.job_id for r in self.list.children]:
            self.list.children = rows
        self.updated.value = f"<span style='color:#888'>{len(rows)} jobs · updated {time.strftime('%H:%M:%S')}</span>"
