"""A brute-force float64 rasterizer: pixel by pixel, Gaussian by Gaussian, front to back.

It shares only the projection with the fast backend and re-implements every per-pixel rule
(screen box, alpha cut-offs, depth order, early stop) in the plainest form, as the reference
the vectorised renderer is checked against.
"""
import torch

from slarm_ros.render.rasterize import (ALPHA_MAX, ALPHA_MIN, TRANSMITTANCE_MIN, RenderOutput, project)


def render_reference(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near=0.01, far=1e10):
    proj = project(means, quats, scales, opacities, viewmats, Ks, width, height, near, far)
    views, n = proj.valid.shape
    out_c, out_a, out_d = [], [], []
    for v in range(views):
        order = sorted(range(n), key=lambda i: float(proj.depths[v, i].detach()))
        for py in range(height):
            for px in range(width):
                T = torch.ones((), dtype=means.dtype)
                col = torch.zeros(colors.shape[-1], dtype=colors.dtype)
                acc = torch.zeros((), dtype=means.dtype)
                dep = torch.zeros((), dtype=means.dtype)
                for i in order:
                    if not proj.valid[v, i]:
                        continue
                    mx, my = proj.means2d[v, i]
                    rx, ry = proj.radii[v, i]
                    if abs(px - float(mx.detach())) > float(rx) or abs(py - float(my.detach())) > float(ry):
                        continue
                    a, b, c = proj.conics[v, i]
                    dx, dy = px - mx, py - my
                    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                    alpha = torch.clamp(opacities[i] * torch.exp(-sigma), max=ALPHA_MAX)
                    if sigma < 0 or alpha < ALPHA_MIN:
                        continue
                    if T * (1 - alpha) <= TRANSMITTANCE_MIN:
                        break
                    w = alpha * T
                    col = col + w * colors[i]
                    acc = acc + w
                    dep = dep + w * proj.depths[v, i]
                    T = T * (1 - alpha)
                out_c.append(col)
                out_a.append(acc)
                out_d.append(dep / acc if acc > 0 else dep)
    shape = (views, height, width)
    return RenderOutput(torch.stack(out_c).reshape(*shape, -1), torch.stack(out_a).reshape(*shape, 1),
                        torch.stack(out_d).reshape(*shape, 1))
