"""How much can higher-order motion lower per-frame EPE3D? A bound from the world's own trajectories.

EPE3D compares the velocity a Gaussian carries at its own time (its first motion coefficient,
times one frame interval) with the true instantaneous velocity. Acceleration and jerk enter it
only through training: a network learns each Gaussian's motion by rendering it at other
timestamps, h = -3..+2 frames away for the Gaussians a streaming step publishes. A constant-
velocity model (degree 1) can only put them where a straight line through those horizons does,
so the velocity it learns is the least-squares slope of the true displacements x(h), biased by
the actor's acceleration; a cubic (degree 3) can follow the curve and keep the instantaneous
velocity. This script measures that bias on a drive of the world, pixel by pixel, as `slarm eval`
scores it (non-ground pixels with depth, at the scoring resolution): the EPE3D a perfect degree-1
and a perfect degree-3 model would have if rendering acted as a least-squares fit of position over
the training horizons. The gap between the two is what degree 3 can gain over degree 1 at best.

    python scripts/degree_bound.py --seed 21 --non-uniform-share 1.0 --out out/degree_bound/seed21.json
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from slarm_ros.geometry import grid_pixels, pixel_rays
from slarm_ros.world.config import CLASS_ID, GROUND_CLASSES, WorldConfig
from slarm_ros.world.raycast import render_camera
from slarm_ros.world.scene import build_scene

# A training window: C context timesteps and F following ones. It renders the last context
# timestep's Gaussians (those a streaming step publishes) at every other context timestep and the
# F following ones, each as likely. 4,2 is the shipped recipe's window, 6,2 the flow recipes'.
DEFAULT_WINDOWS = ("4,2", "6,2")


def horizons(context: int, future: int) -> np.ndarray:
    return np.array([h for h in range(-(context - 1), future + 1) if h != 0], dtype=np.float64)


def fitted_velocity(displacements: np.ndarray, h_s: np.ndarray, degree: int) -> np.ndarray:
    """(N, 3) m/s: the first coefficient of the least-squares fit of displacements (N, H, 3) at
    horizons h_s (H,) seconds by sum_i c_i h^i / i!, i = 1..degree (no constant: x(0) = 0)."""
    basis = np.stack([h_s ** i / math.factorial(i) for i in range(1, degree + 1)], axis=1)  # (H, degree)
    solve = np.linalg.pinv(basis)  # (degree, H)
    return np.einsum("h,nhc->nc", solve[0], displacements)


def actor_points(scene, camera, t: float, height: int, width: int):
    """World points (N, 3) of the scored pixels of one camera at time t, their true velocity (N, 3)
    m/s and, for points on actors, the actor's index (-1 elsewhere)."""
    img = render_camera(scene, camera, t)
    ground = np.isin(img.semantic, [CLASS_ID[c] for c in GROUND_CLASSES])
    scored = (img.depth > 0) & ~ground
    cam_to_world = torch.as_tensor(scene.ego_pose(t) @ camera.base_to_camera, dtype=torch.float64)
    origins, dirs = pixel_rays(torch.as_tensor(camera.K, dtype=torch.float64), cam_to_world,
                               grid_pixels(height, width, dtype=torch.float64))
    along_axis = (dirs * cam_to_world[:3, 2]).sum(-1)  # depth is z in the camera, not range
    points = (origins + dirs * (torch.as_tensor(img.depth, dtype=torch.float64) / along_axis)[..., None]).numpy()
    by_instance = {a.instance: i for i, a in enumerate(scene.actors)}
    actor = np.vectorize(lambda k: by_instance.get(int(k), -1))(img.instance)
    return points[scored], img.flow[scored].astype(np.float64), actor[scored]


