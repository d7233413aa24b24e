"""The REST API ``/api/v1/...`` (documented in ``rest-api.yml``, served at ``/api/v1/openapi.yaml``).

Each handler: authenticate, one manager call, serialise. ``PublicError`` becomes its status
with ``{"error", "parameter", "value", "status"}``; a refused token is a 403.
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
from pathlib import Path
from typing import Any

from tornado import web

from ..errors import AccessError, PublicError
from ..instruments import registry
from ..models import Job
from .base import MMODAHandler, check_session_id, loads_bounded

__all__ = ["default_handlers", "openapi_path", "requested_product"]

API = "/api/v1"


def openapi_path() -> Path:
    return Path(__file__).with_name("rest-api.yml")


def public_errors(method):
    """Turn ``PublicError`` (tokens included) into a JSON answer with its status."""

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
            if asyncio.iscoroutine(result):
                await result
        except PublicError as err:
            self.public_error(err)

    return wrapper


def job_model(job: Job, base: str) -> dict[str, Any]:
    d = job.to_dict()
    d.pop("outdir", None)
    d["status"] = job.status.value
    d["finished"] = job.status.finished
    d["finished_at"] = job.finished
    d["url"] = f"{base}/jobs/{job.job_id}"
    d["products_url"] = f"{base}/jobs/{job.job_id}/products"
    return d


def requested_product(body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(instrument, product, params)`` of a submit or check body; a ``PublicError`` naming
    the field at fault otherwise (one check for ``POST /jobs`` and ``POST /check``)."""
    instrument, product = body.get("instrument"), body.get("product")
    if not isinstance(instrument, str) or instrument not in registry():
        raise PublicError(f"'instrument' must be one of {', '.join(registry())}; got {instrument!r}.",
                          parameter="instrument", value=instrument)
    products = registry()[instrument].products
    if not isinstance(product, str) or product not in products:
        raise PublicError(f"'product' must be one of {', '.join(sorted(products))}; got {product!r}.",
                          parameter="product", value=product)
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise PublicError("'params' must be an object of parameter values.", parameter="params")
    return instrument, product, params


class RestHandler(MMODAHandler):
    @property
    def api_base(self) -> str:
        return self.request.path.split(API, 1)[0] + API

    def json_body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            body = loads_bounded(self.request.body, "body")
        except (ValueError, UnicodeDecodeError):
            raise PublicError("The request body is not valid JSON.", parameter="body") from None
        if not isinstance(body, dict):
            raise PublicError("The request body must be a JSON object.", parameter="body")
        return body

    def require_admin(self):
        rights = self.current_rights()
        if not rights.admin:
            raise AccessError("Only MMODA administrators may do this (group mmoda-admin or role mmoda-admin).")
        return rights


class InstrumentsHandler(RestHandler):
    @public_errors
    def get(self) -> None:
        self.current_rights()
        self.write_json([
            {"name": name, "description": inst.description, "products": sorted(inst.products)}
            for name, inst in registry().items()
        ])


class InstrumentHandler(RestHandler):
    @public_errors
    def get(self, name: str) -> None:
        if name not in registry():
            raise PublicError(f"There is no instrument {name!r}. Instruments: {', '.join(registry())}.",
                              parameter="instrument", value=name, status=404)
        self.write_json(registry()[name].spec())


class ProductSpecHandler(RestHandler):
    @public_errors
    def get(self, name: str, product: str) -> None:
        if name not in registry():
            raise PublicError(f"There is no instrument {name!r}.", parameter="instrument", value=name, status=404)
        inst = registry()[name]
        if product not in inst.products:
            raise PublicError(f"Instrument {name} has no product {product!r}. Products: "
                              f"{', '.join(sorted(inst.products))}.", parameter="product", value=product, status=404)
        self.write_json({"instrument": name, "product": product,
                         "description": inst.products[product].description,
                         "parameters": inst.param_set(product).spec()})


class JobsHandler(RestHandler):
    @public_errors
    def get(self) -> None:
        rights = self.current_rights()
        jobs = self.manager.list(rights, check_session_id(self.get_argument("session_id", None)))
        self.write_json([job_model(j, self.api_base) for j in jobs])

    @public_errors
    async def post(self) -> None:
        rights = self.current_rights()
        body = self.json_body()
        instrument, product, params = requested_product(body)
        query_type = body.get("query_type", "Real")
        if query_type not in ("Real", "Dummy"):
            raise PublicError(f"'query_type' must be Real or Dummy; got {query_type!r}.",
                              parameter="query_type", value=query_type)
        inst = registry()[instrument]
        raw = dict(params)
        if "query_type" in inst.param_set(product).names():
            raw["query_type"] = query_type
        session_id = check_session_id(body.get("session_id"))
        job = await asyncio.to_thread(self.manager.submit, instrument, product, raw, rights,
                                      query_type=query_type, session_id=session_id,
                                      client=self.client_address())
        self.set_header("Location", f"{self.api_base}/jobs/{job.job_id}")
        self.write_json(job_model(job, self.api_base), status=201)


class JobHandler(RestHandler):
    def session_id(self) -> str | None:
        """The caller's session (argument or JSON body): an anonymous job's control key."""
        value = self.get_argument("session_id", None)
        if value is None and self.request.body and self.request.method in ("POST", "DELETE"):
            value = self.json_body().get("session_id")
        return check_session_id(value)

    @public_errors
    def get(self, job_id: str) -> None:
        job = self.manager.get(job_id, self.current_rights(), self.session_id())
        self.write_json(job_model(job, self.api_base))

    @public_errors
    def delete(self, job_id: str) -> None:
        job = self.manager.cancel(job_id, self.current_rights(), self.session_id())
        self.write_json(job_model(job, self.api_base))


