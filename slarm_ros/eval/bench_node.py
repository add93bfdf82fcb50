"""``slarm bench node``: end-to-end latency of slarm_node under a live-like 10 Hz input.

A replay publishes a synthetic drive with wall-clock stamps (as camera drivers do); slarm_node
processes it; a probe in a third process measures, for every ~/points message, the arrival time
minus the image stamp. The node's own diagnostics give the engine step time, from which the
share of time spent outside it (conversion, synchronisation, TF, queueing, publishing,
transport) follows: 1 - engine_step_p50 / e2e_p50. The node's own part of that, without the
transport into and out of it, is 1 - engine_step_p50 / node_processing_p50 (from a matched set
to ~/points published).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..ros.demo import node_command, replay_wait_arguments
from ..ros.processes import ProcessFailed, ProcessSet


def run(args: argparse.Namespace) -> dict:
    from ..ros.node import STAGES
    from ..world.config import WorldConfig
    from ..world.make import make_world_bag

    out, bag = Path(args.out), Path(args.bag)
    out.mkdir(parents=True, exist_ok=True)
    if not bag.exists():
        make_world_bag(WorldConfig(seed=7, seconds=args.seconds, hz=args.hz), bag)
    checkpoint = str(Path(args.checkpoint).resolve()) if args.checkpoint else ""
    procs = ProcessSet()
    procs.env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        overrides = [f"device:={args.device}"] + ([f"checkpoint:={checkpoint}"] if checkpoint else [])
        node = procs.start(node_command(*overrides))
        probe = procs.python("-m", "slarm_ros.eval.latency_probe", "/slarm_node", "5.0", "600")
        replay = procs.python("-m", "slarm_ros.cli", "replay", bag, "--restamp", "--rate", "1", "--delay", "3",
                              *replay_wait_arguments())
        # A node that cannot start (a bad checkpoint, a missing device) ends the benchmark at once.
        _, err = procs.wait(replay, "the replay", 900, needed={"slarm_node": node})
        if replay.returncode != 0:
            raise ProcessFailed(f"the replay failed: {err[-2000:]}")
        probe_out, _ = procs.wait(probe, "the latency probe", 120, needed={"slarm_node": node})
    finally:
        procs.stop(grace=10.0)
    result = json.loads(probe_out.strip().splitlines()[-1])
    lat = np.array(result["latency_ms"])
    diag = result["diagnostics"]
    engine_ms = float(diag.get("network_p50_ms", "nan"))
    report = {
        "e2e_p50_ms": float(np.median(lat)), "e2e_p95_ms": float(np.percentile(lat, 95)),
        "engine_step_p50_ms": engine_ms,
        "node_processing_p50_ms": float(diag.get("latency_p50_ms", "nan")),
        "outside_network_share": 1.0 - engine_ms / float(np.median(lat)),
        "node_overhead_share": 1.0 - engine_ms / float(diag.get("latency_p50_ms", "nan")),
        "frames": int(len(lat)), "frames_in": int(diag.get("frames_in", 0)), "drops": int(diag.get("drops", 0)),
        "unmatched_images": int(diag.get("unmatched_images", 0)),
        "skipped": {k: int(v) for k, v in diag.items() if k.startswith("skipped_")},
        "input_hz": args.hz, "cameras": 3, "points_per_frame": float(np.mean(result["points"])) if result["points"] else 0,
        "node_stages_p50_ms": {name: float(diag.get(f"{name}_p50_ms", "nan")) for name in STAGES},
        "input_delay_p50_ms": float(diag.get("input_delay_p50_ms", "nan")),
        "device": diag.get("device", "?"), "checkpoint": checkpoint or "shipped",
        "latency_ms": [round(x, 2) for x in lat.tolist()],
    }
    (out / "node.json").write_text(json.dumps(report, indent=1))
    for key in ("e2e_p50_ms", "e2e_p95_ms", "engine_step_p50_ms", "node_processing_p50_ms", "outside_network_share",
                "node_overhead_share", "frames", "frames_in", "drops", "unmatched_images", "skipped", "node_stages_p50_ms",
                "input_delay_p50_ms"):
        print(f"{key}: {report[key]:.3f}" if isinstance(report[key], float) else f"{key}: {report[key]}")
    print(f"wrote {out / 'node.json'}")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/bench")
    parser.add_argument("--bag", default="out/bags/bench", help="made if missing (a synthetic drive)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default="", help="model weights; default: the shipped model")

