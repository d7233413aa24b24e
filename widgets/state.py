"""Panel state: what each panel knows and does, as traitlets ``HasTraits`` (no ipywidgets here).

The panels in :mod:`mmoda_widgets.panels` only draw these objects and forward clicks, so all
the logic (the form built from the instrument's parameter specs, tier rules, errors landing on
their field, the catalogue selection that reaches the follow-up request) is tested without a
browser or a kernel. Every state talks to the server only through
:class:`mmoda_ext.client.Client`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, HasTraits, Instance, List, Unicode, observe

from mmoda_ext.client import Client, ClientError

__all__ = ["BannerState", "ClusterState", "FieldState", "JobsState", "ProductsState", "QueryState",
           "selected_catalog", "tier_fields"]

#: the MMODA catalogue columns a selected catalogue carries (dispatcher protocol §8.3)
CATALOG_COLUMNS = ("meta_ID", "src_names", "significance", "ra", "dec", "NEW_SOURCE", "ISGRI_FLAG",
                   "FLAG", "ERR_RAD")
#: parameters the form never shows (set by the panels themselves)
HIDDEN = frozenset({"selected_catalog", "catalog_selected_objects", "query_type", "token"})


class FieldState(HasTraits):
    """One form field, from one entry of an instrument's parameter spec."""

    name = Unicode()
    kind = Unicode()  # float, integer, string, time, select, scw_list...
    unit = Unicode(allow_none=True)
    help = Unicode()
    allowed = Unicode()
    default = AnyTrait()
    value = AnyTrait()
    minimum = Float(allow_none=True)
    maximum = Float(allow_none=True)
    choices = List()
    optional = Bool(False)
    disabled = Bool(False)
    note = Unicode()  # why a choice is missing or a bound is lower (tier rules)
    error = Unicode()  # the API's message when this parameter is at fault

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FieldState:
        return cls(name=spec["name"], kind=spec.get("type", "string"), unit=spec.get("unit"),
                   help=spec.get("help") or "", allowed=spec.get("allowed") or "",
                   default=spec.get("default"), value=spec.get("default"),
                   minimum=spec.get("min"), maximum=spec.get("max"),
                   choices=list(spec.get("choices") or []), optional=bool(spec.get("optional")))

    @property
    def label(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name

    def wire_value(self) -> Any:
        """The value as sent to the API (None for an empty optional field)."""
        v = self.value
        if isinstance(v, str):
            v = v.strip()
        return None if v in (None, "") else v


def tier_fields(specs: list[dict[str, Any]], me: dict[str, Any]) -> list[FieldState]:
    """Form fields for a product's parameter specs, restricted to what the caller's tier allows."""
    fields = []
    for spec in specs:
        if spec["name"] in HIDDEN:
            continue
        f = FieldState.from_spec(spec)
        if f.name == "integral_data_rights" and not me.get("private_data"):
            f.choices = [c for c in f.choices if c == "public"]
            f.value, f.disabled = "public", True
            # the tier's how_to_get_more is about larger requests, not private data: not quoted here
            f.note = (f"private data need the private-data right (granted upon a usage agreement); "
                      f"your tier '{me.get('tier')}' does not have it")
        elif f.name == "osa_version" and not me.get("restricted_osa"):
            f.choices = [c for c in f.choices if "beta" not in str(c)]
            f.note = "OSA11.2-beta is offered to tiers with the restricted-OSA right"
        elif f.name == "max_pointings" and me.get("max_scw"):
            f.maximum = min(f.maximum or me["max_scw"], float(me["max_scw"]))
            f.note = f"your tier '{me.get('tier')}' allows up to {me['max_scw']} science windows"
        fields.append(f)
    return fields


def selected_catalog(table: Any, names: list[str]) -> str:
    """MMODA's ``selected_catalog`` (the api_catalog JSON) for the rows named ``names``."""
    rows = [i for i, n in enumerate(table["src_names"]) if str(n).strip() in set(names)]
    missing = sorted(set(names) - {str(table["src_names"][i]).strip() for i in rows})
    if missing:
        raise ValueError(f"sources not in the catalogue: {', '.join(missing)}")
    cols, descr = [], []
    for c in CATALOG_COLUMNS:
        col = table[c]
        values = [col[i].item() if hasattr(col[i], "item") else col[i] for i in rows]
        cols.append([str(v).strip() if isinstance(v, (str, bytes)) else v for v in values])
        descr.append([c, col.dtype.str])
    return json.dumps({"cat_frame": "fk5", "cat_coord_units": "deg", "cat_column_list": cols,
                       "cat_column_names": list(CATALOG_COLUMNS), "cat_column_descr": descr,
                       "cat_lat_name": "dec", "cat_lon_name": "ra"})


class _ClientState(HasTraits):
    client = Instance(Client)
    error = Unicode()  # the last general (not field-level) error

    def __init__(self, client: Client, **kw: Any) -> None:
        super().__init__(client=client, **kw)


class QueryState(_ClientState):
    """Instrument → product → a form from the declared parameters; check, submit, show the code."""

    instruments = List()
    instrument = Unicode()
    products = List()
    product = Unicode()
    fields = List(Instance(FieldState))
    me = Dict()  # whoami: tier, limits
    science_windows = Dict(allow_none=True, default_value=None)
    message = Unicode()
    job = Dict()  # the last submitted job
    _specs: dict[str, dict]

    def __init__(self, client: Client, **kw: Any) -> None:
        super().__init__(client, **kw)
        self._specs = {}

    def load(self, instrument: str | None = None, product: str | None = None) -> QueryState:
        self.me = self.client.whoami()
        self.instruments = [i["name"] for i in self.client.instruments() if not i["name"].startswith("empty")]
        self.select(instrument or ("isgri" if "isgri" in self.instruments else self.instruments[0]), product)
        return self

    def spec(self, instrument: str) -> dict:
        if instrument not in self._specs:
            self._specs[instrument] = self.client.instrument(instrument)
        return self._specs[instrument]

    def select(self, instrument: str, product: str | None = None) -> None:
        """Choose an instrument (and product): rebuild the fields, keeping values that still apply."""
        spec = self.spec(instrument)
        products = list(spec["products"])
        product = product or (self.product if self.product in products else products[0])
        if product not in products:
            raise ValueError(f"instrument {instrument} has no product {product!r}; products: {', '.join(products)}")
        old = {f.name: f.value for f in self.fields}
        fields = tier_fields(spec["products"][product]["parameters"], self.me)
        for f in fields:
            if f.name in old and not f.disabled and (not f.choices or old[f.name] in f.choices):
                f.value = old[f.name]
        self.instrument, self.products = instrument, products
        self.product = product
        self.fields = fields
        self.science_windows = None

    def field(self, name: str) -> FieldState:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"the {self.instrument} {self.product} form has no field {name!r}")

    def values(self) -> dict[str, Any]:
        return {f.name: v for f in self.fields if (v := f.wire_value()) is not None}

    def _clear(self) -> None:
        self.error = self.message = ""
        for f in self.fields:
            f.error = ""

    def _fail(self, err: ClientError) -> None:
        names = {f.name for f in self.fields}
        if err.parameter in names:
            self.field(err.parameter).error = err.message
        else:
            self.error = err.message

    def check(self) -> dict | None:
        """Validate with the server; errors land on their field; count the science windows."""
        self._clear()
        try:
            out = self.client.check(self.instrument, self.product, **self.values())
        except ClientError as err:
            self._fail(err)
            return None
        self.science_windows = out.get("science_windows")
        sw = self.science_windows
        if sw:
            self.message = (f"{sw['selected']} of {sw['available']} science windows selected "
                            f"(your tier allows {sw['limit']})")
        return out

    def resolve(self) -> bool:
        """Resolve ``src_name`` to RA/DEC on the spot (the server's resolver, offline first)."""
        self._clear()
        params = {k: v for k, v in self.values().items() if k not in ("RA", "DEC")}
        try:
            out = self.client.check(self.instrument, self.product, **params)
        except ClientError as err:
            self._fail(err)
            return False
        for name in ("RA", "DEC"):
            self.field(name).value = round(float(out["params"][name]), 5)
        self.message = f"{params.get('src_name')}: RA {out['params']['RA']:.4f}, DEC {out['params']['DEC']:.4f}"
        return True

    def submit(self, **extra: Any) -> dict | None:
        """Submit the form (plus ``extra`` parameters); the job, or None with the errors set."""
        self._clear()
        try:
            self.job = self.client.submit(self.instrument, self.product, **self.values(), **extra)
        except ClientError as err:
            self._fail(err)
            return None
        self.message = f"job {self.job['job_id']} {self.job['status']}"
        return self.job

    def code(self) -> str:
        """The same request as an unchanged ``oda_api`` script and with the native client."""
        params = self.values()
        args = "".join(f"    {k}={v!r},\n" for k, v in params.items())
        url = self.client.url
        return (
            "# oda_api (an existing MMODA script: only the URL changes)\n"
            "import os\nfrom oda_api.api import DispatcherAPI\n"
            f"disp = DispatcherAPI(url={url!r})\n"
            f"data = disp.get_product(\n    instrument={self.instrument!r},\n    product={self.product!r},\n"
            f"{args}    token=os.environ.get('ODA_TOKEN'),\n)\n\n"
            "# native client: astropy objects\n"
            "from mmoda_ext.client import Client\n"
            f"c = Client({url!r}, token=os.environ.get('ODA_TOKEN'))\n"
            f"products = c.run({self.instrument!r}, {self.product!r},\n{args})\n"
        )


