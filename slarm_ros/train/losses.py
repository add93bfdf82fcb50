"""Training losses, each a scalar tensor; their weights live in the training config.

There is deliberately no loss on motion or scene flow: motion is learned only because the
window's Gaussians must land where the target frames, at other timestamps, see them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

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
    semantic_classes: float = 0.05  # class-balanced cross-entropy over the teacher's vocabulary
    motion: float = 0.05  # |motion coefficient| per order (L1: static parts get exactly no motion)
    motion_l2: float = 0.0  # squared motion coefficient per order (no dead zone around zero motion)
    dynamic: float = 0.0  # mean motion gate (with the network's motion_gate): most of the world is static
    # Not a term: how much more the L1 of other-time targets counts where the window rendered
    # without motion misses the target (mostly moving actors; see ``static_miss_weights``). 0 = uniform.
    static_miss_emphasis: float = 0.0


# The weighted terms of the objective (every weight but the emphasis, which reweighs a term).
LOSS_TERMS = tuple(f.name for f in fields(LossWeights) if f.name != "static_miss_emphasis")


def rgb_l1(pred: Tensor, target: Tensor, pixel_weights: Tensor | None = None) -> Tensor:
    """Images (V, H, W, 3) in [0, 1]; optional pixel_weights (V, H, W), a weighted mean then."""
    error = (pred - target).abs()
    if pixel_weights is None:
        return error.mean()
    w = pixel_weights[..., None].expand_as(error)
    return (w * error).sum() / w.sum().clamp_min(1e-12)


def static_miss_weights(static_rgb: Tensor, target: Tensor, emphasis: float) -> Tensor:
    """Pixel weights (V, H, W) = 1 + emphasis * miss / mean miss, from a render without motion.

    static_rgb, target (V, H, W, 3). Rendered without motion, the window's moving actors stand
    where each context timestep saw them, so the miss is largest on them; they are a few percent
    of the pixels, and weighing them more makes motion worth more to the photometric loss. This
    uses only images, never the true motion. Detached: the weights are not trained.
    """
    with torch.no_grad():
        miss = (static_rgb - target).abs().mean(-1)
        return 1 + emphasis * miss / miss.mean(dim=(1, 2), keepdim=True).clamp_min(1e-6)


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


@dataclass(frozen=True)
class SemanticLosses:
    cosine: Tensor  # 1 - cos(rendered, teacher), mean over sampled pixels
    classes: Tensor  # class-balanced cross-entropy over the vocabulary (0 without one)


def semantic_losses(features: Tensor, alpha: Tensor, teacher: Tensor, projection: torch.nn.Linear,
                    max_pixels: int, vocabulary: Tensor | None = None, temperature: float = 0.05,
                    generator: torch.Generator | None = None) -> SemanticLosses:
    """Distillation of rendered features into the teacher's, over covered pixels (alpha > 0.5).

    features (V, H, W, F) alpha-weighted; alpha (V, H, W); teacher (V, H, W, D) unit vectors;
    vocabulary (C, D) unit text embeddings of the names the teacher tells apart, or None.
    At most ``max_pixels`` random pixels are used (the losses are averages; a sample estimates them).

    The cosine term alone lets small classes drift towards large ones whose names embed nearby
    ("pole" near "building"), which is what a query by name then gets wrong. The class term scores
    each pixel's cosines to every name, as a query does, with the teacher's nearest name as the
    label, and weighs every class present equally so thin classes count as much as the road.
    """
    covered = (alpha.detach() > 0.5).flatten().nonzero().squeeze(1)
    if covered.numel() == 0:
        zero = features.sum() * 0
        return SemanticLosses(zero, zero)
    if covered.numel() > max_pixels:
        pick = torch.randperm(covered.numel(), generator=generator, device="cpu")[:max_pixels]
        covered = covered[pick.to(covered.device)]
    f = features.flatten(0, 2)[covered] / alpha.flatten()[covered, None]
    embedded = language_embeddings(f, projection)
    target = teacher.flatten(0, 2)[covered]
    cosine = 1 - (embedded * target).sum(-1).mean()
    if vocabulary is None:
        return SemanticLosses(cosine, features.sum() * 0)
    vocabulary = vocabulary.to(embedded)
    labels = (target @ vocabulary.T).argmax(-1)
    per_pixel = F.cross_entropy(embedded @ vocabulary.T / temperature, labels, reduction="none")
    counts = torch.bincount(labels, minlength=vocabulary.shape[0]).to(per_pixel)
    classes = (per_pixel / counts[labels]).sum() / (counts > 0).sum()
    return SemanticLosses(cosine, classes)


# Motion is priced per coefficient order (velocity, acceleration, jerk, ...) and the weights are
# written for three orders: for degree 3 the price is the mean over all coefficients.
PRICED_ORDERS = 3


def motion_magnitude(motion: Tensor) -> Tensor:
    """L1 price of motion coefficients (N, D, 3): sum over orders of the mean |c_k|, over PRICED_ORDERS.

    Summed over orders, the same velocity costs the same at every degree, and higher orders add to
    it. A mean over all N*D*3 coefficients would let the higher orders dilute it: degree 3 would pay
    a third of degree 1's price per unit of velocity, which biases a comparison of degrees.
    Zero for static Gaussians (D = 0).
    """
    return _per_order(motion.abs())


def motion_energy(motion: Tensor) -> Tensor:
    """L2 price of motion coefficients (N, D, 3), per order as ``motion_magnitude``; zero for D = 0."""
    return _per_order(motion.square())


def _per_order(values: Tensor) -> Tensor:
    """Per-coefficient prices (N, D, 3) averaged per order, summed over orders, over PRICED_ORDERS."""
    if values.numel() == 0:
        return values.sum()
    return values.mean(dim=(0, 2)).sum() / PRICED_ORDERS
