"""Camera and rotation geometry shared by the model, the renderer, the world and the metrics.

Pixel convention: pixel (u, v) is centred at (u, v) in the coordinates of K (OpenCV and
sensor_msgs/CameraInfo). Cameras are in the optical convention: x right, y down, z forward.
Quaternions are (w, x, y, z), as gsplat takes them.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Rotation (as a 4x4 transform) from an optical frame to the body it looks out of along x (z up):
# optical z (forward) = body x, optical x (right) = body -y, optical y (down) = body -z.
OPTICAL_TO_BODY = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float)


def grid_pixels(height: int, width: int, stride: int = 1, device=None, dtype=torch.float32) -> Tensor:
    """Pixel coordinates (h, w, 2) of the centres of stride x stride cells, in full-image pixels.

    With stride 1 these are (u, v) = (0..W-1, 0..H-1). A cell of ``stride`` pixels covering
    pixels [i*s, (i+1)*s - 1] has its centre at i*s + (s - 1) / 2.
    """
    h, w = height // stride, width // stride
    offset = (stride - 1) / 2
    v = torch.arange(h, device=device, dtype=dtype) * stride + offset
    u = torch.arange(w, device=device, dtype=dtype) * stride + offset
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1)


def pixels_in_boxes(x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every integer pixel inside each of B inclusive screen boxes [x0, x1] x [y0, y1] (int64, (B,)).

    Empty boxes (x1 < x0 or y1 < y0) contribute nothing. Returns owner box index, px, py, each (P,).
    """
    box_w = (x1 - x0 + 1).clamp(min=0)
    counts = box_w * (y1 - y0 + 1).clamp(min=0)
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(int(counts.sum()), device=counts.device) - starts[owner]
    return owner, x0[owner] + local % box_w[owner], y0[owner] + local // box_w[owner]


def pixel_rays(K: Tensor, cam_to_world: Tensor, pixels: Tensor) -> tuple[Tensor, Tensor]:
    """World-frame viewing rays through pixels.

    K: (..., 3, 3); cam_to_world: (..., 4, 4); pixels: (h, w, 2) or (..., h, w, 2).
    Returns origins (..., h, w, 3) in metres and unit directions (..., h, w, 3).
    """
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    u, v = pixels[..., 0], pixels[..., 1]
    expand = (...,) + (None, None)
    x = (u - cx[expand]) / fx[expand]
    y = (v - cy[expand]) / fy[expand]
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    R = cam_to_world[..., :3, :3]
    d_world = torch.einsum("...ij,...hwj->...hwi", R, d_cam)
    d_world = d_world / d_world.norm(dim=-1, keepdim=True)
    origins = cam_to_world[..., None, None, :3, 3].expand_as(d_world)
    return origins, d_world


def plucker(origins: Tensor, directions: Tensor) -> Tensor:
    """6-D Plücker coordinates (direction, moment = origin x direction), shape (..., 6)."""
    return torch.cat([directions, torch.linalg.cross(origins, directions, dim=-1)], dim=-1)


def scale_intrinsics(K: Tensor, sx: float, sy: float) -> Tensor:
    """K for an image resized by (sx, sy), keeping pixel centres at integer coordinates."""
    K = K.clone()
    K[..., 0, 0] *= sx
    K[..., 1, 1] *= sy
    K[..., 0, 1] *= sx
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return K


def invert_rigid(T: Tensor) -> Tensor:
    """Inverse of rigid transforms (..., 4, 4)."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    out = torch.zeros_like(T)
    out[..., :3, :3] = R.transpose(-1, -2)
    out[..., :3, 3:] = -R.transpose(-1, -2) @ t
    out[..., 3, 3] = 1
    return out


def quat_to_rotmat(q: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) from quaternions (..., 4) (w, x, y, z); normalises q."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Quaternions (..., 4) (w, x, y, z), w >= 0, from rotation matrices (..., 3, 3)."""
    m = R
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Four candidate formulas; take the numerically largest denominator per element.
    cands = torch.stack(
        [
            torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
        ],
        dim=-2,
    )
    diag = torch.stack([1 + trace, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                        1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)
    best = diag.argmax(dim=-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of quaternions (..., 4) (w, x, y, z)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )
