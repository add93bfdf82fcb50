"""How much scene flow dense optical flow and depth give on a bag with ground truth, with no learning.

For each camera and timestep k of a bag, a classical dense optical flow (OpenCV DIS) from image k
to image k-b (native resolution) says where each pixel's surface was b frames earlier. Its point
at time k is lifted with a depth map at k, its earlier point with the depth map at k-b sampled at
the flowed pixel; their difference over b frames is the velocity, scored per frame as ``slarm
eval`` scores scene flow (non-ground pixels with valid depth, at the network's resolution).
Depth comes from the ground truth (what the correspondence alone is worth) or from the model
streaming the bag (what it is worth with the model's depth). Two forms of the earlier point:

- ``depth``: the earlier depth map at the flowed pixel (all three components of the motion);
- ``ray``: the earlier point on the flowed pixel's ray at the current point's range from the
  earlier camera (only motion across the ray; a static surface gives exactly zero whatever
  the depth maps say, if the optical flow is right).

A threshold keeps only displacements above it (m per frame). Prints and writes a JSON.

    .venv/bin/python scripts/flow_cue_probe.py --bag out/bags/seed11 --back 1 2 --max-steps 40 --out probe.json
    (docs/model/motion_study/flow-cue-probe/seed11-40-steps.json; a minute or two on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import json
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import torch

from slarm_ros.bag.reader import BagReader
from slarm_ros.eval import metrics
from slarm_ros.eval.evaluate import Evaluator
from slarm_ros.resample import sample_nearest
from slarm_ros.stream import Reconstructor
from slarm_ros.world.config import CLASSES, GROUND_CLASSES, MOVABLE_CLASSES

THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3)


def dense_flow(image: np.ndarray, earlier: np.ndarray, consistency_px: float = 1.0) -> np.ndarray:
    """(H, W, 2) pixel offsets (du, dv) from each pixel of ``image`` to its match in ``earlier``;
    NaN where the flow back from the match does not return within ``consistency_px``."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    forward = dis.calc(grey(image), grey(earlier), None)
    backward = dis.calc(grey(earlier), grey(image), None)
    h, w = forward.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back_at_match = cv2.remap(backward, gx + forward[..., 0], gy + forward[..., 1], cv2.INTER_LINEAR)
    inconsistent = np.linalg.norm(forward + back_at_match, axis=-1) > consistency_px
    forward[inconsistent] = np.nan
    return forward


