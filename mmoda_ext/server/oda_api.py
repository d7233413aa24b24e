"""The dispatcher-compatible door: what ``oda_api`` 1.3.5 calls (dispatcher-protocol.md).

``/run_analysis`` (GET and POST form alike), ``/api/par-names``, ``/api/instr-list`` and
``/instr-list``, ``/api/meta-data`` and ``/meta-data``, ``/refresh_token``,
``/update_token_email_options``, ``/call_back``, ``/inspect-state``. Every one is mounted at
the base URL and again under ``/dispatch-data`` (MMODA's public path).

Answers follow the real dispatcher: the statuses ``submitted``/``progress``/``done``/
``failed``; ``job_monitor.job_id`` stable over a poll sequence; ``exit_status`` complete on
every answer; 400 bodies with ``error``; 403 for tokens and roles; no NaN; a repeated
identical ``new`` request answers ``done`` from the stored products at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import string
import time
from pathlib import Path
from typing import Any

from ..access.tokens import TokenError, refresh_token, update_email_options
from ..errors import AccessError, ParameterError, PublicError, shown
from ..instruments import registry
from ..instruments.base import PASSTHROUGH, Instrument
from ..jobs import ids
from ..models import Job, JobStatus
from . import encode
from .base import MAX_JSON_DEPTH, MMODAHandler, check_session_id, json_depth, log
from .encode import encode_products, json_safe

__all__ = ["default_handlers"]

#: request keys of the protocol itself (never parameters, never "not used")
PROTOCOL_KEYS = frozenset(PASSTHROUGH) | {"verbose", "client-name", "T_format"}

#: keys whose JSON-looking text is kept as text (dispatcher_query.py:898-927)
KEEP_TEXT = frozenset({"catalog_selected_objects", "selected_catalog"})

VERSION = "1.3.6-mmoda-hub"

#: a finished job's encoded products (oda_api form), kept beside them for repeated requests;
#: the name carries a digest of the encoder's source, so a new encoder never serves old text
ENCODED_FILE = f".oda_api-products-{hashlib.sha256(Path(encode.__file__).read_bytes()).hexdigest()[:12]}.json"
#: the key (and placeholder) of that text inside an answer
ENCODED = "\x00mmoda-encoded-products\x00"


class DispatcherError(Exception):
    """An answer other than 200, already shaped for the client."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error_message") or body.get("error"))
        self.status = status
        self.body = body


def error_body(kind: str, message: str, debug: str = "") -> dict[str, Any]:
    """The dispatcher's ``APIerror`` body: the client reads ``error`` (400) or ``error`` (403)."""
    message = message if len(message) <= 4000 else message[:4000] + "..."
    return {
        "error_message": message,
        "error": f"{kind}():{message}",
        "debug_message": debug,
        "cdci_data_analysis_version": VERSION,
        "oda_api_version": "1.3.5",
        "installed_instruments": list(registry()),
    }


def not_understood(message: str, debug: str = "") -> DispatcherError:
    return DispatcherError(400, error_body("RequestNotUnderstood", message, debug))


def random_session_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))


class DispatcherHandler(MMODAHandler):
    """Argument decoding shared by the dispatcher endpoints."""

    def dispatcher_args(self) -> dict[str, Any]:
        """Union of query and form values, decoded as the dispatcher does."""
        names = set(self.request.query_arguments) | set(self.request.body_arguments)
        out: dict[str, Any] = {}
        for name in names:
            values = [v.decode("utf-8", "replace") for v in
                      self.request.query_arguments.get(name, []) + self.request.body_arguments.get(name, [])]
            if name == "scw_list":
                if len(values) == 1:
                    values = [v.strip() for v in values[0].split(",") if v.strip()] if values[0] != "\x00" else []
                out[name] = values if values else None
                continue
            value: Any = values[-1]
            if value == "\x00":
                value = None
            elif value.lstrip()[:1] in ("[", "{"):
                if json_depth(value) > MAX_JSON_DEPTH:
                    raise not_understood(f"'{name[:64]}' is JSON nested deeper than {MAX_JSON_DEPTH} levels")
                if name not in KEEP_TEXT:
                    try:
                        decoded = json.loads(value)
                    except (ValueError, TypeError):
                        decoded = None
                    if isinstance(decoded, (dict, list)):
                        value = decoded
            out[name] = value
        return out

    def instrument(self, name: str | None) -> Instrument:
        known = list(registry())
        if not isinstance(name, str) or name not in registry():
            message = f'instrument: {shown(name)}, known: {known}'
            raise DispatcherError(400, error_body("InstrumentNotRecognized", message))
        return self.manager.instrument(name)

    def write_dispatcher_error(self, err: DispatcherError) -> None:
        self.write_json(err.body, status=err.status)


