"""The job record every door shares (REST API, oda_api door, widgets, e-mails).

A :class:`Job` is what the durable store holds about one request: who asked, what was asked
(the normalised parameters that hash into the job id), where it stands, and where its
products are. Products themselves are files under ``outdir``, described by
``outdir/products.json`` (written by the job manager after the product ran).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .instruments.base import ProductFile, ProductSet

__all__ = ["Job", "JobStatus", "PRODUCTS_FILE", "read_products", "write_products"]

#: name of the product description written into each job's output folder
PRODUCTS_FILE = "products.json"


class JobStatus(StrEnum):
    """Where a job stands. The dispatcher protocol knows the first four; ``cancelled``
    is shown there as ``failed`` with a message."""

    SUBMITTED = "submitted"
    PROGRESS = "progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def wire(self) -> str:
        """The status on the dispatcher door (no ``cancelled`` there)."""
        return "failed" if self is JobStatus.CANCELLED else self.value


UNFINISHED = (JobStatus.SUBMITTED.value, JobStatus.PROGRESS.value)


@dataclass
class Job:
    """One request, as stored. ``params`` are the normalised parameters (the hashed dict)."""

    job_id: str
    user: str
    instrument: str
    product: str
    params: dict[str, Any]
    outdir: Path
    email: str | None = None
    status: JobStatus = JobStatus.SUBMITTED
    progress: float = 0.0
    message: str = ""
    messages: list[str] = field(default_factory=list)
    error: str | None = None
    feedback: list[dict] = field(default_factory=list)
    created: float = 0.0
    updated: float = 0.0
    started: float | None = None
    finished: float | None = None
    query_type: str = "Real"
    session_id: str | None = None
    attempts: int = 0
    generation: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from submission to the end (or to now while running is unknown: None)."""
        if self.finished is None:
            return None
        return self.finished - self.created

    def to_dict(self) -> dict:
        """JSON-friendly; no secret is ever part of a job."""
        return {
            "job_id": self.job_id,
            "user": self.user,
            "email": self.email,
            "instrument": self.instrument,
            "product": self.product,
            "params": self.params,
            "status": self.status.value,
            "progress": self.progress,
            "message": self.message,
            "messages": list(self.messages),
            "error": self.error,
            "feedback": list(self.feedback),
            "created": self.created,
            "updated": self.updated,
            "started": self.started,
            "finished": self.finished,
            "outdir": str(self.outdir),
            "query_type": self.query_type,
            "session_id": self.session_id,
            "attempts": self.attempts,
        }

    def products(self) -> ProductSet:
        """The products of a finished job, read back from ``outdir/products.json``."""
        return read_products(self.outdir)


def _json_default(o: Any) -> Any:
    # numpy scalars/arrays, Paths, astropy quantities in product meta
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return o.name
    return str(o)


def _relative(path: Path | None, outdir: Path) -> str | None:
    """A product file as a path relative to the job folder (sub-folders kept)."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = outdir / path  # a name relative to the job folder
    try:
        return str(path.resolve().relative_to(outdir.resolve()))
    except ValueError:
        # a product written elsewhere is copied in: a job folder is whole, and no door ever
        # serves a file outside it
        if path.is_file():
            shutil.copy2(path, outdir / path.name)
        return path.name


def _inside(outdir: Path, name: str | None) -> Path | None:
    """``outdir / name`` if it stays inside ``outdir`` (a damaged products.json cannot point out)."""
    if not name:
        return None
    path = outdir / name
    try:
        path.resolve().relative_to(outdir.resolve())
    except ValueError:
        return None
    return path


def write_products(products: ProductSet, outdir: Path) -> Path:
    """Describe ``products`` in ``outdir/products.json`` atomically (a crash leaves no half file)."""
    outdir = Path(outdir)
    path = outdir / PRODUCTS_FILE
    tmp = path.with_suffix(".json.tmp")
    data = products.to_dict()
    for entry, prod in zip(data["products"], products.products, strict=True):
        for key in ("fits", "png"):
            entry[key] = _relative(getattr(prod, key), outdir)
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    tmp.replace(path)
    return path


def read_products(outdir: Path) -> ProductSet:
    """The inverse of :func:`write_products`; file names become paths under ``outdir``."""
    outdir = Path(outdir)
    data = json.loads((outdir / PRODUCTS_FILE).read_text())
    files = [
        ProductFile(
            name=p["name"],
            kind=p["kind"],
            fits=_inside(outdir, p.get("fits")),
            png=_inside(outdir, p.get("png")),
            meta=p.get("meta") or {},
        )
        for p in data.get("products", [])
    ]
    return ProductSet(products=files, messages=data.get("messages", []), meta=data.get("meta", {}))
