"""What a reconstructed timestep gives its users: coloured points with motion and features."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    keep = (g.opacities >= min_opacity).cpu().numpy()
    per_camera = g.num // result.depth.shape[0]
    camera = np.repeat(np.arange(result.depth.shape[0], dtype=np.int32), per_camera)
    as_np = lambda x: x.detach().float().cpu().numpy()[keep]
    return PointProducts(
        stamp=result.stamp,
        xyz=as_np(g.means),
        rgb=as_np(g.colors.clamp(0, 1)),
        velocity=as_np(g.velocities_at(result.stamp)),
        features=as_np(g.features),
        opacity=as_np(g.opacities),
        camera=camera[keep],
    )
