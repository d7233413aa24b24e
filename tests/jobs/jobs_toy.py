"""A test-only instrument for the job manager (never registered in mmoda_ext/instruments/).

Every finished run appends a line ``<product> <tag> <pid>`` to ``<log_dir>/runs.log`` so
tests count how often a product really ran to its end; per-item computations go through
the provenance cache (``ctx.cache``) and are counted in ``<log_dir>/items.log``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import numpy as np
from astropy.io import fits

from mmoda_ext.errors import NoDataError
from mmoda_ext.instruments.base import Instrument, Product, ProductFile, ProductSet
from mmoda_ext.instruments.params import Float, Integer, String


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def square_item(args: tuple) -> float:
    """One per-item task: x**2, through the provenance cache when there is one."""
    x, cache, log_dir = args
    if cache is None:
        return float(x * x)
    key = cache.key(instrument="toy", item=int(x), step="square", analysis_version="1")

    def compute() -> dict:
        _append(Path(log_dir) / "items.log", str(x))
        return {"value": np.array(float(x * x))}

    return float(cache.get_or_compute(key, compute)["value"])


def sleep_item(args: tuple) -> int:
    seconds, i = args
    time.sleep(seconds)
    return i


def _add(acc, value):
    return (acc or 0) + value


class _ToyProduct(Product):
    def __init__(self, inst: ToyInstrument) -> None:
        self.inst = inst

    def finish(self, ctx, tag: str, value: float) -> ProductSet:
        path = ctx.outdir / f"{self.name}.fits"
        hdu = fits.BinTableHDU.from_columns([fits.Column(name="VALUE", format="D", array=[value])])
        hdu.name = "TOY-RESULT"
        hdu.writeto(path, overwrite=True)
        _append(self.inst.log_dir / "runs.log", f"{self.name} {tag} {os.getpid()}")
        return ProductSet([ProductFile(self.name, "table", fits=path, meta={"value": value})], [f"{self.name}={value}"])


class SumProduct(_ToyProduct):
    name = "sum"

    def params(self):
        return [Integer("n", default=3, min=0, max=10000), String("tag", default="")]

    def run(self, params, ctx):
        items = [(i, ctx.cache, str(self.inst.log_dir)) for i in range(params["n"])]
        total = ctx.map_reduce(square_item, items, _add, 0, label="square")
        return self.finish(ctx, params["tag"], float(total))


class SlowProduct(_ToyProduct):
    name = "slow"

    def params(self):
        return [Float("duration", default=1.0, min=0.0), Integer("steps", default=10, min=1), String("tag", default="")]

    def run(self, params, ctx):
        steps = params["steps"]
        n = ctx.map_reduce(sleep_item, [(params["duration"] / steps, i) for i in range(steps)], _add, 0, "sleep")
        return self.finish(ctx, params["tag"], float(n))


class FlakyProduct(_ToyProduct):
    """Raises RuntimeError on its first ``fail_times`` runs (counted per tag)."""

    name = "flaky"

    def params(self):
        return [Integer("fail_times", default=1, min=0), String("tag", default="")]

    def run(self, params, ctx):
        counter = self.inst.log_dir / f"flaky-{params['tag']}.count"
        _append(counter, "x")
        if len(read_lines(counter)) <= params["fail_times"]:
            raise RuntimeError("simulated worker crash")
        return self.finish(ctx, params["tag"], 1.0)


class NoDataProduct(_ToyProduct):
    name = "nodata"

    def params(self):
        return [String("tag", default="")]

    def run(self, params, ctx):
        counter = self.inst.log_dir / f"nodata-{params['tag']}.count"
        _append(counter, "x")
        raise NoDataError("No science window in the time interval T1-T2; choose a longer one.", "T1")


class ToyInstrument(Instrument):
    name = "toy"
    description = "test-only instrument"

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.products = {p.name: p for p in (SumProduct(self), SlowProduct(self), FlakyProduct(self), NoDataProduct(self))}


class MailBox:
    """An aiosmtpd handler keeping every received message (parsed) in order."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        msg.envelope_to = list(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(msg)
        return "250 OK"

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]
