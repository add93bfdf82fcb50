"""Velocity evidence by matching each Gaussian to the Gaussians of an earlier timestep.

Attention alone has to discover motion from rays and appearance; here it is given as geometry.
Matching runs on a grid ``match_pool`` times coarser than the Gaussians' (block means of their
centres, colours and head features), which keeps it to a few per cent of a streaming step; its
result is spread back to the Gaussians of each block. Each block's centre (anchor frame) is projected into
the same camera one timestep back (or ``match_steps_back``: a longer baseline, against which
the same depth noise is a smaller velocity). The
poses are known, so a static surface lands on itself there and a moving one lands where it is
now, with its earlier self a few cells away. A (2r+1)^2 neighbourhood (r = ``match_radius``) of
the earlier timestep's Gaussians around the projection is compared by learned descriptors, colour
and (with ``match_range_weight``) range from the earlier camera; the soft-matched earlier centre
gives a displacement, and a learned gate decides how much of it is velocity.
No flow is supervised: descriptors and gate learn from rendering other timestamps, as all motion does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import SlarmConfig


@dataclass(frozen=True)
class MatchState:
    """What the next timestep matches against: one timestep's Gaussian grids, C cameras."""

    means: Tensor  # (C, h, w, 3) anchor frame, metres, on the matching grid
    descriptors: Tensor  # (C, D, h, w)
    colours: Tensor  # (C, 3, h, w) in [0, 1]
    K: Tensor  # (C, 3, 3) at the network's resolution
    cam_to_anchor: Tensor  # (C, 4, 4)
    time: Tensor  # () seconds since the anchor

    def reanchored(self, old_to_new: Tensor, time_shift: float) -> "MatchState":
        """The same state in another anchor frame: old_to_new (4, 4) maps old anchor coordinates to new
        ones, metres; time_shift is the new anchor's time minus the old one's, seconds."""
        g = old_to_new.to(self.means.dtype)
        return MatchState(self.means @ g[:3, :3].T + g[:3, 3], self.descriptors, self.colours, self.K,
                          g @ self.cam_to_anchor, self.time - time_shift)


@dataclass(frozen=True)
class Candidates:
    """The (2r+1)^2 = K earlier cells around where each of n timesteps' cells projects."""

    logits: Tensor  # (n, C, K, h, w) match scores; -inf outside the earlier image
    means: Tensor  # (n, C, 3, K, h, w) their centres, anchor frame, metres
    valid: Tensor  # (n, C, h, w) bool: some candidate lies inside the earlier image
    dt: Tensor  # (n, 1, 1, 1, 1) seconds from the earlier timestep

    def velocities(self, means: Tensor) -> Tensor:
        """(n, C, K, h, w, 3) m/s: the velocity each candidate would give cells at ``means`` (n, C, h, w, 3)."""
        return (means[:, :, None] - self.means.permute(0, 1, 3, 4, 5, 2)) / self.dt[..., None]


