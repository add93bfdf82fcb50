"""The ``slarm`` command: one entry point for the engine's jobs."""
from __future__ import annotations

import argparse
import logging
import sys


def _demo(args: argparse.Namespace) -> int:
    print(
        "slarm demo: not available yet. It will make a synthetic driving bag, start slarm_node "
        "and a bag replay with /clock, set the query 'car', record the node's outputs and "
        "summarise them under out/demo/.",
        file=sys.stderr,
    )
    return 2


def _bench_engine(args: argparse.Namespace) -> int:
    from .eval import bench_engine

    bench_engine.run(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slarm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the node on a synthetic drive and summarise it")
    demo.set_defaults(func=_demo)

    bench = commands.add_parser("bench", help="benchmarks that print and save numbers")
    targets = bench.add_subparsers(dest="target", required=True)
    from .eval import bench_engine

    engine = targets.add_parser("engine", help="per-timestep latency and memory, streaming vs offline")
    bench_engine.add_arguments(engine)
    engine.set_defaults(func=_bench_engine)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
