"""3D Gaussian rasterization with gsplat's meaning, on CUDA (gsplat) or anywhere (pure torch).

``rasterize`` is the one entry point. Both backends take the same inputs and return the same
outputs; the torch backend reproduces gsplat's classic model:
- EWA projection with the Jacobian evaluated at the (frustum-clamped) centre, 0.3 px^2 of blur
  added to the 2D covariance;
- a screen box of extent min(3.33, sqrt(2 ln(255 * opacity))) standard deviations per axis;
- alpha = min(0.999, opacity * exp(-sigma)), pairs with alpha < 1/255 skipped;
- front-to-back compositing by camera depth z, stopping before transmittance drops to 1e-4;
- expected depth = sum(w z) / sum(w).
Pixel (u, v) is centred at (u, v) in K's coordinates (OpenCV / CameraInfo). gsplat centres
pixels at +0.5, so its backend shifts the principal point by half a pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..geometry import pixels_in_boxes, quat_to_rotmat

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
TRANSMITTANCE_MIN = 1e-4
BLUR_PX2 = 0.3
EXTENT_MAX_SIGMA = 3.33


@dataclass(frozen=True)
class RenderOutput:
    colors: Tensor  # (V, H, W, K) accumulated channels, no background
    alphas: Tensor  # (V, H, W, 1) accumulated opacity
    depths: Tensor  # (V, H, W, 1) expected camera depth z (metres); 0 where alpha is 0


def rasterize(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
              viewmats: Tensor, Ks: Tensor, width: int, height: int, near: float = 0.01, far: float = 1e10,
              backend: str = "auto") -> RenderOutput:
    """Render N Gaussians into V views.

    means (N, 3) world; quats (N, 4) (w, x, y, z); scales (N, 3) metres; opacities (N,);
    colors (N, K) any channels; viewmats (V, 4, 4) world -> camera (optical); Ks (V, 3, 3).
    backend: 'auto' (gsplat on CUDA tensors, torch otherwise), 'gsplat' or 'torch'.
    """
    if backend == "auto":
        backend = "gsplat" if means.is_cuda and gsplat_available() else "torch"
    if backend == "gsplat":
        return _rasterize_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near, far)
    if backend == "torch":
        return _rasterize_torch(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near, far)
    raise ValueError(f"unknown backend '{backend}'")


def gsplat_available() -> bool:
    """gsplat's CUDA kernels can be used (CUDA present and gsplat importable)."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


def _rasterize_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near, far) -> RenderOutput:
    import gsplat

    Ks = Ks.clone()
    Ks[:, 0, 2] += 0.5
    Ks[:, 1, 2] += 0.5
    rendered, alphas, _ = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near, far_plane=far, render_mode="RGB+ED", packed=False, eps2d=BLUR_PX2,
        rasterize_mode="classic",
    )
    return RenderOutput(colors=rendered[..., :-1], alphas=alphas, depths=rendered[..., -1:])


@dataclass(frozen=True)
class Projection:
    """Gaussians projected into V views; entries where ``valid`` is False are to be ignored."""

    means2d: Tensor  # (V, N, 2) pixels
    depths: Tensor  # (V, N) camera z, metres
    conics: Tensor  # (V, N, 3) inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    radii: Tensor  # (V, N, 2) box half-extent in pixels (x, y), float with integer values
    valid: Tensor  # (V, N) bool


def project(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor, Ks: Tensor,
            width: int, height: int, near: float, far: float) -> Projection:
    """EWA projection of 3D Gaussians, differentiable in means, quats, scales."""
    R, t = viewmats[:, None, :3, :3], viewmats[:, None, :3, 3]  # (V, 1, 3, 3), (V, 1, 3)
    p = (R @ means[None, :, :, None]).squeeze(-1) + t  # (V, N, 3)
    x, y, z = p.unbind(-1)
    valid = (z > near) & (z < far)
    z_safe = torch.where(valid, z, torch.ones_like(z))

    fx, fy = Ks[:, None, 0, 0], Ks[:, None, 1, 1]
    cx, cy = Ks[:, None, 0, 2], Ks[:, None, 1, 2]
    # Clamp the Jacobian's evaluation point to a little beyond the frustum (as gsplat does):
    # far off-screen Gaussians otherwise get huge, wrong footprints.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x / z_safe))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y / z_safe))
    zeros = torch.zeros_like(z_safe)
    J = torch.stack([
        torch.stack([fx / z_safe, zeros, -fx * tx / z_safe ** 2], -1),
        torch.stack([zeros, fy / z_safe, -fy * ty / z_safe ** 2], -1),
    ], dim=-2)  # (V, N, 2, 3)

    Rg = quat_to_rotmat(quats)  # (N, 3, 3)
    M = Rg * scales[:, None, :]
    cov3d = M @ M.transpose(-1, -2)  # (N, 3, 3)
    cov_cam = R @ cov3d[None] @ R.transpose(-1, -2)  # (V, N, 3, 3)
    cov2d = J @ cov_cam @ J.transpose(-1, -2)
    a = cov2d[..., 0, 0] + BLUR_PX2
    b = cov2d[..., 0, 1]
    c = cov2d[..., 1, 1] + BLUR_PX2
    det = a * c - b * b
    valid = valid & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)

    with torch.no_grad():
        opac = opacities[None].expand_as(z)
        valid = valid & (opac >= ALPHA_MIN)
        extent = torch.sqrt(2.0 * torch.log(opac.clamp_min(ALPHA_MIN) / ALPHA_MIN)).clamp(max=EXTENT_MAX_SIGMA)
        radii = torch.stack([torch.ceil(extent * a.clamp_min(0).sqrt()), torch.ceil(extent * c.clamp_min(0).sqrt())], -1)
        m2 = means2d.detach()
        inside = ((m2[..., 0] + radii[..., 0] >= 0) & (m2[..., 0] - radii[..., 0] <= width - 1)
                  & (m2[..., 1] + radii[..., 1] >= 0) & (m2[..., 1] - radii[..., 1] <= height - 1))
        valid = valid & inside & (radii > 0).all(-1)
    return Projection(means2d=means2d, depths=z, conics=conics, radii=radii, valid=valid)


