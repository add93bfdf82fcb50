"""Scores of a network on a window of a rendered drive, against its dense ground truth.

The same definitions as ``slarm eval`` (``eval.metrics``), computed straight from a DriveClip:
the last context timestep's own Gaussians rendered at its time and cameras give depth (vs dense
depth) and scene flow over one frame interval (vs the true velocity, non-ground pixels). Used by
the tests and for quick checks during development; ``slarm eval`` scores bags.
"""
from __future__ import annotations

import numpy as np
import torch

from ..eval import metrics
from ..model import SlarmNet
from ..render.scene import render_gaussians
from ..world.config import CLASS_ID, GROUND_CLASSES, MOVABLE_CLASSES
from .data import DriveClip, window_at


@torch.inference_mode()
def score_window(model: SlarmNet, clip: DriveClip, start: int, context: int, camera: int | None = None) -> dict[str, float]:
    """depth_absrel, flow_epe3d (m per frame interval), the zero-motion baseline's EPE3D and the spurious
    motion of static surfaces (static_epe3d), split into standing cars and pedestrians
    (parked_epe3d) and the background (background_epe3d); on moving actors
    (dynamic_*): EPE3D, zero motion's, the share of their true motion recovered and the median cosine to it.
    ``camera``: score that camera's pixels only (all cameras by default)."""
    model.eval()
    last = start + context - 1
    window = window_at(clip, start, context, [(last, 1)], model.cfg.gaussian_stride)
    pred = model(window.context)
    target = window.targets[0]
    _, height, width, _ = target.images.shape
    render = render_gaussians(pred.gaussians[-1], target.time, target.cam_to_anchor, target.K, width, height,
                              with_flow=True)
    alpha = render.alpha[..., 0].clamp_min(1e-6)
    # velocities are rendered in the anchor frame; ground truth is in the world frame
    to_world = torch.as_tensor(window.anchor_pose[:3, :3], dtype=torch.float32)
    flow = (render.flow / alpha[..., None]) @ to_world.T
    dt = float(clip.times[1] - clip.times[0]) if clip.num_steps > 1 else 0.1

    gt_depth, gt_flow, semantic = clip.depth[last], clip.flow[last] * dt, clip.semantic[last]
    valid = gt_depth > 0
    moving_eval = valid & ~np.isin(semantic, [CLASS_ID[c] for c in GROUND_CLASSES])
    if camera is not None:
        if not 0 <= camera < valid.shape[0]:
            raise ValueError(f"camera {camera} does not exist: the drive has {valid.shape[0]}")
        one = (np.arange(valid.shape[0]) == camera)[:, None, None]
        valid, moving_eval = valid & one, moving_eval & one
    depth = metrics.depth_errors(render.depth[..., 0].numpy()[valid], gt_depth[valid])
    flow_pred = flow.numpy()[moving_eval] * dt
    foreground = np.isin(semantic[moving_eval], [CLASS_ID[c] for c in MOVABLE_CLASSES])
    ours = metrics.flow_errors(flow_pred, gt_flow[moving_eval], foreground)
    zero = metrics.flow_errors(np.zeros_like(flow_pred), gt_flow[moving_eval])
    dynamic = clip.dynamic[last] & moving_eval
    dyn = metrics.flow_errors(flow.numpy()[dynamic] * dt, gt_flow[dynamic]) if dynamic.any() else None
    return {"depth_absrel": depth["depth_absrel"], "flow_epe3d": ours["flow_epe3d"],
            "zero_motion_epe3d": zero["flow_epe3d"], "static_epe3d": ours["flow_epe3d_static"],
            "parked_epe3d": ours["flow_epe3d_fg_static"], "background_epe3d": ours["flow_epe3d_background"],
            "dynamic_epe3d": dyn["flow_epe3d"] if dyn else float("nan"),
            "dynamic_zero_epe3d": float(np.linalg.norm(gt_flow[dynamic], axis=-1).mean()) if dynamic.any() else float("nan"),
            "dynamic_recovered": dyn["flow_recovered_moving"] if dyn else float("nan"),
            "dynamic_cosine": dyn["flow_cosine_moving"] if dyn else float("nan")}