class CancelHandler(JobHandler):
    @public_errors
    def post(self, job_id: str) -> None:
        job = self.manager.cancel(job_id, self.current_rights(), self.session_id())
        self.write_json(job_model(job, self.api_base))


def _relative(path: Path | None, outdir: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path(outdir).resolve()).as_posix()
    except ValueError:
        return None  # never serve a file outside the job folder


class ProductsHandler(RestHandler):
    @public_errors
    def get(self, job_id: str) -> None:
        rights = self.current_rights()
        job = self.manager.get(job_id, rights)
        products = self.manager.products(job_id, rights)
        base = f"{self.api_base}/jobs/{job_id}/products"
        entries = []
        for p in products.products:
            entry = {"name": p.name, "kind": p.kind, "meta": p.meta}
            for key in ("fits", "png"):
                rel = _relative(getattr(p, key), job.outdir)
                entry[key] = rel
                if rel:
                    entry[f"{key}_url"] = f"{base}/{rel}"
            entries.append(entry)
        self.write_json({"products": entries, "messages": products.messages, "meta": products.meta})


class ProductFileHandler(RestHandler):
    @public_errors
    def get(self, job_id: str, filename: str) -> None:
        rights = self.current_rights()
        job = self.manager.get(job_id, rights)
        files = {}
        for p in self.manager.products(job_id, rights).products:
            for path in (p.fits, p.png):
                rel = _relative(path, job.outdir)
                if rel:
                    files[rel] = Path(path)
        if filename not in files or not files[filename].is_file():
            raise PublicError(f"Job {job_id} has no product file {filename!r}. Files: {', '.join(sorted(files))}.",
                              parameter="filename", value=filename, status=404)
        path = files[filename]
        ctype = "application/fits" if path.suffix in (".fits", ".fit", ".fts") else (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.finish(path.read_bytes())


class FeedbackHandler(RestHandler):
    @public_errors
    def get(self, job_id: str) -> None:
        job = self.manager.get(job_id, self.current_rights())
        self.write_json(job.feedback)

    @public_errors
    def post(self, job_id: str) -> None:
        rights = self.require_admin()
        message = self.json_body().get("message")
        if not isinstance(message, str) or not message.strip():
            raise PublicError("'message' must be a non-empty text.", parameter="message", value=message)
        entry = self.manager.add_feedback(job_id, message.strip(), rights.email or rights.user)
        self.write_json(entry, status=201)


class BannerHandler(RestHandler):
    @public_errors
    def get(self) -> None:
        self.write_json(self.manager.banners())

    @public_errors
    def post(self) -> None:
        self.require_admin()
        body = self.json_body()
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PublicError("'text' must be a non-empty text.", parameter="text", value=text)
        expires = body.get("expires")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))):
            raise PublicError("'expires' must be a unix time (seconds) or null.", parameter="expires", value=expires)
        kind = body.get("kind", "news")
        if not isinstance(kind, str):
            raise PublicError("'kind' must be news or issue.", parameter="kind", value=kind)
        self.write_json(self.manager.publish_banner(text.strip(), kind, expires), status=201)


class WhoAmIHandler(RestHandler):
    @public_errors
    def get(self) -> None:
        r = self.current_rights()
        self.write_json({"user": r.user, "tier": r.tier, "max_scw": r.max_scw,
                         "requests_per_hour": r.requests_per_hour, "private_data": r.private_data,
                         "restricted_osa": r.restricted_osa, "roles": sorted(r.roles),
                         "admin": r.admin, "how_to_get_more": r.how_to_get_more})


class OpenAPIHandler(RestHandler):
    def get(self, ext: str) -> None:
        text = openapi_path().read_text()
        if ext == "json":
            import yaml

            self.write_json(yaml.safe_load(text))
        else:
            self.write_text(text, "application/yaml")


class NotFoundHandler(RestHandler):
    """Any other ``/api/v1`` path: a JSON 404 naming the routes."""

    def prepare(self) -> None:
        super().prepare()
        self.public_error(PublicError(
            f"There is no API route {self.request.method} {self.request.path}. See {API}/openapi.yaml.",
            parameter="path", value=self.request.path, status=404))


default_handlers: list[tuple[str, type[web.RequestHandler]]] = [
    (API + r"/openapi\.(yaml|json)", OpenAPIHandler),
    (API + r"/whoami", WhoAmIHandler),
    (API + r"/instruments", InstrumentsHandler),
    (API + r"/instruments/([^/]+)", InstrumentHandler),
    (API + r"/instruments/([^/]+)/products/([^/]+)", ProductSpecHandler),
    (API + r"/jobs", JobsHandler),
    (API + r"/jobs/([0-9a-zA-Z_-]+)", JobHandler),
    (API + r"/jobs/([0-9a-zA-Z_-]+)/cancel", CancelHandler),
    (API + r"/jobs/([0-9a-zA-Z_-]+)/products", ProductsHandler),
    (API + r"/jobs/([0-9a-zA-Z_-]+)/products/(.+)", ProductFileHandler),
    (API + r"/jobs/([0-9a-zA-Z_-]+)/feedback", FeedbackHandler),
    (API + r"/banner", BannerHandler),
    (API + r"/.*", NotFoundHandler),
]