def _pixel_pairs(proj: Projection, width: int, height: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every (view, gaussian, pixel) whose pixel centre lies in the Gaussian's screen box.

    Returns view index, gaussian index, px, py; each (P,) int64.
    """
    with torch.no_grad():
        v_idx, g_idx = proj.valid.nonzero(as_tuple=True)
        m = proj.means2d.detach()[v_idx, g_idx]
        r = proj.radii[v_idx, g_idx]
        x0 = torch.ceil(m[:, 0] - r[:, 0]).clamp(min=0).long()
        x1 = torch.floor(m[:, 0] + r[:, 0]).clamp(max=width - 1).long()
        y0 = torch.ceil(m[:, 1] - r[:, 1]).clamp(min=0).long()
        y1 = torch.floor(m[:, 1] + r[:, 1]).clamp(max=height - 1).long()
        owner, px, py = pixels_in_boxes(x0, x1, y0, y1)
        return v_idx[owner], g_idx[owner], px, py


def _rasterize_torch(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near, far) -> RenderOutput:
    views, channels = viewmats.shape[0], colors.shape[-1]
    proj = project(means, quats, scales, opacities, viewmats, Ks, width, height, near, far)
    v, g, px, py = _pixel_pairs(proj, width, height)

    dx = px.to(means.dtype) - proj.means2d[v, g, 0]
    dy = py.to(means.dtype) - proj.means2d[v, g, 1]
    con = proj.conics[v, g]
    sigma = 0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) + con[:, 1] * dx * dy
    alpha = (opacities[g] * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
    keep = (sigma >= 0) & (alpha >= ALPHA_MIN)
    v, g, px, py, alpha = v[keep], g[keep], px[keep], py[keep], alpha[keep]
    z = proj.depths[v, g]

    # Order pairs by pixel, and by depth within a pixel (two stable sorts).
    pixel = (v * height + py) * width + px
    order = torch.sort(z.detach(), stable=True).indices
    order = order[torch.sort(pixel[order], stable=True).indices]
    pixel, g, alpha, z = pixel[order], g[order], alpha[order], z[order]

    # Transmittance before each pair: exp of the exclusive cumulative sum of log(1 - alpha)
    # within its pixel. float64: the running sum spans millions of pairs.
    log_keep = torch.log1p(-alpha.double())
    running = torch.cumsum(log_keep, 0)
    first = torch.ones_like(pixel, dtype=torch.bool)
    first[1:] = pixel[1:] != pixel[:-1]
    segment_start = torch.cummax(torch.where(first, torch.arange(len(pixel), device=pixel.device), 0), 0).values
    before = running - log_keep - (running[segment_start] - log_keep[segment_start])
    transmittance = torch.exp(before)
    # gsplat stops at the pair that would take transmittance to 1e-4 or below, excluding it.
    alive = (transmittance * (1 - alpha.double())).detach() > TRANSMITTANCE_MIN
    weight = (alpha.double() * transmittance * alive).to(means.dtype)

    n_pix = views * height * width
    out_colors = torch.zeros(n_pix, channels, dtype=colors.dtype, device=colors.device)
    out_colors = out_colors.index_add(0, pixel, weight[:, None] * colors[g])
    out_alpha = torch.zeros(n_pix, dtype=means.dtype, device=means.device).index_add(0, pixel, weight)
    out_depth = torch.zeros(n_pix, dtype=means.dtype, device=means.device).index_add(0, pixel, weight * z)
    out_depth = torch.where(out_alpha > 0, out_depth / out_alpha.clamp_min(1e-10), torch.zeros_like(out_depth))
    shape = (views, height, width)
    return RenderOutput(colors=out_colors.reshape(*shape, channels), alphas=out_alpha.reshape(*shape, 1),
                        depths=out_depth.reshape(*shape, 1))


__all__ = ["rasterize", "RenderOutput", "Projection", "project", "gsplat_available"]
