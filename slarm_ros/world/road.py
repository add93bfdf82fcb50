"""The road: a centre line swinging gently sideways, parametrised by arc length.

Curvilinear coordinates (s, d): s metres along the centre line, d metres to its left.
Traffic drives on the right: lanes with d < 0 go towards +s, lanes with d > 0 towards -s.
"""
from __future__ import annotations

import numpy as np

from .config import WorldConfig


class Road:
    def __init__(self, cfg: WorldConfig, s_min: float = -150.0, s_max: float = 600.0):
        self.cfg = cfg
        self.amplitude = cfg.road_curve_amplitude
        self.k = 2 * np.pi / cfg.road_curve_length
        # x -> s table, fine enough for millimetre accuracy, then inverted by interpolation
        x = np.linspace(s_min - 10, s_max + 10, int((s_max - s_min) * 20) + 1)
        slope = self.amplitude * self.k * np.cos(self.k * x)
        ds = np.sqrt(1 + slope ** 2)
        s = np.concatenate([[0.0], np.cumsum((ds[1:] + ds[:-1]) / 2 * np.diff(x))])
        s += -np.interp(0.0, x, s)  # s = 0 at x = 0
        self._x, self._s = x, s

    def centre_y(self, x):
        return self.amplitude * np.sin(self.k * x)

    def heading_at_x(self, x):
        return np.arctan(self.amplitude * self.k * np.cos(self.k * x))

    def to_world(self, s, d):
        """(s, d) -> world (x, y) and the road heading there."""
        x = np.interp(s, self._s, self._x)
        heading = self.heading_at_x(x)
        return x - d * np.sin(heading), self.centre_y(x) + d * np.cos(heading), heading

    def lateral(self, x, y):
        """d of world points (torch tensors), to first order in the curve: used to paint the ground."""
        import torch

        heading = torch.atan(self.amplitude * self.k * torch.cos(self.k * x))
        return (y - self.amplitude * torch.sin(self.k * x)) * torch.cos(heading)