def par_names(inst: Instrument, product: str | None) -> list[str | None]:
    """``/api/par-names``: the request names in MMODA's order (input list may be ``null``)."""
    products = [product] if product else list(inst.products)
    declared: list[str] = []
    for prod in products:
        for name in inst.param_set(prod).names():
            if name not in declared:
                declared.append(name)
    head = ["src_name", "RA", "DEC", "T1", "T_format", "T2", "token"]
    input_list = next((n for n in ("scw_list", "p_list") if n in declared), None)
    rest = [n for n in declared if n not in head and n not in ("scw_list", "p_list", "query_type",
                                                               "selected_catalog", "catalog_selected_objects")]
    return [*[n for n in head if n in declared or n in ("T_format", "token")], input_list,
            "selected_catalog", *rest]


def meta_entry(spec: dict) -> dict:
    """One parameter in the dispatcher's ``/meta-data`` form."""
    restrictions: dict[str, Any] = {"is_optional": bool(spec.get("optional"))}
    if spec.get("min") is not None:
        restrictions["min_value"] = spec["min"]
    if spec.get("max") is not None:
        restrictions["max_value"] = spec["max"]
    if spec.get("choices"):
        restrictions["allowed_values"] = list(spec["choices"])
    if spec.get("type") == "json":
        restrictions["schema"] = {"oneOf": [{"type": "object"}, {"type": "array"}]}
    units = spec.get("unit")
    if units is None and spec.get("type") in ("string", "select"):
        units = "str"
    if spec.get("type") == "time":
        units = "isot"
    return {"name": spec["name"], "units": units, "value": spec.get("default"),
            "restrictions": restrictions, "help": spec.get("help", "")}


def query_name(inst: Instrument, product: str) -> str:
    """The dispatcher's query name of a product (``empty_parameters_dummy_query``, ``isgri_image_query``)."""
    return inst.product(product).query_name or f"{product}_query"


def meta_data(inst: Instrument, product: str | None) -> list:
    """``/api/meta-data``: ``[[{"instrumet": ...}, {"prod_dict": ...}, [query]...]]``."""
    common = {"src_name", "RA", "DEC", "T1", "T2"}
    catalog = {"selected_catalog", "catalog_selected_objects"}  # the instrument query's, as MMODA
    prods = [product] if product else list(inst.products)
    first = inst.param_set(prods[0]).spec()
    src = [{"query_name": inst.source_query_name}]
    for spec in first:
        if spec["name"] in common:
            src.append(meta_entry(spec))
            if spec["name"] == "T1":
                src.append({"name": "T_format", "units": "str", "value": "isot"})
    src.append({"name": "token", "units": "str", "value": None, "restrictions": {"is_optional": True}})
    inst_names = {p.name for p in inst.params()}
    instrument_query = [{"query_name": inst.instrument_query_name or f"{inst.name}_instrument_query"}] + [
        meta_entry(s) for s in first if s["name"] in inst_names] + [
        {"name": "selected_catalog", "units": None, "value": None, "restrictions": {"is_optional": True}}]
    out: list[Any] = [
        {"instrumet": inst.name},
        {"prod_dict": {p: query_name(inst, p) for p in inst.products}},
        src,
        instrument_query,
    ]
    for prod in prods:
        own = {p.name for p in inst.product(prod).params()} - {"query_type"} - catalog
        out.append([{"query_name": query_name(inst, prod)}, {"product_name": prod}] + [
            meta_entry(s) for s in inst.param_set(prod).spec() if s["name"] in own])
    return [out]


