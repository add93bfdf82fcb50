"""What a reconstructed timestep gives its users: coloured points with motion and features."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .reconstructor import StepResult


@dataclass(frozen=True)
class PointProducts:
    """The visible Gaussians of one timestep as points, world frame, numpy on the CPU."""

    stamp: float  # absolute seconds
    xyz: np.ndarray  # (N, 3) float32 metres
    rgb: np.ndarray  # (N, 3) float32 in [0, 1]
    velocity: np.ndarray  # (N, 3) float32 m/s: scene flow at the stamp
    features: np.ndarray  # (N, F) float32 semantic features (model space)
    opacity: np.ndarray  # (N,) float32
    camera: np.ndarray  # (N,) int32 index of the camera that produced the point

    @property
    def num(self) -> int:
        return self.xyz.shape[0]


def point_products(result: StepResult, min_opacity: float = 0.1) -> PointProducts:
    """Points of Gaussians at least ``min_opacity`` opaque (the rest barely show in a render)."""
    g = result.gaussians
    with torch.no_grad():
        opacity = g.opacities.detach().float().cpu().numpy()
        keep = np.flatnonzero(opacity >= min_opacity)
        # Integer row gathers: several times cheaper than boolean masks on these (N, C) arrays.
        rows = lambda x: x.detach().float().cpu().numpy().take(keep, axis=0)
        per_camera = g.num // result.depth.shape[0]
        return PointProducts(
            stamp=result.stamp, xyz=rows(g.means), rgb=rows(g.colors.clamp(0, 1)),
            velocity=rows(g.velocities_at(result.stamp)), features=rows(g.features), opacity=opacity.take(keep),
            camera=(keep // per_camera).astype(np.int32),
        )
