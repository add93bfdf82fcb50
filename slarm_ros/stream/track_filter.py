"""An object's motion along its track, from the velocity measured at each timestep.

The object tracker (object_motion.py) measures each tracked object's displacement from one
timestep to the next; those measurements are noisy (a standing car's depth shifts by a percent or
two of its range between timesteps), so each track filters them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackFilter:
    """An object's motion along its track from the velocity measured at each timestep: the
    critically damped (fading-memory) polynomial filter of ``order`` 1 (velocity), 2 (and
    acceleration) or 3 (and jerk).

    ``memory`` in [0, 1) is how much of its past a track keeps per measurement; it sets all the
    gains (order 1: each measurement weighs 1 - memory). Higher orders follow braking and turning
    without lag but pass more measurement noise at the same memory. A measurement is a
    displacement over the step, so it is compared with the mean velocity the track predicts over
    the step, not with the velocity at its end.
    """

    order: int
    memory: float

    def __post_init__(self):
        if self.order not in (1, 2, 3) or not 0.0 <= self.memory < 1.0:
            raise ValueError(f"a track filter needs order 1, 2 or 3 and memory in [0, 1), got {self.order}, {self.memory}")

    @property
    def gains(self) -> np.ndarray:
        """(order,) gains of velocity, acceleration (per step) and jerk (per step squared)."""
        m = self.memory
        return np.array({1: [1 - m],
                         2: [1 - m**2, (1 - m) ** 2],
                         3: [1 - m**3, 1.5 * (1 - m) ** 2 * (1 + m), (1 - m) ** 3]}[self.order])

    def start(self, measured: np.ndarray) -> np.ndarray:
        """(order, 3): a new track moves at its first measured velocity (3,) m/s, with no acceleration or jerk yet."""
        out = np.zeros((self.order, 3))
        out[0] = measured
        return out

    def update(self, track: np.ndarray, measured: np.ndarray, dt: float) -> np.ndarray:
        """The track's motion (order, 3) ``dt`` s later, given the velocity (3,) m/s measured over those ``dt`` s."""
        v, a, j = (list(track) + [np.zeros(3)] * 2)[:3]
        predicted = np.stack([v + a * dt + j * dt**2 / 2, a + j * dt, j])[: self.order]
        mean_velocity = v + a * dt / 2 + j * dt**2 / 6  # over the step, as measured
        per_step = np.array([1.0, 1 / dt, 1 / dt**2])[: self.order]
        return predicted + (self.gains * per_step)[:, None] * (measured - mean_velocity)
