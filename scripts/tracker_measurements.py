"""What limits the object tracker's measurements, on the Gaussians the engine makes for a bag.

Streams a bag through the engine (the shipped model, or ``--checkpoint``) and, at each timestep,
takes what the tracker (slarm_ros/stream/object_motion.py) is given: the Gaussians, which of them
it may group, the network's velocity and the cameras; beside them, each Gaussian's true velocity
(the bag's ground-truth flow at its pixel). Then, per timestep, every object is measured against
the timestep before, with no gate and no filter, and compared with the mean true velocity of its
Gaussians:

- **error by direction**: the measurement's error along the ray from the cameras to the object,
  across it (horizontal) and vertical, for standing objects and for moving ones;
- **a common depth scale?**: a standing object's apparent radial shift per step as a share of its
  range, and how much of it the objects one camera sees at one timestep share (if most, a scale
  fitted to the static surroundings would take it out);
- **search or cost**: how much of the true displacement the alignment finds, and how often the
  true displacement costs less than the found one (then a better search would find more) or more
  (then the cost itself, the reconstruction, puts the minimum elsewhere);
- **where the moving Gaussians are**: the share of the true motion (speed-weighted) on Gaussians
  the tracker never groups (named no movable class, or fainter than it takes), in no object (too
  small a group), in an object the network's motion keeps below the gate, and in one it lets pass;
  how far from the cameras those in no object and those in objects lie, and how many of those in
  no object the network moves itself.

    python scripts/tracker_measurements.py --bag out/heldout/seed12 --out measurements-seed12.json [--offline]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from slarm_ros.bag.reader import BagReader
from slarm_ros.resample import sample_nearest
from slarm_ros.stream import Reconstructor
from slarm_ros.stream.object_motion import Objects, group_points, measure, thinned, align_translation

STANDING, MOVING = 0.1, 3.0  # m/s: an object's mean true speed below / at or above


def record(bag: str, checkpoint: str | None, max_steps: int, offline: bool = False) -> tuple[list[dict], object]:
    """Per timestep what the tracker is given, and the true velocity of every Gaussian; the engine's config.

    Streaming, or with ``offline`` one full-attention pass (the tracker causal over it, as the engine's)."""
    engine = Reconstructor.from_checkpoint(checkpoint, device="cpu")
    tracker = engine.object_tracker
    if tracker is None:
        raise SystemExit("the checkpoint's config does not set object_motion: there is no tracker to study")
    H, W = engine.cfg.gaussian_grid
    steps, truth = [], {}  # truth: the true velocities of each timestep's Gaussians, by its stamp
    update = tracker.update

    def recording(g, stamp, views):
        movable = tracker.movable_mask(g)
        steps.append(dict(stamp=stamp, views=views, movable=movable.numpy(), means=g.means.double().numpy(),
                          network=g.motion[:, 0].double().numpy(), opacity=g.opacities.numpy(),
                          truth=truth[stamp]))
        return update(g, stamp, views)

    tracker.update = recording  # the offline pass's own tracker is a copy, and records too
    frame_sets = []
    for k, sample in enumerate(BagReader(bag)):
        if k >= max_steps:
            break
        truth[sample.frame_set.stamp] = np.concatenate([
            sample_nearest(sample.ground_truth[c.name]["flow"], H, W).reshape(-1, 3)
            for c in sample.frame_set.cameras]).astype(np.float64)
        if offline:
            frame_sets.append(sample.frame_set)
        else:
            engine.step(sample.frame_set)
    if offline:
        engine.run_offline(frame_sets, "full")
    return steps, engine.cfg


def facing_camera(views, point: np.ndarray) -> int:
    """The camera whose optical axis points closest to ``point`` (3,)."""
    cosines = []
    for T in views.world_to_cam:
        p = T[:3, :3] @ point + T[:3, 3]
        cosines.append(p[2] / np.linalg.norm(p))
    return int(np.argmax(cosines))


def analyse(steps: list[dict], link: float, min_points: int, gate_speed: float) -> dict:
    rows = []  # per measurement: true speed, error along / across / vertical, share found, truth cheaper
    radial = []  # standing objects: (timestep, camera, radial shift per step / range)
    where = dict(never_grouped=0.0, faint=0.0, no_object=0.0, below_gate=0.0, gated_in=0.0)
    ranges = dict(no_object=[], in_object=[])  # m, of the moving Gaussians the tracker groups
    network_moves_lone = []  # of those in no object: the network's own speed reaches the gate
    earlier = None
    for step in steps:
        chosen = np.flatnonzero(step["movable"])
        points, network, truth = step["means"][chosen], step["network"][chosen], step["truth"][chosen]
        label, centres = group_points(points, link, min_points)
        network_speed = np.array([np.linalg.norm(network[label == j].mean(0)) for j in range(len(centres))])

        speed = np.linalg.norm(step["truth"], axis=1)
        moving = np.flatnonzero(speed >= 0.5)
        object_of = np.full(len(speed), -2)
        object_of[chosen] = label
        eye = step["views"].centre
        for i in moving:
            if object_of[i] >= -1:
                ranges["no_object" if object_of[i] == -1 else "in_object"].append(np.linalg.norm(step["means"][i] - eye))
            if object_of[i] == -1:
                network_moves_lone.append(np.linalg.norm(step["network"][i]) >= gate_speed)
            if object_of[i] == -2:
                where["faint" if step["opacity"][i] < 0.1 else "never_grouped"] += speed[i]
            elif object_of[i] == -1:
                where["no_object"] += speed[i]
            else:
                where["gated_in" if network_speed[object_of[i]] >= gate_speed else "below_gate"] += speed[i]

        if earlier is not None:
            dt = step["stamp"] - earlier.stamp
            for j, centre in enumerate(centres):
                mine = label == j
                true_velocity, net = truth[mine].mean(0), network[mine].mean(0)
                m = measure(points[mine], centre, earlier, step["views"], dt,
                            direction=net if np.linalg.norm(net) > 0 else None)
                if m is None:
                    continue
                ray = centre - eye
                ray[2] = 0.0
                ray /= np.linalg.norm(ray)
                error = m.velocity - true_velocity
                along = error @ ray
                across = np.linalg.norm(error[:2] - along * ray[:2])
                true_speed = np.linalg.norm(true_velocity)
                if true_speed < STANDING:
                    radial.append((step["stamp"], facing_camera(step["views"], centre),
                                   along * dt / np.linalg.norm((centre - eye)[:2])))
                found, truth_cheaper = np.nan, np.nan
                if true_speed >= MOVING:
                    now, then = thinned(points[mine]), thinned(earlier.members(m.match))
                    _, cost_found = align_translation(now, then, m.velocity * dt, step["views"], earlier.views, iterations=0)
                    _, cost_true = align_translation(now, then, true_velocity * dt, step["views"], earlier.views, iterations=0)
                    found = (m.velocity @ true_velocity) / true_speed**2
                    truth_cheaper = float(cost_true < cost_found)
                rows.append((true_speed, abs(along), across, abs(error[2]), found, truth_cheaper, network_speed[j]))
        earlier = Objects(points, label, centres, np.full((len(centres), 1, 3), np.nan), step["views"], step["stamp"])

    r = np.array(rows).reshape(-1, 7)
    out = {"measurements": len(r)}
    median = lambda x: float(np.median(x)) if len(x) else None
    for name, sel in (("standing", r[:, 0] < STANDING), ("moving", r[:, 0] >= MOVING),
                      ("moving, past the gate", (r[:, 0] >= MOVING) & (r[:, 6] >= gate_speed))):
        x = r[sel]
        out[name] = {"count": int(len(x)),
                     "median_error_m_s": {"along the ray": median(x[:, 1]), "across": median(x[:, 2]),
                                          "vertical": median(x[:, 3])}}
        if name != "standing":
            out[name]["median_share_found"] = median(x[:, 4])
            out[name]["truth_costs_less"] = float(np.mean(x[:, 5])) if len(x) else None
    shifts = np.array(radial).reshape(-1, 3)
    groups = [shifts[(shifts[:, 0] == t) & (shifts[:, 1] == c), 2] for t, c in {(t, c) for t, c, _ in shifts}]
    groups = [g for g in groups if len(g) >= 2]
    rms = lambda x: float(np.sqrt(np.mean(x**2))) if len(x) else None
    out["standing_radial_shift_share_of_range"] = {
        "median_abs": float(np.median(np.abs(shifts[:, 2]))) if len(shifts) else None,
        "rms_in_groups_of_two_or_more": rms(np.concatenate(groups) if groups else np.zeros(0)),
        "rms_about_the_groups_median": rms(np.concatenate([g - np.median(g) for g in groups]) if groups else np.zeros(0))}
    total = sum(where.values())
    out["moving_gaussians_by_where"] = {k: v / total for k, v in where.items()} if total else None
    out["moving_gaussians_range_m_10_50_90th_percentile"] = {
        k: np.percentile(v, [10, 50, 90]).tolist() if v else None for k, v in ranges.items()}
    out["moving_gaussians_in_no_object_the_network_moves"] = float(np.mean(network_moves_lone)) if network_moves_lone else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bag", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--offline", action="store_true", help="one full-attention pass instead of streaming")
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps, cfg = record(args.bag, args.checkpoint, args.max_steps, args.offline)
    result = {"bag": args.bag, "mode": "offline" if args.offline else "streaming", "steps": len(steps),
              **analyse(steps, cfg.object_link_m, cfg.object_min_points, cfg.object_gate_speed)}
    print(json.dumps(result, indent=1))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
