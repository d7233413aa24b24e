"""``mmoda archive``: inspect the simulated INTEGRAL archive and pre-build its per-window data.

    mmoda archive info
    mmoda archive list  --src-name Crab --T1 2016-02-01 --T2 2016-03-01 [--radius 15] [--max-pointings 50]
    mmoda archive build --instrument isgri|jemx --RA 83.63 --DEC 22.01 --T1 ... --T2 ... [--max-pointings 50]
"""

from __future__ import annotations

import argparse
import json
import math

from ..errors import NoDataError, ParameterError

INSTRUMENTS = ("isgri", "jemx")

#: what ``mmoda archive --help`` shows (plain text: the module docstring is reStructuredText)
DESCRIPTION = """\
Inspect the simulated INTEGRAL archive and pre-build its per-window data.

examples:
  mmoda archive info
  mmoda archive du                    disk used by cached data, and the limit (MMODA_CACHE_LIMIT)
  mmoda archive clean [--keep 5GB]    remove cached data (recomputed identically when needed)
  mmoda archive list  --src-name Crab --T1 2016-02-01 --T2 2016-03-01 [--radius 15] [--max-pointings 50]
  mmoda archive build --instrument isgri --src-name Crab --T1 2016-02-01 --T2 2016-03-01"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("archive", help="inspect the simulated INTEGRAL archive, pre-build window data",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--archive", default=argparse.SUPPRESS,
                        help="archive folder (default: $MMODA_ARCHIVE or ~/.cache/mmoda/archive)")
    common.add_argument("--extra-sources", default=argparse.SUPPRESS,
                        help="ECSV of extra sky sources (default: $MMODA_SKY_EXTRA)")
    p.add_argument("--archive", default=None, help=argparse.SUPPRESS)
    p.add_argument("--extra-sources", default=None, help=argparse.SUPPRESS)
    asub = p.add_subparsers(dest="archive_command", metavar="ACTION")
    asub.required = True
    info = asub.add_parser("info", help="index coverage, sky model, cache folder", parents=[common])
    info.add_argument("--json", action="store_true")
    info.add_argument("--sources", action="store_true", help="also list the sky-model sources")
    du = asub.add_parser("du", help="disk used by cached window data and decoded images", parents=[common])
    du.add_argument("--cache", default=None, help="provenance cache folder (default: <archive>/../provenance-cache)")
    du.add_argument("--json", action="store_true")
    clean = asub.add_parser("clean", help="free disk: remove cached window data (recomputed identically when needed)",
                            parents=[common])
    clean.add_argument("--cache", default=None, help="provenance cache folder (default: <archive>/../provenance-cache)")
    clean.add_argument("--keep", default="0",
                       help="keep the most recently used files up to this size, e.g. 5GB (default: keep none)")
    for name, helptext in (("list", "list the science windows a request would select"),
                           ("build", "generate (cache) the data of the selected windows")):
        q = asub.add_parser(name, help=helptext, parents=[common])
        q.add_argument("--src-name", default=None, help="source name (sets RA/DEC when they are not given)")
        q.add_argument("--RA", "--ra", dest="ra", default=None, help="deg")
        q.add_argument("--DEC", "--dec", dest="dec", default=None, help="deg")
        q.add_argument("--radius", default="15", help="pointing-axis search radius, deg (default 15)")
        q.add_argument("--T1", "--t1", dest="t1", required=True, help="start (ISO UTC, or MJD with --T-format mjd)")
        q.add_argument("--T2", "--t2", dest="t2", required=True, help="end")
        q.add_argument("--T-format", dest="t_format", default="isot", choices=("isot", "mjd"))
        q.add_argument("--max-pointings", default=None, help="random subset above this number (MMODA rule)")
        q.add_argument("--private", action="store_true", help="include private science windows")
        if name == "list":
            q.add_argument("--json", action="store_true")
        else:
            q.add_argument("--instrument", default="isgri", help="instrument whose data to build (isgri, jemx: the units that were on)")
            q.add_argument("--no-progress", action="store_true")
    return p


def _float(name: str, value, lo: float, hi: float, allowed: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, value, allowed, "It is not a number") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ParameterError(name, value, allowed)
    return x


def _request(args, archive):
    from ..instruments.params import to_time

    if args.ra is None or args.dec is None:
        if not args.src_name:
            raise ParameterError("RA", args.ra, "RA and DEC in degrees, or --src-name")
        coord = archive.resolve_name(args.src_name)
        ra = coord.ra.deg if args.ra is None else args.ra
        dec = coord.dec.deg if args.dec is None else args.dec
    else:
        ra, dec = args.ra, args.dec
    ra = _float("RA", ra, 0.0, 360.0, "0 to 360 degrees")
    dec = _float("DEC", dec, -90.0, 90.0, "-90 to 90 degrees")
    radius = _float("radius", args.radius, 1e-6, 180.0, "0 < radius <= 180 degrees")
    times = []
    for name, value in (("T1", args.t1), ("T2", args.t2)):
        try:
            times.append(to_time(value, args.t_format))
        except (ValueError, TypeError):
            raise ParameterError(name, value, "a time such as 2016-02-01T00:00:00 (isot) or 57419.0 (mjd)",
                                 f"It cannot be read as T_format={args.t_format!r}") from None
    maxp = None
    if args.max_pointings not in (None, ""):
        try:
            maxp = int(args.max_pointings)
        except ValueError:
            raise ParameterError("max_pointings", args.max_pointings, "an integer >= 1") from None
        if maxp < 1:
            raise ParameterError("max_pointings", args.max_pointings, "an integer >= 1")
    return ra, dec, radius, times[0], times[1], maxp


def _select(args, archive):
    from ..instruments._integral_rules import check_mission_window
    from ..instruments._integral_select import Selection

    ra, dec, radius, t1, t2, maxp = _request(args, archive)
    check_mission_window({"T1": t1.isot, "T2": t2.isot})
    windows = archive.index.select(ra, dec, radius, t1, t2, maxp, include_private=args.private)
    windows = Selection(windows, archive.index.cone(ra, dec, radius, t1, t2, args.private).size)
    if not windows:
        raise NoDataError(
            f"No science window has its pointing axis within {radius:g} deg of RA={ra:.4f} DEC={dec:.4f} "
            f"between {t1.isot} and {t2.isot}. Widen the radius or the time range.")
    return windows


def main(args) -> int:
    from ..archive import default_archive

    archive = default_archive(args.archive, args.extra_sources)
    if args.archive_command == "info":
        return _info(archive, args)
    if args.archive_command == "list":
        return _list(archive, args)
    if args.archive_command in ("du", "clean"):
        return _du(archive, args)
    return _build(archive, args)


def cache_folders(archive, cache: str | None = None) -> dict:
    """The folders MMODA fills on this machine: archive subfolders and the provenance cache."""
    from pathlib import Path

    from ..archive.disk import folders

    root = Path(archive.root)
    return folders(root, Path(cache).expanduser() if cache else root.resolve().parent / "provenance-cache")


def _du(archive, args) -> int:
    from ..archive import disk

    paths = cache_folders(archive, args.cache)
    limit = disk.cache_limit()
    if args.archive_command == "clean":
        removed = disk.clean(paths, disk.parse_size(args.keep, "keep"))
        left = disk.total(disk.usage(paths))
        print(f"removed {removed.files} files, {disk.human(removed.bytes)}; {disk.human(left.bytes)} left "
              f"in {archive.root} and its provenance cache (recomputed identically when needed)")
        return 0
    use = disk.usage(paths)
    tot = disk.total(use)
    if args.json:
        print(json.dumps({"folders": {k: {"path": str(paths[k]), "files": v.files, "bytes": v.bytes}
                                      for k, v in use.items()},
                          "total_bytes": tot.bytes, "limit_bytes": limit}, indent=2))
        return 0
    for name, v in use.items():
        print(f"{disk.human(v.bytes):>9s} {v.files:7d} files  {name:18s} {paths[name]}")
    shown = disk.human(limit) if limit else "none"
    print(f"{disk.human(tot.bytes):>9s} {tot.files:7d} files  total (limit {shown}: MMODA_CACHE_LIMIT; "
          "`mmoda archive clean` frees it)")
    return 0


def _info(archive, args) -> int:
    d = archive.describe()
    if args.sources:
        d["sources"] = [{"id": s.id, "name": s.name, "ra": s.ra, "dec": s.dec, "kind": s.kind,
                         "mcrab": s.mcrab} for s in archive.sky]
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    for k, v in d.items():
        if k != "sources":
            print(f"{k:16s} {v}")
    for s in d.get("sources", []):
        print(f"  {s['id']:4d} {s['name']:18s} {s['ra']:9.3f} {s['dec']:+8.3f} {s['mcrab']:8.1f} mCrab  {s['kind']}")
    return 0


def _list(archive, args) -> int:
    from ..instruments._integral_select import used_of

    windows = _select(args, archive)
    if args.json:
        print(json.dumps([w.to_dict() for w in windows], indent=1))
        return 0
    print(f"{'scw_id':17s} {'start (UTC)':23s} {'ontime':>7s} {'deadc':>6s} {'ra':>8s} {'dec':>7s} "
          f"{'pa':>6s} {'priv':>4s}  target")
    for w in windows:
        print(f"{w.scw_id:17s} {w.t_start.utc.isot:23s} {w.ontime:7.0f} {w.deadc:6.3f} {w.ra:8.3f} "
              f"{w.dec:+7.3f} {w.pa:6.1f} {'yes' if w.private else 'no':>4s}  {w.target}")
    more = (f" (max_pointings={args.max_pointings}: a reproducible random subset; "
            f"--max-pointings {windows.matched} lists all)" if windows.matched > len(windows) else "")
    print(f"{used_of(windows)}, {sum(w.exposure for w in windows) / 1e3:.1f} ks exposure{more}")
    return 0


def _build(archive, args) -> int:
    instrument = args.instrument.lower()
    if instrument not in INSTRUMENTS:
        raise ParameterError("instrument", args.instrument, ", ".join(INSTRUMENTS))
    windows = _select(args, archive)
    from tqdm import tqdm

    if instrument == "jemx":
        from ..archive import jemx_data

        n = 0
        for scw in tqdm(windows, desc="jemx windows", unit="scw", disable=args.no_progress):
            for unit in jemx_data.units_on(scw.revolution):
                jemx_data.generate_window(archive, scw, unit)
                n += 1
        print(f"{n} jemx unit-windows ({len(windows)} science windows) in {archive.root}/jemx1, jemx2")
        return 0
    from ..archive import isgri_data  # lazy: the ISGRI data generator is heavy

    for scw in tqdm(windows, desc=f"{instrument} windows", unit="scw", disable=args.no_progress):
        isgri_data.generate_window(archive, scw)
    print(f"{len(windows)} {instrument} windows in {archive.root / instrument}")
    return 0