class RunAnalysisHandler(DispatcherHandler):
    """``/run_analysis``: submit and poll, the way ``DispatcherAPI.poll`` does."""

    async def get(self) -> None:
        await self.run_analysis()

    async def post(self) -> None:
        await self.run_analysis()

    async def run_analysis(self) -> None:
        t0 = time.time()
        try:
            body = await self._run(t0)
        except DispatcherError as err:
            self.write_dispatcher_error(err)
            return
        except TokenError as err:
            self.write_json(error_body("RequestNotAuthorized", err.message), status=403)
            return
        except PublicError as err:
            self.write_json(error_body("RequestNotUnderstood", err.message), status=err.status)
            return
        except Exception as err:  # the dispatcher's catch-all: 500 with the error text
            log.exception("run_analysis failed")
            self.write_json({"message": "request not valid", "error_message": type(err).__name__,
                             "error": "internal error"}, status=500)
            return
        status = body.pop("_status", 200)
        encoded = body["products"].pop(ENCODED, None)
        if encoded is None:
            self.write_json(body, status=status)
            return
        # the stored, ready-encoded products are spliced into the answer as text: a repeated
        # request of a finished job costs no FITS reading, no base64 and no JSON encoding
        small = json.dumps(json_safe(body["products"]), allow_nan=False).encode()
        body["products"] = ENCODED
        head, _, tail = json.dumps(json_safe(body), allow_nan=False).partition(json.dumps(ENCODED))
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.write(head.encode())
        if encoded == b"{}" or small == b"{}":
            self.write(encoded if small == b"{}" else small)
        else:  # {...encoded..., ...small...}
            self.write(encoded[:-1])
            self.write(b", ")
            self.write(small[1:])
        self.finish(tail.encode())

    def encoded_products(self, job: Job) -> bytes:
        """The JSON of a finished job's encoded products, made once and kept in its folder."""
        path = job.outdir / ENCODED_FILE
        try:
            data = path.read_bytes()
            if data.startswith(b"{") and data.endswith(b"}"):  # a cut file is made again
                return data
        except OSError:
            pass
        data = json.dumps(json_safe(encode_products(job.products(), job.instrument, job.product)),
                          allow_nan=False).encode()
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:  # a read-only job folder still answers, only slower
            tmp.unlink(missing_ok=True)
        return data

    async def _run(self, t0: float) -> dict[str, Any]:
        args = self.dispatcher_args()
        if not args:
            raise not_understood("the request is empty: it needs at least instrument, product_type and query_status")
        for key in ("instrument", "query_status"):
            if not args.get(key):
                raise not_understood(f"the request has no '{key}'; it is required")
        for key in ("instrument", "product_type", "query_status", "query_type", "job_id"):
            if args.get(key) is not None and not isinstance(args[key], str):
                raise not_understood(f"'{key}' must be a text, not a {type(args[key]).__name__}")
        claims = self.claims_for(self.request_token())
        rights = self.rights_for(claims)
        inst = self.instrument(args["instrument"])
        product = args.get("product_type")
        if not product:
            raise not_understood(f"the request has no 'product_type'; products of {inst.name}: {sorted(inst.products)}")
        if product not in inst.products:
            raise not_understood(f"Instrument {inst.name} has no product {shown(product)}; "
                                 f"products: {sorted(inst.products)}")
        query_type = args.get("query_type") or "Real"
        if query_type not in ("Real", "Dummy"):
            raise not_understood(f"query_type={shown(query_type)} is not allowed; allowed: Real, Dummy")
        query_status = str(args["query_status"])
        session_id = check_session_id(args.get("session_id")) or random_session_id()
        names = set(inst.param_set(product).names()) | {"T_format"}
        raw = {k: v for k, v in args.items() if k in names}
        if "query_type" in names:
            raw["query_type"] = query_type
        unused = sorted(k for k in args if k not in names and k not in PROTOCOL_KEYS)
        if args.get("scw_list") and "scw_list" not in names:
            unused = sorted({*unused, "scw_list"})

        try:
            _, params = await asyncio.to_thread(self.manager.prepare, inst.name, product, raw, rights)
        except AccessError as err:
            return self.refused(err, args, session_id, inst, product, query_type, rights, t0)
        except PublicError as err:
            raise not_understood(err.message) from None
        hashed = {**params, "instrument": inst.name, "product_type": product, "query_type": query_type}
        sub = None if self.manager.is_anonymous(rights) else rights.user
        expected = ids.job_id(hashed, sub)
        given = args.get("job_id")
        if given and str(given) != expected:
            if query_status == "new":
                raise not_understood(
                    f"the job_id {shown(given)} does not match the request (which gives {expected})")
            raise DispatcherError(403, error_body(
                "RequestNotAuthorized", "Request not authorized",
                f"The provided job_id={shown(given)} does not match with the job_id={expected} "
                "derived from the request parameters"))

        job = None
        if query_status not in ("new", "ready"):
            try:
                job = self.manager.get(expected, rights)
            except PublicError:
                job = None
            if job is not None and job.status is JobStatus.DONE and not self.manager.products_ok(job):
                job = None  # damaged products: the submission below runs the job again
        if job is None:
            try:
                job = await asyncio.to_thread(
                    self.manager.submit, inst.name, product, raw, rights, query_type=query_type,
                    session_id=session_id, client=self.client_address())
            except AccessError as err:
                return self.refused(err, args, session_id, inst, product, query_type, rights, t0)
            except PublicError as err:
                if err.status == 429:
                    raise DispatcherError(429, error_body("TooManyRequests", err.message)) from None
                raise not_understood(err.message) from None
        first = query_status == "new"
        if first:
            job = await self.wait_briefly(job, rights)
        comment = ""
        if unused:
            comment = (f"Please note that argument {unused[0]} is not used" if len(unused) == 1 else
                       f"Please note that arguments {', '.join(unused)} are not used")
        return self.answer(job, args, params, session_id, comment, first, t0)

    async def wait_briefly(self, job: Job, rights) -> Job:
        """Quick jobs answer ``done`` at once, as synchronous MMODA instruments do."""
        deadline = time.monotonic() + float(self.settings.get("mmoda_sync_wait", 2.0))
        while not job.status.finished and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            job = self.manager.get(job.job_id, rights)
        return job

    def analysis_parameters(self, args: dict, params: dict) -> dict:
        out = {k: v for k, v in args.items() if k != "token"}
        out.update({k: v for k, v in params.items() if k != "query_type"})
        return out

    def api_code(self, args: dict, params: dict) -> str:
        base = f"{self.request.protocol}://{self.request.host}"
        par = {k: v for k, v in {**args, **params}.items()
               if k not in ("token", "session_id", "job_id", "query_status", "product_type", "query_type")}
        par["product"] = args.get("product_type")
        par["product_type"] = args.get("query_type") or "Real"
        text = json.dumps(par, indent=4, sort_keys=True).replace(": null", ": None")
        text = text.replace(": true", ": True").replace(": false", ": False")
        return (f"from oda_api.api import DispatcherAPI\ndisp = DispatcherAPI(url='{base}', instrument='mock')\n\n"
                f"par_dict = {text}\n\ndata_collection = disp.get_product(**par_dict)\n")

    def answer(self, job: Job, args: dict, params: dict, session_id: str, comment: str,
               first: bool, t0: float) -> dict[str, Any]:
        status = job.status.wire
        exit_status = {"job_status": status, "status": 0, "message": "", "error_message": "",
                       "debug_message": "", "comment": comment, "warning": ""}
        if job.feedback:
            notes = "; ".join(str(f.get("message", "")) for f in job.feedback)
            exit_status["comment"] = (comment + " " if comment else "") + f"Feedback from the MMODA team: {notes}"
        if status == "failed":
            exit_status["status"] = 1
            exit_status["message"] = ("The job was cancelled" if job.status is JobStatus.CANCELLED
                                      else "Error when getting query products")
            exit_status["error_message"] = f"Instrument: {job.instrument}, product: {job.product}\n\n{job.error or ''}"
            exit_status["debug_message"] = job.error or ""
        reports = [{"job_id": job.job_id, "session_id": session_id,
                    "instrument_name": job.instrument, "action": status, "node_id": "mmoda",
                    "message": m} for m in job.messages[-50:]]
        job_monitor = {"job_id": job.job_id, "session_id": session_id,
                       "status": status, "progress": job.progress, "full_report_dict_list": reports}
        products: dict[str, Any] = {}
        if first or status in ("done", "failed"):
            products["analysis_parameters"] = self.analysis_parameters(args, params)
            products["api_code"] = self.api_code(args, params)
        if status == "done":
            products[ENCODED] = self.encoded_products(job)
            products.update({"session_id": session_id, "job_id": job.job_id,
                             "input_prod_list": params.get("scw_list") or params.get("p_list") or []})
        return {"query_status": status, "products": products, "exit_status": exit_status,
                "job_monitor": job_monitor, "job_status": status, "session_id": session_id,
                "time_request": t0}

    def refused(self, err: AccessError, args, session_id, inst, product, query_type, rights, t0) -> dict:
        """Roles or tier not sufficient: 403 with a run_analysis body (captures/unauth.txt)."""
        try:
            params = inst.parse(product, {k: v for k, v in args.items()
                                          if k in set(inst.param_set(product).names()) | {"T_format"}})
            hashed = {**params, "instrument": inst.name, "product_type": product, "query_type": query_type}
            jid = ids.job_id(hashed, None if self.manager.is_anonymous(rights) else rights.user)
        except PublicError:
            jid = "0" * ids.ID_LENGTH
        exit_status = {"job_status": "failed", "status": 1, "message": err.message, "error_message": "",
                       "debug_message": "", "comment": "", "warning": ""}
        return {"query_status": "failed", "products": {}, "exit_status": exit_status,
                "job_monitor": {"job_id": jid, "session_id": session_id, "status": "failed"},
                "job_status": "failed", "session_id": session_id, "status_code": 403,
                "time_request": t0, "_status": 403}


