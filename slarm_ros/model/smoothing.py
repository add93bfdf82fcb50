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
                  speed_floor: float = SPEED_FLOOR, hold_speed: float = 0.0) -> Tensor:
    """Motion (N, D, 3) of the N = C*h*w Gaussians of one timestep, each replaced by the speed- and
    likeness-weighted mean of its neighbours on its camera's Gaussian grid: those up to ``radius``
    cells away along each axis, taken every ``step`` cells ((2 radius / step + 1)^2 of them; the
    same reach at 1 / step^2 of the cost), ``radius`` a multiple of ``step``.

    depth (C, h, w) range along each Gaussian's ray, metres; colours (N, 3) in [0, 1]. The weight of
    neighbour j for Gaussian i is exp(-RANGE_WEIGHT (log d_i - log d_j)^2 - COLOUR_WEIGHT |c_i - c_j|^2)
    times (j's speed + ``speed_floor``), speed the norm of its first order, m/s; Gaussians outside
    the image take no part. Where no neighbour moves the motion stays zero.

    ``hold_speed`` (m/s, > 0 where a static hold at that speed follows): a weighted mean is no faster
    than its fastest neighbour, so a Gaussian whose neighbours are all slower would be held still
    anyway; it gets zero motion without its mean being taken. Most of a scene stands, so this is
    where the time goes otherwise.
    """
    c, h, w = depth.shape
    n, orders, _ = motion.shape
    if n != c * h * w:
        raise ValueError(f"{n} Gaussians do not lie on {c} grids of {h}x{w}")
    if step < 1 or radius % step:
        raise ValueError(f"the smoothing radius ({radius} cells) must be a multiple of its step ({step} cells)")
    speed = motion[:, 0].norm(dim=-1)  # (N,)
    if hold_speed > 0:
        padded = F.pad(speed.reshape(c, 1, h, w), (radius,) * 4)  # speeds are >= 0: a zero border is no neighbour
        fastest = F.max_pool2d(padded, 2 * radius // step + 1, stride=1, dilation=step).reshape(n)
        # the margin keeps a mean that rounding lifts to the hold from being left out
        chosen = (fastest >= hold_speed * (1 - 1e-4)).nonzero()[:, 0]
    else:
        chosen = torch.arange(n, device=motion.device)
    smoothed = torch.zeros_like(motion)
    if chosen.numel() == 0:
        return smoothed
    # each chosen Gaussian's neighbours as flat indices (K, S), S = (2 radius / step + 1)^2
    offsets = torch.arange(-radius, radius + 1, step, device=motion.device)
    camera, y, x = chosen // (h * w), chosen // w % h, chosen % w
    ny = (y[:, None, None] + offsets[None, :, None]).expand(-1, -1, len(offsets)).flatten(1)
    nx = (x[:, None, None] + offsets[None, None, :]).expand(-1, len(offsets), -1).flatten(1)
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    index = camera[:, None] * (h * w) + ny.clamp(0, h - 1) * w + nx.clamp(0, w - 1)
    log_range = depth.clamp_min(1e-3).log().reshape(n)
    likeness = (-RANGE_WEIGHT * (log_range[chosen, None] - log_range[index]).square()
                - COLOUR_WEIGHT * (colours[chosen, None] - colours[index]).square().sum(-1))  # (K, S)
    # its own likeness is 0, so a Gaussian's weights never all underflow
    weights = likeness.exp() * (speed[index] + speed_floor) * inside
    mean = (weights[..., None, None] * motion[index]).sum(1) / weights.sum(1).clamp_min(1e-12)[:, None, None]
    smoothed[chosen] = mean
    return smoothed
