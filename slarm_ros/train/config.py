"""The training configuration: one dataclass, loadable from YAML, stored with every training run."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..model import SlarmConfig
from ..model.config import CONFIG_DIR, from_known_keys
from ..world.config import WorldConfig
from .data import OTHER_TARGETS
from .losses import LossWeights


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, for how long.

    Times in seconds unless named otherwise; learning rates per optimiser step.
    """

    model: str = "slarm-tiny"  # a shipped network configuration, or a path to one (YAML)
    model_overrides: dict = field(default_factory=dict)  # e.g. {motion_degree: 1}
    # fine-tuning: start from this checkpoint's weights ("shipped": the package's default model);
    # tensors the network shares with it by name are copied, new ones start fresh
    init_from: str = ""
    # parts of the network to train (SlarmNet.parameter_groups names, e.g. [matcher]); empty: all.
    # The others keep their weights: fine-tuning one part leaves what the rest learned intact.
    train_parts: list = field(default_factory=list)
    # data: drives of the synthetic world, seeds [first_seed, first_seed + num_drives)
    first_seed: int = 1000
    num_drives: int = 12
    drive_seconds: float = 10.0
    world: dict = field(default_factory=dict)  # WorldConfig overrides (hz, cameras, ...)
    supersample: int = 2  # drives are rendered at this factor x the network's resolution, then reduced
    cache_dir: str = "out/train_cache"
    context: int = 4  # timesteps the network sees per window
    # a share of windows longer than ``context``: a pass over a whole drive attends to more timesteps
    # than the streaming window, and the network does best with what training showed it
    # (docs/training.md, "Streaming against offline: not noise, not depth")
    long_context: int = 0  # timesteps; 0: every window holds ``context``
    long_share: float = 0.0  # share of windows that hold ``long_context``
    future: int = 2  # following timesteps that may be targets
    other_scale: int = 2  # reduction of the whole-window render target
    anchor_lag_s: float = 7.0  # windows are anchored up to this far before their start (the network's anchor ages)
    own_last_share: float = 1.0  # share of windows whose own-Gaussian target is the last timestep
    other_target: str = "any"  # "any": one other timestep; "both": an earlier context one and a following one
    max_semantic_pixels: int = 8192
    # optimisation
    steps: int = 4000
    minutes: float = 0.0  # > 0: also stop when this much training time has passed
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    losses: LossWeights = field(default_factory=LossWeights)
    # bookkeeping
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    device: str = "auto"

    def __post_init__(self):
        if isinstance(self.losses, dict):
            object.__setattr__(self, "losses", from_known_keys(LossWeights, self.losses, "loss weight"))
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.context < 1 or self.future < 0:
            raise ValueError("context must be >= 1 and future >= 0")
        if self.long_context and self.long_context <= self.context:
            raise ValueError(f"long_context ({self.long_context}) must exceed context ({self.context}), or be 0")
        if not 0.0 <= self.long_share <= 1.0 or (self.long_share > 0 and not self.long_context):
            raise ValueError(f"long_share must be in [0, 1] and needs a long_context; got {self.long_share} "
                             f"with long_context {self.long_context}")
        if self.other_target not in OTHER_TARGETS:
            raise ValueError(f"other_target must be one of {OTHER_TARGETS}, not {self.other_target!r}")
        if self.num_drives < 1 or self.steps < 1:
            raise ValueError("num_drives and steps must be >= 1")
        for name in ("anchor_min_age", "anchor_max_age"):
            if name in self.model_overrides:
                raise ValueError(f"set anchor_lag_s, not model_overrides.{name}: the network's anchor ages are "
                                 "training's, from its windows and lag")

    def network(self) -> SlarmConfig:
        path = Path(self.model)
        base = SlarmConfig.from_yaml(path) if path.suffix in (".yaml", ".yml") else SlarmConfig.named(self.model)
        # the streaming engine anchors as training did: a window's last frame lies (context - 1)
        # timesteps after its start, which lies 0..anchor_lag_s after the anchor
        span = (self.context - 1) / self.world.get("hz", WorldConfig.hz)
        return base.replace(**self.model_overrides).replace(anchor_min_age=span, anchor_max_age=span + self.anchor_lag_s)

    def window_length(self, rng: np.random.Generator) -> int:
        """Timesteps of the next training window: ``long_context`` for a ``long_share`` of them."""
        if not self.long_context:
            return self.context  # draws nothing: a run without long windows keeps its random stream
        return self.long_context if rng.uniform() < self.long_share else self.context

    def drive(self, index: int) -> WorldConfig:
        return WorldConfig(**{"seed": self.first_seed + index, "seconds": self.drive_seconds, **self.world})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        return from_known_keys(cls, values, "training config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.exists():
            shipped = CONFIG_DIR / f"{path.name}"
            if not shipped.exists():
                raise FileNotFoundError(f"no training config {path}; shipped ones: "
                                        f"{sorted(p.name for p in CONFIG_DIR.glob('train-*.yaml'))}")
            path = shipped
        with open(path) as f:
            return cls.from_dict(yaml.safe_load(f) or {})
