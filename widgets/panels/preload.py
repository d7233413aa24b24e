"""Start loading the sky view's aladin-lite as soon as the panels are shown.

aladin-lite is a 2.6 MB ES module with its WebAssembly inlined: fetching, parsing and compiling
it takes seconds on a small machine. :class:`SkyViewPreload` (an invisible widget the panels
carry) imports it when the panels first render, while the user fills the form; the sky view's
own loader then finds the module in the page's module map instead of waiting for it after Submit.
"""

from __future__ import annotations

import anywidget

__all__ = ["ASSETS_JS", "SkyViewPreload"]

#: JavaScript shared with the sky view's loader: ``url(path)`` of an asset served by
#: :mod:`mmoda_ext.server.skyview`, ``load()`` the served ipyaladin front end (once per page).
ASSETS_JS = r"""
let mod;
function url(path) {
  const el = document.getElementById("jupyter-config-data");
  const base = el ? (JSON.parse(el.textContent).baseUrl || "/") : "/";
  // the page's _xsrf token in the path: JupyterHub accepts a cors-mode GET with it
  const m = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  const t = encodeURIComponent(m ? decodeURIComponent(m[1]) : "-");
  return new URL(base + "mmoda/" + path.replace("skyview/", "skyview/t/" + t + "/"), location.origin).href;
}
function load() {  // performance marks: the benchmark reads when aladin-lite arrived
  if (!mod) performance.mark("mmoda-aladin-import");
  return (mod ??= import(url("skyview/widget.js")).then((m) => {
    performance.mark("mmoda-aladin-imported");
    return m.default;
  }));
}
"""

_PRELOAD = ASSETS_JS + r"""
export default {
  initialize() {  // not awaited: nothing waits for the preload
    // after the panels have drawn (compiling 2.6 MB of JavaScript would delay the form)
    const start = () => load().then((m) => m.initialize && m.initialize({}))
      .then(() => performance.mark("mmoda-aladin-ready"))
      .catch((e) => console.warn("mmoda: sky view preload", e));
    setTimeout(() => (window.requestIdleCallback ?? setTimeout)(start, { timeout: 1500 }), 300);
  },
  render({ el }) { el.style.display = "none"; },
};
"""


class SkyViewPreload(anywidget.AnyWidget):
    """Invisible: its front end imports aladin-lite (and starts its WebAssembly) in the background."""

    _esm = _PRELOAD
