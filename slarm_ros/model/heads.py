"""Heads: tokens back to per-pixel 4D Gaussians, sky colour, per-camera colour transform."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..gaussians import Gaussians4D
from ..geometry import grid_pixels, pixel_rays, quat_multiply, rotmat_to_quat
from .config import SlarmConfig
from .tokens import fourier_features

HIDDEN = 32  # channels of the pixel-level refinement

# The "speed" motion form (SLARM's): per order k a direction and a speed in m/s^k.
SPEED_MAX = 100.0  # m/s^k, the largest speed (acceleration, jerk) a Gaussian can take
SPEED_START_LOGIT = -6.9068  # sigmoid = 1e-3: a zero head output is 0.1 m/s^k
SPEED_DEAD_ZONE = 1e-4  # m/s^k; below it a Gaussian stands exactly still
DIRECTION_INIT_STD = 0.02  # the direction channels start long enough for normalising to be smooth


def motion_channels_per_order(cfg: SlarmConfig) -> int:
    """Head channels of one motion order: xyz ("linear"), or a direction and a speed logit ("speed")."""
    return 4 if cfg.motion_form == "speed" else 3


def gaussian_channels(cfg: SlarmConfig) -> dict[str, int]:
    """Raw output channels per Gaussian, in order."""
    channels = {"depth": 1, "scale": 3, "quat": 4, "opacity": 1, "rgb": 3,
                "motion": motion_channels_per_order(cfg) * cfg.motion_degree, "feature": cfg.semantic_dim}
    if cfg.motion_gate and cfg.motion_degree > 0:
        channels["dynamic"] = 1
    return channels


class GaussianHead(nn.Module):
    """Patch tokens (two layers, concatenated) -> raw Gaussian parameters on the Gaussian grid.

    Each token is unfolded into its patch's (patch / stride)^2 cells, then refined at that
    resolution together with the image, so that edges follow the pixels and not the patches.
    """

    def __init__(self, cfg: SlarmConfig):
        super().__init__()
        self.cfg = cfg
        self.cells = cfg.patch_size // cfg.gaussian_stride
        self.channels = gaussian_channels(cfg)
        self.norm = nn.LayerNorm(2 * cfg.dim)
        self.unfold = nn.Linear(2 * cfg.dim, self.cells * self.cells * HIDDEN)
        self.refine = nn.Sequential(
            nn.Conv2d(HIDDEN + 3, HIDDEN, 3, padding=1), nn.GELU(),
            nn.Conv2d(HIDDEN, HIDDEN, 3, padding=1), nn.GELU(),
        )
        self.out = nn.Conv2d(HIDDEN, sum(self.channels.values()), 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        if cfg.motion_form == "speed" and cfg.motion_degree > 0:
            start = self.first_channel("motion")
            per_order = motion_channels_per_order(cfg)
            directions = [start + per_order * k + i for k in range(cfg.motion_degree) for i in range(3)]
            with torch.no_grad():
                self.out.weight[directions] = torch.randn_like(self.out.weight[directions]) * DIRECTION_INIT_STD
        bias = torch.zeros(sum(self.channels.values()))
        offset = self.first_channel("quat")
        bias[offset] = 1.0  # identity rotation
        bias[offset + 4] = -1.0  # opacity ~0.27 at start: layers of Gaussians must not saturate
        self.out.bias.data.copy_(bias)

    def first_channel(self, name: str) -> int:
        """Index of the first output channel of the parameter ``name``."""
        names = list(self.channels)
        return sum(list(self.channels.values())[:names.index(name)])

    def forward(self, tokens: Tensor, images_small: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """tokens (N, P, 2D); images_small (N, 3, h, w) at the Gaussian grid -> name -> (N, ch, h, w),
        and the refined features (N, HIDDEN, h, w) the outputs are read from."""
        n = tokens.shape[0]
        gh, gw = self.cfg.patch_grid
        s = self.cells
        x = self.unfold(self.norm(tokens))  # (N, P, s*s*HIDDEN)
        x = x.reshape(n, gh, gw, s, s, HIDDEN).permute(0, 5, 1, 3, 2, 4).reshape(n, HIDDEN, gh * s, gw * s)
        x = self.refine(torch.cat([x, images_small * 2 - 1], dim=1))
        return dict(zip(self.channels, self.out(x).split(list(self.channels.values()), dim=1))), x


def decode_gaussians(raw: dict[str, Tensor], images_small: Tensor, K: Tensor, cam_to_anchor: Tensor,
                     times: Tensor, cfg: SlarmConfig) -> tuple[list[Gaussians4D], Tensor]:
    """Raw head outputs of T x C images -> one Gaussians4D per timestep, in the anchor frame.

    raw: name -> (T*C, ch, h, w); images_small (T*C, 3, h, w); K (T, C, 3, 3); cam_to_anchor
    (T, C, 4, 4); times (T,) seconds since the anchor. Geometry is predicted in each camera's
    frame (depth along its rays, rotations, motion) and rotated into the anchor frame with the
    known pose, so the network never has to learn where a camera is pointing to place a point.
    Returns the Gaussians and the depth along each ray (T, C, h, w), metres.
    """
    t, c = K.shape[:2]
    n = t * c
    h, w = cfg.gaussian_grid
    to_last = lambda x: x.permute(0, 2, 3, 1)  # (N, ch, h, w) -> (N, h, w, ch)

    pixels = grid_pixels(cfg.image_height, cfg.image_width, cfg.gaussian_stride, device=K.device, dtype=K.dtype)
    origins, dirs = pixel_rays(K.flatten(0, 1), cam_to_anchor.flatten(0, 1), pixels)  # (N, h, w, 3)

    log_near, log_far = math.log(cfg.near), math.log(cfg.far)
    depth = torch.exp(log_near + torch.sigmoid(raw["depth"][:, 0]) * (log_far - log_near))  # (N, h, w)
    means = origins + dirs * depth[..., None]

    fx = K.flatten(0, 1)[:, 0, 0]
    footprint = depth * (cfg.gaussian_stride / fx)[:, None, None]  # metres covered by one cell
    scales = (to_last(raw["scale"]).clamp(-6, 4).exp() * 0.5 * footprint[..., None]).clamp(1e-4, cfg.max_scale)

    rot = cam_to_anchor.flatten(0, 1)[:, :3, :3]  # (N, 3, 3) camera -> anchor
    q_rot = rotmat_to_quat(rot)[:, None, None, :]
    quats = to_last(raw["quat"])
    quats = quat_multiply(q_rot.expand_as(quats), quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    opacities = torch.sigmoid(raw["opacity"][:, 0])
    base = torch.logit(images_small.clamp(0.01, 0.99))
    colors = torch.sigmoid(to_last(raw["rgb"] + base))

    motion = to_last(raw["motion"]).reshape(n, h, w, cfg.motion_degree, motion_channels_per_order(cfg))
    motion = speed_direction_motion(motion) if cfg.motion_form == "speed" else motion * cfg.motion_scale
    if cfg.head_velocity_scale != 1.0:  # velocity is the first order
        motion = torch.cat([motion[..., :1, :] * cfg.head_velocity_scale, motion[..., 1:, :]], dim=3)
    motion = torch.einsum("nij,nhwdj->nhwdi", rot, motion)
    features = to_last(raw["feature"])

    gaussians = []
    per_step = lambda x: x.reshape(t, c * h * w, *x.shape[3:])
    fields = [per_step(x) for x in (means, quats, scales, opacities, colors, motion, features)]
    for i in range(t):
        m, q, s, o, col, mo, f = (x[i] for x in fields)
        gaussians.append(Gaussians4D(means=m, quats=q, scales=s, opacities=o, colors=col, motion=mo, features=f,
                                     t0=times[i].expand(m.shape[0]).clone(), time_origin=0.0))
    return gaussians, depth.reshape(t, c, h, w)


def speed_direction_motion(raw: Tensor) -> Tensor:
    """Head outputs (..., D, 4) per order, direction xyz and speed logit -> coefficients (..., D, 3), m/s^k.

    The speed is SPEED_MAX * sigmoid(logit + SPEED_START_LOGIT), less a dead zone: on the sigmoid's
    low tail it is exponential in the logit, so 1 mm/s and 8 m/s both lie about 4.5 units from the
    start, and a static Gaussian reaches exactly zero (below -6.9).
    """
    speed = (torch.sigmoid(raw[..., 3:] + SPEED_START_LOGIT) * SPEED_MAX - SPEED_DEAD_ZONE).clamp_min(0)
    return speed * F.normalize(raw[..., :3], dim=-1)


class SkyHead(nn.Module):
    """Sky colour from a ray direction, conditioned on the timestep's Sky token."""

    FREQUENCIES = 4

    def __init__(self, cfg: SlarmConfig):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(3 + 6 * self.FREQUENCIES + cfg.dim, 64), nn.GELU(),
            nn.Linear(64, 64), nn.GELU(),
            nn.Linear(64, 3),
        )

    def forward(self, directions: Tensor, sky_token: Tensor) -> Tensor:
        """directions (..., 3) unit, world frame; sky_token (D,) -> RGB (..., 3) in [0, 1]."""
        x = torch.cat([directions, fourier_features(directions, self.FREQUENCIES)], dim=-1)
        token = sky_token.expand(*x.shape[:-1], sky_token.shape[-1])
        return torch.sigmoid(self.mlp(torch.cat([x, token], dim=-1)))


class AffineHead(nn.Module):
    """Per-camera 3x4 colour transform (exposure, white balance) from its Affine token; identity at start."""

    def __init__(self, cfg: SlarmConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.dim, 12)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.register_buffer("identity", torch.eye(3, 4), persistent=False)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (..., D) -> (..., 3, 4): rgb' = A[:, :3] @ rgb + A[:, 3]."""
        return self.identity + self.proj(tokens).reshape(*tokens.shape[:-1], 3, 4)


def apply_affine(rgb: Tensor, affine: Tensor) -> Tensor:
    """rgb (..., H, W, 3), affine (..., 3, 4) -> transformed rgb (..., H, W, 3)."""
    return torch.einsum("...ij,...hwj->...hwi", affine[..., :3], rgb) + affine[..., None, None, :, 3]


def downsample_images(images: Tensor, stride: int) -> Tensor:
    """(N, 3, H, W) -> (N, 3, H/stride, W/stride) by area averaging (each Gaussian's pixels)."""
    return images if stride == 1 else F.avg_pool2d(images, stride)
