"""Render 4D Gaussians at a target time: motion applied, sky behind, per-camera colour transform."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..gaussians import Gaussians4D
from ..geometry import grid_pixels, invert_rigid, pixel_rays
from ..model.heads import apply_affine
from .rasterize import rasterize


@dataclass(frozen=True)
class ViewRender:
    rgb: Tensor  # (V, H, W, 3); sky composited behind, affine applied when given
    alpha: Tensor  # (V, H, W, 1) opacity of the Gaussians alone
    depth: Tensor  # (V, H, W, 1) expected camera depth z, metres (0 where nothing was drawn)
    features: Tensor | None  # (V, H, W, F) alpha-weighted semantic features
    flow: Tensor | None  # (V, H, W, 3) alpha-weighted velocity at the target time, m/s, world frame


def render_gaussians(gaussians: Gaussians4D, time: float, cam_to_world: Tensor, K: Tensor, width: int, height: int,
                     *, sky: Callable[[Tensor], Tensor] | None = None, affine: Tensor | None = None,
                     with_features: bool = False, with_flow: bool = False, near: float = 0.1, far: float = 1e4,
                     backend: str = "auto") -> ViewRender:
    """Render Gaussians, moved to absolute time ``time`` (s), into V cameras.

    cam_to_world (V, 4, 4) and K (V, 3, 3) in the same frame as the Gaussians; ``sky`` maps unit
    ray directions (..., 3) to RGB; ``affine`` (V, 3, 4) is each camera's colour transform.
    Scene flow and features are rendered as extra channels of the same pass.
    """
    means = gaussians.positions_at(time)
    channels = [gaussians.colors]
    if with_features:
        channels.append(gaussians.features)
    if with_flow:
        channels.append(gaussians.velocities_at(time))
    out = rasterize(means, gaussians.quats, gaussians.scales, gaussians.opacities, torch.cat(channels, dim=-1),
                    invert_rigid(cam_to_world), K, width, height, near=near, far=far, backend=backend)
    rgb = out.colors[..., :3]
    if sky is not None:
        pixels = grid_pixels(height, width, device=K.device, dtype=K.dtype)
        _, dirs = pixel_rays(K, cam_to_world, pixels)
        rgb = rgb + (1 - out.alphas) * sky(dirs)
    if affine is not None:
        rgb = apply_affine(rgb, affine)
    rest = out.colors[..., 3:]
    features = flow = None
    if with_features:
        features, rest = rest[..., :gaussians.features.shape[-1]], rest[..., gaussians.features.shape[-1]:]
    if with_flow:
        flow = rest[..., :3]
    return ViewRender(rgb=rgb, alpha=out.alphas, depth=out.depths, features=features, flow=flow)
