"""Where the moving actors' flow error of a motion-proxy network comes from.

Scores one trained proxy run (``scripts/motion_proxy.py``) on its held-out drives with parts of
its motion switched: the motion gate held open, the matcher's own gate held open, the motion
head's coefficients dropped (matched velocity only), its velocity halved or dropped
(``head_velocity_scale``), its acceleration and jerk dropped, the matched velocity dropped (head only);
with ``--static-speeds``, Gaussians slower than each speed held still (``static_speed``); with
``--gains``, the motion left multiplied by each gain (``motion_gain``); with ``--smoothing-radii``,
each hold and gain also after the motion is smoothed over that many cells (``motion_smoothing_radius``).
Each variant changes the network's outputs through forward hooks or its config; nothing is retrained.
``--training-drives`` scores the run's own training drives instead, to choose a setting on them.
``--calibrate`` does the whole choice: it scores the run as trained and every hold, gain and
smoothing setting offered (or those named with ``--only``) on its training drives, takes the one
with the lowest EPE3D, and scores it and the run as trained on the held-out drives
(``calibration.json``).

usage: python scripts/motion_ablate.py RUN_DIR [--held-out-world JSON] [--camera C] [--only NAME ...]
                                       [--static-speeds M_S ...] [--gains G ...] [--smoothing-radii R ...]
                                       [--training-drives | --calibrate]
e.g.   python scripts/motion_ablate.py out/motion_proxy/gate-deg3 --held-out-world '{"non_uniform_share": 1.0}'
       python scripts/motion_ablate.py out/proxy3/wide --camera 1 --only "as trained" --only "head velocity dropped"
       python scripts/motion_ablate.py out/proxy3tex/run --static-speeds 2 3 --gains 1.25 1.5 2 \
           --smoothing-radii 3 6 --calibrate --held-out-world '{"non_uniform_share": 1.0}'
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from motion_proxy import HELD_OUT_SEEDS, score_held_out
from slarm_ros.model.checkpoint import load_checkpoint
from slarm_ros.model.heads import motion_channels_per_order
from slarm_ros.train.config import TrainConfig

OPEN = 30.0  # a logit whose sigmoid is 1 to float precision


def hold_motion_gate_open(module, _inputs, output):
    raw, _trunk = output
    if "dynamic" in raw:
        raw["dynamic"] = torch.full_like(raw["dynamic"], OPEN)


# Zero head outputs are no motion in either motion form ("speed": a zero direction normalises to zero).
def drop_head_motion(module, _inputs, output):
    raw, _trunk = output
    raw["motion"] = torch.zeros_like(raw["motion"])


def drop_head_higher_orders(module, _inputs, output):
    raw, _trunk = output
    velocity = motion_channels_per_order(module.cfg)  # channels of the first order
    raw["motion"] = torch.cat([raw["motion"][:, :velocity], torch.zeros_like(raw["motion"][:, velocity:])], dim=1)


def hold_matcher_gate_open(module, _inputs, output):
    return torch.full_like(output, OPEN)


def drop_matched_velocity(module, _inputs, output):
    return torch.full_like(output, -OPEN)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--held-out-world", default="{}", help="world overrides (JSON) for the held-out drives")
    parser.add_argument("--camera", type=int, help="score this camera's pixels only (all by default)")
    parser.add_argument("--only", action="append", help="a variant to score, by name (repeatable; all by default)")
    parser.add_argument("--static-speeds", type=float, nargs="*", default=[],
                        help="score with Gaussians slower than each of these speeds (m/s) held still")
    parser.add_argument("--gains", type=float, nargs="*", default=[],
                        help="score with motion multiplied by each of these gains (motion_gain), after each "
                             "--static-speeds hold (or none)")
    parser.add_argument("--smoothing-radii", type=int, nargs="*", default=[],
                        help="also score each --static-speeds and --gains setting with the motion smoothed over "
                             "each of these radii (Gaussian cells, motion_smoothing_radius)")
    scored = parser.add_mutually_exclusive_group()
    scored.add_argument("--training-drives", action="store_true",
                        help="score the run's training drives (its own world) instead of the held-out ones")
    scored.add_argument("--calibrate", action="store_true",
                        help="choose among the run as trained and the offered holds, gains and smoothing on "
                             "the training drives, then score the choice held out (calibration.json)")
    args = parser.parse_args()
    cfg = TrainConfig.from_yaml(args.run / "train_config.yaml")
    model = load_checkpoint(args.run / "model.safetensors")
    head, matcher_gate = model.gaussian_head, model.matcher.gate if model.matcher is not None else None
    variants = {
        "as trained": [],
        "motion gate open": [(head, hold_motion_gate_open)],
        "head motion only": [(matcher_gate, drop_matched_velocity)],
        "matched velocity only": [(head, drop_head_motion)],
        "head velocity halved": [],  # by the config, below
        "head velocity dropped": [],
        "head acceleration and jerk dropped": [(head, drop_head_higher_orders)],
        "matched velocity only, matcher gate open": [(head, drop_head_motion), (matcher_gate, hold_matcher_gate_open)],
        "matched velocity only, both gates open": [(head, drop_head_motion), (head, hold_motion_gate_open),
                                                   (matcher_gate, hold_matcher_gate_open)],
    }
    configs = {"head velocity halved": model.cfg.replace(head_velocity_scale=0.5),
               "head velocity dropped": model.cfg.replace(head_velocity_scale=0.0)}
    settings = ["as trained"]  # what --calibrate chooses among: inference settings, no hooks
    for speed in args.static_speeds:
        settings.append(f"static below {speed:g} m/s")
        variants[f"static below {speed:g} m/s"] = []
        configs[f"static below {speed:g} m/s"] = model.cfg.replace(static_speed=speed)
    for gain in args.gains:
        for speed in args.static_speeds or [0.0]:
            name = f"gain {gain:g}" + (f", static below {speed:g} m/s" if speed else "")
            settings.append(name)
            variants[name] = []
            configs[name] = model.cfg.replace(static_speed=speed, motion_gain=gain)
    for radius in args.smoothing_radii:
        for gain in args.gains or [1.0]:
            for speed in args.static_speeds or [0.0]:
                name = f"smoothed over {radius} cells, gain {gain:g}" + (f", static below {speed:g} m/s" if speed else "")
                settings.append(name)
                variants[name] = []
                # every cell within the radius (slarm-tiny's every 4th cell suits its 12-cell reach)
                configs[name] = model.cfg.replace(motion_smoothing_radius=radius, motion_smoothing_step=1,
                                                  static_speed=speed, motion_gain=gain)
    if args.only:
        unknown = sorted(set(args.only) - set(variants))
        if unknown:
            parser.error(f"unknown variants {unknown}; known: {list(variants)}")
        variants = {name: hooks for name, hooks in variants.items() if name in args.only}
    training_drives = tuple(cfg.first_seed + i for i in range(cfg.num_drives))
    held_out_world = json.loads(args.held_out_world)
    camera_suffix = "" if args.camera is None else f"-camera{args.camera}"
    if args.calibrate:
        offered = {name: [] for name in settings if name in variants}
        on_training = score_variants(model, cfg, offered, configs, {}, args.camera, training_drives)
        chosen = min(on_training, key=lambda name: on_training[name]["flow_epe3d"])
        print(f"chosen on the training drives: {chosen}")
        held_out = score_variants(model, cfg, {name: [] for name in dict.fromkeys(["as trained", chosen])},
                                  configs, held_out_world, args.camera, HELD_OUT_SEEDS)
        calibration = {"training_drives": on_training, "chosen": chosen, "held_out": held_out}
        (args.run / f"calibration{camera_suffix}.json").write_text(json.dumps(calibration, indent=1))
        return 0
    if args.training_drives:
        results = score_variants(model, cfg, variants, configs, {}, args.camera, training_drives)
    else:
        results = score_variants(model, cfg, variants, configs, held_out_world, args.camera, HELD_OUT_SEEDS)
    suffix = camera_suffix + ("-training-drives" if args.training_drives else "")
    (args.run / f"ablation{suffix}.json").write_text(json.dumps(results, indent=1))
    return 0


def score_variants(model, cfg: TrainConfig, variants: dict, configs: dict, world: dict, camera: int | None,
                   seeds: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Score each variant (name -> forward hooks; its network config from ``configs``, else as trained)
    on the drives of ``seeds`` in the run's world with ``world``'s overrides; print a line each and
    return their metrics by name."""
    trained_cfg = model.cfg
    results = {}
    for name, hooks in variants.items():
        if any(module is None for module, _ in hooks):
            continue
        handles = [module.register_forward_hook(hook) for module, hook in hooks]
        model.cfg = configs.get(name, trained_cfg)
        try:
            results[name] = score_held_out(model, cfg, world, camera, seeds)
        finally:
            model.cfg = trained_cfg
            for handle in handles:
                handle.remove()
        r = results[name]
        print(f"{name:42s} EPE3D {r['flow_epe3d']:.4f}  moving {r['dynamic_epe3d']:.4f}"
              f"  static {r['static_epe3d']:.4f} (parked cars {r['parked_epe3d']:.4f})"
              f"  (zero motion {r['zero_motion_epe3d']:.4f} / {r['dynamic_zero_epe3d']:.4f})"
              f"  moving: recovered {r['dynamic_recovered']:.2f}, cosine {r['dynamic_cosine']:.2f}")
    return results


if __name__ == "__main__":
    raise SystemExit(main())
