"""Planar trajectories of the ego vehicle and the actors, sampled finely in time.

A trajectory is built in road coordinates, s(t) from a speed profile and d(t) from a lateral
profile, and mapped to the world; velocities are the exact time derivatives of the sampled
positions (central differences on a 5 ms grid), so ground-truth scene flow and positions agree.
Profiles are deliberately non-uniform: accelerating, braking, stop-and-go, weaving.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .road import Road

STEP_S = 0.005


@dataclass(frozen=True)
class Trajectory:
    times: np.ndarray  # (S,) seconds since the drive started, uniform
    xy: np.ndarray  # (S, 2) metres, world
    yaw: np.ndarray  # (S,) heading, radians
    velocity: np.ndarray  # (S, 2) m/s
    yaw_rate: np.ndarray  # (S,) rad/s
    kind: str  # the motion profile's name

    def _interp(self, values: np.ndarray, t: float) -> np.ndarray:
        i = np.clip((t - self.times[0]) / STEP_S, 0, len(self.times) - 1.000001)
        lo = int(i)
        w = i - lo
        return values[lo] * (1 - w) + values[lo + 1] * w

    def state(self, t: float) -> tuple[np.ndarray, float, np.ndarray, float]:
        """(x, y), yaw, (vx, vy), yaw rate at time t."""
        return (self._interp(self.xy, t), float(self._interp(self.yaw, t)), self._interp(self.velocity, t),
                float(self._interp(self.yaw_rate, t)))

    @property
    def is_moving(self) -> bool:
        return bool(np.abs(self.velocity).max() > 1e-3)


def speed_profile(kind: str, t: np.ndarray, v0: float, rng: np.random.Generator) -> np.ndarray:
    """Speed over time (m/s, >= 0) for a named profile."""
    if kind == "cruise":
        v = np.full_like(t, v0)
    elif kind == "accelerate":
        start, a = rng.uniform(0, 6), rng.uniform(1.0, 2.5)
        v = v0 + a * np.clip(t - start, 0, None)
        v = np.minimum(v, v0 + 10)
    elif kind == "brake":
        start, b = rng.uniform(1, 8), rng.uniform(2.0, 4.0)
        v = np.maximum(v0 - b * np.clip(t - start, 0, None), 0)
    elif kind == "stop_and_go":
        period = rng.uniform(5, 9)
        v = v0 * (0.5 - 0.5 * np.cos(2 * np.pi * t / period))
    elif kind == "surge":
        v = v0 * (1 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(4, 8) + rng.uniform(0, 6)))
    else:
        raise ValueError(f"unknown speed profile {kind}")
    return np.maximum(v, 0)


def lateral_profile(kind: str, t: np.ndarray, d0: float, rng: np.random.Generator) -> np.ndarray:
    """Lateral offset over time (m) for a named profile."""
    if kind == "keep":
        return np.full_like(t, d0)
    if kind == "weave":  # lane change back and forth
        return d0 + rng.choice([-1, 1]) * 1.6 * np.sin(2 * np.pi * t / rng.uniform(5, 9) + rng.uniform(0, 6))
    if kind == "zigzag":  # pedestrians crossing their sidewalk: a rounded triangle wave
        phase = 2 * np.pi * t / rng.uniform(2.5, 4) + rng.uniform(0, 6)
        return d0 + 0.9 * (2 / np.pi) * np.arcsin(0.97 * np.sin(phase))
    raise ValueError(f"unknown lateral profile {kind}")


def along_road(road: Road, t: np.ndarray, s0: float, direction: int, speed: np.ndarray, lateral: np.ndarray,
               kind: str) -> Trajectory:
    """A trajectory following the road at ``speed``, ``direction`` +1 (towards +s) or -1."""
    s = s0 + direction * np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(t))])
    x, y, _ = road.to_world(s, lateral)
    xy = np.stack([x, y], axis=1)
    velocity = np.gradient(xy, t, axis=0)
    speed_now = np.linalg.norm(velocity, axis=1)
    # Heading follows the motion while moving; a stopped actor keeps its last heading.
    yaw = np.arctan2(velocity[:, 1], velocity[:, 0])
    moving = speed_now > 0.05
    if not moving.any():
        yaw[:] = road.to_world(s[:1], lateral[:1])[2][0] + (0 if direction > 0 else np.pi)
    else:
        idx = np.where(moving, np.arange(len(t)), 0)
        idx = np.maximum.accumulate(idx)
        first = np.argmax(moving)
        idx[:first] = first
        yaw = np.unwrap(yaw[idx])
    yaw_rate = np.gradient(yaw, t)
    return Trajectory(times=t, xy=xy, yaw=yaw, velocity=velocity, yaw_rate=yaw_rate, kind=kind)


def time_grid(seconds: float) -> np.ndarray:
    """The fine grid trajectories are sampled on, with a margin either side."""
    return np.arange(-1.0, seconds + 1.0 + STEP_S / 2, STEP_S)
