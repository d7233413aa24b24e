"""MMODA's ``empty*`` test instruments (dispatcher-protocol.md §11).

They carry no science: they exist so that a server can be checked against what MMODA's own
conformance tests and ``oda_api`` expect (statuses, roles, parameter errors, products). As in
MMODA, they exist only when ``DISPATCHER_DEBUG_MODE=yes`` is in the server's environment: a
"Real" query waits for a state file, which anyone could use to hold a job slot.

* ``query_type=Dummy`` answers at once.
* ``query_type=Real`` of ``dummy``/``numerical``/``file_dummy`` follows a **state file**, as the
  dispatcher's mock data server does: ``DataServerQuery-status.state`` in the folder
  ``$MMODA_EMPTY_STATE_DIR`` (default: the server's working directory). Absent or
  ``submitted`` → the job waits; ``progress`` → it reports progress; ``done`` → products;
  ``failed`` → the job fails. Tests write that file to drive a job. The wait ends when the
  job is cancelled or the server stops, and after ``$MMODA_EMPTY_MAX_WAIT`` s (default 600).
* ``$MMODA_EMPTY_RUN_LOG``, if set, gets one line (the job id) per completed run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits

from ..access.rights import Rights
from ..errors import AccessError
from .base import ComputeContext, Instrument, Product, ProductFile, ProductSet
from .params import Float, Integer, Json, Param, ScwList, Select, String, StringList

__all__ = ["Empty", "EmptyAsync", "EmptySemiAsync", "STATE_FILE", "state_path"]

STATE_FILE = "DataServerQuery-status.state"
STATES = ("submitted", "progress", "done", "failed")


def state_path() -> Path:
    return Path(os.environ.get("MMODA_EMPTY_STATE_DIR") or os.getcwd()) / STATE_FILE


def read_state() -> str:
    try:
        text = state_path().read_text().strip()
    except FileNotFoundError:
        return "submitted"
    return text if text in STATES else "submitted"


def wait_for_state(ctx: ComputeContext, *, log_submit: bool = False) -> None:
    """Block until the state file says ``done`` (return) or ``failed`` (raise)."""
    path = state_path()
    if log_submit and (not path.exists() or not path.read_text().strip()):
        path.write_text("submitted")
    max_wait = float(os.environ.get("MMODA_EMPTY_MAX_WAIT", "600"))
    t0 = time.monotonic()
    reported = None
    while True:
        ctx.check()  # a cancel or a server stop ends the wait
        state = read_state()
        if state == "done":
            return
        if state == "failed":
            raise RuntimeError("the mock data server reports: failed")
        if state == "progress" and reported != "progress":
            ctx.progress(0.5, "progress")
            reported = "progress"
        if time.monotonic() - t0 > max_wait:
            raise RuntimeError(f"the mock data server did not answer within {max_wait:g} s")
        time.sleep(0.1)


def log_completion(ctx: ComputeContext) -> None:
    """Test hook: append the job folder's name to ``$MMODA_EMPTY_RUN_LOG`` when products are made.

    Lets a crash test count how many times each job really ran to completion.
    """
    path = os.environ.get("MMODA_EMPTY_RUN_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(Path(ctx.outdir).name + "\n")


class JsonText(Json):
    """A structured parameter normalised to its JSON text, as the dispatcher hashes it."""

    def convert(self, value: Any) -> str:
        return json.dumps(super().convert(value))


def query_type_param() -> Select:
    return Select("query_type", default="Real", choices=["Real", "Dummy"],
                  help="Real asks the (mock) data server; Dummy answers at once")


def roles_message(roles: frozenset[str], lacking: dict[str, str]) -> str:
    """MMODA's exact wording for missing roles (``instrument.py:546-566``)."""
    lines = [
        "Unfortunately, your priviledges are not sufficient to make the request for this "
        "particular product and parameter combination.",
        f"- Your priviledge roles include {sorted(roles)}",
        "- You are lacking all of the following roles:",
    ]
    lines += [f" - {role}: {comment}" for role, comment in sorted(lacking.items())]
    lines.append("You can request support if you think you should be able to make this request.")
    return "\n".join(lines)


def check_numerical_roles(params: dict[str, Any], rights: Rights) -> None:
    p = params.get("p", 0.0)
    needed = {"general": "please refer to support for details"}
    if p > 50:
        needed = {
            "general": "general role is needed for p>50",
            "unige-hpc-full": "unige-hpc-full role is needed for p>50 as well",
        }
    lacking = {r: c for r, c in needed.items() if r not in rights.roles}
    if lacking:
        raise AccessError(roles_message(rights.roles, lacking), parameter="p", value=p)


def zero_image(ctx: ComputeContext, name: str) -> ProductFile:
    """The 100x100 float64 zero image MMODA's dummy ``numerical`` product returns."""
    path = ctx.outdir / f"{name}.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((100, 100), dtype=np.float64))]).writeto(path, overwrite=True)
    return ProductFile(name=name, kind="image", fits=path, meta={"oda_name": None, "oda_meta": {}})


#: the dummy plugin's query names (captures/meta.txt; ``oda-api get -i empty`` prints them)
QUERY_NAMES = {
    "dummy": "empty_parameters_dummy_query", "numerical": "numerical_parameters_dummy_query",
    "file_dummy": "file_parameters_dummy_query", "failing": "failing_parameters_dummy_query",
    "parametrical": "parametrical_parameters_dummy_query", "echo": "echo_parameters_dummy_query",
    "restricted": "restricted_parameters_dummy_query", "structured": "structured_param_dummy_query",
    "optional": "optional_param_dummy_query",
}


