"""Camera data entering the engine: one validated, typed value per timestep.

Conventions (the same for every door into the engine: ROS messages, bags, the synthetic world):
- images: uint8 RGB, H x W x 3;
- intrinsics K: 3x3 pinhole in pixels, pixel (u, v) centred at (u, v) (OpenCV / CameraInfo);
- cam_to_world: 4x4 rigid transform from the camera's optical frame (x right, y down, z forward)
  to the world frame (REP 105 ``map``), metres;
- stamps: seconds (float64).
Validation happens here, once; inside the engine the values are trusted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class FrameError(ValueError):
    """Camera data that the engine cannot use; the message names the problem."""


@dataclass(frozen=True)
class CameraFrame:
    """One camera's image at one timestep."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    K: np.ndarray  # (3, 3) float64, pixels
    cam_to_world: np.ndarray  # (4, 4) float64, optical frame -> world, metres
    stamp: float  # seconds

    def validate(self) -> None:
        where = f"camera '{self.name}'"
        if not isinstance(self.image, np.ndarray) or self.image.ndim != 3 or self.image.shape[2] != 3:
            shape = getattr(self.image, "shape", None)
            raise FrameError(f"{where}: image must be H x W x 3 RGB, got shape {shape}")
        if self.image.dtype != np.uint8:
            raise FrameError(f"{where}: image must be uint8, got {self.image.dtype}")
        if self.image.shape[0] < 8 or self.image.shape[1] < 8:
            raise FrameError(f"{where}: image of {self.image.shape[1]}x{self.image.shape[0]} is too small")
        K = np.asarray(self.K)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise FrameError(f"{where}: intrinsics K must be a finite 3x3 matrix, got {K.tolist()}")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1 or K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0:
            raise FrameError(f"{where}: intrinsics K is not a pinhole matrix with positive focal lengths: {K.tolist()}")
        T = np.asarray(self.cam_to_world)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise FrameError(f"{where}: cam_to_world must be a finite 4x4 matrix")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0.999:
            raise FrameError(f"{where}: cam_to_world rotation is not orthonormal (det {np.linalg.det(R):.4f})")
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise FrameError(f"{where}: cam_to_world last row must be [0, 0, 0, 1], got {T[3].tolist()}")
        if not np.isfinite(self.stamp):
            raise FrameError(f"{where}: stamp {self.stamp} is not finite")


@dataclass(frozen=True)
class FrameSet:
    """All cameras at one timestep. ``stamp`` is the timestep's time (seconds)."""

    stamp: float
    cameras: tuple[CameraFrame, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def validate(self, expected_names: tuple[str, ...] | None = None) -> None:
        if not np.isfinite(self.stamp):
            raise FrameError(f"frame set stamp {self.stamp} is not finite")
        if not self.cameras:
            raise FrameError("frame set has no cameras")
        if len(set(self.names)) != len(self.names):
            raise FrameError(f"frame set names a camera twice: {list(self.names)}")
        if expected_names is not None and tuple(self.names) != tuple(expected_names):
            raise FrameError(
                f"frame set has cameras {list(self.names)}, the model expects {list(expected_names)} "
                f"({len(self.names)} vs {len(expected_names)}) in that order"
            )
        for cam in self.cameras:
            cam.validate()