def displaced(scene, actor_index: np.ndarray, points: np.ndarray, t: float, h_s: np.ndarray) -> np.ndarray:
    """(N, H, 3) where each point on an actor is at t + h (rigid in the actor's frame); zero elsewhere."""
    out = np.zeros((len(points), len(h_s), 3))
    for a in np.unique(actor_index[actor_index >= 0]):
        rows = actor_index == a
        traj = scene.actors[a].trajectory
        (x, y), yaw, _, _ = traj.state(t)
        c, s = np.cos(yaw), np.sin(yaw)
        rel = points[rows, :2] - [x, y]
        body = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], -1)
        for j, h in enumerate(h_s):
            (xh, yh), yaw_h, _, _ = traj.state(t + h)
            ch, sh = np.cos(yaw_h), np.sin(yaw_h)
            moved = np.stack([ch * body[:, 0] - sh * body[:, 1] + xh, sh * body[:, 0] + ch * body[:, 1] + yh], -1)
            out[rows, j, :2] = moved - points[rows, :2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--non-uniform-share", type=float, default=WorldConfig.non_uniform_share)
    parser.add_argument("--height", type=int, default=80, help="scoring resolution, as slarm eval's")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--world", default="{}", help="other WorldConfig fields (JSON), e.g. the proxy's traffic")
    parser.add_argument("--windows", nargs="+", default=list(DEFAULT_WINDOWS), metavar="C,F",
                        help="training windows: context timesteps, following timesteps")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    world = WorldConfig(seed=args.seed, seconds=args.seconds, non_uniform_share=args.non_uniform_share,
                        image_height=args.height, image_width=args.width, **json.loads(args.world))
    scene = build_scene(world)
    dt = 1.0 / world.hz
    plans = {f"context {c}, future {f}": horizons(c, f) * dt
             for c, f in (map(int, w.split(",")) for w in args.windows)}
    errors = {name: {d: [] for d in (1, 3)} for name in plans}
    zero, finite_difference = [], []
    for k in range(world.num_steps):
        t = k * dt
        for camera in scene.cameras:
            points, velocity, actor = actor_points(scene, camera, t, args.height, args.width)
            zero.append(np.linalg.norm(velocity, axis=-1) * dt)
            on_actor = actor >= 0
            # the trajectories agree with the rendered velocity: +-2.5 ms central difference
            step = displaced(scene, actor[on_actor], points[on_actor], t, np.array([-0.0025, 0.0025]))
            finite_difference.append(np.linalg.norm((step[:, 1] - step[:, 0]) / 0.005 - velocity[on_actor], axis=-1))
            for name, h_s in plans.items():
                x = displaced(scene, actor, points, t, h_s)
                for degree in (1, 3):
                    errors[name][degree].append(np.linalg.norm(fitted_velocity(x, h_s, degree) - velocity, axis=-1) * dt)
    zero_epe = float(np.concatenate(zero).mean())
    check = np.concatenate(finite_difference)
    moving = np.concatenate(zero) >= 0.01  # slarm eval's moving points: at least 1 cm per frame
    result = {"seed": args.seed, "seconds": args.seconds, "non_uniform_share": args.non_uniform_share,
              "world": json.loads(args.world),
              "scoring": [args.height, args.width], "points": int(len(moving)), "moving_share": float(moving.mean()),
              "zero_motion_epe3d": zero_epe, "zero_motion_epe3d_moving": float(np.concatenate(zero)[moving].mean()),
              "velocity_check_m_s": {"mean": float(check.mean()), "p99": float(np.percentile(check, 99))}, "windows": {}}
    for name, h_s in plans.items():
        row = {"horizons_frames": (h_s / dt).round().astype(int).tolist()}
        for degree in (1, 3):
            e = np.concatenate(errors[name][degree])
            row[f"degree{degree}_epe3d"] = float(e.mean())
            row[f"degree{degree}_epe3d_moving"] = float(e[moving].mean())
        row["gap_share_of_zero_motion"] = (row["degree1_epe3d"] - row["degree3_epe3d"]) / zero_epe
        result["windows"][name] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
