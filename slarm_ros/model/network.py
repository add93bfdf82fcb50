"""The SLARM network: tokens -> alternating frame/global attention -> Gaussian, sky and affine heads."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ..gaussians import Gaussians4D
from .config import SlarmConfig, parse_attention
from .heads import HIDDEN, AffineHead, GaussianHead, SkyHead, decode_gaussians, downsample_images
from .layers import Block, GlobalBlock, KVCache
from .matching import MatchState, MotionMatcher
from .relative import RelativeFrames
from .smoothing import smooth_motion
from .tokens import TokenEmbedding


@dataclass(frozen=True)
class ViewBatch:
    """Network input: T timesteps of C cameras, geometry in the sequence's anchor frame."""

    images: Tensor  # (T, C, 3, H, W) RGB in [0, 1] at the network's resolution
    K: Tensor  # (T, C, 3, 3) intrinsics at the network's resolution, pixels
    cam_to_anchor: Tensor  # (T, C, 4, 4) optical frame -> anchor frame, metres
    times: Tensor  # (T,) seconds since the anchor time

    @property
    def num_steps(self) -> int:
        return self.images.shape[0]

    def step(self, i: int) -> "ViewBatch":
        return ViewBatch(self.images[i:i + 1], self.K[i:i + 1], self.cam_to_anchor[i:i + 1], self.times[i:i + 1])


@dataclass(frozen=True)
class Prediction:
    """Network output for T timesteps, in the anchor frame (times relative to the anchor)."""

    gaussians: list[Gaussians4D]  # T entries of C*h*w Gaussians each
    depth: Tensor  # (T, C, h, w) distance along each Gaussian's ray, metres
    sky_tokens: Tensor  # (T, D)
    # (T, 3, 3) rotation of the frame each timestep's sky token describes -> anchor frame: the anchor
    # frame itself, or with relative pose encoding the timestep's rig frame (see SlarmNet.sky_colour)
    sky_frames: Tensor
    affine: Tensor  # (T, C, 3, 4)
    dynamic: Tensor | None = None  # (T, C*h*w) motion gate in (0, 1), with cfg.motion_gate


