"""How good the matcher's raw evidence is: matched velocity before any gate, against the truth.

Scores one trained proxy run (``scripts/motion_proxy.py``) on its held-out windows. For each
matching cell of a window's last timestep (cells wholly on one kind of surface): the soft-matched
velocity the gates receive and the velocity of the single best-scored candidate, both also with
the matcher's range agreement set to other weights after training (``--range-weights``; nothing is
retrained), and the candidate nearest the truth (what the neighbourhood offers at best).
Moving actors (true speed above 1 m/s): median error and the share of the true motion covered
along it (1: all; above 1: overshoot); parked cars and the background: median error. m/s.

usage: python scripts/match_evidence.py RUN_DIR [--held-out-world JSON] [--range-weights W ...]
e.g.   python scripts/match_evidence.py out/proxy3tex/linear-deg3-s0 --held-out-world '{"non_uniform_share": 1.0}'
           --range-weights 2 5 10
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from motion_proxy import HELD_OUT_SEEDS
from slarm_ros.model.checkpoint import load_checkpoint
from slarm_ros.train.config import TrainConfig
from slarm_ros.train.data import cached_drive, window_at
from slarm_ros.world.config import CLASS_ID, GROUND_CLASSES, MOVABLE_CLASSES


def block_mean(x: np.ndarray, block: int) -> np.ndarray:
    """(C, H, W, ...) -> (C, H/block, W/block, ...) means over block x block pixels."""
    c, h, w = x.shape[:3]
    return x.reshape(c, h // block, block, w // block, block, *x.shape[3:]).mean(axis=(2, 4))


def summary(velocity: np.ndarray, truth: np.ndarray, kinds: dict[str, np.ndarray]) -> dict[str, float]:
    """velocity, truth (N, 3) m/s world frame; kinds: name -> (N,) mask."""
    error = np.linalg.norm(velocity - truth, axis=-1)
    moving = kinds["moving"]
    speed = np.linalg.norm(truth[moving], axis=-1)
    along = (velocity[moving] * truth[moving]).sum(-1) / speed
    out = {"moving_median_error": float(np.median(error[moving])), "moving_recovered": float(along.sum() / speed.sum())}
    out.update({f"{name}_median_error": float(np.median(error[mask])) for name, mask in kinds.items() if name != "moving"})
    return out


@torch.inference_mode()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--held-out-world", default="{}", help="world overrides (JSON) for the held-out drives")
    parser.add_argument("--range-weights", type=float, nargs="*", default=[],
                        help="range-agreement weights to score besides the trained one")
    args = parser.parse_args()
    cfg = TrainConfig.from_yaml(args.run / "train_config.yaml")
    model = load_checkpoint(args.run / "model.safetensors").eval()
    matcher = model.matcher
    if matcher is None:
        parser.error(f"{args.run} has no matcher")
    trained_weight = matcher.range_weight
    held_out = cfg.replace(world={**cfg.world, **json.loads(args.held_out_world)})
    block = model.cfg.gaussian_stride * model.cfg.match_pool
    recorded = {}
    candidates = matcher.candidates

    def recording(*inputs):
        recorded["inputs"] = inputs
        return candidates(*inputs)

    matcher.candidates = recording
    variants = {"as trained": trained_weight,
                **{f"range weight {w:g}": torch.nn.Parameter(torch.tensor(w)) for w in args.range_weights}}
    found = {name: {"soft": [], "best scored": []} for name in variants}
    found["any weight"] = {"nearest the truth": []}  # the candidates do not depend on the weights
    truths, kinds = [], {"moving": [], "parked": [], "background": []}
    for seed in HELD_OUT_SEEDS:
        clip = cached_drive(held_out.replace(first_seed=seed).drive(0), model.cfg.image_height, model.cfg.image_width,
                            cfg.cache_dir, cfg.supersample)
        for start in range(0, clip.num_steps - cfg.context + 1, 3):
            last = start + cfg.context - 1
            window = window_at(clip, start, cfg.context, [(last, 1)], model.cfg.gaussian_stride)
            model(window.context)
            to_world = torch.as_tensor(window.anchor_pose[:3, :3], dtype=torch.float32)
            truth = block_mean(clip.flow[last], block)  # (C, h, w, 3) m/s world frame
            classes = clip.semantic[last][:, ::block, ::block]
            seen = (block_mean((clip.depth[last] > 0).astype(float), block) == 1) & \
                ~np.isin(classes, [CLASS_ID[c] for c in GROUND_CLASSES])
            movable = np.isin(classes, [CLASS_ID[c] for c in MOVABLE_CLASSES])
            speed = np.linalg.norm(truth, axis=-1)
            masks = {"moving": block_mean(clip.dynamic[last].astype(float), block) == 1,
                     "parked": movable & (speed < 0.1), "background": ~movable}
            means, *rest = recorded["inputs"]
            for name, weight in variants.items():
                matcher.range_weight = weight
                cand = candidates(means, *rest)
                logits = cand.logits[-1].masked_fill(~cand.valid[-1][:, None], 0.0)  # (C, K, h, w), last timestep
                velocities = cand.velocities(means)[-1] @ to_world.T  # (C, K, h, w, 3) world frame
                soft = (torch.softmax(logits, dim=1)[..., None] * velocities).sum(1)
                pick = lambda index: torch.gather(velocities, 1, index[:, None, :, :, None].expand(-1, 1, -1, -1, 3))[:, 0]
                keep = seen & cand.valid[-1].numpy()  # the same whatever the weight
                for kind, v in (("soft", soft), ("best scored", pick(logits.argmax(1)))):
                    found[name][kind].append(v.numpy()[keep])
            nearest = (velocities - torch.as_tensor(truth)[:, None]).norm(dim=-1).argmin(1)
            found["any weight"]["nearest the truth"].append(pick(nearest).numpy()[keep])
            matcher.range_weight = trained_weight
            truths.append(truth[keep])
            for kind, mask in masks.items():
                kinds[kind].append(mask[keep])
    truth = np.concatenate(truths)
    kinds = {kind: np.concatenate(m) for kind, m in kinds.items()}
    kinds["moving"] &= np.linalg.norm(truth, axis=-1) > 1.0
    results = {name: {kind: summary(np.concatenate(v), truth, kinds) for kind, v in by_kind.items()}
               for name, by_kind in found.items()}
    results["cells"] = {kind: int(m.sum()) for kind, m in kinds.items()}
    for name, by_kind in found.items():
        for kind in by_kind:
            r = results[name][kind]
            print(f"{name:18s} {kind:18s} moving: median error {r['moving_median_error']:6.2f} m/s, recovered "
                  f"{r['moving_recovered']:5.2f}; parked {r['parked_median_error']:6.2f}; "
                  f"background {r['background_median_error']:6.2f}")
    print("cells:", results["cells"])
    (args.run / "match-evidence.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