class ParNamesHandler(DispatcherHandler):
    def get(self) -> None:
        try:
            inst = self.instrument(self.get_argument("instrument", None))
            product = self.get_argument("product_type", None)
            if product and product not in inst.products:
                raise not_understood(f"Instrument {inst.name} has no product {product!r}; "
                                     f"products: {sorted(inst.products)}")
        except DispatcherError as err:
            self.write_dispatcher_error(err)
            return
        self.write_json(par_names(inst, product))


class InstrListHandler(DispatcherHandler):
    def get(self) -> None:
        try:
            self.current_rights()
        except TokenError as err:
            self.write_json(error_body("RequestNotAuthorized", err.message), status=403)
            return
        self.write_json(list(registry()))


class MetaDataHandler(DispatcherHandler):
    def get(self) -> None:
        try:
            self.current_rights()
            inst = self.instrument(self.get_argument("instrument", None))
            product = self.get_argument("product_type", None)
            if product and product not in inst.products:
                raise not_understood(f"Instrument {inst.name} has no product {product!r}")
        except TokenError as err:
            self.write_json(error_body("RequestNotAuthorized", err.message), status=403)
            return
        except DispatcherError as err:
            self.write_dispatcher_error(err)
            return
        self.write_json(meta_data(inst, product))


class TokenHandler(DispatcherHandler):
    """``/refresh_token`` and ``/update_token_email_options``: the body is the raw JWT."""

    def get(self) -> None:
        try:
            claims = self.claims_for(self.request_token())
            if claims is None:
                raise AccessError("A token is needed (argument token).", parameter="token")
            if self.request.path.rstrip("/").endswith("refresh_token"):
                text = self.get_argument("refresh_interval", "604800")
                try:
                    interval = float(text)
                except ValueError:
                    raise ParameterError("refresh_interval", text, "a number of seconds") from None
                max_interval = float(self.settings.get("mmoda_token_max_refresh_interval", 604800))
                new = refresh_token(claims, self.token_secret, interval=interval, max_interval=max_interval)
            else:
                opts = {k: self.get_argument(k) for k in ("msfail", "mssub", "msdone", "mstout", "intsub", "tem")
                        if self.get_argument(k, None) is not None}
                new = update_email_options(claims, self.token_secret, **opts)
        except TokenError as err:
            self.write_json(error_body("RequestNotAuthorized", err.message), status=403)
            return
        except ParameterError as err:
            self.write_json(error_body("RequestNotUnderstood", err.message), status=400)
            return
        except AccessError as err:
            self.write_json(error_body("RequestNotAuthorized", err.message), status=403)
            return
        self.write_text(new)


