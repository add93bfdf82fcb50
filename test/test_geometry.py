"""Rays, Plücker coordinates, intrinsics and rotations."""
import torch

from slarm_ros.geometry import (grid_pixels, invert_rigid, pixel_rays, plucker, quat_multiply, quat_to_rotmat,
                                rotmat_to_quat, scale_intrinsics)
from slarm_ros.geometry import OPTICAL_TO_BODY
from slarm_ros.random_drive import yaw


def camera(dtype=torch.float64):
    K = torch.tensor([[120.0, 0, 79.5], [0, 110.0, 47.5], [0, 0, 1]], dtype=dtype)
    T = torch.as_tensor(yaw(0.7) @ OPTICAL_TO_BODY, dtype=dtype)
    T[:3, 3] = torch.tensor([12.0, -3.0, 1.6], dtype=dtype)
    return K, T


def project(K, cam_to_world, points):
    p = (invert_rigid(cam_to_world) @ torch.cat([points, torch.ones_like(points[..., :1])], -1)[..., None])[..., :3, 0]
    uv = (K @ p[..., None])[..., 0]
    return uv[..., :2] / uv[..., 2:], p[..., 2]


def test_unprojecting_a_pixel_with_its_depth_lands_on_its_ray_and_projects_back():
    K, T = camera()
    pixels = grid_pixels(96, 160, stride=4, dtype=torch.float64)
    origins, dirs = pixel_rays(K, T, pixels)
    depth = torch.rand(pixels.shape[:2], dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 50 + 1
    points = origins + dirs * depth[..., None]
    uv, _ = project(K, T, points)
    torch.testing.assert_close(uv, pixels, rtol=0, atol=1e-9)
    # on the ray: (p - o) is parallel to d
    cross = torch.linalg.cross(points - origins, dirs, dim=-1)
    assert cross.abs().max() < 1e-9
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones_like(depth))


def test_plucker_moment_is_origin_cross_direction_and_the_same_for_every_point_of_the_ray():
    K, T = camera()
    origins, dirs = pixel_rays(K, T, grid_pixels(8, 12, dtype=torch.float64))
    rays = plucker(origins, dirs)
    assert rays.shape == (8, 12, 6)
    torch.testing.assert_close(rays[..., :3], dirs)
    torch.testing.assert_close(rays[..., 3:], torch.linalg.cross(origins, dirs, dim=-1))
    shifted = plucker(origins + 7.5 * dirs, dirs)
    torch.testing.assert_close(shifted, rays)
    assert (rays[..., :3] * rays[..., 3:]).sum(-1).abs().max() < 1e-9  # d . m = 0


def test_pixel_centres_of_strided_cells_and_resized_intrinsics_agree():
    K, T = camera()
    # a cell of 2x2 full-resolution pixels is one pixel of the half-resolution image
    full = grid_pixels(96, 160, stride=2, dtype=torch.float64)
    _, d_full = pixel_rays(K, T, full)
    half_K = scale_intrinsics(K, 0.5, 0.5)
    _, d_half = pixel_rays(half_K, T, grid_pixels(48, 80, dtype=torch.float64))
    torch.testing.assert_close(d_full, d_half)


def test_quaternions_round_trip_and_compose_like_matrices():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(100, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    R = quat_to_rotmat(q)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))
    torch.testing.assert_close(rotmat_to_quat(R), q)
    p = torch.roll(q, 1, 0)
    torch.testing.assert_close(quat_to_rotmat(quat_multiply(p, q)), quat_to_rotmat(p) @ R)
