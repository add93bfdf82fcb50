"""Frame sets of a 3-camera rig on a car driving a gentle curve, with random images.

For timing the engine and for tests of its mechanics: the network's cost does not depend on
what the images show. (The synthetic world renders real scenes with ground truth.)
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .frames import CameraFrame, FrameSet
from .geometry import OPTICAL_TO_BODY



def yaw(angle: float) -> np.ndarray:
    """4x4 rotation about z by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    return T


def frame_sets(n: int, **kwargs) -> list[FrameSet]:
    """``n`` timesteps of ``drive`` as a list."""
    return list(drive(n, **kwargs))


def drive(n: int, cameras: int = 3, height: int = 96, width: int = 160, seed: int = 0,
          start: float = 1700000000.0, dt: float = 0.1, speed: float = 8.0,
          image_pool: int | None = None) -> Iterator[FrameSet]:
    """``n`` timesteps, ``dt`` seconds apart, cameras fanned 0.9 rad apart, ``speed`` m/s, made one by one.

    ``image_pool``: draw only that many random images and cycle through them (cheap, for timing).
    """
    rng = np.random.default_rng(seed)
    pool = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(image_pool or 0)]
    K = np.array([[0.6 * width, 0, (width - 1) / 2], [0, 0.6 * width, (height - 1) / 2], [0, 0, 1]])
    for i in range(n):
        base = yaw(0.02 * i)
        base[:3, 3] = [speed * dt * i, 0.1 * i, 1.6]
        cams = []
        for c in range(cameras):
            pose = base @ yaw((c - (cameras - 1) / 2) * 0.9) @ OPTICAL_TO_BODY
            if pool:
                image = pool[(i * cameras + c) % len(pool)]
            else:
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            cams.append(CameraFrame(f"cam{c}", image, K.copy(), pose, start + i * dt))
        yield FrameSet(start + i * dt, tuple(cams))