class CallBackHandler(DispatcherHandler):
    """Backends report to MMODA here; MMODA Hub's jobs report to the store, so this only answers."""

    def get(self) -> None:
        t0 = time.time()
        self.write_json({"time_spent_s": time.time() - t0})

    post = get


class InspectStateHandler(DispatcherHandler):
    """``/inspect-state``: an operator's view of the jobs (role ``job manager`` or admin)."""

    def get(self) -> None:
        try:
            rights = self.current_rights()
        except TokenError as err:
            self.write_json(error_body("RequestNotAuthorized", err.message), status=403)
            return
        if not (rights.admin or "job manager" in rights.roles):
            self.write_json(error_body("RequestNotAuthorized",
                                       "inspect-state needs the role 'job manager'"), status=403)
            return
        job_id = self.get_argument("job_id", None)
        try:
            jobs = [self.manager.get(job_id, rights)] if job_id else self.manager.store.unfinished()
        except PublicError as err:
            self.write_json(error_body("RequestNotUnderstood", err.message), status=err.status)
            return
        self.write_json({"records": [j.to_dict() for j in jobs]})


_routes = [
    (r"/run_analysis", RunAnalysisHandler),
    (r"/api/par-names", ParNamesHandler),
    (r"/api/instr-list", InstrListHandler),
    (r"/instr-list", InstrListHandler),
    (r"/api/meta-data", MetaDataHandler),
    (r"/meta-data", MetaDataHandler),
    (r"/refresh_token", TokenHandler),
    (r"/update_token_email_options", TokenHandler),
    (r"/call_back", CallBackHandler),
    (r"/inspect-state", InspectStateHandler),
]

default_handlers = _routes + [(r"/dispatch-data" + path, handler) for path, handler in _routes]
