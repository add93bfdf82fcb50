"""Is the motion a network gives to what stands tied to the car's own motion?

Streams a bag with ground truth through the engine and renders each timestep's scene flow as
``slarm eval`` scores it (world frame, displacement over one frame interval, non-ground pixels
with valid depth). For every such pixel it takes the ego displacement d over the same interval
(the camera's own centre, from the bag's poses) and splits the predicted flow f into the part
along d and the rest:

- along: mean of (f . d) / |d|^2, the share of the car's own displacement copied onto the point
  (+: with the car, -: against it);
- across: mean of |f - (f . d^) d^| / |d|;
- cos: median cosine between f and d, over pixels with any predicted motion;
- err: mean error |f - g| (m per frame), and err_along_share: the share of the summed squared
  error that lies along d.

Pixels are split as ``slarm eval`` splits them (moving actors, standing actors, background); for
moving actors f is replaced by the residual f - g. A spurious motion that is mostly ego motion
copied onto static points shows as a large |along| and err_along_share near 1 for standing
actors and background; a motion hedged over parked and moving cars shows along each car's own
heading instead, unrelated to d (cos near 0).

Parked cars line the road the car drives along, so "along d" is also along their heading. The
controlled test is the car's speed: ``--ego-speeds`` renders the same world seed with the car
held at each speed (no speed swing) and probes each drive; motion copied from the car's own
grows with its speed, motion hedged over traffic does not.

usage: python scripts/static_motion_probe.py --bag BAG [--checkpoint FILE] [--max-steps N] [--out FILE]
       python scripts/static_motion_probe.py --ego-speeds 6,12 --seed 21 --work out/probe [--checkpoint FILE]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from slarm_ros.bag.reader import BagReader
from slarm_ros.eval.evaluate import Evaluator
from slarm_ros.eval.metrics import THREE_WAY, flow_parts
from slarm_ros.stream import Reconstructor
from slarm_ros.world.config import CLASSES, WorldConfig
from slarm_ros.world.make import make_world_bag

# flow_parts' three masks, as slarm eval splits the flow error
PARTS = dict(zip(THREE_WAY, ("moving_actors", "standing_actors", "background")))


def split(f: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f (N, 3) against one ego displacement d (3,) -> along (N,) in units of |d|, across (N,) in
    units of |d|, cosine (N,)."""
    norm = float(np.linalg.norm(d))
    along = f @ d / norm**2
    across = np.linalg.norm(f - np.outer(along, d), axis=1) / norm
    cosine = f @ d / (np.linalg.norm(f, axis=1) * norm + 1e-12)
    return along, across, cosine


def probe(bag: str | Path, checkpoint: str | None, max_steps: int | None) -> dict:
    reader = BagReader(bag)
    engine = Reconstructor.from_checkpoint(checkpoint, device="cpu")
    names = reader.classes or list(CLASSES)
    ev = Evaluator(engine, names, engine.cfg.image_height, engine.cfg.image_width, dt=0.1)
    pooled = {p: {"along": [], "across": [], "cos": [], "err": [], "err_along": []} for p in PARTS.values()}
    previous: dict[str, np.ndarray] = {}
    prev_stamp, steps = None, 0
    for sample in reader:
        if max_steps is not None and steps >= max_steps:
            break
        steps += 1
        result = engine.step(sample.frame_set)
        fs = sample.frame_set
        centres = {c.name: c.cam_to_world[:3, 3].copy() for c in fs.cameras}
        if prev_stamp is not None:
            ev.dt = fs.stamp - prev_stamp
            with torch.inference_mode():
                render = ev.render(result.gaussians, result.stamp, fs, with_flow=True)
            flow = ev.frame_flow(render)
            for i, cam in enumerate(fs.cameras):
                truth = sample.ground_truth.get(cam.name, {})
                if "depth" not in truth or cam.name not in previous:
                    continue
                d = centres[cam.name] - previous[cam.name]
                if np.linalg.norm(d) < 0.05:  # standing still: no direction to compare with
                    continue
                depth, sem, gt = ev.truth(truth)
                keep = (depth > 0) & ~np.isin(sem, ev.ground)
                f, g, s = flow[i][keep], gt[keep], sem[keep]
                for name, m in flow_parts(g, np.isin(s, ev.movable)).items():
                    if not m.any():
                        continue
                    part = PARTS[name]
                    residual = f[m] - g[m] if part == "moving_actors" else f[m]
                    along, across, cosine = split(residual, d)
                    err = np.linalg.norm(f[m] - g[m], axis=1)
                    err_along = (along * np.linalg.norm(d)) ** 2
                    has_motion = np.linalg.norm(residual, axis=1) > 1e-4
                    for key, v in (("along", along), ("across", across), ("cos", cosine[has_motion]),
                                   ("err", err), ("err_along", err_along)):
                        pooled[part][key].append(v)
        previous, prev_stamp = centres, fs.stamp
    out = {"bag": str(bag), "checkpoint": checkpoint or "default", "timesteps": steps}
    for part, lists in pooled.items():
        if not lists["err"]:
            continue
        v = {key: np.concatenate(x) if x else np.zeros(0) for key, x in lists.items()}
        squared = (v["err"] ** 2).sum()
        out[part] = {
            "pixels": int(len(v["err"])), "err": float(v["err"].mean()),
            "along": float(v["along"].mean()), "across": float(v["across"].mean()),
            "cos": float(np.median(v["cos"])) if len(v["cos"]) else float("nan"),
            "err_along_share": float(v["err_along"].sum() / squared) if squared > 0 else float("nan"),
        }
    return out


def ego_speed_bag(work: Path, seed: int, seconds: float, non_uniform_share: float, speed: float) -> Path:
    """The world drive of ``seed`` with the car held at ``speed`` m/s, rendered once into ``work``."""
    bag = work / f"seed{seed}-ego{speed:g}"
    if not bag.exists():
        cfg = WorldConfig(seed=seed, seconds=seconds, non_uniform_share=non_uniform_share, ego_speed=speed,
                          ego_speed_swing=0.0)
        make_world_bag(cfg, bag, progress=False)
    return bag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bag", help="a bag with ground truth")
    parser.add_argument("--ego-speeds", help="comma-separated car speeds (m/s): one drive each, same world seed")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--non-uniform-share", type=float, default=1.0)
    parser.add_argument("--work", default="out/static_motion_probe", help="where the --ego-speeds drives are kept")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if bool(args.bag) == bool(args.ego_speeds):
        parser.error("give either --bag or --ego-speeds")
    if args.bag:
        result = probe(args.bag, args.checkpoint, args.max_steps)
    else:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        result = {"seed": args.seed, "runs": [
            {"ego_speed": v, **probe(ego_speed_bag(work, args.seed, args.seconds, args.non_uniform_share, v),
                                     args.checkpoint, args.max_steps)}
            for v in (float(x) for x in args.ego_speeds.split(","))]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
