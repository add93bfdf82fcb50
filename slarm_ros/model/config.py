"""The network's configuration: one dataclass, loadable from YAML, stored in every checkpoint."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
MOTION_FORMS = ("linear", "speed")
POSE_ENCODINGS = ("anchor", "relative")


@dataclass(frozen=True)
class SlarmConfig:
    """Architecture of the SLARM network.

    Sizes in pixels refer to the network's input resolution; camera images of any size are
    resized to it (intrinsics scaled to match) before they enter the network.
    """

    name: str = "slarm-tiny"
    num_cameras: int = 3
    image_height: int = 80
    image_width: int = 128
    patch_size: int = 8
    dim: int = 128
    depth: int = 4  # attention blocks, alternating frame-wise and global (frame first)
    num_heads: int = 4
    mlp_ratio: float = 4.0
    # Gaussians: one per gaussian_stride x gaussian_stride pixels (1 = per pixel).
    gaussian_stride: int = 2
    near: float = 0.5  # metres, closest depth a Gaussian may have
    far: float = 150.0  # metres, farthest depth
    max_scale: float = 2.0  # metres, largest Gaussian standard deviation
    motion_degree: int = 3  # 0 static, 1 velocity (STORM), 2 + acceleration, 3 + jerk (SLARM)
    # How the head's motion channels become coefficients. "linear": 3 per order, times motion_scale.
    # "speed": SLARM's form, 4 per order: a direction and a speed logit that starts far down a
    # sigmoid, so Gaussians start nearly still, and both exact stillness and tens of m/s are a few
    # units of logit away (heads.speed_direction_motion).
    motion_form: str = "linear"
    motion_scale: float = 5.0  # m/s (m/s^2, m/s^3) per unit of the linear head's output
    motion_matching: bool = False  # velocity evidence from matching an earlier timestep (model/matching.py)
    # multiplies the head's own velocity; 0: velocity is the matched one alone, the head predicting
    # only acceleration and jerk (its velocity guess does not carry over to unseen drives; docs/motion-study.md)
    head_velocity_scale: float = 1.0
    match_steps_back: int = 1  # match against the timestep this many steps back (fewer where the stream is younger)
    # matching cells are match_pool x match_pool Gaussians; the search covers (2 match_radius + 1)^2 cells
    # around a Gaussian's projection, so its reach is match_radius * match_pool * gaussian_stride pixels
    match_pool: int = 2
    match_radius: int = 2
    # hidden channels of the matcher's gate; 0: one linear layer, which cannot weigh a velocity by its size
    match_gate_hidden: int = 0
    # starting weight of the matcher's range agreement: each candidate's logit loses this times the squared
    # log ratio of its range and the Gaussian's, both from the earlier camera (learnt from there on).
    # A surface does not jump in range between the two timesteps; without it a Gaussian at a moving
    # actor's edge matches the background the actor uncovered. 0: no such term (the shipped form;
    # trained with it, the motion proxy did worse: docs/motion-study.md).
    match_range_weight: float = 0.0
    motion_gate: bool = False  # a per-Gaussian gate in (0, 1) on all its motion; the `dynamic` loss pushes it to 0
    # m/s; Gaussians whose velocity at their own time is below this stand still (every order of motion
    # zeroed), as scene-flow benchmarks count slower points as static. Inference only: a network in
    # training mode ignores it. 0: none.
    static_speed: float = 0.0
    # multiplies every order of motion of the Gaussians left moving (after static_speed). Rendering
    # other timestamps teaches motion that points the right way but falls short of its length, since a
    # wrong motion costs more photometric error than a short one. Inference only, like static_speed;
    # chosen on training drives (docs/motion-study.md). 1: none.
    motion_gain: float = 1.0
    # Gaussian-grid cells; before the hold, each Gaussian's motion becomes the mean over the
    # (2 r + 1)^2 Gaussians around it in its image, weighted by likeness in range and colour and by
    # their own speed (model/smoothing.py): a moving actor's plain parts take the motion its clear
    # parts found. Inference only, like static_speed. 0: none.
    motion_smoothing_radius: int = 0
    # Gaussian-grid cells between the neighbours the smoothing takes: the same reach at 1 / step^2
    # of the cost (radius 12 over slarm-tiny's 3 x 40 x 64 Gaussians at step 1 makes a streaming step
    # about 5 times as long; at step 4, 1.14-1.24 times, with the static_speed hold sparing the Gaussians
    # it stops anyway). The radius must be a multiple of it.
    motion_smoothing_step: int = 1
    # Inference only, in the streaming engine (stream/object_motion.py): the Gaussians whose language
    # features name a movable class are grouped into objects, each object is tracked to the timestep
    # before by aligning its points, and the measured velocity, filtered along the track, replaces the
    # network's motion on the object's Gaussians (with object_point_gate, only those the network
    # moves); every other Gaussian stands still. The network still decides what moves: an object moves only where the mean of its
    # Gaussians' own motion reaches object_gate_speed (m/s) and lies within acos(object_gate_cosine)
    # of the measured one. False: the network's motion as it is.
    object_motion: bool = False
    object_link_m: float = 1.0  # m; Gaussians closer than this belong to one object
    object_min_points: int = 5  # Gaussians; smaller groups are no object
    object_filter_weight: float = 0.3  # weight of each new measurement in an object's velocity (1: no filter)
    # what each track estimates (stream/object_motion.py, TrackFilter): 1 velocity, 2 and acceleration,
    # 3 and jerk; the Gaussians of a moving object take as many orders as the network's motion has
    object_filter_order: int = 1
    object_gate_speed: float = 0.5  # m/s
    # at most this many objects are aligned per timestep, the nearest to the cameras first; farther
    # ones stand still for that timestep: the tracker's time stays bounded in dense traffic
    object_max_aligned: int = 16
    object_gate_cosine: float = 0.0
    # True: only the object's Gaussians that the network moves take its motion (an object's edge often
    # belongs to what stands behind it); False: all of them
    object_point_gate: bool = False
    # m: every other Gaussian (fainter, or named another class) closer than this to a moving object's
    # Gaussians takes its motion too: the parts of a car the network calls road or building, or shows
    # only faintly, move with it. 0: none
    object_attach_m: float = 0.0
    # the names the network's language features were distilled from, and which of them can move
    object_vocabulary: tuple[str, ...] = ("sky", "road", "sidewalk", "building", "vegetation", "pole", "car",
                                          "pedestrian")
    object_movable: tuple[str, ...] = ("car", "pedestrian")
    semantic_dim: int = 32  # per-Gaussian language feature (SLARM: 64)
    text_dim: int = 384  # the text encoder's embedding size (all-MiniLM-L6-v2)
    time_frequencies: int = 8  # Fourier frequencies of the timestamp embedding
    time_horizon: float = 20.0  # seconds; timestamps are embedded relative to a sequence anchor in [0, horizon)
    attention: str = "window:4"  # full | causal | window:W
    # How poses and times reach the network. "anchor": each token's rays and time relative to the
    # sequence anchor (the default; slarm-tiny's first training stages). "relative" (slarm-tiny's): rays
    # in their timestep's rig frame, and pose and time only as relative transforms inside global
    # attention (model/relative.py): the network's output does not depend on where the anchor is, so
    # windows need no anchor lag in training and a streaming engine moves its anchor without re-encoding.
    pose_encoding: str = "anchor"
    # s; with relative pose encoding, global attention falls off with the time between a query's
    # timestep and a key's as a Gaussian of this width (model/relative.py): training windows span a
    # fraction of a second, and an offline pass over a drive must not listen to timesteps seconds
    # away as no window taught it to. No parameters: a trained network takes it by reconfiguring.
    # 0: none.
    attention_reach_s: float = 0.0
    # With relative pose encoding, also turn the time channels of attention's values by their
    # timestep's time and the output back by the query's (model/relative.py), so that what a query
    # gathers from another timestep arrives turned by the time between them: values otherwise carry
    # no time, and a query cannot tell which earlier timestep said what. No parameters, but it
    # changes what a trained network computes: train with it.
    relative_value_time: bool = False
    # The ages (seconds before the current frame) of the anchors training showed a window's last
    # frame: (context - 1) / hz at the latest anchor, plus TrainConfig.anchor_lag_s at the oldest.
    # Streaming moves its anchor on once it is older than anchor_max_age, and puts the new one
    # anchor_min_age back (never after its window's oldest frame), so that times and poses stay as
    # trained. The defaults are the shipped recipe's: windows of 4 at 10 Hz, anchored up to 7 s back.
    anchor_max_age: float = 7.0
    anchor_min_age: float = 0.3

    def __post_init__(self):
        for name in ("object_vocabulary", "object_movable"):  # JSON and YAML give lists
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.image_height % self.patch_size or self.image_width % self.patch_size:
            raise ValueError(f"image size {self.image_height}x{self.image_width} is not a multiple of patch {self.patch_size}")
        if self.patch_size % self.gaussian_stride:
            raise ValueError(f"patch {self.patch_size} is not a multiple of gaussian_stride {self.gaussian_stride}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if not 0 <= self.motion_degree <= 3:
            raise ValueError(f"motion_degree must be 0..3, got {self.motion_degree}")
        if self.motion_form not in MOTION_FORMS:
            raise ValueError(f"motion_form must be one of {MOTION_FORMS}, got '{self.motion_form}'")
        if self.pose_encoding not in POSE_ENCODINGS:
            raise ValueError(f"pose_encoding must be one of {POSE_ENCODINGS}, got '{self.pose_encoding}'")
        if self.pose_encoding == "relative" and (self.dim // self.num_heads) < 8:
            raise ValueError(f"pose_encoding 'relative' needs at least 8 channels per head, got {self.dim // self.num_heads}")
        if self.attention_reach_s < 0:
            raise ValueError(f"attention_reach_s must not be negative, got {self.attention_reach_s}")
        if self.attention_reach_s > 0 and self.pose_encoding != "relative":
            raise ValueError("attention_reach_s needs pose_encoding 'relative' (an anchor-encoded network's "
                             "attention does not see times)")
        if self.relative_value_time and self.pose_encoding != "relative":
            raise ValueError("relative_value_time needs pose_encoding 'relative'")
        if not 0.0 <= self.head_velocity_scale <= 1.0:
            raise ValueError(f"head_velocity_scale must be in [0, 1], got {self.head_velocity_scale}")
        if self.match_steps_back < 1:
            raise ValueError(f"match_steps_back must be at least 1, got {self.match_steps_back}")
        if self.static_speed < 0:
            raise ValueError(f"static_speed must not be negative, got {self.static_speed}")
        if self.motion_smoothing_radius < 0:
            raise ValueError(f"motion_smoothing_radius must not be negative, got {self.motion_smoothing_radius}")
        if self.motion_smoothing_step < 1 or self.motion_smoothing_radius % self.motion_smoothing_step:
            raise ValueError(f"motion_smoothing_radius ({self.motion_smoothing_radius}) must be a multiple of "
                             f"motion_smoothing_step ({self.motion_smoothing_step}), which must be at least 1")
        if not 0.0 < self.motion_gain <= 10.0:
            raise ValueError(f"motion_gain must be in (0, 10], got {self.motion_gain}")
        if self.match_range_weight < 0:
            raise ValueError(f"match_range_weight must not be negative, got {self.match_range_weight}")
        if self.match_pool < 1 or self.match_radius < 0:
            raise ValueError(f"need match_pool >= 1 and match_radius >= 0, got {self.match_pool}, {self.match_radius}")
        if not 0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near {self.near}, far {self.far}")
        for name in ("anchor_min_age", "anchor_max_age"):
            if not 0.0 <= getattr(self, name) < self.time_horizon:
                raise ValueError(f"{name} must be in [0, time_horizon {self.time_horizon}) s, got {getattr(self, name)}")
        if self.object_link_m <= 0 or self.object_min_points < 1:
            raise ValueError(f"need object_link_m > 0 and object_min_points >= 1, got {self.object_link_m}, "
                             f"{self.object_min_points}")
        if not 0.0 < self.object_filter_weight <= 1.0:
            raise ValueError(f"object_filter_weight must be in (0, 1], got {self.object_filter_weight}")
        if self.object_filter_order not in (1, 2, 3):
            raise ValueError(f"object_filter_order must be 1, 2 or 3, got {self.object_filter_order}")
        if self.object_max_aligned < 1:
            raise ValueError(f"object_max_aligned must be at least 1, got {self.object_max_aligned}")
        if self.object_attach_m < 0:
            raise ValueError(f"object_attach_m must not be negative, got {self.object_attach_m}")
        if self.object_gate_speed < 0 or not -1.0 <= self.object_gate_cosine < 1.0:
            raise ValueError(f"need object_gate_speed >= 0 and object_gate_cosine in [-1, 1), got "
                             f"{self.object_gate_speed}, {self.object_gate_cosine}")
        unknown = sorted(set(self.object_movable) - set(self.object_vocabulary))
        if unknown or not self.object_movable:
            raise ValueError(f"object_movable must name some of object_vocabulary {list(self.object_vocabulary)}; "
                             f"got {list(self.object_movable)}")
        parse_attention(self.attention)

    @property
    def patch_grid(self) -> tuple[int, int]:
        return self.image_height // self.patch_size, self.image_width // self.patch_size

    @property
    def gaussian_grid(self) -> tuple[int, int]:
        return self.image_height // self.gaussian_stride, self.image_width // self.gaussian_stride

    @property
    def gaussians_per_camera(self) -> int:
        h, w = self.gaussian_grid
        return h * w

    @property
    def window(self) -> int | None:
        """Timesteps a frame attends to (itself included); None for unbounded."""
        return parse_attention(self.attention)[1]

    def replace(self, **changes) -> "SlarmConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "SlarmConfig":
        return from_known_keys(cls, values, "config")

    @classmethod
    def from_json(cls, text: str) -> "SlarmConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SlarmConfig":
        with open(path) as f:
            return cls.from_dict(yaml.safe_load(f) or {})

    @classmethod
    def named(cls, name: str) -> "SlarmConfig":
        """A shipped configuration: ``slarm-tiny`` (CPU) or ``slarm-base`` (STORM-sized, GPU)."""
        path = CONFIG_DIR / f"{name}.yaml"
        if not path.exists():
            available = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise ValueError(f"no configuration named '{name}'; available: {available}")
        return cls.from_yaml(path)


def from_known_keys(cls, values: dict, what: str):
    """cls(**values), refusing keys that are not fields of the dataclass cls (typos must not pass silently)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} keys: {unknown}")
    return cls(**values)


def parse_attention(mode: str) -> tuple[str, int | None]:
    """'full' -> ('full', None); 'causal' -> ('causal', None); 'window:W' -> ('window', W)."""
    if mode in ("full", "causal"):
        return mode, None
    match = re.fullmatch(r"window:(\d+)", mode)
    if match and int(match.group(1)) >= 1:
        return "window", int(match.group(1))
    raise ValueError(f"attention must be 'full', 'causal' or 'window:W' with W >= 1, got '{mode}'")
