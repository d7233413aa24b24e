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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmoda",
        description="MMODA Hub: INTEGRAL, SPI-ACS, ANTARES and POLAR products on Dask.",
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
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
    level = logging.getLevelName(args.log_level.upper())
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # distributed configures its own loggers (at INFO) when imported; a command line shows
    # only what matters unless asked for more
    if not isinstance(level, int) or level >= logging.WARNING:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    try:
        return int(args._main(args) or 0)
    except PublicError as exc:
        print(f"mmoda: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmoda: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
