"""Transformer blocks and the temporal attention masks (full, causal, window) with a K/V cache.

Frame-wise attention mixes tokens of one camera image; global attention mixes tokens of all
cameras across the timesteps that the temporal mask allows. Offline and streaming share one
code path (``temporal_attention``): a timestep's queries attend to the keys of the timesteps it
may see, which offline are slices of the whole sequence and online come from the cache.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .relative import RelativeFrames, decode_output, encode_keys, encode_queries, encode_values, reanchor, time_bias


class Attention(nn.Module):
    """Multi-head self-attention with QK-norm (as VGGT), split so keys can be cached."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim)
        self.k_norm = nn.LayerNorm(self.head_dim)
        self.proj = nn.Linear(dim, dim)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, N, D) -> q, k, v each (B, H, N, D/H)."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return self.q_norm(q), self.k_norm(k), v

    def merge(self, out: Tensor) -> Tensor:
        """(B, H, N, D/H) -> (B, N, D), projected."""
        b, h, n, d = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, h * d))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv_heads(x)
        return self.merge(F.scaled_dot_product_attention(q, k, v))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, ratio: float):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@dataclass
class KVCache:
    """Keys and values of past timesteps, one entry per global attention layer.

    Each entry holds (k, v) of shape (n, H, M, D/H): n past timesteps, M tokens per timestep.
    With a window of W timesteps only the last W - 1 are kept: all that the next step needs.
    A network with relative pose encoding caches its keys encoded in the anchor frame, and under
    ``relative_value_time`` its values turned by their times (model/relative.py).
    """

    window: int | None  # None: unbounded (causal)
    layers: list[tuple[Tensor, Tensor] | None] = field(default_factory=list)
    match: list = field(default_factory=list)  # the last timesteps' MatchStates, for networks that match motion
    times: Tensor | None = None  # (n,) the cached timesteps' times since the anchor, s
    value_time: bool = False  # the cached values are turned by their times (relative_value_time)

    def keep_times(self, new: Tensor) -> None:
        """After a step: append the new timestep's time (1,) and keep as many as the layers keep."""
        kept = self.timesteps
        both = new if self.times is None else torch.cat([self.times, new])
        self.times = both[both.shape[0] - kept:] if kept else None

    @property
    def timesteps(self) -> int:
        return 0 if not self.layers or self.layers[0] is None else self.layers[0][0].shape[0]

    def reanchor(self, old_to_new: Tensor, time_shift: float) -> None:
        """Move relative-encoded keys, and the matcher's states, to a new anchor: old_to_new (4, 4) maps
        old anchor coordinates to new ones, metres; time_shift is the new anchor's time minus the old one's, s."""
        self.layers = [None if entry is None else
                       (reanchor(entry[0], old_to_new, time_shift),
                        reanchor(entry[1], None, time_shift) if self.value_time else entry[1])
                       for entry in self.layers]
        self.match = [state.reanchored(old_to_new, time_shift) for state in self.match]
        self.times = None if self.times is None else self.times - time_shift

    def nbytes(self) -> int:
        tensors = [t for entry in self.layers if entry for t in entry]
        tensors += [t for state in self.match for t in vars(state).values() if isinstance(t, Tensor)]
        return sum(t.numel() * t.element_size() for t in tensors)


def temporal_attention(q: Tensor, k: Tensor, v: Tensor, q_times: range, mode: str,
                       window: int | None, k_offset: int = 0, bias: Tensor | None = None) -> Tensor:
    """Attention of each queried timestep to the keys it may see.

    q: (Tq, H, M, d) queries of timesteps ``q_times`` (absolute indices);
    k, v: (Tk, H, M, d) keys/values of timesteps k_offset .. k_offset + Tk - 1.
    mode 'full': every query sees every key; 'causal': keys up to its own timestep;
    'window': the last ``window`` timesteps up to its own.
    bias: (Tq, Tk) logits added between a query timestep and a key timestep, or None.
    Returns (Tq, H, M, d).
    """
    tq, h, m, d = q.shape
    if mode == "full" and bias is None:
        keys = k.permute(1, 0, 2, 3).reshape(1, h, -1, d)
        values = v.permute(1, 0, 2, 3).reshape(1, h, -1, d)
        out = F.scaled_dot_product_attention(q.permute(1, 0, 2, 3).reshape(1, h, tq * m, d), keys, values)
        return out.reshape(h, tq, m, d).permute(1, 0, 2, 3)
    outs = []
    for i, t in enumerate(q_times):
        hi = k.shape[0] if mode == "full" else t - k_offset + 1
        lo = 0 if mode in ("full", "causal") else max(0, hi - window)
        keys = k[lo:hi].permute(1, 0, 2, 3).reshape(1, h, -1, d)
        values = v[lo:hi].permute(1, 0, 2, 3).reshape(1, h, -1, d)
        # one bias per key timestep, repeated over its tokens and broadcast over heads and queries
        mask = None if bias is None else bias[i, lo:hi].repeat_interleave(k.shape[2]).to(q.dtype)[None, None, None]
        outs.append(F.scaled_dot_product_attention(q[i:i + 1].permute(1, 0, 2, 3).reshape(1, h, m, d), keys, values,
                                                   attn_mask=mask))
    return torch.cat(outs, dim=0)


class GlobalBlock(Block):
    """A block whose attention spans all cameras and the timesteps the temporal mask allows.

    ``frames`` (relative pose encoding): each timestep's rig pose and time, applied to queries and
    keys so that attention weighs timesteps by relative pose and time only (model/relative.py).
    """

    def _qkv(self, x: Tensor, frames: RelativeFrames | None) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.attn.qkv_heads(self.norm1(x))
        if frames is None:
            return q, k, v
        return encode_queries(q, frames), encode_keys(k, frames), encode_values(v, frames)

    def _out(self, x: Tensor, out: Tensor, frames: RelativeFrames | None) -> Tensor:
        if frames is not None:
            out = decode_output(out, frames)
        x = x + self.attn.merge(out)
        return x + self.mlp(self.norm2(x))

    def forward_offline(self, x: Tensor, mode: str, window: int | None, frames: RelativeFrames | None = None) -> Tensor:
        """x: (T, M, D), all timesteps of a sequence."""
        q, k, v = self._qkv(x, frames)
        bias = None if frames is None else time_bias(frames.times, frames.times, frames.reach_s)
        return self._out(x, temporal_attention(q, k, v, range(x.shape[0]), mode, window, bias=bias), frames)

    def forward_step(self, x: Tensor, cache: KVCache, layer: int, frames: RelativeFrames | None = None) -> Tensor:
        """x: (1, M, D), one new timestep; reads and updates ``cache.layers[layer]``."""
        q, k, v = self._qkv(x, frames)
        past = cache.layers[layer]
        if past is not None:
            k_all, v_all = torch.cat([past[0], k]), torch.cat([past[1], v])
        else:
            k_all, v_all = k, v
        mode = "causal" if cache.window is None else "window"
        bias = None
        if frames is not None:  # the cache keeps its timesteps' times (KVCache.keep_times)
            k_times = frames.times if past is None else torch.cat([cache.times, frames.times])
            bias = time_bias(frames.times, k_times, frames.reach_s)
        out = temporal_attention(q, k_all, v_all, range(k_all.shape[0] - 1, k_all.shape[0]), mode,
                                 cache.window, bias=bias)
        drop = 0 if cache.window is None else max(0, k_all.shape[0] - (cache.window - 1))
        cache.layers[layer] = (k_all[drop:], v_all[drop:]) if drop < k_all.shape[0] else None
        return self._out(x, out, frames)