class MotionMatcher(nn.Module):
    def __init__(self, cfg: SlarmConfig, channels: int, dim: int = 8):
        super().__init__()
        self.cfg = cfg
        self.radius = radius = cfg.match_radius
        self.pool = pool = cfg.match_pool
        if any(n % pool for n in cfg.gaussian_grid):
            raise ValueError(f"motion matching pools the {cfg.gaussian_grid} Gaussian grid by {pool}: it must divide it")
        self.describe = nn.Conv2d(channels, dim, 1)
        # Colour agreement and a preference for small displacements make the match sensible from
        # the first step; the descriptors then learn what colour cannot tell apart.
        self.colour_weight = nn.Parameter(torch.tensor(20.0))
        self.offset_weight = nn.Parameter(torch.tensor(0.5))
        self.range_weight = nn.Parameter(torch.tensor(float(cfg.match_range_weight))) if cfg.match_range_weight else None
        hidden = cfg.match_gate_hidden
        # evidence: velocity in the camera frame (3), valid (1), and with a hidden layer its size (1)
        inputs = channels + (5 if hidden else 4)
        last = nn.Conv2d(hidden or inputs, 1, 1)
        nn.init.zeros_(last.weight)
        nn.init.constant_(last.bias, -3.0)
        self.gate = nn.Sequential(nn.Conv2d(inputs, hidden, 1), nn.GELU(), last) if hidden else last
        r = torch.arange(-radius, radius + 1, dtype=torch.float32)
        dv, du = torch.meshgrid(r, r, indexing="ij")
        self.register_buffer("offsets", torch.stack([du.flatten(), dv.flatten()], dim=-1), persistent=False)

    def forward(self, trunk: Tensor, colours: Tensor, means: Tensor, K: Tensor, cam_to_anchor: Tensor, times: Tensor,
                previous: list[MatchState]) -> tuple[Tensor, list[MatchState]]:
        """Gated velocity (T, C, h, w, 3), anchor frame, m/s, and the states the next call needs.

        trunk (T*C, ch, h, w) head features; colours (T*C, 3, h, w); means (T, C, h, w, 3) anchor
        frame; K (T, C, 3, 3); cam_to_anchor (T, C, 4, 4); times (T,). ``previous``: the states of
        the timesteps before these, oldest first (streaming). Each timestep matches the one
        ``cfg.match_steps_back`` steps before it, or the oldest there is; the very first timestep
        of a stream has nothing to match (zero velocity).
        """
        t, c, full_h, full_w, _ = means.shape
        coarse = lambda x: F.avg_pool2d(x, self.pool)  # (N, ch, h, w) -> matching grid
        h, w = full_h // self.pool, full_w // self.pool
        means = coarse(means.flatten(0, 1).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(t, c, h, w, 3)
        descriptors = self.describe(coarse(trunk)).reshape(t, c, -1, h, w)
        colours = coarse(colours).reshape(t, c, 3, h, w)
        states = list(previous) + [MatchState(means[i], descriptors[i], colours[i], K[i], cam_to_anchor[i], times[i])
                                   for i in range(t)]
        back = self.cfg.match_steps_back
        first = 0 if previous else 1  # timesteps before this have nothing to match
        velocity = torch.zeros_like(means)
        valid = torch.zeros(t, c, h, w, device=means.device, dtype=means.dtype)
        if first < t:
            sources = [states[max(0, len(previous) + i - back)] for i in range(first, t)]
            prev = MatchState(*(torch.stack([getattr(s, f) for s in sources]) for f in MatchState.__dataclass_fields__))
            v, ok = self._match(means[first:], descriptors[first:], colours[first:], times[first:], prev)
            velocity = torch.cat([velocity[:first], v])
            valid = torch.cat([valid[:first], ok])
        spread = lambda x: x.repeat_interleave(self.pool, 2).repeat_interleave(self.pool, 3)  # (t, c, h, w, ...)
        velocity, valid = spread(velocity), spread(valid)
        # The gate sees the evidence in each camera's frame (scaled like the motion head's output).
        rot = cam_to_anchor[..., :3, :3]
        v_cam = torch.einsum("tcji,tchwj->tchwi", rot, velocity) / self.cfg.motion_scale
        evidence = [v_cam.permute(0, 1, 4, 2, 3), valid[:, :, None]]
        if self.cfg.match_gate_hidden:
            evidence.append(v_cam.norm(dim=-1)[:, :, None])
        evidence = torch.cat(evidence, dim=2).flatten(0, 1)
        gate = torch.sigmoid(self.gate(torch.cat([trunk, evidence], dim=1))).reshape(t, c, full_h, full_w, 1)
        return gate * velocity, states[-back:]

    def candidates(self, means: Tensor, descriptors: Tensor, colours: Tensor, times: Tensor,
                   prev: MatchState) -> Candidates:
        """The earlier cells each of n timesteps' cells may match, and how well each matches.

        means (n, C, h, w, 3) anchor frame; descriptors (n, C, D, h, w); colours (n, C, 3, h, w);
        times (n,) s; ``prev``: the n earlier timesteps' states, stacked."""
        n, c, h, w, _ = means.shape
        stride = self.cfg.gaussian_stride * self.pool
        # project into the same camera at the earlier time, in Gaussian-grid cells
        R, p = prev.cam_to_anchor[..., :3, :3], prev.cam_to_anchor[..., :3, 3]
        x = torch.einsum("ncji,nchwj->nchwi", R, means - p[:, :, None, None, :])
        z = x[..., 2]
        safe_z = z.clamp_min(1e-3)
        fx, fy = prev.K[..., 0, 0, None, None], prev.K[..., 1, 1, None, None]
        cx, cy = prev.K[..., 0, 2, None, None], prev.K[..., 1, 2, None, None]
        offset = (stride - 1) / 2
        col = (fx * x[..., 0] / safe_z + cx - offset) / stride
        row = (fy * x[..., 1] / safe_z + cy - offset) / stride
        k = self.offsets.shape[0]
        cells = torch.stack([col, row], dim=-1)[:, :, None] + self.offsets[None, None, :, None, None, :]  # (n,C,K,h,w,2)
        grid = torch.stack([cells[..., 0] / max(w - 1, 1), cells[..., 1] / max(h - 1, 1)], dim=-1) * 2 - 1
        inside = (grid.abs() <= 1).all(-1) & (z > 1e-2)[:, :, None]  # (n, C, K, h, w)
        source = torch.cat([prev.means.permute(0, 1, 4, 2, 3), prev.descriptors, prev.colours], dim=2)
        sampled = F.grid_sample(source.flatten(0, 1), grid.flatten(0, 1).reshape(n * c, k * h, w, 2),
                                align_corners=True, padding_mode="border")
        sampled = sampled.reshape(n, c, -1, k, h, w)
        nb_means, nb_desc, nb_col = sampled.split([3, descriptors.shape[2], 3], dim=2)
        scale = descriptors.shape[2] ** -0.5
        logits = (descriptors[:, :, :, None] * nb_desc).sum(2) * scale
        logits = logits - self.colour_weight * (colours[:, :, :, None] - nb_col).square().sum(2)
        logits = logits - self.offset_weight * self.offsets.square().sum(-1)[None, None, :, None, None]
        if self.range_weight is not None:
            # log ratio: the same jump in range weighs less far away, where depth is less certain
            own = (means - p[:, :, None, None, :]).norm(dim=-1).clamp_min(1e-3).log()  # (n, C, h, w)
            theirs = (nb_means - p[:, :, :, None, None, None]).norm(dim=2).clamp_min(1e-3).log()  # (n, C, K, h, w)
            logits = logits - self.range_weight * (own[:, :, None] - theirs).square()
        dt = (times - prev.time).clamp_min(1e-3)[:, None, None, None, None]
        return Candidates(logits.masked_fill(~inside, float("-inf")), nb_means, inside.any(2), dt)

    def _match(self, means: Tensor, descriptors: Tensor, colours: Tensor, times: Tensor,
               prev: MatchState) -> tuple[Tensor, Tensor]:
        """Velocity (n, C, h, w, 3) and validity (n, C, h, w) of n timesteps against their earlier ones."""
        found = self.candidates(means, descriptors, colours, times, prev)
        weights = torch.softmax(found.logits.masked_fill(~found.valid[:, :, None], 0.0), dim=2)
        matched = (weights[:, :, None] * found.means).sum(3)  # (n, C, 3, h, w)
        velocity = (means - matched.permute(0, 1, 3, 4, 2)) / found.dt
        velocity = velocity * found.valid[..., None]
        return velocity, found.valid.to(means.dtype)
