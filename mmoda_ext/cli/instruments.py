"""``mmoda instruments``: instruments, products and parameters with units, defaults, bounds."""

from __future__ import annotations

import argparse
import json

from ..instruments import registry


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("instruments", help="list instruments, products and their parameters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true",
                   help="also MMODA's conformance instruments (empty, empty-async ...), used by oda_api tests")
    p.add_argument("name", nargs="?", help="only this instrument")
    return p


def main(args) -> int:
    from ..errors import ParameterError
    from ..instruments import _registry

    every = _registry(True) if args.all else registry()  # science instruments unless asked
    if args.name and args.name not in every:
        raise ParameterError("instrument", args.name, "one of " + ", ".join(every)
                             + ("" if args.all else " (--all adds MMODA's conformance instruments)"))
    insts = {k: v for k, v in every.items() if not args.name or k == args.name}
    if args.json:
        print(json.dumps({k: v.spec() for k, v in insts.items()}, indent=2, default=str))
        return 0
    for name, inst in insts.items():
        print(f"{name}: {inst.description}")
        for pname, pspec in inst.spec()["products"].items():
            print(f"  {pname}: {pspec['description']}")
            for par in pspec["parameters"]:
                unit = f" [{par['unit']}]" if par["unit"] else ""
                print(f"    {par['name']}{unit} = {par['default']!r}  ({par['allowed']})")
    return 0
