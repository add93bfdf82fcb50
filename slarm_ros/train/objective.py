"""The training objective of one window: predict from the context, render the targets, compare.

Targets (see ``data.sample_window``):
- a context timestep (mostly the last), rendered from its own Gaussians: what the engine publishes
  for a timestep must explain that timestep's images, depth and semantics on its own;
- an earlier context timestep and the future timesteps, rendered from all of the window's
  Gaussians moved to the target's time: Gaussians from other timestamps only land on the
  target's pixels if their motion is right. This is the only thing that teaches motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..gaussians import Gaussians4D
from ..geometry import grid_pixels, pixel_rays
from ..model import Prediction, SlarmNet
from ..render.scene import ViewRender, render_gaussians
from . import losses
from .data import TargetViews, TrainWindow
from .losses import LossWeights
from .teacher import SemanticTeacher


@dataclass(frozen=True)
class WindowLoss:
    total: Tensor  # scalar, weighted sum
    parts: dict[str, Tensor]  # unweighted terms, detached
    psnr_self: float  # PSNR (dB) of the last timestep's own render, for the log


def render_target(model: SlarmNet, gaussians: Gaussians4D, target: TargetViews, pred: Prediction, sky_of: int,
                  affine: Tensor, with_features: bool = True) -> ViewRender:
    """Render ``gaussians`` (anchor frame) at the target's time into its cameras, with timestep
    ``sky_of``'s sky behind and the colour transform ``affine`` applied."""
    _, height, width, _ = target.images.shape
    sky_token, sky_frame = pred.sky_tokens[sky_of], pred.sky_frames[sky_of]
    return render_gaussians(gaussians, target.time, target.cam_to_anchor, target.K, width, height,
                            sky=lambda d: model.sky_colour(d, sky_token, sky_frame), affine=affine,
                            with_features=with_features)


def camera_depth(ray_depth: Tensor, K: Tensor, cfg) -> Tensor:
    """Distance along each Gaussian's ray (T, C, h, w) -> camera z (T, C, h, w), metres."""
    pixels = grid_pixels(cfg.image_height, cfg.image_width, cfg.gaussian_stride, device=K.device, dtype=K.dtype)
    _, dirs = pixel_rays(K, torch.eye(4, device=K.device, dtype=K.dtype).expand(*K.shape[:-2], 4, 4), pixels)
    return ray_depth * dirs[..., 2]


def window_loss(model: SlarmNet, window: TrainWindow, teacher: SemanticTeacher, weights: LossWeights,
                sky_class: int, max_semantic_pixels: int = 8192, forward=None,
                generator: torch.Generator | None = None) -> WindowLoss:
    """Losses of one window. ``forward`` is the callable that runs the network (a DDP wrapper when
    training on several processes); it defaults to ``model``."""
    forward = forward or model
    pred = forward(window.context)
    steps = window.context_steps
    last = len(steps) - 1
    union = Gaussians4D.cat(pred.gaussians)

    terms: dict[str, list[Tensor]] = {name: [] for name in ("rgb_l1", "rgb_ssim", "depth", "sky", "semantic",
                                                          "semantic_classes")}
    psnr_self = 0.0
    for j, target in enumerate(window.targets):
        if j == 0:  # a context timestep, from its own Gaussians
            own = steps.index(target.step)
            render = render_target(model, pred.gaussians[own], target, pred, own, pred.affine[own])
        else:
            i = steps.index(target.step) if target.step in steps else last
            render = render_target(model, union, target, pred, last, pred.affine[i])
        alpha, depth = render.alpha[..., 0], render.depth[..., 0]
        pixel_weights = None
        if j > 0 and weights.static_miss_emphasis > 0:
            with torch.no_grad():
                static = render_target(model, union.without_motion(), target, pred, last, pred.affine[i],
                                       with_features=False)
            pixel_weights = losses.static_miss_weights(static.rgb, target.images, weights.static_miss_emphasis)
        terms["rgb_l1"].append(losses.rgb_l1(render.rgb, target.images, pixel_weights))
        terms["rgb_ssim"].append(losses.rgb_ssim(render.rgb, target.images))
        terms["depth"].append(losses.depth_relative(depth, target.lidar))
        terms["sky"].append(losses.sky_opacity(alpha, target.semantic == sky_class))
        teacher_features = teacher.features(target.images, target.semantic)
        semantic = losses.semantic_losses(render.features, alpha, teacher_features, model.semantic_projection,
                                          max_semantic_pixels, teacher.vocabulary, generator=generator)
        terms["semantic"].append(semantic.cosine)
        terms["semantic_classes"].append(semantic.classes)
        if j == 0:
            with torch.no_grad():
                mse = ((render.rgb.clamp(0, 1) - target.images) ** 2).mean().clamp_min(1e-10)
                psnr_self = float(-10 * torch.log10(mse))
    parts = {name: torch.stack(values).mean() for name, values in terms.items()}
    parts["context_depth"] = losses.depth_relative(camera_depth(pred.depth, window.context.K, model.cfg),
                                                   window.context_lidar)
    parts["motion"] = losses.motion_magnitude(union.motion)
    parts["motion_l2"] = losses.motion_energy(union.motion)
    parts["dynamic"] = pred.dynamic.mean() if pred.dynamic is not None else union.motion.new_zeros(())
    total = sum(getattr(weights, name) * value for name, value in parts.items())
    return WindowLoss(total=total, parts={k: v.detach() for k, v in parts.items()}, psnr_self=psnr_self)
