"""``python -m benchmarks``: quick mode by default, ``BENCH_FULL=1`` for the full sizes.

Options for partial runs: ``--only loop,messages``, ``--backends memory,sqlite``,
``--no-write`` (print only; ``docs/`` is untouched).
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import report
from benchmarks.run import FULL, QUICK, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("--only", help="comma-separated scenarios (loop,chain,fanout,messages,...)")
    p.add_argument("--backends", help="comma-separated backends (memory,sqlite,postgres)")
    p.add_argument("--no-write", action="store_true", help="do not write docs/")
    args = p.parse_args(argv)
    sizes = FULL if os.environ.get("BENCH_FULL", "") not in ("", "0") else QUICK
    only = tuple(args.only.split(",")) if args.only else None
    backends = tuple(args.backends.split(",")) if args.backends else None
    print(f"tether benchmarks, {sizes.mode} mode", flush=True)
    res = run(sizes, only=only, backends=backends, log=lambda s: print(s, flush=True))
    partial = only is not None or backends is not None
    if args.no_write or partial or os.environ.get("BENCH_NO_WRITE"):
        table_md = report.table(res)
    else:
        table_md, pngs = report.write(res)
        print(f"wrote {report.DOCS / 'benchmarks.md'} and {', '.join(p.name for p in pngs)}")
    print()
    print(table_md)
    print()
    print(report.targets_md(res))
    for note in res.notes:
        print(f"note: {note}")
    for err in res.errors:
        print(f"ERROR {err['engine']} {err['case']}: {err['error']}\n{err['traceback']}")
    print(f"\n{sizes.mode} run took {res.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
