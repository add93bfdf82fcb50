"""The track filter: an object's velocity, acceleration and jerk from noisy measured velocities."""
import numpy as np
import pytest

from slarm_ros.stream.track_filter import TrackFilter


def measurements(positions: np.ndarray, dt: float) -> np.ndarray:
    """The velocities (N-1, 3) a tracker measures from an object's positions (N, 3): displacements over each step."""
    return np.diff(positions, axis=0) / dt


def filtered(track_filter: TrackFilter, measured: np.ndarray, dt: float) -> list[np.ndarray]:
    track = track_filter.start(measured[0])
    out = [track]
    for m in measured[1:]:
        track = track_filter.update(track, m, dt)
        out.append(track)
    return out


def test_the_first_order_filter_weighs_each_measurement_by_one_minus_its_memory():
    rng = np.random.default_rng(0)
    measured = rng.normal(size=(6, 3))
    tracks = filtered(TrackFilter(1, 0.7), measured, 0.1)
    expected = measured[0]
    for m, track in zip(measured[1:], tracks[1:]):
        expected = 0.3 * m + 0.7 * expected
        assert track.shape == (1, 3)
        np.testing.assert_allclose(track[0], expected)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_each_order_follows_the_motion_of_its_degree_without_lag(order):
    """Noise-free positions of a car (x: 15 m/s braking at 3 m/s^2, with a jerk of 2 m/s^3 for order
    3; y: turning at 2 m/s^2). After 4 s a filter follows the motion of its own degree exactly; one
    order lower lags behind."""
    dt, t = 0.1, np.arange(40) * 0.1
    jerk = 2.0 if order == 3 else 0.0
    acceleration = np.array([-3.0, 2.0, 0.0]) if order >= 2 else np.zeros(3)
    velocity0 = np.array([15.0, 0.0, 0.0])
    positions = (velocity0 * t[:, None] + acceleration * t[:, None] ** 2 / 2
                 + np.array([jerk, 0, 0]) * t[:, None] ** 3 / 6)
    truth_velocity = velocity0 + acceleration * t[-1] + np.array([jerk, 0, 0]) * t[-1] ** 2 / 2
    truth_acceleration = acceleration + np.array([jerk, 0, 0]) * t[-1]
    last = filtered(TrackFilter(order, 0.7), measurements(positions, dt), dt)[-1]
    np.testing.assert_allclose(last[0], truth_velocity, atol=1e-3)
    if order >= 2:
        np.testing.assert_allclose(last[1], truth_acceleration, atol=1e-2)
        lagging = filtered(TrackFilter(order - 1, 0.7), measurements(positions, dt), dt)[-1]
        assert np.linalg.norm(lagging[0] - truth_velocity) > 0.05
    if order == 3:
        np.testing.assert_allclose(last[2], [jerk, 0, 0], atol=0.1)


def test_at_the_same_memory_a_higher_order_passes_more_noise():
    rng = np.random.default_rng(1)
    noise = rng.normal(scale=1.0, size=(4000, 3))  # m/s: a parked car's measurements
    spread = [np.std([t[0] for t in filtered(TrackFilter(order, 0.7), noise, 0.1)[100:]]) for order in (1, 2, 3)]
    assert spread[0] < spread[1] < spread[2]


@pytest.mark.parametrize("order, memory", [(0, 0.7), (4, 0.7), (2, 1.0), (2, -0.1)])
def test_a_bad_track_filter_is_refused(order, memory):
    with pytest.raises(ValueError, match="track filter"):
        TrackFilter(order, memory)
