"""Training losses, each a scalar tensor; their weights live in the training config.

There is deliberately no loss on motion or scene flow: motion is learned only because the
window's Gaussians must land where the target frames, at other timestamps, see them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim
from torch import Tensor

from ..semantics.scores import language_embeddings


@dataclass(frozen=True)
class LossWeights:
    rgb_l1: float = 0.8
    rgb_ssim: float = 0.2
    depth: float = 0.5  # relative error of rendered depth against the sparse LiDAR-like depth
    context_depth: float = 0.5  # the same for each context Gaussian's own depth (no rendering)
    sky: float = 0.05  # opacity against the sky mask
    semantic: float = 0.2  # cosine distance to the teacher's features
    motion: float = 0.05  # mean |motion coefficient| (L1: static parts get exactly no motion)
    motion_l2: float = 0.0  # mean squared motion coefficient (no dead zone around zero motion)


def rgb_l1(pred: Tensor, target: Tensor) -> Tensor:
    """Images (V, H, W, 3) in [0, 1]."""
    return (pred - target).abs().mean()


def rgb_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """1 - SSIM (11 px Gaussian window) of images (V, H, W, 3)."""
    to = lambda x: x.permute(0, 3, 1, 2)
    return 1 - ssim(to(pred.clamp(0, 1)), to(target), data_range=1.0, size_average=True)


def depth_relative(pred: Tensor, lidar: Tensor) -> Tensor:
    """Mean |d - g| / g over pixels with a LiDAR sample; pred, lidar (V, H, W) metres."""
    valid = lidar > 0
    if not valid.any():
        return pred.sum() * 0
    return ((pred[valid] - lidar[valid]).abs() / lidar[valid]).mean()


def sky_opacity(alpha: Tensor, sky: Tensor) -> Tensor:
    """Binary cross-entropy of opacity (V, H, W) against 'not sky' (sky: bool (V, H, W))."""
    return F.binary_cross_entropy(alpha.clamp(1e-4, 1 - 1e-4), (~sky).to(alpha.dtype))


def semantic_cosine(features: Tensor, alpha: Tensor, teacher: Tensor, projection: torch.nn.Linear,
                    max_pixels: int, generator: torch.Generator | None = None) -> Tensor:
    """1 - cos(projected rendered feature, teacher feature) over covered pixels (alpha > 0.5).

    features (V, H, W, F) alpha-weighted; alpha (V, H, W); teacher (V, H, W, D) unit vectors.
    At most ``max_pixels`` random pixels are used (the loss is an average; a sample estimates it).
    """
    covered = (alpha.detach() > 0.5).flatten().nonzero().squeeze(1)
    if covered.numel() == 0:
        return features.sum() * 0
    if covered.numel() > max_pixels:
        pick = torch.randperm(covered.numel(), generator=generator, device="cpu")[:max_pixels]
        covered = covered[pick.to(covered.device)]
    f = features.flatten(0, 2)[covered] / alpha.flatten()[covered, None]
    embedded = language_embeddings(f, projection)
    return 1 - (embedded * teacher.flatten(0, 2)[covered]).sum(-1).mean()


def motion_magnitude(motion: Tensor) -> Tensor:
    """Mean absolute motion coefficient (N, D, 3); zero for static Gaussians (D = 0)."""
    if motion.numel() == 0:
        return motion.sum()
    return motion.abs().mean()


def motion_energy(motion: Tensor) -> Tensor:
    """Mean squared motion coefficient (N, D, 3); zero for static Gaussians (D = 0)."""
    if motion.numel() == 0:
        return motion.sum()
    return motion.square().mean()
