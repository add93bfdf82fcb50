"""How far moving actors' earlier selves lie from where motion matching looks for them.

Motion matching (``slarm_ros/model/matching.py``) projects each Gaussian's current centre into
the same camera ``back`` timesteps earlier and searches a (2r+1)^2 neighbourhood of matching
cells around it. A static surface lands on itself; a moving one's earlier self lies where its
earlier position projects. This measures, from ground truth only (depth and velocity of rendered
drives, no network), that offset in matching cells for the moving non-ground pixels of cached
drives, and the share within the neighbourhood's reach. The earlier position is taken as the
current one minus back * dt * velocity (constant velocity over the baseline).

usage: python scripts/match_reach.py CACHE_DIR [--drives PATTERN] [--cell PIXELS] [--radius R] [--backs 1,3,5] [--out FILE]
e.g.   python scripts/match_reach.py out/train_cache --cell 4              (slarm-tiny: stride 2, pool 2)
       python scripts/match_reach.py out/motion_proxy_deg/cache --cell 4   (the motion proxy, same cell)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from slarm_ros.eval.metrics import MOVING_M
from slarm_ros.world.config import CLASS_ID, GROUND_CLASSES


def project(points: np.ndarray, cam_to_world: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of world points (N, 3) in a camera (optical frame); behind: nan."""
    world_to_cam = np.linalg.inv(cam_to_world)
    x = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = np.where(x[:, 2] > 1e-2, x[:, 2], np.nan)
    return np.stack([K[0, 0] * x[:, 0] / z + K[0, 2], K[1, 1] * x[:, 1] / z + K[1, 2]], axis=-1)


def offsets_in_drive(drive: dict[str, np.ndarray], back: int, cell: float) -> tuple[list[np.ndarray], int]:
    """Per camera, the offsets (N,) in matching cells (largest of the two image axes) of every
    moving non-ground pixel with a timestep ``back`` before it; and the number of scored pixels
    (moving or not)."""
    depth, flow, semantic = drive["depth"], drive["flow"], drive["semantic"]
    K, cam_to_world, times = drive["K"], drive["cam_to_world"], drive["times"]
    steps, cams, h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)  # pixel centres, as K
    ground = np.isin(semantic, [CLASS_ID[c] for c in GROUND_CLASSES])
    found, scored = [[] for _ in range(cams)], 0
    for t in range(back, steps):
        for c in range(cams):
            valid = (depth[t, c] > 0) & ~ground[t, c]
            scored += int(valid.sum())
            # moving as `slarm eval` counts it: over one frame interval, at least MOVING_M
            frame_s = times[t] - times[t - 1]
            moving = valid & (np.linalg.norm(flow[t, c], axis=-1) * frame_s >= MOVING_M)
            if not moving.any():
                continue
            z = depth[t, c][moving]
            Kinv = np.linalg.inv(K[t, c])
            rays = np.stack([u[moving], v[moving], np.ones_like(z)], axis=-1) @ Kinv.T
            now = (rays * z[:, None]) @ cam_to_world[t, c, :3, :3].T + cam_to_world[t, c, :3, 3]
            earlier = now - (times[t] - times[t - back]) * flow[t, c][moving]
            seen_from = cam_to_world[t - back, c]
            shift = project(earlier, seen_from, K[t - back, c]) - project(now, seen_from, K[t - back, c])
            found[c].append(np.abs(shift).max(axis=-1) / cell)
    return [np.concatenate(f) if f else np.zeros(0) for f in found], scored


def summary(offsets: np.ndarray, radius: int) -> dict[str, float]:
    """Median and 90th percentile of the offsets (cells), and the share within ``radius`` cells."""
    finite = offsets[np.isfinite(offsets)]
    return {"moving_pixels": int(len(finite)), "median_offset_cells": float(np.median(finite)),
            "p90_offset_cells": float(np.percentile(finite, 90)), "within_reach": float((finite <= radius + 0.5).mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache", type=Path, help="folder of cached drives (drive-*.npz)")
    parser.add_argument("--drives", default="drive-*.npz", help="which cached drives (a pattern)")
    parser.add_argument("--cell", type=float, default=4.0, help="matching cell in pixels: gaussian_stride * pool")
    parser.add_argument("--radius", type=int, default=2, help="neighbourhood radius in cells")
    parser.add_argument("--backs", default="1,3,5", help="timesteps back to match against")
    parser.add_argument("--out", type=Path, help="JSON file for the numbers")
    args = parser.parse_args()
    drives = sorted(args.cache.glob(args.drives))
    if not drives:
        parser.error(f"no {args.drives} in {args.cache}")
    results = {}
    for back in (int(b) for b in args.backs.split(",")):
        per_camera, scored = [], 0
        for path in drives:
            with np.load(path) as data:
                found, n = offsets_in_drive({k: data[k] for k in data.files}, back, args.cell)
            per_camera = found if not per_camera else [np.concatenate(p) for p in zip(per_camera, found)]
            scored += n
        every = np.concatenate(per_camera)
        results[back] = {**summary(every, args.radius), "moving_share_of_scored": len(every) / max(scored, 1),
                         "cameras": [summary(o, args.radius) for o in per_camera]}
        r = results[back]
        cams = ", ".join(f"{c['within_reach']:.2f}" for c in r["cameras"])
        print(f"{back} back: moving {r['moving_share_of_scored']:.3f} of scored pixels, offset median "
              f"{r['median_offset_cells']:.2f} cells, p90 {r['p90_offset_cells']:.2f}, within reach "
              f"(r={args.radius}) {r['within_reach']:.3f} (per camera {cams})")
    if args.out:
        args.out.write_text(json.dumps({"cache": str(args.cache), "cell_px": args.cell, "radius": args.radius,
                                        "drives": len(drives), "by_steps_back": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