class JobsState(_ClientState):
    """The user's jobs, polled while any is unfinished (progress per science window)."""

    jobs = List()
    poll_interval = Float(0.5)
    polling = Bool(False)
    _thread: threading.Thread | None = None

    def refresh(self) -> list[dict]:
        try:
            self.jobs = self.client.jobs()
        except ClientError as err:
            self.error = err.message
        return self.jobs

    def track(self, job: dict) -> None:
        """Show a job at the top at once and keep polling until every job is finished."""
        self.jobs = [job] + [j for j in self.jobs if j["job_id"] != job["job_id"]]
        self.start()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self.polling = True
            self._thread = threading.Thread(target=self._poll, name="mmoda-jobs-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self.polling = False

    def _poll(self) -> None:
        while self.polling:
            busy = [j for j in self.jobs if not j.get("finished")]
            if not busy:
                break
            updated = {}
            for j in busy:
                try:
                    updated[j["job_id"]] = self.client.status(j["job_id"])
                except ClientError as err:
                    self.error = err.message
            self.jobs = [updated.get(j["job_id"], j) for j in self.jobs]
            time.sleep(self.poll_interval)
        self.polling = False

    def wait(self, timeout: float = 60.0) -> None:
        """Block until polling ends (tests, notebooks)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def cancel(self, job_id: str) -> dict | None:
        try:
            job = self.client.cancel(job_id)
        except ClientError as err:
            self.error = err.message
            return None
        self.jobs = [job if j["job_id"] == job_id else j for j in self.jobs]
        return job


class ProductsState(_ClientState):
    """A finished job's products; the catalogue selection that drives the follow-up request."""

    job = Dict()
    products = List()
    catalog = AnyTrait(allow_none=True)  # astropy Table of the image's sources
    selected = List(Unicode())  # source names
    message = Unicode()

    def load(self, job: dict) -> list:
        """Fetch a job's products as astropy objects."""
        self.error = ""
        try:
            prods = self.client.products(job["job_id"])
        except ClientError as err:
            self.error = err.message
            return []
        self.job = job
        cats = [p for p in prods if p.kind.endswith("_catalog")]
        self.catalog = cats[0].table() if cats else None
        self.selected = []
        self.products = prods
        return prods

    def of_kind(self, *suffixes: str) -> list:
        return [p for p in self.products if p.kind.endswith(suffixes)]

    def follow_up_request(self, product: str) -> tuple[str, dict[str, Any]]:
        """(instrument, params) of a spectrum / light-curve request for the selected sources.

        The image job's request (same time range, windows, band, OSA version) plus
        ``selected_catalog`` naming exactly the chosen sources, as MMODA's catalogue workflow.
        """
        if self.catalog is None:
            raise ValueError("no source catalogue in these products: open an image job first")
        if not self.selected:
            raise ValueError("select one or more sources in the table first")
        params = dict(self.job["params"])
        for key in ("instrument", "product_type", "query_type", "detection_threshold", "src_name"):
            params.pop(key, None)
        first = [i for i, n in enumerate(self.catalog["src_names"]) if str(n).strip() == self.selected[0]][0]
        params["src_name"] = self.selected[0]
        params["RA"], params["DEC"] = float(self.catalog["ra"][first]), float(self.catalog["dec"][first])
        spec = self.client.instrument(self.job["instrument"])["products"][product]["parameters"]
        if "selected_catalog" in {p["name"] for p in spec} or len(self.selected) > 1:
            params["selected_catalog"] = selected_catalog(self.catalog, self.selected)
        return self.job["instrument"], params

    def follow_up(self, product: str) -> dict | None:
        """Submit the spectrum / light curve of the selected sources; the job or None (error set)."""
        self.error = ""
        try:
            instrument, params = self.follow_up_request(product)
            job = self.client.submit(instrument, product, **params)
        except (ValueError, ClientError) as err:
            self.error = getattr(err, "message", str(err))
            return None
        self.message = f"{product} for {', '.join(self.selected)}: job {job['job_id']} {job['status']}"
        return job


    def fit(self, src_name: str, model: str = "powerlaw") -> dict | None:
        """Submit the spectral fit of one source of a spectrum job (same windows and version)."""
        self.error = ""
        params = {k: v for k, v in self.job["params"].items()
                  if k not in ("instrument", "product_type", "query_type", "selected_catalog", "RA", "DEC")}
        try:
            return self.client.submit(self.job["instrument"], "spectral_fit", **{
                **params, "src_name": src_name, "xspec_model": model})
        except ClientError as err:
            self.error = err.message
            return None

    def save(self, folder: str = "mmoda-products") -> list[str]:
        """Write the job's FITS files under ``folder/<job_id>/`` (downloads); their paths."""
        from pathlib import Path

        out = Path(folder) / self.job["job_id"]
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for p in self.products:
            if p.hdul is not None:
                path = out / f"{p.name}.fits"
                p.hdul.writeto(path, overwrite=True)
                paths.append(str(path))
        return paths


class BannerState(_ClientState):
    """Current news and known issues (published by the team through the API)."""

    banners = List()

    def refresh(self) -> list[dict]:
        try:
            self.banners = self.client.banners()
        except ClientError as err:
            self.error = err.message
        return self.banners


class ClusterState(_ClientState):
    """The Dask cluster jobs run on, against the caller's tier limits."""

    info = Dict()

    def refresh(self) -> dict:
        try:
            self.info = self.client.cluster()
        except ClientError as err:
            self.error = err.message
        return self.info

    @observe("info")
    def _check(self, change: dict) -> None:
        lim = (change["new"] or {}).get("limits") or {}
        n = len((change["new"] or {}).get("workers") or [])
        if lim.get("max_workers") and n > lim["max_workers"]:
            self.error = f"{n} workers exceed your tier's {lim['max_workers']}"