class _EmptyProduct(Product):
    #: Real queries wait for the state file
    follows_state = False
    log_submit = False

    def __init__(self, name: str, description: str = "", params: list[Param] | None = None) -> None:
        self.name = name
        self.query_name = QUERY_NAMES.get(name, "")
        self.description = description or f"MMODA test product '{name}'"
        self._params = params or []

    def params(self) -> list[Param]:
        return [query_type_param(), *self._params]

    def run(self, params: dict[str, Any], ctx: ComputeContext) -> ProductSet:
        if self.follows_state and params.get("query_type") == "Real":
            wait_for_state(ctx, log_submit=self.log_submit)
        out = self.make(params, ctx)
        ctx.progress(1.0, "done")
        log_completion(ctx)
        return out

    def make(self, params: dict[str, Any], ctx: ComputeContext) -> ProductSet:
        return ProductSet(messages=[])


class Dummy(_EmptyProduct):
    follows_state = True


class DummyLogSubmit(Dummy):
    log_submit = True


class ScwEcho(Dummy):
    """``empty-async`` dummy: on done, ``input_param_scw_list`` echoes the science windows."""

    def make(self, params, ctx):
        return ProductSet(meta={"input_param_scw_list": params.get("scw_list") or []})


class Numerical(_EmptyProduct):
    follows_state = True

    def check(self, params, rights):
        check_numerical_roles(params, rights)

    def make(self, params, ctx):
        return ProductSet(products=[zero_image(ctx, self.name)])


class Failing(_EmptyProduct):
    def run(self, params, ctx):
        raise RuntimeError("InternalError(): Instrument: empty, product: failing")


class Echo(_EmptyProduct):
    """Echo every parameter in its default unit (``ang_deg`` in arcsec, ``energ`` in keV)."""

    def make(self, params, ctx):
        echo = {k: v for k, v in params.items() if k != "query_type"}
        if "ang_deg" in echo:
            echo["ang_deg"] = float((echo["ang_deg"] * u.deg).to_value(u.arcsec))
        if "energ" in echo:
            echo["energ"] = float((echo["energ"] * u.MeV).to_value(u.keV))
        return ProductSet(meta={"echo": echo})


def p_param(max_value: float | None = 800.0) -> Float:
    return Float("p", default=10.0, unit="W", max=max_value, help="a power (MMODA's dummy parameter)")


def empty_products(async_numerical: bool = False) -> dict[str, Product]:
    prods: list[Product] = [
        Dummy("dummy", "no data products"),
        Numerical("numerical", "a 100x100 zero image; needs the role 'general'", [p_param()]),
        Numerical("file_dummy", "as numerical, with an optional file URL",
                  [p_param(), String("dummy_file", optional=True, help="file URL")]),
        Failing("failing", "always fails"),
        _EmptyProduct("parametrical", "no products", [Float("sb", default=10.0, unit="keV")]),
        Echo("echo", "echoes its parameters", [
            Float("ang", default=1.0, unit="arcsec"),
            Float("ang_deg", default=1.0, unit="deg"),
            Float("energ", default=1.0, unit="MeV"),
        ]),
        Echo("restricted", "bounded parameters", [
            Integer("bounded_int_par", default=5, min=2, max=8),
            Float("bounded_float_par", default=5.0, min=2.2, max=7.7),
            Select("string_select_par", default="spam", choices=["spam", "eggs", "ham"]),
        ]),
        Echo("structured", "a structured (JSON) parameter",
             [JsonText("struct", default=json.dumps({"a": [1, 2]}))]),
        Echo("optional", "optional parameters", [
            Float("optional_def_float", default=5.0, optional=True),
            Float("optional_def_none", default=None, optional=True),
        ]),
    ]
    return {p.name: p for p in prods}


class Empty(Instrument):
    name = "empty"
    description = "MMODA test instrument (no science): statuses, roles, parameter errors"

    def __init__(self) -> None:
        self.products = empty_products()

    def params(self):
        return [StringList("p_list", default=[], empty=[], help="input product list")]


class EmptyAsync(Instrument):
    name = "empty-async"
    instrument_query_name = "empty_async_instrument_query"
    description = "MMODA asynchronous test instrument (Real queries follow the state file)"

    def __init__(self) -> None:
        self.products = {
            "dummy": ScwEcho("dummy", "echoes scw_list when done"),
            "dummy-log-submit": DummyLogSubmit("dummy-log-submit", "writes 'submitted' into an empty state file"),
            "numerical": Numerical("numerical", "a 100x100 zero image", [
                p_param(None), String("string_like_name", default="default-name"),
            ]),
        }

    def params(self):
        return [ScwList("scw_list", help="science windows")]


class SemiAsync(_EmptyProduct):
    """p = -1 fails; 0 <= p < 4 waits for the state file; otherwise done at once."""

    def check(self, params, rights):
        if self.name == "numerical":
            check_numerical_roles(params, rights)

    def run(self, params, ctx):
        p = params.get("p", 10.0)
        if p == -1:
            raise RuntimeError("p = -1 makes empty-semi-async fail")
        if 0 <= p < 4:
            wait_for_state(ctx)
        ctx.progress(1.0, "done")
        log_completion(ctx)
        return ProductSet(products=[zero_image(ctx, self.name)] if self.name == "numerical" else [])


class EmptySemiAsync(Instrument):
    name = "empty-semi-async"
    description = "MMODA semi-asynchronous test instrument: the status depends on p"

    def __init__(self) -> None:
        self.products = {
            "dummy": SemiAsync("dummy", "status from p", [p_param(None)]),
            "numerical": SemiAsync("numerical", "status from p; a 100x100 zero image", [p_param(None)]),
        }


__instruments__ = [Empty, EmptyAsync, EmptySemiAsync]
#: registered only with DISPATCHER_DEBUG_MODE=yes (see mmoda_ext.instruments.registry)
__debug_only__ = True
