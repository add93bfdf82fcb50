"""Input tokens: image patches + Plücker rays + timestamp, and the Sky and Affine tokens."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..geometry import grid_pixels, pixel_rays, plucker
from .config import SlarmConfig

# Translations enter the Plücker moments (and relative.py's pose blocks) in units of this many
# metres, keeping them O(1).
POSE_SCALE_M = 10.0


def scaled_pose(pose: Tensor) -> Tensor:
    """Rigid transforms (..., 4, 4) in metres -> the same with translation in units of POSE_SCALE_M."""
    out = pose.clone()
    out[..., :3, 3] = out[..., :3, 3] / POSE_SCALE_M
    return out


def fourier_features(x: Tensor, num_frequencies: int) -> Tensor:
    """(..., k) -> (..., k * 2 * num_frequencies) sines and cosines at octave frequencies."""
    freqs = (2.0 ** torch.arange(num_frequencies, device=x.device, dtype=x.dtype)) * math.pi
    angles = x[..., None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)


class TimeEmbedding(nn.Module):
    """Learnable embedding of a timestamp in [0, horizon) seconds (relative to the sequence anchor)."""

    def __init__(self, dim: int, num_frequencies: int, horizon: float):
        super().__init__()
        self.horizon = horizon
        self.num_frequencies = num_frequencies
        self.proj = nn.Linear(2 * num_frequencies + 1, dim)

    def forward(self, times: Tensor) -> Tensor:
        """times (T,) seconds -> (T, D)."""
        x = (times / self.horizon)[:, None]
        return self.proj(torch.cat([x, fourier_features(x, self.num_frequencies)], dim=-1))


class TokenEmbedding(nn.Module):
    """Per camera image: patch tokens with their rays, plus the Sky and per-camera Affine tokens.

    Output tokens per (timestep, camera): [sky, affine_c, patch_1 .. patch_P], shape (T, C, 2 + P, D).
    """

    NUM_SPECIAL = 2

    def __init__(self, cfg: SlarmConfig):
        super().__init__()
        p = cfg.patch_size
        self.cfg = cfg
        self.patch_embed = nn.Conv2d(3, cfg.dim, p, stride=p)
        self.ray_embed = nn.Conv2d(6, cfg.dim, p, stride=p)
        gh, gw = cfg.patch_grid
        self.pos_embed = nn.Parameter(torch.randn(1, gh * gw, cfg.dim) * 0.02)
        # relative: the timestep's time and pose reach global attention instead (model/relative.py)
        self.time_embed = None if cfg.pose_encoding == "relative" else TimeEmbedding(
            cfg.dim, cfg.time_frequencies, cfg.time_horizon)
        self.sky_token = nn.Parameter(torch.randn(cfg.dim) * 0.02)
        self.affine_tokens = nn.Parameter(torch.randn(cfg.num_cameras, cfg.dim) * 0.02)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def plucker_image(self, K: Tensor, cam_to_anchor: Tensor) -> Tensor:
        """(N, 6, H, W) Plücker coordinates of every pixel's ray in the frame of ``cam_to_anchor`` (N, 4, 4)."""
        cfg = self.cfg
        pixels = grid_pixels(cfg.image_height, cfg.image_width, device=K.device, dtype=K.dtype)
        origins, dirs = pixel_rays(K, scaled_pose(cam_to_anchor), pixels)
        return plucker(origins, dirs).permute(0, 3, 1, 2)

    def forward(self, images: Tensor, K: Tensor, cam_to_anchor: Tensor, times: Tensor) -> Tensor:
        """images (T, C, 3, H, W) in [0, 1]; K (T, C, 3, 3); cam_to_anchor (T, C, 4, 4); times (T,).

        Returns tokens (T, C, 2 + P, D).
        """
        t, c = images.shape[:2]
        flat = images.flatten(0, 1)
        x = self.patch_embed((flat - self.mean) / self.std)
        if self.cfg.pose_encoding == "relative":  # rays in their timestep's rig frame: no token says where the anchor is
            cam_to_anchor = torch.linalg.inv(cam_to_anchor[:, :1]) @ cam_to_anchor
        x = x + self.ray_embed(self.plucker_image(K.flatten(0, 1), cam_to_anchor.flatten(0, 1)))
        x = x.flatten(2).transpose(1, 2) + self.pos_embed  # (T*C, P, D)
        x = x.reshape(t, c, -1, self.cfg.dim)
        sky = self.sky_token.expand(t, c, 1, -1)
        affine = self.affine_tokens[None, :c, None, :].expand(t, c, 1, -1)
        tokens = torch.cat([sky, affine, x], dim=2)
        return tokens if self.time_embed is None else tokens + self.time_embed(times)[:, None, None, :]
