"""Banner: current news and known issues, at the top of every panel."""

from __future__ import annotations

import html

import ipywidgets as w

from ..state import BannerState

__all__ = ["BannerPanel"]

STYLE = {"issue": "background:#fff3cd;border-left:4px solid #e0a800",
         "news": "background:#e7f1ff;border-left:4px solid #1f77b4"}


class BannerPanel(w.HTML):
    """One line per banner; empty (invisible) when there is nothing to say."""

    def __init__(self, state: BannerState) -> None:
        super().__init__()
        self.state = state
        state.observe(lambda _: self.draw(), names=["banners", "error"])
        self.add_class("mmoda-banner")
        self.draw()

    def draw(self) -> None:
        rows = [f"<div style='{STYLE.get(b.get('kind'), STYLE['news'])};padding:4px 8px;margin:2px 0'>"
                f"<b>{html.escape(b.get('kind', 'news'))}</b>: {html.escape(b.get('text', ''))}</div>"
                for b in self.state.banners]
        self.value = "".join(rows)
