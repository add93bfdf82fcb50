"""The streaming engine: one FrameSet in, that timestep's 4D Gaussians in the world frame out.

Each global attention layer keeps the keys and values of the last W - 1 timesteps, so time and
memory per step do not grow with the sequence. Geometry enters the network relative to an
anchor (a camera pose and time of the current sequence) so that Plücker moments and timestamps
stay in the range the network was trained on; when the car has driven ``anchor_max_distance``
or the anchor is older than ``anchor_max_age`` (at most the network's, the oldest anchor training
showed), the anchor moves to the frame the network's ``anchor_min_age`` back (no later than the
window's oldest timestep) and the window is re-encoded (a step that costs W steps; for a network
trained without anchor lag, every step). With the config's ``object_motion``, the movable objects'
motion is then measured by tracking them from the timestep before (object_motion.py).
"""
from __future__ import annotations

import copy
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..frames import FrameError, FrameSet
from ..gaussians import Gaussians4D
from ..geometry import quat_multiply, rotmat_to_quat, scale_intrinsics
from ..model import SlarmConfig, SlarmNet, ViewBatch
from ..model.checkpoint import load_checkpoint
from ..model.network import Prediction
from ..ply import write_ply
from ..resample import area_resize
from ..semantics.scores import QueryScorer
from .object_motion import ObjectTracker, Views

log = logging.getLogger(__name__)

# The anchor moves on after this distance, or once older than the network's ``anchor_max_age``:
# training shows the network windows whose anchor lies up to that far back, so inference must not
# go further.
ANCHOR_MAX_DISTANCE_M = 70.0
# Stamps are float seconds since the epoch; ages within this are equal.
STAMP_EPS_S = 1e-4

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "slarm-tiny.safetensors"


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA where present, else CPU; 'cuda' without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return torch.device(device)


@dataclass(frozen=True)
class PreparedFrames:
    """A FrameSet converted for the network: resized images and world poses."""

    stamp: float  # absolute seconds
    images: Tensor  # (C, 3, H, W) in [0, 1], network resolution, on the engine's device
    K: Tensor  # (C, 3, 3) at network resolution
    cam_to_world: np.ndarray  # (C, 4, 4) float64


@dataclass(frozen=True)
class StepResult:
    """One reconstructed timestep."""

    stamp: float  # absolute seconds
    gaussians: Gaussians4D  # world frame; C*h*w Gaussians, t0 = stamp
    depth: Tensor  # (C, h, w) distance along each Gaussian's ray, metres
    sky_token: Tensor  # (D,) describes the sky over directions in the frame of sky_rotation (see sky_colors)
    sky_rotation: np.ndarray  # (3, 3) the frame the sky token describes -> world frame
    affine: Tensor  # (C, 3, 4) per-camera colour transform
    latency_s: float  # wall time of the step, preprocessing included
    window_fill: int  # timesteps the step attended to (itself included)


def sky_colors(model: SlarmNet, result: StepResult) -> Callable[[Tensor], Tensor]:
    """World-frame unit ray directions (..., 3) -> the sky's RGB (..., 3) of ``result``.

    The network learns the sky in its anchor frame, or with relative pose encoding in the
    timestep's rig frame (both a level camera's frame: 'up' is the same for every sequence, unlike
    a map frame's arbitrary yaw), so directions are rotated there.
    """
    R = torch.as_tensor(result.sky_rotation, dtype=result.sky_token.dtype, device=result.sky_token.device)
    return lambda d: model.sky_colour(d, result.sky_token, R)


