"""``mmoda run INSTRUMENT PRODUCT [--PARAM VALUE ...]``: one request, locally, on Dask."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from ..access.rights import Rights
from ..errors import ParameterError
from ..instruments import get_instrument

#: short spellings users type on a command line
ALIASES = {"e1": "E1_keV", "e2": "E2_keV", "ra": "RA", "dec": "DEC", "t1": "T1", "t2": "T2"}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="run one product request locally (embedded Dask cluster, local archive)",
        description="Run one product request, e.g.\n"
        "  mmoda run isgri image --src-name Crab --T1 2016-02-01 --T2 2016-03-01 --E1 20 --E2 40 --out DIR\n"
        "Every product parameter is a flag: `mmoda run INSTRUMENT PRODUCT --help` lists them.",
        formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False,
    )
    p.add_argument("-h", "--help", action="store_true", help="this help, or a product's parameters")
    p.add_argument("instrument", nargs="?", help="isgri, jemx, spi_acs, antares, polar ...")
    p.add_argument("product", nargs="?", help="product, with or without the instrument prefix (image = isgri_image)")
    p.add_argument("--out", default="products", help="output folder (default: products)")
    p.add_argument("--archive", default=None, help="archive folder (default: $MMODA_ARCHIVE or ~/.cache/mmoda/archive)")
    p.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler to use instead")
    p.add_argument("--cache", default=None,
                   help="provenance cache of per-science-window results, shared by later runs "
                        "(default: <archive>/../provenance-cache)")
    p.add_argument("--no-cache", action="store_true", help="no provenance cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("params", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(_parser=p)
    return p


def parse_flags(tokens: list[str], names: list[str]) -> dict[str, str]:
    """``--src-name Crab --E1 20`` -> ``{"src_name": "Crab", "E1_keV": "20"}``."""
    lookup = {n.lower(): n for n in names} | {k: v for k, v in ALIASES.items() if v in names}
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise ParameterError(tok, tok, "flags of the form --NAME VALUE")
        key, _, value = tok[2:].partition("=")
        if not _:
            if i + 1 >= len(tokens):
                raise ParameterError(key, None, "a value after the flag")
            value = tokens[i + 1]
            i += 1
        norm = key.replace("-", "_").lower()
        if norm not in lookup:
            raise ParameterError(key, value, "the parameters " + ", ".join(names), "Unknown flag")
        out[lookup[norm]] = value
        i += 1
    return out


def product_name(instrument, product: str) -> str:
    if product in instrument.products:
        return product
    full = f"{instrument.name}_{product}"
    if full in instrument.products:
        return full
    instrument.product(product)  # raises a clear error listing the products
    return product


#: run options that may also come after the product flags (argparse's REMAINDER keeps them there)
_RUN_OPTIONS = {"--out": "out", "--archive": "archive", "--workers": "workers", "--scheduler": "scheduler",
                "--cache": "cache"}


def _take_run_options(args) -> None:
    rest, tokens, i = [], list(args.params), 0
    while i < len(tokens):
        key, eq, value = tokens[i].partition("=")
        if key in _RUN_OPTIONS and (eq or i + 1 < len(tokens)):
            if not eq:
                value, i = tokens[i + 1], i + 1
            setattr(args, _RUN_OPTIONS[key], int(value) if key == "--workers" else value)
        elif key in ("--no-progress", "--no-cache"):
            setattr(args, key[2:].replace("-", "_"), True)
        else:
            rest.append(tokens[i])
        i += 1
    args.params = rest


def provenance_cache(args, archive):
    """The run's provenance cache: --cache DIR, else <archive>/../provenance-cache; None with --no-cache."""
    if getattr(args, "no_cache", False):
        return None
    from ..jobs.cache import ProvenanceCache

    root = Path(args.cache).expanduser() if getattr(args, "cache", None) else \
        Path(archive.root).resolve().parent / "provenance-cache"
    return ProvenanceCache(root)


