"""The ``mmoda`` command.

Each module of this package that defines ``add_parser(subparsers)`` and ``main(args)`` is a
subcommand (``run``, ``instruments``, ``archive``, ``serve``, ``token`` ...); they are
discovered here, so adding one touches no shared file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from ..errors import PublicError

#: shown by bare ``mmoda`` and ``mmoda --help``: where a new user starts
START_HERE = """\
start here:
  mmoda instruments                   what can be computed: instruments, products, parameters
  mmoda run isgri image --help        one product's parameters (units, defaults, bounds) and an example
  mmoda run isgri image --src-name Crab --T1 2016-02-01 --T2 2016-03-01 --out out/crab
  mmoda archive du                    disk used by cached data (mmoda archive clean frees it)

Every command takes --help (or -h)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmoda",
        description="MMODA Hub: INTEGRAL, SPI-ACS, ANTARES and POLAR products on Dask.",
        epilog=START_HERE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            p = module.add_parser(sub)
            p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `mmoda`: the commands and where to start
        parser.print_help()
        return 0
    level = logging.getLevelName(args.log_level.upper())
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # distributed configures its own loggers (at INFO) when imported, in this process and in
    # every worker; library warnings (a busy dashboard port, a cancelled task) are noise to a
    # user: a command line shows only what matters unless --log-level INFO/DEBUG asks for more
    if not isinstance(level, int) or level >= logging.WARNING:
        logging.captureWarnings(True)
        logging.getLogger("py.warnings").setLevel(logging.ERROR)
        if args.command == "run":  # its own local workers only (not a server's, not a hub's kernels)
            os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
            os.environ.setdefault("PYTHONWARNINGS", "ignore")  # worker processes inherit it
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    try:
        return int(args._main(args) or 0)
    except PublicError as exc:  # a token's ``detail`` says what is wrong, not the browser's text
        print(f"mmoda: error: {getattr(exc, 'detail', '') or exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmoda: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