def lift(u: np.ndarray, v: np.ndarray, z: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Pixels (N,) at camera depth z (N,) -> world points (N, 3)."""
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    return (rays * z[:, None]) @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]


def earlier_points(u, v, x_now, depth_then, K, pose_then, form):
    """The earlier world points (N, 3) of pixels (u, v) of the earlier image (eval resolution)."""
    h, w = depth_then.shape
    ui = np.clip(np.round(u).astype(int), 0, w - 1)
    vi = np.clip(np.round(v).astype(int), 0, h - 1)
    inside = (u > -0.5) & (u < w - 0.5) & (v > -0.5) & (v < h - 0.5)
    if form == "depth":
        z = depth_then[vi, ui]
        return lift(u, v, z, K, pose_then), inside & (z > 0)
    unit = lift(u, v, np.ones_like(u), K, pose_then) - pose_then[:3, 3]
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    rng = np.linalg.norm(x_now - pose_then[:3, 3], axis=1)
    return pose_then[:3, 3] + unit * rng[:, None], inside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bag", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--back", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)

    engine = Reconstructor.from_checkpoint(args.checkpoint, device="cpu")
    h, w = engine.cfg.image_height, engine.cfg.image_width
    reader = BagReader(args.bag)
    names = reader.classes or list(CLASSES)
    ev = Evaluator(engine, names, h, w, dt=0.1)
    ground = [names.index(c) for c in GROUND_CLASSES if c in names]
    movable = [names.index(c) for c in MOVABLE_CLASSES if c in names]
    keep = max(args.back) + 1
    history: deque = deque(maxlen=keep)  # (sample, predicted depth (C, h, w)) of the last timesteps
    pooled: dict[str, dict[str, list]] = {}
    gt_all, fg_all = [], []
    prev_stamp = None
    for k, sample in enumerate(reader):
        if k >= args.max_steps:
            break
        result = engine.step(sample.frame_set)
        with torch.inference_mode():
            pred_depth = ev.render(result.gaussians, result.stamp, sample.frame_set).depth[..., 0].cpu().numpy()
        dt = sample.frame_set.stamp - prev_stamp if prev_stamp is not None else 0.1
        prev_stamp = sample.frame_set.stamp
        history.append((sample, pred_depth))
        if len(history) < keep:
            continue
        for i, cam in enumerate(sample.frame_set.cameras):
            truth = sample.ground_truth[cam.name]
            gt_depth = sample_nearest(truth["depth"], h, w)
            gt_sem = sample_nearest(truth["semantic"], h, w).astype(np.int64)
            gt_flow = sample_nearest(truth["flow"], h, w) * dt  # m per frame
            scored = (gt_depth > 0) & ~np.isin(gt_sem, ground)
            vv, uu = np.nonzero(scored)
            gt_all.append(gt_flow[scored])
            fg_all.append(np.isin(gt_sem[scored], movable))
            K = ev.cameras(sample.frame_set)[0][i].cpu().numpy().astype(np.float64)
            pose = cam.cam_to_world
            big_h, big_w = truth["depth"].shape
            # the native pixels the scored pixels are sampled from (as sample_nearest picks them)
            vn = np.clip(np.round((vv + 0.5) * big_h / h - 0.5).astype(int), 0, big_h - 1)
            un = np.clip(np.round((uu + 0.5) * big_w / w - 0.5).astype(int), 0, big_w - 1)
            for back in args.back:
                then, then_depth = history[-1 - back]
                then_cam = then.frame_set.cameras[i]
                native_flow = dense_flow(cam.image, then_cam.image)[vn, un]
                # ground-truth depth at the native resolution: no depth edge is blurred by resampling
                sources = {
                    "gt": (un.astype(float), vn.astype(float), native_flow, truth["depth"][vn, un],
                           then.ground_truth[cam.name]["depth"], cam.K, then_cam.K),
                    "model": (uu.astype(float), vv.astype(float), native_flow * (w / big_w), pred_depth[i][vv, uu],
                              then_depth[i], K, K),
                }
                for source, (u, v, flow, z_now, past_depth, K_now, K_then) in sources.items():
                    x_now = lift(u, v, z_now.astype(float), K_now, pose)
                    for form in ("depth", "ray"):
                        x_then, ok = earlier_points(np.nan_to_num(u + flow[:, 0]), np.nan_to_num(v + flow[:, 1]), x_now,
                                                    past_depth, K_then, then_cam.cam_to_world, form)
                        ok &= np.isfinite(flow).all(axis=1)
                        disp = np.where(ok[:, None], (x_now - x_then) / back, 0.0)
                        size = np.linalg.norm(disp, axis=1)
                        for tau in THRESHOLDS:
                            key = f"{source}/{form}/back{back}/min{tau}"
                            pooled.setdefault(key, {"pred": []})["pred"].append(np.where((size >= tau)[:, None], disp, 0))
        print(f"step {k}", flush=True)

    gt, fg = np.concatenate(gt_all), np.concatenate(fg_all)
    zero = metrics.flow_errors(np.zeros_like(gt), gt, fg)
    rows = {"zero_motion": zero}
    print(f"zero motion: EPE3D {zero['flow_epe3d']:.4f} moving {zero['flow_epe3d_moving']:.3f}")
    for key, parts in pooled.items():
        m = metrics.flow_errors(np.concatenate(parts["pred"]), gt, fg)
        rows[key] = m
        print(f"{key:28s} EPE3D {m['flow_epe3d']:.4f} ({m['flow_epe3d'] / zero['flow_epe3d']:.2f} of zero) "
              f"moving {m['flow_epe3d_moving']:.3f} static {m['flow_epe3d_static']:.4f} "
              f"parked {m['flow_epe3d_fg_static']:.4f} recovered {m['flow_recovered_moving']:.2f} "
              f"cos {m['flow_cosine_moving']:.2f}")
    Path(args.out).write_text(json.dumps({"bag": args.bag, "steps": args.max_steps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