#: one working command per product, shown by ``mmoda run INSTRUMENT PRODUCT --help``
EXAMPLES = {
    "isgri_image": "--src-name Crab --T1 2016-02-01 --T2 2016-03-01 --max-pointings 50 --E1 20 --E2 40 --out out/crab",
    "isgri_spectrum": "--src-name Crab --T1 2016-02-01 --T2 2016-03-01 --max-pointings 8 --out out/crab-spec",
    "isgri_lc": '--src-name "V404 Cyg" --T1 2015-06-20 --T2 2015-06-27 --time_bin 3000 --out out/v404',
    "spectral_fit": "--src-name Crab --T1 2016-02-01 --T2 2016-03-01 --xspec_model cutoffpl --out out/fit",
    "jemx_image": "--src-name Crab --T1 2016-02-01 --T2 2016-03-01 --jemx_num 2 --out out/jemx",
    "jemx_spectrum": "--src-name Crab --T1 2016-02-01 --T2 2016-02-10 --jemx_num 2 --out out/jemx-spec",
    "jemx_lc": "--src-name Crab --T1 2016-02-01 --T2 2016-02-10 --jemx_num 2 --out out/jemx-lc",
    "spi_acs_lc": "--T1 2023-03-07T15:40:00 --T2 2023-03-07T15:50:00 --time_bin 1 --out out/grb",
    "polar_lc": "--T1 2017-01-14T00:00:00 --T2 2017-01-14T12:00:00 --time_bin 10 --out out/polar",
    "antares_spectrum": "--RA 265.978 --DEC -29.745 --radius 2.5 --out out/antares",
}

RUN_OPTIONS_HELP = """\
run options (anywhere after the product):
  --out DIR        output folder (default: products)
  --archive DIR    archive folder (default: $MMODA_ARCHIVE or ~/.cache/mmoda/archive)
  --workers N      local Dask workers (default: one per core)
  --scheduler ADDR an existing Dask scheduler instead of a local cluster
  --cache DIR      provenance cache of per-window results (default: <archive>/../provenance-cache)
  --no-cache       no provenance cache
  --no-progress    no progress bar"""


def product_help(inst, product: str) -> str:
    """A product's parameters with units, defaults and bounds, the run options and an example."""
    import textwrap

    aliases = {v: k.upper() for k, v in ALIASES.items() if k.lower() != v.lower()}  # --E1 for E1_keV
    lines = [f"usage: mmoda run {inst.name} {product} [--PARAM VALUE ...] [--out DIR]", "",
             inst.product(product).description, "",
             "parameters (MMODA's names; --name-with-dashes works too):"]
    for par in inst.param_set(product):
        spec = par.spec()
        flag = f"--{par.name}" + (f" (--{aliases[par.name]})" if par.name in aliases else "")
        unit = f" [{spec['unit']}]" if spec["unit"] else ""
        default = "none" if spec["default"] in (None, "", []) else spec["default"]
        text = (f"{spec['help'].rstrip('.')}{unit}. Allowed: {spec['allowed']}. Default: {default}.")
        lines.append(f"  {flag}")
        lines += textwrap.wrap(text, 92, initial_indent="      ", subsequent_indent="      ")
    lines += ["  --T_format", "      How T1 and T2 are written: isot (default) or mjd.", "",
              RUN_OPTIONS_HELP, "", "example:",
              f"  mmoda run {inst.name} {product} {EXAMPLES.get(product, '--out out/' + product)}"]
    return "\n".join(lines)


def _instruments_help() -> str:
    from ..instruments import registry

    lines = ["instruments and products (mmoda run INSTRUMENT PRODUCT --help for parameters):"]
    for name, inst in registry().items():
        lines.append(f"  {name:8s} {', '.join(inst.products)}")
    return "\n".join(lines)


