"""4D Gaussians move by their polynomial: position and velocity at dt for each degree."""
import math

import pytest
import torch

from slarm_ros.gaussians import Gaussians4D


def gaussians(degree, n=5, origin=1700000000.0):
    g = torch.Generator().manual_seed(degree)
    return Gaussians4D(
        means=torch.randn(n, 3, generator=g, dtype=torch.float64),
        quats=torch.tensor([[1.0, 0, 0, 0]] * n, dtype=torch.float64),
        scales=torch.full((n, 3), 0.1, dtype=torch.float64),
        opacities=torch.full((n,), 0.5, dtype=torch.float64),
        colors=torch.rand(n, 3, generator=g, dtype=torch.float64),
        motion=torch.randn(n, degree, 3, generator=g, dtype=torch.float64),
        features=torch.randn(n, 4, generator=g, dtype=torch.float64),
        t0=torch.linspace(0.0, 0.4, n, dtype=torch.float64),
        time_origin=origin,
    )


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("dt", [-0.3, 0.0, 0.25, 1.5])
def test_position_and_velocity_follow_the_polynomial(degree, dt):
    g = gaussians(degree)
    t = g.time_origin + 0.2 + dt
    local = (t - g.time_origin) - g.t0  # per-Gaussian dt
    expected_pos = g.means.clone()
    expected_vel = torch.zeros_like(g.means)
    for i in range(1, degree + 1):
        c = g.motion[:, i - 1]
        expected_pos += c * (local ** i / math.factorial(i))[:, None]
        expected_vel += c * (local ** (i - 1) / math.factorial(i - 1))[:, None]
    torch.testing.assert_close(g.positions_at(t), expected_pos)
    torch.testing.assert_close(g.velocities_at(t), expected_vel)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_velocity_is_the_derivative_of_position(degree):
    g = gaussians(degree, origin=0.0)  # finite differences need fine time resolution
    t, h = 0.7, 1e-5
    numeric = (g.positions_at(t + h) - g.positions_at(t - h)) / (2 * h)
    torch.testing.assert_close(g.velocities_at(t), numeric, rtol=1e-6, atol=1e-6)


def test_moving_to_a_time_re_expands_the_motion_around_it():
    g = gaussians(3)
    t1, t2 = g.time_origin + 0.5, g.time_origin + 1.1
    moved = g.at(t1)
    torch.testing.assert_close(moved.positions_at(t2), g.positions_at(t2))
    torch.testing.assert_close(moved.velocities_at(t2), g.velocities_at(t2))


def test_degree_zero_is_static_and_degree_one_is_constant_velocity():
    g0, g1 = gaussians(0), gaussians(1)
    assert torch.equal(g0.positions_at(g0.time_origin + 9.0), g0.means)
    v = g1.velocities_at(g1.time_origin + 0.1)
    torch.testing.assert_close(g1.velocities_at(g1.time_origin + 5.0), v)


def test_concatenation_keeps_absolute_times():
    a, b = gaussians(2), gaussians(2, origin=1700000003.0)
    both = Gaussians4D.cat([a, b])
    t = 1700000004.0
    torch.testing.assert_close(both.positions_at(t), torch.cat([a.positions_at(t), b.positions_at(t)]))
