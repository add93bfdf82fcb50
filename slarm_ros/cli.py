"""The ``slarm`` command: one entry point for the engine's jobs.

  slarm world make --out DIR [--seconds 20 --hz 10 --cameras 3 --seed N]   synthetic drive -> bag
  slarm replay BAG [--rate R]                                            bag -> live topics + /clock
  slarm record --out DIR --topics T [T ...]                               live topics -> bag
  slarm eval --bag BAG [--checkpoint C] [--window W] [--offline [causal]] metrics, report, figures
  slarm export --bag BAG --out F.ply [--stamp S]                         4D Gaussians of a window
  slarm regression [--record]                                             shipped model vs recorded metrics
  slarm compare LABEL=EVAL_DIR [...]                                      one table of several evaluations
  slarm train --config train-tiny.yaml --out DIR [--resume]               self-supervised training
  slarm reconfigure IN OUT KEY=VALUE [...]                                a checkpoint with other settings
  slarm bench engine [--out DIR]                                          latency / memory vs T
  slarm bench node [--out DIR] [--checkpoint C]                           node end-to-end latency
  slarm demo                                                              the node on a synthetic drive
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from .ros.demo import run_demo

    try:
        summary = run_demo(args.out, args.bag, seconds=args.seconds, queries=tuple(args.query), rate=args.rate)
    except RuntimeError as e:  # the node or a helper process failed
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0 if summary["frames_out"] > 0 else 1


def _world_make(args: argparse.Namespace) -> int:
    from .world.config import WorldConfig
    from .world.make import make_world_bag

    cfg = WorldConfig(seed=args.seed, seconds=args.seconds, hz=args.hz, cameras=args.cameras,
                      image_height=args.height, image_width=args.width, non_uniform_share=args.non_uniform_share,
                      image_noise=args.image_noise, noise_seed=args.noise_seed)
    stats = make_world_bag(cfg, args.out, storage=args.storage)
    print(f"wrote {stats['bag']}: {stats['steps']} timesteps x {stats['cameras']} cameras in {stats['seconds']:.1f} s "
          f"(rendering {stats['render_seconds']:.1f} s), {stats['bytes'] / 2**20:.1f} MB")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .bag import replay

    return replay.run(args)


def _record(args: argparse.Namespace) -> int:
    from .bag import record

    return record.run(args)


def _eval(args: argparse.Namespace) -> int:
    from .eval.evaluate import evaluate

    out = args.out or str(Path("out") / "eval" / Path(args.bag).name)
    result = evaluate(args.bag, out, checkpoint=args.checkpoint, window=args.window, offline=args.offline is not None,
                      offline_attention=args.offline or "full", device=args.device, max_steps=args.max_steps)
    keys = ["depth_absrel", "depth_rmse", "flow_epe3d", "flow_acc5", "flow_acc10", "miou", "psnr_next",
            "psnr_next_dynamic", "ssim_next", "step_p50_ms", "peak_mem_mb"]
    print(json.dumps({k: result.get(k) for k in keys}, indent=1))
    print(f"wrote {out}/metrics.json, {out}/report.md and figures")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .bag.reader import BagReader
    from .stream import Reconstructor

    engine = Reconstructor.from_checkpoint(args.checkpoint or None, device=args.device)
    last = None
    for frame_set in BagReader(args.bag, ground_truth=False).frame_sets():
        if args.stamp is not None and frame_set.stamp > args.stamp + 1e-6:
            break
        engine.step(frame_set)
        last = frame_set.stamp
    if last is None:
        print(f"no usable timestep in {args.bag}", file=sys.stderr)
        return 1
    path = engine.export_ply(args.out)
    g = engine.window_gaussians()
    print(f"wrote {path}: {g.num} Gaussians of the window ending at {last:.3f} s "
          f"(motion degree {g.degree}, {g.features.shape[1]} feature channels)")
    return 0


def _regression(args: argparse.Namespace) -> int:
    from .eval import regression

    measured = regression.measure(args.checkpoint or None)
    print(json.dumps(measured, indent=1))
    if args.record:
        print(f"recorded {regression.record(measured, checkpoint=args.checkpoint or 'shipped')}")
        return 0
    problems = regression.compare(measured, regression.load_reference())
    for line in problems:
        print(f"REGRESSION {line}", file=sys.stderr)
    return 1 if problems else 0


def _compare(args: argparse.Namespace) -> int:
    from .eval.report import comparison_table

    runs = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            print(f"error: '{item}' is not LABEL=PATH", file=sys.stderr)
            return 2
        metrics = Path(path) / "metrics.json" if Path(path).is_dir() else Path(path)
        runs[label] = json.loads(metrics.read_text())
    table = comparison_table(runs)
    print(table, end="")
    if args.out:
        Path(args.out).write_text(table)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train.config import TrainConfig
    from .train.trainer import TrainError, train

    cfg = TrainConfig.from_yaml(args.config)
    changes = {k: v for k, v in (("steps", args.steps), ("minutes", args.minutes), ("num_drives", args.drives),
                                 ("seed", args.seed), ("threads", args.threads), ("device", args.device),
                                 ("init_from", args.init_from))
               if v is not None}
    if args.motion_degree is not None:
        changes["model_overrides"] = {**cfg.model_overrides, "motion_degree": args.motion_degree}
    cfg = cfg.replace(**changes)
    try:
        summary = train(cfg, args.out, resume=args.resume, command=" ".join(["slarm", *sys.argv[1:]]),
                        stop_after=args.stop_after)
    except TrainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    final = summary["final"]
    print(f"trained {summary['steps']} steps in {summary['train_seconds'] / 60:.1f} min "
          f"({summary['s_per_step']:.2f} s/step); final loss {final.get('loss', float('nan')):.4f}; "
          f"wrote {args.out}/model.safetensors")
    return 0


def _reconfigure(args: argparse.Namespace) -> int:
    import yaml

    from .model.checkpoint import CheckpointError, with_config

    changes = {}
    for setting in args.settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            print(f"error: '{setting}' is not KEY=VALUE", file=sys.stderr)
            return 2
        changes[key] = yaml.safe_load(value)
    try:
        out = with_config(args.checkpoint or _shipped_checkpoint(), args.out, **changes)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} with {changes}")
    return 0


def _shipped_checkpoint() -> Path:
    from .stream.reconstructor import DEFAULT_CHECKPOINT

    return DEFAULT_CHECKPOINT


def _bench_node(args: argparse.Namespace) -> int:
    from .eval import bench_node

    try:
        bench_node.run(args)
    except RuntimeError as e:  # the node, the replay or the probe failed or ran past its limit
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _bench_engine(args: argparse.Namespace) -> int:
    from .eval import bench_engine

    try:
        bench_engine.run(args)
    except RuntimeError as e:  # a worker failed or ran past its limit
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, the other commands' arguments are left out, so that a
    command imports only what it needs (``slarm train`` runs where rosbags is not installed)."""
    from .world.config import WorldConfig

    def needed(name: str) -> bool:
        return command is None or command == name

    parser = argparse.ArgumentParser(prog="slarm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the node on a synthetic drive and summarise it")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--bag", default="out/bags/demo", help="made if missing")
    demo.add_argument("--seconds", type=float, default=10.0, help="length of the drive made if the bag is missing")
    demo.add_argument("--query", nargs="+", default=["car"])
    demo.add_argument("--rate", type=float, default=1.0)
    demo.set_defaults(func=_demo)

    world = commands.add_parser("world", help="the synthetic driving world")
    world_cmds = world.add_subparsers(dest="world_command", required=True)
    make = world_cmds.add_parser("make", help="render a drive into a ROS 2 bag with ground truth")
    make.add_argument("--out", required=True, help="bag folder to create")
    make.add_argument("--seconds", type=float, default=20.0)
    make.add_argument("--hz", type=float, default=10.0)
    make.add_argument("--cameras", type=int, default=3, help="3 forward cameras, up to 6 surround")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--height", type=int, default=240)
    make.add_argument("--width", type=int, default=384)
    make.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    make.add_argument("--non-uniform-share", type=float, default=WorldConfig.non_uniform_share,
                      help="share of actors that accelerate, brake, turn or zig-zag (the rest keep their speed)")
    make.add_argument("--image-noise", type=float, default=0.0,
                      help="the cameras' read noise, standard deviation in 8-bit levels (0: none)")
    make.add_argument("--noise-seed", type=int, default=0,
                      help="seed of that noise: the same drive with other noise")
    make.set_defaults(func=_world_make)

    play = commands.add_parser("replay", help="publish a bag on live topics with /clock")
    if needed("replay"):
        from .bag import replay

        replay.add_arguments(play)
    play.set_defaults(func=_replay)

    rec = commands.add_parser("record", help="record live topics into a bag")
    if needed("record"):
        from .bag import record

        record.add_arguments(rec)
    rec.set_defaults(func=_record)

    ev = commands.add_parser("eval", help="evaluate the engine on a bag with ground truth")
    ev.add_argument("--bag", required=True)
    ev.add_argument("--checkpoint", default="", help="weights (default: the shipped model)")
    ev.add_argument("--window", type=int, default=None, help="streaming window in timesteps (default: the model's)")
    ev.add_argument("--offline", nargs="?", const="full", choices=["full", "causal"], default=None,
                    help="score one pass over the whole bag instead of streaming: full attention (SLARM's offline "
                         "mode), or causal (each timestep attends to every earlier one)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--max-steps", type=int, default=None, help="only the first N timesteps")
    ev.add_argument("--out", default="", help="output folder (default out/eval/<bag name>)")
    ev.set_defaults(func=_eval)

    reg = commands.add_parser("regression", help="the shipped model's metrics on a fixed drive vs the recorded ones")
    reg.add_argument("--checkpoint", default="")
    reg.add_argument("--record", action="store_true", help="write the measured values as the new reference")
    reg.set_defaults(func=_regression)

    cmp = commands.add_parser("compare", help="one markdown table of several evaluations")
    cmp.add_argument("runs", nargs="+", help="LABEL=DIR (an eval output folder) or LABEL=metrics.json")
    cmp.add_argument("--out", default="", help="also write the table to this file")
    cmp.set_defaults(func=_compare)

    export = commands.add_parser("export", help="write the window's 4D Gaussians as a 3DGS-style PLY")
    export.add_argument("--bag", required=True)
    export.add_argument("--out", required=True, help="PLY file to write")
    export.add_argument("--stamp", type=float, default=None, help="stop at this stamp (s); default: the bag's end")
    export.add_argument("--checkpoint", default="")
    export.add_argument("--device", default="auto")
    export.set_defaults(func=_export)

    tr = commands.add_parser("train", help="train the network by differentiable rendering of synthetic drives")
    tr.add_argument("--config", default="train-tiny.yaml", help="training YAML (a path, or a shipped name)")
    tr.add_argument("--out", required=True, help="run folder (weights, state, log)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--steps", type=int, default=None)
    tr.add_argument("--stop-after", type=int, default=None, help="leave after N steps of this call (resume later)")
    tr.add_argument("--minutes", type=float, default=None, help="training-time budget (0: none)")
    tr.add_argument("--drives", type=int, default=None, help="number of synthetic training drives")
    tr.add_argument("--motion-degree", type=int, default=None, choices=[0, 1, 2, 3])
    tr.add_argument("--seed", type=int, default=None)
    tr.add_argument("--threads", type=int, default=None)
    tr.add_argument("--device", default=None)
    tr.add_argument("--init-from", default=None,
                    help="start from this checkpoint's weights, 'shipped' for the default model (fine-tuning)")
    tr.set_defaults(func=_train)

    reconf = commands.add_parser("reconfigure", help="copy a checkpoint with settings that keep its weights changed")
    reconf.add_argument("checkpoint", help="checkpoint to copy ('' for the shipped model)")
    reconf.add_argument("out", help="checkpoint to write")
    reconf.add_argument("settings", nargs="+", help="KEY=VALUE, e.g. head_velocity_scale=0 match_steps_back=5")
    reconf.set_defaults(func=_reconfigure)

    bench = commands.add_parser("bench", help="benchmarks that print and save numbers")
    targets = bench.add_subparsers(dest="target", required=True)
    engine = targets.add_parser("engine", help="per-timestep latency and memory, streaming vs offline")
    node = targets.add_parser("node", help="end-to-end latency of slarm_node at 10 Hz x 3 cameras")
    if needed("bench"):
        from .eval import bench_engine, bench_node

        bench_engine.add_arguments(engine)
        bench_node.add_arguments(node)
    engine.set_defaults(func=_bench_engine)
    node.set_defaults(func=_bench_node)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(command).parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
