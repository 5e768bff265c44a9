"""`python -m bench [--quick | --smoke] [--layouts serve,split,server] [--out docs/benchmarks.md]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.config import SIZES
from bench.processes import REPO
from bench.rig import LAYOUTS


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the bot against the bare graph and write docs/benchmarks.md with its plots.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="size", help="a small run (~1-2 minutes)")
    size.add_argument("--smoke", action="store_const", const="smoke", dest="size", help="a couple of turns")
    parser.set_defaults(size="full")
    parser.add_argument("--layouts", help=f"comma-separated, from {', '.join(LAYOUTS)} (default: the size's)")
    parser.add_argument("--pending", type=int, help="questions left waiting for the memory figure (0 skips it)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="the report to write")
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs (matplotlib not needed)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--logs", type=Path, help="where the processes' logs go (default: a temporary folder)")
    parser.add_argument("--from-json", type=Path, help="run nothing: write the report from results saved by --json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = SIZES[args.size]
    if args.layouts:
        chosen = tuple(name.strip() for name in args.layouts.split(",") if name.strip())
        unknown = [name for name in chosen if name not in LAYOUTS]
        if unknown:
            print(f"bench: unknown layout(s) {', '.join(unknown)}; choose from {', '.join(LAYOUTS)}", file=sys.stderr)
            return 2
        sizes = sizes.with_layouts(chosen)
    if args.pending is not None:
        sizes = replace(sizes, pending=args.pending)
    if not args.no_plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("bench: matplotlib is missing: pip install -e '.[bench]' (or pass --no-plots)", file=sys.stderr)
            return 2

    from bench.report import write_report
    from bench.run import dump, load, run

    if args.from_json:
        write_report(load(args.from_json), args.out, plots=not args.no_plots)
        print(f"bench: wrote {args.out}")
        return 0
    with tempfile.TemporaryDirectory(prefix="lgslack-bench-") as folder:
        logs = args.logs or Path(folder) / "logs"
        try:
            results = asyncio.run(run(sizes, logs=logs))
        except KeyboardInterrupt:
            print("bench: interrupted; processes stopped and databases dropped", file=sys.stderr)
            return 130
        except asyncio.CancelledError:  # SIGTERM cancels the run
            print("bench: terminated; processes stopped and databases dropped", file=sys.stderr)
            return 143
        except Exception:
            if args.logs is None:
                print(f"bench: failed; the processes' logs were in {logs} (kept with --logs DIR)", file=sys.stderr)
            raise
    if args.json:
        dump(results, args.json)
    write_report(results, args.out, plots=not args.no_plots)
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
