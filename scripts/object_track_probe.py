"""What tracking the reconstructed actors as objects is worth, per source of depth and classes.

The engine's object motion (``object_motion``; slarm_ros/stream/object_motion.py) groups the
Gaussians it calls movable into objects and measures their motion by aligning each to the
timestep before. This probe runs the same grouping, alignment and gates on pixels (the
evaluation's resolution) instead of Gaussians, so that depth and classes can come from the ground
truth as well as from the model, and sweeps the settings in one pass over a bag (it moves no
neighbour with an object, as ``object_attach_m`` does). Sources:

- ``gt``: true depth and classes (what the tracking alone is worth);
- ``model``: the network's rendered depth and classes, streaming the bag (the shipped model, or
  ``--checkpoint``, always with its own motion: ``object_motion`` off);
- ``gt-depth-model-classes``, ``model-depth-gt-classes``: one of each.

The network's own rendered motion gates an object (its mean over the object's pixels must reach
``--net-gates`` m/s within acos(``--net-cos``) of the measured motion; 0: no gate) and each pixel
(its own speed must reach ``--pixel-gates`` m/s); ``--alphas`` weigh each new measurement along
a track. Scored per frame as ``slarm eval`` scores scene flow, beside the network's own flow.

    python scripts/object_track_probe.py --bag out/heldout/seed11 --max-steps 40 --out probe.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from slarm_ros.bag.reader import BagReader
from slarm_ros.eval import metrics
from slarm_ros.eval.evaluate import Evaluator
from slarm_ros.resample import sample_nearest
from slarm_ros.model.checkpoint import with_config
from slarm_ros.stream import Reconstructor
from slarm_ros.stream.reconstructor import DEFAULT_CHECKPOINT
from slarm_ros.stream.object_motion import Objects, Views, group_points, measure
from slarm_ros.stream.track_filter import TrackFilter
from slarm_ros.world.config import CLASSES, GROUND_CLASSES, MOVABLE_CLASSES

from flow_cue_probe import lift  # this folder's other probe: pixels at camera depth -> world points

SOURCES = ("gt", "model", "gt-depth-model-classes", "model-depth-gt-classes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bag", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--link", type=float, default=1.0, help="m: points closer than this are one object")
    ap.add_argument("--min-points", type=int, default=5)
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 0.5, 0.3])
    ap.add_argument("--net-gates", type=float, nargs="+", default=[0.0, 0.5])
    ap.add_argument("--net-cos", type=float, nargs="+", default=[0.0])
    ap.add_argument("--pixel-gates", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    args = ap.parse_args()
    torch.set_num_threads(2)

    # the network's own motion, which the probe's gates read: the checkpoint without object motion
    with tempfile.TemporaryDirectory() as tmp:
        own = with_config(args.checkpoint or DEFAULT_CHECKPOINT, Path(tmp) / "own-motion.safetensors",
                          object_motion=False)
        engine = Reconstructor.from_checkpoint(own, device="cpu")
    h, w = engine.cfg.image_height, engine.cfg.image_width
    reader = BagReader(args.bag)
    names = reader.classes or list(CLASSES)
    ev = Evaluator(engine, names, h, w, dt=0.1)
    ground = [names.index(c) for c in GROUND_CLASSES if c in names]
    movable = [names.index(c) for c in MOVABLE_CLASSES if c in names]
    previous: dict[tuple, Objects] = {}  # (source, alpha) -> the timestep before's objects
    pooled: dict[str, list] = {"model own flow": []}
    gt_all, fg_all = [], []
    prev_stamp = None
    for k, sample in enumerate(reader):
        if k >= args.max_steps:
            break
        result = engine.step(sample.frame_set)
        with torch.inference_mode():
            render = ev.render(result.gaussians, result.stamp, sample.frame_set, with_features=True, with_flow=True)
            alpha = render.alpha[..., 0].clamp_min(1e-6)
            classes = ev.class_scorer(render.features / alpha[..., None]).argmax(-1).cpu().numpy()
            classes[render.alpha[..., 0].cpu().numpy() < 1e-3] = names.index("sky")
            depth = render.depth[..., 0].cpu().numpy()
        dt = sample.frame_set.stamp - prev_stamp if prev_stamp is not None else 0.1
        prev_stamp = sample.frame_set.stamp
        own_velocity = ev.frame_flow(render) / ev.dt  # (C, h, w, 3) m/s
        K = ev.cameras(sample.frame_set)[0].cpu().numpy().astype(np.float64)
        poses = np.stack([c.cam_to_world for c in sample.frame_set.cameras])
        views = Views.of(K, poses, h, w)

        # the scored pixels, and per source the movable pixels' points, scored index and own velocity
        lifted = {s: ([], [], []) for s in args.sources}
        step_gt, step_fg, step_own, offset = [], [], [], 0
        for i, cam in enumerate(sample.frame_set.cameras):
            truth = sample.ground_truth[cam.name]
            gt_depth = sample_nearest(truth["depth"], h, w)
            gt_sem = sample_nearest(truth["semantic"], h, w).astype(np.int64)
            scored = (gt_depth > 0) & ~np.isin(gt_sem, ground)
            index = np.full((h, w), -1)
            index[scored] = offset + np.arange(scored.sum())
            offset += scored.sum()
            step_gt.append(sample_nearest(truth["flow"], h, w)[scored] * dt)
            step_fg.append(np.isin(gt_sem[scored], movable))
            step_own.append(own_velocity[i][scored] * dt)
            inputs = {"gt": (gt_depth, gt_sem), "model": (depth[i], classes[i]),
                      "gt-depth-model-classes": (gt_depth, classes[i]), "model-depth-gt-classes": (depth[i], gt_sem)}
            for source in args.sources:
                z, sem = inputs[source]
                # the model's objects are its own: every pixel it calls movable, scored or not
                mask = np.isin(sem, movable) & (z > 0) & (scored if source.startswith("gt") else True)
                v, u = np.nonzero(mask)
                lifted[source][0].append(lift(u.astype(float), v.astype(float), z[v, u].astype(float), K[i], poses[i]))
                lifted[source][1].append(index[mask])
                lifted[source][2].append(own_velocity[i][mask])
        gt_step = np.concatenate(step_gt)
        gt_all.append(gt_step)
        fg_all.append(np.concatenate(step_fg))
        pooled["model own flow"].append(np.concatenate(step_own))

        for source, parts in lifted.items():
            points, idx, own = (np.concatenate(p) for p in parts)
            label, centres = group_points(points, args.link, args.min_points)
            net = np.stack([own[label == j].mean(0) for j in range(len(centres))]) if len(centres) else np.zeros((0, 3))
            on = (label >= 0) & (idx >= 0)
            for a in args.alphas:
                earlier = previous.get((source, a))
                track_filter = TrackFilter(1, 1.0 - a)
                tracks = np.full((len(centres), 1, 3), np.nan)
                gain = np.full(len(centres), -np.inf)
                for j, centre in enumerate(centres):
                    m = (measure(points[label == j], centre, earlier, views, dt, direction=net[j])
                         if earlier is not None else None)
                    if m is None:
                        continue
                    before = earlier.motion[m.match]
                    tracks[j] = (track_filter.start(m.velocity) if np.isnan(before[0, 0])
                                 else track_filter.update(before, m.velocity, dt))
                    gain[j] = m.gain
                previous[(source, a)] = Objects(points, label, centres, tracks, views, sample.frame_set.stamp)
                velocity = tracks[:, 0]
                speed, net_speed = np.linalg.norm(velocity, axis=1), np.linalg.norm(net, axis=1)
                cosine = (velocity * net).sum(1) / np.maximum(speed * net_speed, 1e-9)
                for gate, cos_min, pixel_gate in itertools.product(args.net_gates, args.net_cos, args.pixel_gates):
                    moves = (gain > 0) & ((net_speed >= gate) & (cosine > cos_min) if gate > 0 else True)
                    v = np.where(moves[:, None], np.nan_to_num(velocity) * dt, 0.0)
                    mine = on & (np.linalg.norm(own, axis=1) >= pixel_gate)
                    pred = np.zeros_like(gt_step)
                    pred[idx[mine]] = v[label[mine]]
                    pooled.setdefault(f"{source}/a{a}/net{gate}/cos{cos_min}/pixel{pixel_gate}", []).append(pred)
        print(f"step {k}", flush=True)

    gt, fg = np.concatenate(gt_all), np.concatenate(fg_all)
    zero = metrics.flow_errors(np.zeros_like(gt), gt, fg)
    rows = {"zero_motion": zero}
    print(f"zero motion: EPE3D {zero['flow_epe3d']:.4f} moving {zero['flow_epe3d_moving']:.3f}")
    moving = np.linalg.norm(gt, axis=1) >= metrics.MOVING_M
    for key, parts in pooled.items():
        pred = np.concatenate(parts)
        m = metrics.flow_errors(pred, gt, fg)
        # the moving points' error: those given no motion, and the rest
        none = moving & (np.linalg.norm(pred, axis=1) == 0)
        err = np.linalg.norm(pred - gt, axis=1)
        m["moving_given_none_share"] = float(none.sum() / max(moving.sum(), 1))
        m["moving_error_given_motion"] = float(err[moving & ~none].mean()) if (moving & ~none).any() else float("nan")
        rows[key] = m
        print(f"{key:44s} EPE3D {m['flow_epe3d']:.4f} ({m['flow_epe3d'] / zero['flow_epe3d']:.2f} of zero) "
              f"moving {m['flow_epe3d_moving']:.3f} parked {m['flow_epe3d_fg_static']:.4f} "
              f"static {m['flow_epe3d_static']:.4f} recovered {m['flow_recovered_moving']:.2f} "
              f"| moving given none {m['moving_given_none_share']:.2f}, the rest's error "
              f"{m['moving_error_given_motion']:.2f}")
    Path(args.out).write_text(json.dumps({"bag": args.bag, "steps": args.max_steps, "args": vars(args),
                                          "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