class SlarmNet(nn.Module):
    def __init__(self, cfg: SlarmConfig):
        super().__init__()
        self.cfg = cfg
        self.tokens = TokenEmbedding(cfg)
        self.blocks = nn.ModuleList(
            [(Block if i % 2 == 0 else GlobalBlock)(cfg.dim, cfg.num_heads, cfg.mlp_ratio) for i in range(cfg.depth)]
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.gaussian_head = GaussianHead(cfg)
        self.sky_head = SkyHead(cfg)
        self.affine_head = AffineHead(cfg)
        self.matcher = MotionMatcher(cfg, HIDDEN) if cfg.motion_matching and cfg.motion_degree > 0 else None
        # The language space: per-Gaussian features -> the text encoder's embedding space.
        self.semantic_projection = nn.Linear(cfg.semantic_dim, cfg.text_dim)
        # The head reads one intermediate layer beside the last (as DPT heads read several).
        self.tap_layer = max(0, cfg.depth // 2 - 1)

    @property
    def num_global_layers(self) -> int:
        return sum(isinstance(b, GlobalBlock) for b in self.blocks)

    def new_cache(self, window: int | None) -> KVCache:
        return KVCache(window=window, layers=[None] * self.num_global_layers,
                       value_time=self.cfg.relative_value_time)

    def forward(self, batch: ViewBatch, attention: str | None = None) -> Prediction:
        """All timesteps in one pass with the temporal mask ``attention`` (default: the config's)."""
        mode, window = parse_attention(attention or self.cfg.attention)

        def global_block(block: GlobalBlock, x: Tensor, _layer: int, frames: RelativeFrames | None) -> Tensor:
            return block.forward_offline(x, mode, window, frames)

        return self._run(batch, global_block, [])[0]

    def step(self, batch: ViewBatch, cache: KVCache) -> Prediction:
        """One new timestep (batch.num_steps == 1), attending to the cached past."""
        if batch.num_steps != 1:
            raise ValueError(f"step takes one timestep, got {batch.num_steps}")

        def global_block(block: GlobalBlock, x: Tensor, layer: int, frames: RelativeFrames | None) -> Tensor:
            return block.forward_step(x, cache, layer, frames)

        prediction, cache.match = self._run(batch, global_block, cache.match)
        cache.keep_times(batch.times)
        return prediction

    def _run(self, batch: ViewBatch, global_block,
             match: list[MatchState]) -> tuple[Prediction, list[MatchState]]:
        cfg = self.cfg
        x = self.tokens(batch.images, batch.K, batch.cam_to_anchor, batch.times)  # (T, C, M, D)
        t, c, m, d = x.shape
        frames = (RelativeFrames(batch.cam_to_anchor[:, 0], batch.times, cfg.attention_reach_s,
                                 cfg.relative_value_time)
                  if cfg.pose_encoding == "relative" else None)
        tapped = None
        global_index = 0
        for i, block in enumerate(self.blocks):
            if isinstance(block, GlobalBlock):
                x = global_block(block, x.reshape(t, c * m, d), global_index, frames).reshape(t, c, m, d)
                global_index += 1
            else:
                x = block(x.reshape(t * c, m, d)).reshape(t, c, m, d)
            if i == self.tap_layer:
                tapped = x
        x = self.norm(x)
        special = TokenEmbedding.NUM_SPECIAL
        patch_tokens = torch.cat([tapped[:, :, special:], x[:, :, special:]], dim=-1).flatten(0, 1)
        images_small = downsample_images(batch.images.flatten(0, 1), cfg.gaussian_stride)
        raw, trunk = self.gaussian_head(patch_tokens, images_small)
        gaussians, depth = decode_gaussians(raw, images_small, batch.K, batch.cam_to_anchor, batch.times, cfg)
        if self.matcher is not None:
            h, w = cfg.gaussian_grid
            means = torch.stack([g.means for g in gaussians]).reshape(t, c, h, w, 3)
            velocity, match = self.matcher(trunk, images_small, means, batch.K, batch.cam_to_anchor, batch.times, match)
            velocity = velocity.reshape(t, c * h * w, 1, 3)
            gaussians = [replace(g, motion=torch.cat([g.motion[:, :1] + velocity[i], g.motion[:, 1:]], dim=1))
                         for i, g in enumerate(gaussians)]
        dynamic = None
        if "dynamic" in raw:  # the gate scales all motion, matched included: static Gaussians can stop exactly
            dynamic = torch.sigmoid(raw["dynamic"]).reshape(t, -1)
            gaussians = [replace(g, motion=g.motion * dynamic[i, :, None, None]) for i, g in enumerate(gaussians)]
        if cfg.motion_smoothing_radius and not self.training:
            gaussians = [replace(g, motion=smooth_motion(g.motion, depth[i], g.colors, cfg.motion_smoothing_radius,
                                                         cfg.motion_smoothing_step, hold_speed=cfg.static_speed))
                         for i, g in enumerate(gaussians)]
        if cfg.static_speed > 0 and not self.training:  # a hard threshold passes no gradient to what it stops
            gaussians = [replace(g, motion=g.motion * (g.motion[:, :1].norm(dim=-1, keepdim=True) >= cfg.static_speed))
                         for g in gaussians]
        if cfg.motion_gain != 1.0 and not self.training:
            gaussians = [replace(g, motion=g.motion * cfg.motion_gain) for g in gaussians]
        prediction = Prediction(
            gaussians=gaussians,
            depth=depth,
            sky_tokens=x[:, :, 0].mean(dim=1),
            sky_frames=(batch.cam_to_anchor[:, 0, :3, :3] if cfg.pose_encoding == "relative"
                        else torch.eye(3, device=x.device, dtype=x.dtype).expand(t, 3, 3)),
            affine=self.affine_head(x[:, :, 1]),
            dynamic=dynamic,
        )
        return prediction, match

    def sky_colour(self, directions: Tensor, sky_token: Tensor, sky_frame: Tensor) -> Tensor:
        """Unit ray directions (..., 3) -> RGB (..., 3) of the sky that ``sky_token`` (D,) describes in
        ``sky_frame`` (3, 3): that frame -> the directions' frame (the anchor frame with
        ``Prediction.sky_frames``; the world frame with ``StepResult.sky_rotation``)."""
        return self.sky_head(directions @ sky_frame, sky_token)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, for optimisers and for checking that gradients reach each part."""
        groups = {
            "tokens": list(self.tokens.parameters()),
            "aggregator": list(self.blocks.parameters()) + list(self.norm.parameters()),
            "gaussian_head": list(self.gaussian_head.parameters()),
            "sky_head": list(self.sky_head.parameters()),
            "affine_head": list(self.affine_head.parameters()),
            "semantic_projection": list(self.semantic_projection.parameters()),
        }
        if self.matcher is not None:
            groups["matcher"] = list(self.matcher.parameters())
        return groups