class Reconstructor:
    """Streaming SLARM reconstruction over a sliding window of timesteps."""

    def __init__(self, model: SlarmNet, device: str = "auto", window: int | None = None,
                 anchor_max_distance: float = ANCHOR_MAX_DISTANCE_M, anchor_max_age: float | None = None):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.cfg: SlarmConfig = model.cfg
        self.window = window if window is not None else self.cfg.window
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 timesteps, got {self.window}")
        self.anchor_max_distance = anchor_max_distance
        # None: the age the network was trained for; a larger one is cut to it
        trained = self.cfg.anchor_max_age
        self.anchor_max_age = trained if anchor_max_age is None else min(anchor_max_age, trained)
        self.anchor_min_age = self.cfg.anchor_min_age
        self.object_tracker = self._build_object_tracker() if self.cfg.object_motion else None
        self.reset()

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, **kwargs) -> "Reconstructor":
        """Load ``path``; with None, the shipped default model, or a random network if none is shipped."""
        if path is None or str(path) == "":
            if DEFAULT_CHECKPOINT.exists():
                path = DEFAULT_CHECKPOINT
            else:
                log.warning("NO TRAINED WEIGHTS: %s is missing; the network is randomly initialised and its "
                            "output is noise. Train one with `slarm train` or pass a checkpoint.", DEFAULT_CHECKPOINT)
                torch.manual_seed(0)
                return cls(SlarmNet(SlarmConfig.named("slarm-tiny")), **kwargs)
        return cls(load_checkpoint(path), **kwargs)

    # --- sequence state ----------------------------------------------------------------
    def reset(self) -> None:
        """Start a new sequence: empty window, no anchor."""
        self.cache = self.model.new_cache(self.window)
        self.recent: deque[PreparedFrames] = deque(maxlen=max(0, (self.window or 1) - 1))
        self.anchor_pose: np.ndarray | None = None  # (4, 4) world pose of camera 0 at the anchor
        self.anchor_time: float | None = None
        # (stamp, camera-0 world pose) of past timesteps back to anchor_min_age: where a rebase may anchor
        self.past_poses: deque[tuple[float, np.ndarray]] = deque()
        self.last_stamp: float | None = None
        self.camera_names: tuple[str, ...] | None = None
        self.window_results: deque[StepResult] = deque(maxlen=self.window)
        self.steps = 0
        self.rebases = 0
        if self.object_tracker is not None:
            self.object_tracker.reset()

    def _build_object_tracker(self) -> ObjectTracker:
        from ..semantics.text_encoder import default_text_encoder

        cfg = self.cfg
        text = default_text_encoder().encode(list(cfg.object_vocabulary)).to(self.device)
        scorer = QueryScorer.build(self.model.semantic_projection, text)
        return ObjectTracker(scorer, [cfg.object_vocabulary.index(c) for c in cfg.object_movable], cfg.object_link_m,
                             cfg.object_min_points, cfg.object_filter_weight, cfg.object_gate_speed,
                             cfg.object_gate_cosine, cfg.object_point_gate, cfg.object_attach_m,
                             cfg.object_filter_order, cfg.object_max_aligned)

    def _with_object_motion(self, result: StepResult, frames: PreparedFrames, tracker: ObjectTracker) -> StepResult:
        views = Views.of(frames.K.double().cpu().numpy(), frames.cam_to_world, self.cfg.image_height,
                         self.cfg.image_width)
        return replace(result, gaussians=tracker.update(result.gaussians, frames.stamp, views))

    @property
    def window_fill(self) -> int:
        return self.cache.timesteps

    def cache_bytes(self) -> int:
        return self.cache.nbytes()

    # --- preparation ------------------------------------------------------------------
    def prepare(self, frame_set: FrameSet) -> PreparedFrames:
        """Validate a FrameSet and convert it for the network (resize, scale K)."""
        frame_set.validate(self.camera_names)
        if len(frame_set.cameras) != self.cfg.num_cameras:
            raise FrameError(f"frame set has {len(frame_set.cameras)} cameras, the model was built for "
                             f"{self.cfg.num_cameras}")
        h, w = self.cfg.image_height, self.cfg.image_width
        images, Ks = [], []
        for cam in frame_set.cameras:
            images.append(area_resize(cam.image, h, w))
            K = torch.tensor(np.asarray(cam.K), dtype=torch.float32)
            Ks.append(scale_intrinsics(K, w / cam.image.shape[1], h / cam.image.shape[0]))
        batch = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        poses = np.stack([np.asarray(c.cam_to_world, dtype=np.float64) for c in frame_set.cameras])
        return PreparedFrames(stamp=float(frame_set.stamp), images=batch, K=torch.stack(Ks).to(self.device),
                              cam_to_world=poses)

    def _batch(self, frames: list[PreparedFrames]) -> ViewBatch:
        inv_anchor = np.linalg.inv(self.anchor_pose)
        cam_to_anchor = np.stack([inv_anchor @ f.cam_to_world for f in frames])
        return ViewBatch(
            images=torch.stack([f.images for f in frames]),
            K=torch.stack([f.K for f in frames]),
            cam_to_anchor=torch.as_tensor(cam_to_anchor, dtype=torch.float32, device=self.device),
            times=torch.tensor([f.stamp - self.anchor_time for f in frames], dtype=torch.float32, device=self.device),
        )

    def _set_anchor(self, stamp: float, pose: np.ndarray) -> None:
        self.anchor_pose = pose.copy()
        self.anchor_time = stamp

    def _remember_pose(self, frames: PreparedFrames) -> None:
        """Keep the poses back to anchor_min_age before this timestep, and one older."""
        self.past_poses.append((frames.stamp, frames.cam_to_world[0].copy()))
        oldest_needed = frames.stamp - self.anchor_min_age - STAMP_EPS_S
        while len(self.past_poses) > 1 and self.past_poses[1][0] <= oldest_needed:
            self.past_poses.popleft()

    def _needs_rebase(self, frames: PreparedFrames) -> bool:
        if self.window is None:
            return False  # an unbounded window cannot be re-encoded; causal mode is for comparison
        moved = np.linalg.norm(frames.cam_to_world[0, :3, 3] - self.anchor_pose[:3, 3])
        elapsed = frames.stamp - self.anchor_time
        return moved > self.anchor_max_distance or elapsed > self.anchor_max_age + STAMP_EPS_S

    def _rebase(self, now: float) -> None:
        """Move the anchor to the past timestep anchor_min_age before ``now`` (the oldest one kept in a
        younger stream; never after the window's oldest frame) and re-encode the window, or, for a
        network that sees only relative poses, move its cache to the new anchor."""
        latest = now - self.anchor_min_age
        if self.recent:
            latest = min(latest, self.recent[0].stamp)
        older = [(stamp, pose) for stamp, pose in self.past_poses if stamp <= latest + STAMP_EPS_S]
        old_pose, old_time = self.anchor_pose, self.anchor_time
        self._set_anchor(*(older[-1] if older else self.past_poses[0]))  # a rebase follows a first step
        if self.cfg.pose_encoding == "relative":
            old_to_new = torch.as_tensor(np.linalg.inv(self.anchor_pose) @ old_pose, dtype=torch.float32,
                                         device=self.device)
            self.cache.reanchor(old_to_new, self.anchor_time - old_time)
        else:
            self.cache = self.model.new_cache(self.window)
            for frames in self.recent:
                self.model.step(self._batch([frames]), self.cache)
        self.rebases += 1

    # --- the doors --------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, frame_set: FrameSet) -> StepResult:
        """Reconstruct one timestep from all cameras; raises FrameError on bad input."""
        started = time.perf_counter()
        if self.last_stamp is not None and not frame_set.stamp > self.last_stamp:
            raise FrameError(f"timestamps must increase: {frame_set.stamp:.6f} s came after {self.last_stamp:.6f} s; "
                             "reset() starts a new sequence")
        frames = self.prepare(frame_set)
        if self.anchor_pose is None:
            self._set_anchor(frames.stamp, frames.cam_to_world[0])
            self.camera_names = frame_set.names
        elif self._needs_rebase(frames):
            self._rebase(frames.stamp)
        fill = self.cache.timesteps + 1  # the cached past and this timestep
        pred = self.model.step(self._batch([frames]), self.cache)
        self.recent.append(frames)
        self._remember_pose(frames)
        self.last_stamp = frames.stamp
        self.steps += 1
        result = self._result(pred, 0, frames.stamp, 0.0, fill)
        if self.object_tracker is not None:
            result = self._with_object_motion(result, frames, self.object_tracker)
        result = replace(result, latency_s=time.perf_counter() - started)  # the move to the world frame included
        self.window_results.append(result)
        return result

    def window_gaussians(self) -> Gaussians4D:
        """The Gaussians of every timestep in the current window, world frame."""
        if not self.window_results:
            raise RuntimeError("nothing reconstructed yet: step() some frame sets first")
        return Gaussians4D.cat([r.gaussians for r in self.window_results])

    def export_ply(self, path: str | Path) -> Path:
        """Write the window's Gaussians as a 3DGS-style PLY with motion, time and features."""
        return write_ply(path, self.window_gaussians())

    @torch.inference_mode()
    def run_offline(self, frame_sets: list[FrameSet], attention: str = "full") -> list[StepResult]:
        """All timesteps in one pass with ``attention`` ('full' is SLARM's offline mode).

        Independent of the streaming state; the anchor is the first frame set.
        """
        started = time.perf_counter()
        saved = (self.anchor_pose, self.anchor_time, self.camera_names)
        self.camera_names = None
        try:
            prepared = []
            for i, fs in enumerate(frame_sets):
                if prepared and not fs.stamp > prepared[-1].stamp:
                    raise FrameError(f"timestamps must increase: frame set {i} at {fs.stamp:.6f} s came after "
                                     f"{prepared[-1].stamp:.6f} s")
                prepared.append(self.prepare(fs))
                self.camera_names = fs.names
            self._set_anchor(prepared[0].stamp, prepared[0].cam_to_world[0])
            pred = self.model(self._batch(prepared), attention)
            results = [self._result(pred, i, f.stamp, 0.0, len(prepared)) for i, f in enumerate(prepared)]
            if self.object_tracker is not None:  # causal, as in streaming, with a tracker of its own
                tracker = copy.copy(self.object_tracker)  # the same scorer, not the stream's tracks
                tracker.reset()
                results = [self._with_object_motion(r, f, tracker) for r, f in zip(results, prepared)]
            elapsed = (time.perf_counter() - started) / len(prepared)
            return [replace(r, latency_s=elapsed) for r in results]
        finally:
            self.anchor_pose, self.anchor_time, self.camera_names = saved

    def _result(self, pred: Prediction, i: int, stamp: float, latency: float, fill: int) -> StepResult:
        return StepResult(stamp=stamp, gaussians=self._to_world(pred.gaussians[i]), depth=pred.depth[i],
                          sky_token=pred.sky_tokens[i],
                          sky_rotation=self.anchor_pose[:3, :3] @ pred.sky_frames[i].double().cpu().numpy(),
                          affine=pred.affine[i], latency_s=latency, window_fill=fill)

    def _to_world(self, g: Gaussians4D) -> Gaussians4D:
        """Anchor-frame Gaussians -> world frame, times relative to the anchor -> absolute."""
        R = torch.as_tensor(self.anchor_pose[:3, :3], dtype=g.means.dtype, device=g.means.device)
        t = torch.as_tensor(self.anchor_pose[:3, 3], dtype=g.means.dtype, device=g.means.device)
        q = rotmat_to_quat(R)
        return replace(g, means=g.means @ R.T + t, quats=quat_multiply(q.expand_as(g.quats), g.quats),
                       motion=g.motion @ R.T, time_origin=self.anchor_time)
