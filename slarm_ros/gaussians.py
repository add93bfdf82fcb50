"""4D Gaussians: 3D Gaussians that move by a polynomial in time.

Position at time t of a Gaussian made at time t0:
    mean(t) = mean + sum_{i=1..D} c_i * dt^i / i!,   dt = t - t0
with c_1 velocity (m/s), c_2 acceleration (m/s^2), c_3 jerk (m/s^3). Degree D = 0 is static,
D = 1 STORM's constant velocity.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Gaussians4D:
    """N Gaussians in the world frame.

    Times are kept relative to ``time_origin`` (absolute seconds, float64) because float32
    cannot hold absolute ROS stamps to the millisecond.
    """

    means: Tensor  # (N, 3) metres, world frame, at each Gaussian's own t0
    quats: Tensor  # (N, 4) rotation, (w, x, y, z), world frame
    scales: Tensor  # (N, 3) standard deviations along the rotated axes, metres
    opacities: Tensor  # (N,) in [0, 1]
    colors: Tensor  # (N, 3) linear RGB in [0, 1]
    motion: Tensor  # (N, D, 3) polynomial coefficients c_1..c_D, world frame
    features: Tensor  # (N, F) language-aligned semantic features (model space)
    t0: Tensor  # (N,) seconds since time_origin at which `means` hold
    time_origin: float = 0.0  # absolute seconds

    @property
    def num(self) -> int:
        return self.means.shape[0]

    @property
    def degree(self) -> int:
        return self.motion.shape[1]

    def _dt(self, t: float) -> Tensor:
        return (t - self.time_origin) - self.t0

    def displacement_at(self, t: float) -> Tensor:
        """(N, 3) displacement from `means` at absolute time t (seconds)."""
        return motion_displacement(self.motion, self._dt(t))

    def positions_at(self, t: float) -> Tensor:
        """(N, 3) centres at absolute time t (seconds)."""
        return self.means + self.displacement_at(t)

    def velocities_at(self, t: float) -> Tensor:
        """(N, 3) velocities at absolute time t (m/s)."""
        return motion_velocity(self.motion, self._dt(t))

    def at(self, t: float) -> "Gaussians4D":
        """The Gaussians moved to time t: means at t, motion re-expanded around t."""
        dt = self._dt(t)
        moved = [motion_derivative(self.motion, dt, k) for k in range(1, self.degree + 1)]
        motion = torch.stack(moved, dim=1) if moved else self.motion
        return replace(self, means=self.positions_at(t), motion=motion,
                       t0=torch.full_like(self.t0, t - self.time_origin))

    def without_motion(self) -> "Gaussians4D":
        """The same Gaussians standing still at their ``means`` (motion coefficients zeroed)."""
        return replace(self, motion=torch.zeros_like(self.motion))

    def select(self, index: Tensor) -> "Gaussians4D":
        """Subset by boolean mask or index tensor over N."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "time_origin"})

    @staticmethod
    def cat(parts: list["Gaussians4D"]) -> "Gaussians4D":
        """Concatenate; all parts are re-expressed relative to the first part's time origin."""
        if not parts:
            raise ValueError("nothing to concatenate")
        origin = parts[0].time_origin
        out = {}
        for f in fields(Gaussians4D):
            if f.name == "time_origin":
                continue
            if f.name == "t0":
                out["t0"] = torch.cat([p.t0 + (p.time_origin - origin) for p in parts])
            else:
                out[f.name] = torch.cat([getattr(p, f.name) for p in parts])
        return Gaussians4D(**out, time_origin=origin)


def motion_derivative(coeffs: Tensor, dt: Tensor, order: int) -> Tensor:
    """The order-th time derivative of the displacement polynomial at dt.

    coeffs: (N, D, 3); dt: (N,) or scalar. order 0 is the displacement itself.
    d^k/dt^k sum_i c_i dt^i / i! = sum_{i>=k} c_i dt^(i-k) / (i-k)!
    """
    n, degree, _ = coeffs.shape
    first = max(order, 1)  # c_1 is the lowest coefficient; there is no constant term
    if first > degree:
        return coeffs.new_zeros(n, 3)
    dt = torch.as_tensor(dt, dtype=coeffs.dtype, device=coeffs.device).expand(n)[:, None]
    # Horner's rule from the highest term down: one fused multiply-add per coefficient (this runs
    # on every point of every published timestep, where per-op overhead dominates).
    out = coeffs[:, degree - 1]
    for i in range(degree - 1, first - 1, -1):
        out = torch.addcmul(coeffs[:, i - 1], out, dt, value=1.0 / (i + 1 - order))
    return out * dt if order == 0 else out


def motion_displacement(coeffs: Tensor, dt: Tensor) -> Tensor:
    """(N, 3) displacement sum_i c_i dt^i / i!."""
    return motion_derivative(coeffs, dt, 0)


def motion_velocity(coeffs: Tensor, dt: Tensor) -> Tensor:
    """(N, 3) velocity sum_i c_i dt^(i-1) / (i-1)!."""
    return motion_derivative(coeffs, dt, 1)
