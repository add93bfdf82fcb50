"""Small camera sequences for engine tests: a 3-camera rig driving forward with random images."""
import numpy as np

from slarm_ros.frames import CameraFrame, FrameSet

# Optical frame of a forward camera on a vehicle whose x axis points forward, z up.
FORWARD = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float).T


def yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    return T


def frame_sets(n: int, cameras: int = 3, height: int = 96, width: int = 160, seed: int = 0,
               start: float = 1700000000.0, dt: float = 0.1, speed: float = 8.0) -> list[FrameSet]:
    rng = np.random.default_rng(seed)
    K = np.array([[0.6 * width, 0, (width - 1) / 2], [0, 0.6 * width, (height - 1) / 2], [0, 0, 1]])
    out = []
    for i in range(n):
        base = yaw(0.02 * i)
        base[:3, 3] = [speed * dt * i, 0.1 * i, 1.6]
        cams = []
        for c in range(cameras):
            pose = base @ yaw((c - (cameras - 1) / 2) * 0.9) @ FORWARD
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            cams.append(CameraFrame(f"cam{c}", image, K.copy(), pose, start + i * dt))
        out.append(FrameSet(start + i * dt, tuple(cams)))
    return out
