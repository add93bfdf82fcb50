"""Motion shared between neighbouring Gaussians of one surface, at inference.

Rendering other timestamps teaches each Gaussian its own motion, and on a moving actor those
motions scatter: parts whose appearance pins the match (ends, marks, edges) move about right, plain
parts fall short or stand still. A scene-flow consumer wants the actor's motion on every one of its
points. So each Gaussian's motion becomes a weighted mean over the Gaussians around it in its image
(a bilateral filter on the Gaussian grid): neighbours count by how alike they are in range from the
camera and in colour, and by their own speed plus a floor, so that the parts that found the motion
lead, while a standing surface's many still Gaussians hold it still beside a moving actor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

RANGE_WEIGHT = 20.0  # per squared log range ratio: 10 % apart in range weighs e^-0.18, 2x apart e^-9.6
COLOUR_WEIGHT = 5.0  # per squared RGB distance in [0, 1]: a car's body and its dark windows weigh e^-1.5
SPEED_FLOOR = 1.0  # m/s added to each neighbour's speed in its weight: a still neighbour counts as a 1 m/s one


def smooth_motion(motion: Tensor, depth: Tensor, colours: Tensor, radius: int, step: int = 1,
                  speed_floor: float = SPEED_FLOOR) -> Tensor:
    """Motion (N, D, 3) of the N = C*h*w Gaussians of one timestep, each replaced by the speed- and
    likeness-weighted mean of its neighbours on its camera's Gaussian grid: those up to ``radius``
    cells away along each axis, taken every ``step`` cells ((2 radius / step + 1)^2 of them; the
    same reach at 1 / step^2 of the cost), ``radius`` a multiple of ``step``.

    depth (C, h, w) range along each Gaussian's ray, metres; colours (N, 3) in [0, 1]. The weight of
    neighbour j for Gaussian i is exp(-RANGE_WEIGHT (log d_i - log d_j)^2 - COLOUR_WEIGHT |c_i - c_j|^2)
    times (j's speed + ``speed_floor``), speed the norm of its first order, m/s; Gaussians outside
    the image take no part. Where no neighbour moves the motion stays zero.
    """
    c, h, w = depth.shape
    n, orders, _ = motion.shape
    if n != c * h * w:
        raise ValueError(f"{n} Gaussians do not lie on {c} grids of {h}x{w}")
    if step < 1 or radius % step:
        raise ValueError(f"the smoothing radius ({radius} cells) must be a multiple of its step ({step} cells)")
    size = 2 * radius // step + 1

    def neighbours(x: Tensor) -> Tensor:  # (C, ch, h, w) -> (C, ch, size^2, h, w), zero outside the image
        return F.unfold(x, size, dilation=step, padding=radius).reshape(c, x.shape[1], size * size, h, w)

    on_grid = lambda x: x.reshape(c, h, w, -1).permute(0, 3, 1, 2)  # (N, ch) -> (C, ch, h, w)
    log_range = depth.clamp_min(1e-3).log()[:, None]
    colour = on_grid(colours)
    likeness = (-RANGE_WEIGHT * (log_range[:, :, None] - neighbours(log_range)).square().sum(1)
                - COLOUR_WEIGHT * (colour[:, :, None] - neighbours(colour)).square().sum(1))  # (C, size^2, h, w)
    weights = likeness.exp()  # its own likeness is 0, so a Gaussian's weights never all underflow
    speed = on_grid(motion[:, 0].norm(dim=-1, keepdim=True))
    weights = weights * neighbours(speed + speed_floor)[:, 0]  # zero outside the image
    total = weights.sum(1, keepdim=True)
    mean = (weights[:, None] * neighbours(on_grid(motion.flatten(1)))).sum(2) / total.clamp_min(1e-12)
    return mean.permute(0, 2, 3, 1).reshape(n, orders, 3)
