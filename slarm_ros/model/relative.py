"""Relative pose and time in global attention: a network that does not see where its anchor is.

With ``pose_encoding: relative`` no token carries the anchor: rays enter in their own timestep's
rig frame (camera 0 at that time), and the timestep's rig pose and time enter global attention
only as transforms of queries and keys whose products depend on the pair's relative pose and time
difference (as GTA and PRoPE do for poses, RoPE for positions). For a query of timestep i and a
key of timestep j:

    q_i' = F_i^-T q_i,  k_j' = F_j k_j,  so that  q_i' . k_j' = q_i . F_i^-1 F_j k_j

F is block-diagonal per head: 4x4 blocks holding the rig pose (translation in units of
tokens.POSE_SCALE_M) on one half of the channels, 2x2 rotations by omega * time on the other.
Values pass unchanged by pose: what a timestep tells another is its content, and only how much it
is listened to depends on where it was seen (transforming values by pose as well scrambled that
content across time: docs/training.md). With ``value_time``, values' time channels are turned by
their timestep's time and the output back by the query's, so that a query gathers each timestep's
content turned by the time between them (``encode_values``, ``decode_output``). Keys are cached transformed, in the anchor frame; a new
anchor G (old anchor coordinates -> new) and a time shift dt turn them into the new anchor's by
one more transform (``reanchor``), so a streaming engine never re-encodes its window to move on.

Attention may also fall off with the time between two timesteps (``reach_s``): a Gaussian bias
-(t_i - t_j)^2 / (2 reach_s^2) on the logits (``time_bias``). Training windows span a fraction of a
second, so nothing in training tells a query what a key seconds away is worth; the fall-off keeps
an offline pass over a whole drive from listening to timesteps no window ever showed (as ALiBi
keeps language models to the distances they were trained on), and costs nothing within a window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .tokens import scaled_pose  # the pose blocks' translation unit is the rays'

PERIOD_MIN_S = 0.5  # the shortest and longest periods of the time rotations
PERIOD_MAX_S = 60.0


def split_channels(head_dim: int) -> tuple[int, int]:
    """Channels of one head given to pose blocks (multiple of 4) and to time pairs (multiple of 2)."""
    pose = (head_dim // 2) // 4 * 4
    return pose, (head_dim - pose) // 2 * 2


def time_frequencies(pairs: int, device=None, dtype=None) -> Tensor:
    """(pairs,) angular frequencies, rad/s, with periods spread geometrically over PERIOD_MIN_S..PERIOD_MAX_S."""
    periods = torch.logspace(math.log10(PERIOD_MIN_S), math.log10(PERIOD_MAX_S), max(pairs, 1), device=device,
                             dtype=dtype)[:pairs]
    return 2 * math.pi / periods


@dataclass(frozen=True)
class RelativeFrames:
    """Per-timestep rig pose and time: what global attention is made relative to."""

    rig_to_anchor: Tensor  # (T, 4, 4) camera 0's pose, anchor frame, metres
    times: Tensor  # (T,) seconds since the anchor
    reach_s: float = 0.0  # the width of attention's fall-off with time, s (``time_bias``); 0: none
    value_time: bool = False  # values' time channels turned by time too (``encode_values``)

    def transforms(self) -> tuple[Tensor, Tensor]:
        """F (T, 4, 4) with scaled translation, and F^-1."""
        pose = scaled_pose(self.rig_to_anchor)
        return pose, torch.linalg.inv(pose)


def time_bias(q_times: Tensor, k_times: Tensor, reach_s: float) -> Tensor | None:
    """(Tq, Tk) logits added to attention from a query timestep to a key timestep:
    -(t_q - t_k)^2 / (2 reach_s^2), times in s. None when reach_s is 0 (no fall-off)."""
    if reach_s <= 0:
        return None
    gap = q_times[:, None] - k_times[None, :]
    return -0.5 * (gap / reach_s) ** 2


def _apply(x: Tensor, pose: Tensor | None, angles: Tensor) -> Tensor:
    """x (T, H, M, d) -> block transform per timestep: pose (T, 4, 4) on the pose channels (None: left
    as they are), rotation by angles (T, pairs) on the time channels; other channels unchanged."""
    d = x.shape[-1]
    n_pose, n_time = split_channels(d)
    p, t, rest = x.split([n_pose, n_time, d - n_pose - n_time], dim=-1)
    if pose is not None:
        p = torch.einsum("tij,thmbj->thmbi", pose, p.unflatten(-1, (n_pose // 4, 4))).flatten(-2)
    a, b = t.unflatten(-1, (n_time // 2, 2)).unbind(-1)
    cos, sin = angles.cos()[:, None, None], angles.sin()[:, None, None]
    t = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    return torch.cat([p, t, rest], dim=-1)


def _angles(times: Tensor, head_dim: int) -> Tensor:
    """times (T,) s -> (T, pairs) rotation angles of the time channels, rad."""
    pairs = split_channels(head_dim)[1] // 2
    return times[:, None] * time_frequencies(pairs, times.device, times.dtype)


def encode_keys(x: Tensor, frames: RelativeFrames) -> Tensor:
    """Keys (T, H, M, d) of the timesteps of ``frames`` -> F_j k."""
    pose, _ = frames.transforms()
    return _apply(x, pose, _angles(frames.times, x.shape[-1]))


def encode_queries(q: Tensor, frames: RelativeFrames) -> Tensor:
    """Queries (T, H, M, d) -> F_i^-T q (the rotations' inverse transpose is the rotation itself)."""
    _, inverse = frames.transforms()
    return _apply(q, inverse.transpose(-1, -2), _angles(frames.times, q.shape[-1]))


def encode_values(v: Tensor, frames: RelativeFrames) -> Tensor:
    """Values (T, H, M, d) -> their time channels turned by their timestep's time (unchanged without value_time)."""
    return _apply(v, None, _angles(frames.times, v.shape[-1])) if frames.value_time else v


def decode_output(out: Tensor, frames: RelativeFrames) -> Tensor:
    """Attention output (T, H, M, d) of the queries of ``frames`` -> turned back by the query's time, so that
    each value reaches it turned by (key time - query time) (unchanged without value_time)."""
    return _apply(out, None, _angles(-frames.times, out.shape[-1])) if frames.value_time else out


def reanchor(x: Tensor, old_to_new: Tensor | None, time_shift: float) -> Tensor:
    """Cached keys (T, H, M, d), encoded in one anchor -> encoded in another; with old_to_new None, the
    time channels only (cached values under value_time).

    old_to_new (4, 4): old anchor coordinates -> new ones, metres; time_shift: new anchor time
    minus old, seconds (every time since the anchor falls by it)."""
    t = x.shape[0]
    g = None if old_to_new is None else scaled_pose(old_to_new.to(x.dtype)).expand(t, 4, 4)
    shift = torch.full((t,), -float(time_shift), dtype=x.dtype, device=x.device)
    return _apply(x, g, _angles(shift, x.shape[-1]))
