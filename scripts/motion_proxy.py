"""A quick check of whether motion generalises: a small network trained on a few drives, scored on others.

One front camera at 40x64, 8 training drives of 3 s with 30 moving cars, 2 held-out drives;
about 6 minutes per 4,000 steps on one CPU thread. Prints and saves depth AbsRel and EPE3D
(all non-ground pixels and moving actors only) against the zero-motion baseline.

usage: python scripts/motion_proxy.py NAME [--steps N] [--losses JSON] [--model JSON] [--train JSON]
                                           [--held-out-world JSON] [--out DIR]
e.g.   python scripts/motion_proxy.py matching --model '{"motion_matching": true}'
       python scripts/motion_proxy.py degree1 --model '{"motion_degree": 1}' --held-out-world '{"non_uniform_share": 1.0}'
       python scripts/motion_proxy.py back5 --model '{"motion_matching": true, "motion_gate": true,
           "match_steps_back": 5, "match_gate_hidden": 16}' --train '{"context": 6}' --losses '{"dynamic": 0.05}'
           --held-out-world '{"non_uniform_share": 1.0}'     (then scripts/motion_ablate.py out/motion_proxy/back5)
       with the two front-side cameras too: --model '{..., "num_cameras": 3}'
           --train '{..., "world": {"cameras": 3, "moving_cars": 30}}'
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from slarm_ros.model.checkpoint import load_checkpoint
from slarm_ros.train.config import TrainConfig
from slarm_ros.train.data import cached_drive
from slarm_ros.train.losses import LossWeights
from slarm_ros.train.trainer import train
from slarm_ros.train.validate import score_window

# slarm-tiny made small; without matching unless --model turns it on. Scored on the network's own
# motion: slow Gaussians are held still only where a script asks (motion_ablate --static-speeds).
# Anchor-encoded, as every proxy run of docs/motion-study.md but the relative ones (--model turns it on).
NETWORK = dict(num_cameras=1, image_height=40, image_width=64, dim=64, depth=2, num_heads=2, motion_matching=False,
               static_speed=0.0, motion_smoothing_radius=0, pose_encoding="anchor", attention_reach_s=0.0)
WORLD = dict(cameras=1, moving_cars=30)
HELD_OUT_SEEDS = (900, 901)


def score_held_out(model, cfg: TrainConfig, world_overrides: dict, camera: int | None = None,
                   seeds: tuple[int, ...] = HELD_OUT_SEEDS) -> dict[str, float]:
    """Mean scores over windows of the held-out drives (seeds never trained on, or ``seeds``); of one camera if given."""
    held_out = cfg.replace(world={**cfg.world, **world_overrides})  # the training world's cameras and traffic
    scores = []
    for seed in seeds:
        clip = cached_drive(held_out.replace(first_seed=seed).drive(0), model.cfg.image_height, model.cfg.image_width,
                            cfg.cache_dir, cfg.supersample)
        scores += [score_window(model, clip, start, cfg.context, camera)
                   for start in range(0, clip.num_steps - cfg.context + 1, 3)]
    return {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--losses", default="{}", help="LossWeights overrides (JSON)")
    parser.add_argument("--model", default="{}", help="network config overrides (JSON)")
    parser.add_argument("--train", default="{}", help="training config overrides (JSON), e.g. other_scale")
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialisation and sampling)")
    parser.add_argument("--held-out-world", default="{}",
                        help="world overrides (JSON) for the held-out drives only, e.g. all actors non-uniform")
    parser.add_argument("--out", default="out/motion_proxy")
    args = parser.parse_args()
    out = Path(args.out)
    losses = {"depth": 1.0, "context_depth": 1.0, **json.loads(args.losses)}
    cfg = TrainConfig(model_overrides={**NETWORK, **json.loads(args.model)}, first_seed=500, num_drives=8,
                      drive_seconds=3.0, world=WORLD, cache_dir=str(out / "cache"), context=4, future=2,
                      steps=args.steps, minutes=0, warmup_steps=50, lr=2e-3, log_every=50,
                      checkpoint_every=10**6, threads=1, seed=args.seed, anchor_lag_s=0.0, losses=LossWeights(**losses))
    cfg = cfg.replace(**json.loads(args.train))
    started = time.time()
    train(cfg, out / args.name, progress=False)
    model = load_checkpoint(out / args.name / "model.safetensors")
    mean = score_held_out(model, cfg, json.loads(args.held_out_world))
    mean["minutes"] = (time.time() - started) / 60
    print(args.name, json.dumps(mean))
    (out / f"{args.name}.json").write_text(json.dumps(mean, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