def main(args) -> int:
    wants_help = args.help or any(t in ("-h", "--help") for t in args.params)
    if not args.instrument or not args.product or wants_help:
        if not args.instrument:
            args._parser.print_help()
            print("\n" + _instruments_help())
            return 0 if wants_help else 2
        inst = get_instrument(args.instrument)
        if not args.product:
            print(f"{inst.name}: {inst.description}\nproducts:")
            for name, prod in inst.products.items():
                print(f"  {name:18s} {prod.description}")
            print(f"\nmmoda run {inst.name} PRODUCT --help lists a product's parameters.")
            return 0 if wants_help else 2
        print(product_help(inst, product_name(inst, args.product)))
        return 0
    _take_run_options(args)
    inst = get_instrument(args.instrument)
    product = product_name(inst, args.product)

    from .. import engine
    from ..archive import default_archive

    _CliContext = _cli_context()

    names = inst.param_set(product).names() + ["T_format"]
    raw = parse_flags(args.params, names)
    archive = default_archive(args.archive)
    rights = Rights.local()
    inst, params = engine.prepare(inst.name, product, raw, rights, archive)

    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=100, desc=product, file=sys.stderr,
                   bar_format="{percentage:3.0f}%|{bar:30}| {elapsed} {desc}")

    def on_progress(fraction: float, message: str) -> None:
        if bar is not None:
            bar.n = round(100 * fraction)
            bar.set_description_str(f"{product}: {message}" if message else product, refresh=False)
            bar.refresh()

    from ..archive import disk
    from .archive import cache_folders

    cache = provenance_cache(args, archive)

    def used():  # the folders are listed each time: a first run creates them
        return disk.total(disk.usage(cache_folders(archive, str(cache.root) if cache is not None else None)))

    before = used()
    client = None
    if args.scheduler:
        from distributed import Client

        on_progress(0.0, f"connecting to the Dask scheduler {args.scheduler}")
        client = Client(args.scheduler)
    ctx = _CliContext(archive, Path(args.out), rights, on_progress, client=client, n_workers=args.workers,
                      cache=cache)
    interrupted = False
    try:
        _quiet_shutdown_logs(only=("tornado",))  # a Ctrl-C in Dask's sync() logs a callback error
        result = engine.run(inst.name, product, params, ctx)
    except KeyboardInterrupt:
        interrupted = True
        _stop_quietly(ctx, bar)
        kept = used() - before
        print(f"mmoda: interrupted. Kept what was cached so far ({kept.files} files, {disk.human(kept.bytes)}: "
              "window data, decoded images); run the same command again to resume: cached windows are "
              "not recomputed.", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # no interpreter shutdown: Dask's exit hooks would talk to the stopped workers
    finally:
        if bar is not None:
            bar.close()
        if not interrupted:
            _quiet_shutdown_logs()  # "worker still alive after 4 s, killing" is no news to a user
            ctx.close()
    for msg in result.messages:
        print(msg)
    for prod in result.products:
        for path in (prod.fits, prod.png):
            if path is not None:
                print(f"wrote {path}")
    (Path(args.out) / "request.json").write_text(
        json.dumps({"instrument": inst.name, "product_type": product, **params}, indent=2)
    )
    _report_cache(cache_folders(archive, str(cache.root) if cache is not None else None), before)
    return 0


def _report_cache(folders: dict, before) -> None:
    """Say what this run added to the cache, and keep the cache under its size limit."""
    from ..archive import disk

    after = disk.total(disk.usage(folders))
    added = after - before
    limit = disk.cache_limit()
    print(f"cache: +{disk.human(max(added.bytes, 0))} this run, {disk.human(after.bytes)} in all "
          f"(limit {disk.human(limit) if limit else 'none'}, MMODA_CACHE_LIMIT); "
          "`mmoda archive du` details it, `mmoda archive clean` frees it")
    if limit and after.bytes > limit:
        removed = disk.clean(folders, limit)
        print(f"cache: over its limit, removed the {removed.files} least recently used files "
              f"({disk.human(removed.bytes)}); they are recomputed identically when needed")


def _cli_context():
    from ..jobs.compute import DaskContext

    class CliContext(DaskContext):
        """Starts the local cluster when a product first needs it, as a named progress stage,
        with SIGINT blocked so that the workers never see a Ctrl-C."""

        fraction = 0.0

        def progress(self, fraction: float, message: str = "") -> None:
            self.fraction = fraction
            super().progress(fraction, message)

        @property
        def client(self):
            if self._client is None:
                self.progress(self.fraction, "starting Dask workers")
                with _ignoring_sigint():
                    return DaskContext.client.fget(self)
            return self._client

        def map_reduce(self, func, items, combine, initial=None, label="", **kw):
            items = list(items)
            self.client  # noqa: B018 - workers first (a named stage), then the per-window pass
            self.progress(self.fraction, f"{label} 0/{len(items)}".strip())
            return DaskContext.map_reduce(self, func, items, combine, initial, label, **kw)

    return CliContext


class _ignoring_sigint:
    """SIGINT blocked while worker processes start: they inherit the mask and never see a Ctrl-C
    (which a terminal sends to the whole process group); here it is delivered on exit."""

    def __enter__(self):
        import signal

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc):
        import signal

        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _quiet_shutdown_logs(level: int | None = None, only: tuple[str, ...] = ()) -> None:
    """Dask's shutdown messages (nanny kills, closed streams) off unless --log-level asked for them."""
    import logging

    root = logging.getLogger().getEffectiveLevel()
    if root < logging.WARNING:
        return
    for name in only or ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(level or logging.CRITICAL)


def _stop_quietly(ctx, bar) -> None:
    """After Ctrl-C: end the local workers at once, without their shutdown chatter.

    Finished windows are already in the archive and the provenance cache (written whole, then
    renamed), so nothing is lost by not waiting for the tasks in flight. A second Ctrl-C waits.
    """
    import logging
    import signal

    import psutil

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if bar is not None:
        bar.close()
    _quiet_shutdown_logs(logging.CRITICAL)
    if ctx._own_client:  # our LocalCluster's processes; an external scheduler's workers carry on
        # SIGKILL, not SIGTERM: a terminated worker closes "gracefully", logging a WARNING for
        # each task it cancels into the user's terminal; its finished files are already whole
        procs = psutil.Process().children(recursive=True)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=5)
    else:
        with contextlib.suppress(Exception):
            ctx.close()
