"""The built-in TF buffer against transforms known in closed form."""
import numpy as np
import pytest

from slarm_ros.random_drive import yaw
from slarm_ros.tf_buffer import ConnectivityError, ExtrapolationError, TransformBuffer


def pose(x, y, angle):
    T = yaw(angle)
    T[:3, 3] = [x, y, 0.0]
    return T


@pytest.fixture
def buffer():
    buf = TransformBuffer()
    for k in range(11):  # base_link drives along x at 10 m/s while turning at 0.5 rad/s
        t = 100.0 + 0.1 * k
        buf.set_transform("map", "base_link", t, pose(10 * (t - 100), 0.0, 0.5 * (t - 100)))
    cam = np.eye(4)
    cam[:3, 3] = [1.5, 0.0, 1.6]
    buf.set_transform("base_link", "cam_optical_frame", 0.0, cam, static=True)
    buf.set_transform("map", "odom", 0.0, pose(-3.0, 2.0, 0.1), static=True)
    return buf


def test_exact_samples_and_static_chain(buffer):
    T = buffer.lookup("map", "cam_optical_frame", 100.3)
    expected = pose(3.0, 0.0, 0.15)
    expected[:3, 3] += expected[:3, :3] @ [1.5, 0.0, 1.6]
    np.testing.assert_allclose(T, expected, atol=1e-12)


def test_interpolation_between_samples(buffer):
    T = buffer.lookup("map", "base_link", 100.25)
    np.testing.assert_allclose(T, pose(2.5, 0.0, 0.125), atol=1e-9)


def test_lookup_between_branches_through_the_common_parent(buffer):
    T = buffer.lookup("odom", "base_link", 100.5)
    np.testing.assert_allclose(T, np.linalg.inv(pose(-3.0, 2.0, 0.1)) @ pose(5.0, 0.0, 0.25), atol=1e-9)
    np.testing.assert_allclose(buffer.lookup("base_link", "odom", 100.5), np.linalg.inv(T), atol=1e-9)


def test_extrapolation_errors(buffer):
    with pytest.raises(ExtrapolationError, match="into the future.*latest data is at time 101.000000"):
        buffer.lookup("map", "cam_optical_frame", 101.2)
    with pytest.raises(ExtrapolationError, match="into the past"):
        buffer.lookup("map", "base_link", 99.0)
    assert not buffer.can_transform("map", "base_link", 101.01)


def test_latest_common_time_and_unknown_frames(buffer):
    np.testing.assert_allclose(buffer.lookup("map", "base_link", 0.0), pose(10.0, 0.0, 0.5), atol=1e-9)
    with pytest.raises(ConnectivityError, match="not in the buffer"):
        buffer.lookup("map", "lidar", 100.0)
    buffer.set_transform("world", "island", 0.0, np.eye(4), static=True)
    with pytest.raises(ConnectivityError, match="not part of the same tree"):
        buffer.lookup("map", "island", 100.0)


def test_invalid_transforms_are_refused(buffer):
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        buffer.set_transform("map", "base_link", 200.0, bad)
    with pytest.raises(ValueError, match="orthonormal"):
        buffer.set_transform("map", "base_link", 200.0, np.diag([2.0, 1, 1, 1]))
    with pytest.raises(ValueError, match="invalid frames"):
        buffer.set_transform("map", "map", 200.0, np.eye(4))


def test_cache_time_bounds_memory_and_clear_keeps_static():
    buf = TransformBuffer(cache_time=1.0)
    for k in range(1000):
        buf.set_transform("map", "base_link", 0.1 * k, pose(k, 0, 0))
    assert len(buf.edges["base_link"].stamps) == 11
    buf.set_transform("base_link", "cam", 0.0, np.eye(4), static=True)
    buf.clear()
    assert set(buf.edges) == {"cam"}
