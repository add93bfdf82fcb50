"""Training data: drives of the synthetic world at the network's resolution, and windows sampled from them.

A drive is rendered once at ``supersample`` times the network's resolution and reduced the way
the engine reduces camera images (area averaging), so that training sees what inference sees.
Rendered drives are cached as .npz files named by a hash of everything that made them.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..geometry import scale_intrinsics
from ..model import ViewBatch
from ..resample import area_resize, pool_sparse, sample_nearest
from ..world.config import WorldConfig
from ..world.raycast import render_camera
from ..world.scene import build_scene

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bumped when the renderer draws the same world differently (2: cars marked along their length)


@dataclass(frozen=True)
class DriveClip:
    """A rendered drive, T timesteps x C cameras at H x W (the network's resolution).

    ``depth`` and ``flow`` are dense ground truth for measuring, never for training losses.
    """

    images: np.ndarray  # uint8 (T, C, H, W, 3)
    K: np.ndarray  # float32 (T, C, 3, 3) intrinsics at H x W, pixels
    cam_to_world: np.ndarray  # float64 (T, C, 4, 4) optical frame -> world
    times: np.ndarray  # float64 (T,) seconds since the drive started
    lidar: np.ndarray  # float32 (T, C, H, W) sparse camera z, metres; 0 = no sample
    semantic: np.ndarray  # uint8 (T, C, H, W) class ids of CLASSES
    depth: np.ndarray  # float32 (T, C, H, W) camera z, metres; 0 = sky
    flow: np.ndarray  # float32 (T, C, H, W, 3) velocity of the seen point, m/s, world frame
    dynamic: np.ndarray  # bool (T, C, H, W) a moving actor is seen

    @property
    def num_steps(self) -> int:
        return self.images.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def render_drive(world: WorldConfig, height: int, width: int, supersample: int = 2) -> DriveClip:
    """Render ``world`` at supersample x (height, width) and reduce it to height x width."""
    world = world.replace(image_height=height * supersample, image_width=width * supersample)
    scene = build_scene(world)
    fields: dict[str, list] = {f.name: [] for f in dataclasses.fields(DriveClip)}
    for k in range(world.num_steps):
        t = k / world.hz
        per_camera: dict[str, list] = {name: [] for name in fields if name != "times"}
        for cam in scene.cameras:
            img = render_camera(scene, cam, t)
            K = scale_intrinsics(torch.as_tensor(img.K, dtype=torch.float32), 1 / supersample, 1 / supersample)
            per_camera["images"].append(area_resize(img.rgb, height, width))
            per_camera["K"].append(K.numpy())
            per_camera["cam_to_world"].append(img.cam_to_world)
            per_camera["lidar"].append(pool_sparse(img.lidar, height, width))
            per_camera["semantic"].append(sample_nearest(img.semantic, height, width))
            per_camera["depth"].append(sample_nearest(img.depth, height, width))
            per_camera["flow"].append(sample_nearest(img.flow, height, width))
            per_camera["dynamic"].append(sample_nearest(img.dynamic, height, width) > 0)
        for name, values in per_camera.items():
            fields[name].append(np.stack(values))
        fields["times"].append(t)
    dtypes = {"images": np.uint8, "K": np.float32, "cam_to_world": np.float64, "times": np.float64,
              "lidar": np.float32, "semantic": np.uint8, "depth": np.float32, "flow": np.float32, "dynamic": bool}
    return DriveClip(**{name: np.asarray(np.stack(values), dtype=dtypes[name]) for name, values in fields.items()})


def drive_cache_path(world: WorldConfig, height: int, width: int, cache_dir: str | Path, supersample: int = 2) -> Path:
    """Where ``cached_drive`` keeps this drive: named by everything that changes its pixels."""
    key = json.dumps({"world": dataclasses.asdict(world), "size": [height, width], "supersample": supersample,
                      "version": CACHE_VERSION}, sort_keys=True)
    return Path(cache_dir) / f"drive-{world.seed}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"


def render_missing_drives(worlds: list[WorldConfig], height: int, width: int, cache_dir: str | Path,
                          supersample: int = 2, workers: int | None = None) -> int:
    """Render the drives not in ``cache_dir`` yet, one process per drive at a time; returns how many.

    Drives are independent and each renders on one core, so they spread over the machine's cores.
    """
    missing = [w for w in worlds if not drive_cache_path(w, height, width, cache_dir, supersample).exists()]
    workers = min(workers or os.cpu_count() or 1, len(missing))
    if workers <= 1:
        for world in missing:
            cached_drive(world, height, width, cache_dir, supersample)
        return len(missing)
    # spawn, not fork: the parent may already run torch's thread pools
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(functools.partial(_render_into_cache, height=height, width=width, cache_dir=str(cache_dir),
                                        supersample=supersample), missing))
    return len(missing)


def _render_into_cache(world: WorldConfig, height: int, width: int, cache_dir: str, supersample: int) -> None:
    torch.set_num_threads(1)
    cached_drive(world, height, width, cache_dir, supersample)


def cached_drive(world: WorldConfig, height: int, width: int, cache_dir: str | Path | None,
                 supersample: int = 2) -> DriveClip:
    """``render_drive``, read from ``cache_dir`` when it was rendered before (None: no cache)."""
    if cache_dir is None:
        return render_drive(world, height, width, supersample)
    path = drive_cache_path(world, height, width, cache_dir, supersample)
    if path.exists():
        try:
            with np.load(path) as data:
                return DriveClip(**{f.name: data[f.name] for f in dataclasses.fields(DriveClip)})
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            log.warning("cached drive %s is unreadable (%s); rendering it again", path, e)
    clip = render_drive(world, height, width, supersample)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # processes rendering the same drive do not collide
    np.savez_compressed(tmp, **clip.arrays())
    tmp.replace(path)
    return clip


@dataclass(frozen=True)
class TargetViews:
    """Cameras at one target time, in the window's anchor frame."""

    time: float  # seconds since the anchor
    step: int  # index into the drive
    images: Tensor  # (C, H, W, 3) in [0, 1]
    K: Tensor  # (C, 3, 3)
    cam_to_anchor: Tensor  # (C, 4, 4)
    lidar: Tensor  # (C, H, W) metres, 0 = no sample
    semantic: Tensor  # (C, H, W) int64 class ids


@dataclass(frozen=True)
class TrainWindow:
    """One training example: context timesteps for the network, target timesteps to render."""

    context: ViewBatch  # T_ctx timesteps, relative to the anchor (camera 0 at the anchor step)
    context_lidar: Tensor  # (T_ctx, C, H/s, W/s) sparse camera z on the Gaussian grid (stride s), metres
    context_steps: list[int]  # drive indices of the context
    targets: list[TargetViews]  # first: a context timestep, from its own Gaussians; then others (see sample_window)
    anchor_pose: np.ndarray  # (4, 4) world pose of the anchor


def target_views(clip: DriveClip, k: int, t_anchor: float, inv_anchor: np.ndarray, scale: int = 1,
                 device: torch.device | str = "cpu") -> TargetViews:
    """Timestep k of the drive as a render target, reduced by the integer factor ``scale``."""
    _, _, height, width, _ = clip.images.shape
    h, w = height // scale, width // scale
    images = np.stack([area_resize(im, h, w) for im in clip.images[k]])
    lidar = np.stack([pool_sparse(d, h, w) for d in clip.lidar[k]])
    semantic = np.stack([sample_nearest(s, h, w) for s in clip.semantic[k]])
    K = scale_intrinsics(torch.as_tensor(clip.K[k]), 1 / scale, 1 / scale)  # the identity for scale 1
    to = lambda x, dtype=torch.float32: torch.as_tensor(x, dtype=dtype, device=device)
    return TargetViews(time=float(clip.times[k] - t_anchor), step=k, images=to(images) / 255.0, K=to(K),
                       cam_to_anchor=to(inv_anchor @ clip.cam_to_world[k]), lidar=to(lidar),
                       semantic=to(semantic, torch.int64))


def window_at(clip: DriveClip, start: int, context: int, targets: list[tuple[int, int]], gaussian_stride: int = 1,
              anchor_step: int | None = None, device: torch.device | str = "cpu") -> TrainWindow:
    """The window of ``context`` timesteps from ``start``; targets are (timestep, reduction factor).

    Geometry and times are relative to camera 0 at ``anchor_step`` (default: ``start``), as the
    streaming engine's are relative to its sequence anchor, which lies some way back.
    """
    steps = list(range(start, start + context))
    target_steps = [k for k, _ in targets]
    anchor_step = start if anchor_step is None else anchor_step
    if steps[-1] >= clip.num_steps or max(target_steps) >= clip.num_steps or min(target_steps) < 0:
        raise IndexError(f"window {steps} / targets {target_steps} do not fit a drive of {clip.num_steps} steps")
    if not 0 <= anchor_step <= start:
        raise IndexError(f"anchor step {anchor_step} must lie in [0, {start}]")
    anchor = clip.cam_to_world[anchor_step, 0]
    inv_anchor = np.linalg.inv(anchor)
    t_anchor = clip.times[anchor_step]
    to = lambda x: torch.as_tensor(x, dtype=torch.float32, device=device)
    ctx = ViewBatch(images=(to(clip.images[steps]) / 255.0).permute(0, 1, 4, 2, 3).contiguous(), K=to(clip.K[steps]),
                    cam_to_anchor=to(inv_anchor @ clip.cam_to_world[steps]), times=to(clip.times[steps] - t_anchor))
    _, _, height, width, _ = clip.images.shape
    h, w = height // gaussian_stride, width // gaussian_stride
    lidar = np.stack([[pool_sparse(d, h, w) for d in clip.lidar[k]] for k in steps])
    views = [target_views(clip, k, t_anchor, inv_anchor, scale, device) for k, scale in targets]
    return TrainWindow(context=ctx, context_lidar=to(lidar), context_steps=steps, targets=views, anchor_pose=anchor)


OTHER_TARGETS = ("any", "both")  # sample_window's choices of whole-window targets


def sample_window(clip: DriveClip, rng: np.random.Generator, context: int, future: int, other_scale: int = 2,
                  gaussian_stride: int = 1, max_anchor_lag: int = 0, own_last_share: float = 1.0,
                  device: torch.device | str = "cpu", other_target: str = "any") -> TrainWindow:
    """A random window of ``context`` consecutive timesteps with two targets: a context timestep
    (rendered from its own Gaussians) at full resolution, and one other timestep (another context
    one or one of the ``future`` following ones, rendered from the whole window), reduced by
    ``other_scale`` (rendering the whole window is the costly part of a training step).
    The anchor lies 0..``max_anchor_lag`` timesteps before the window's start, uniformly.
    The own target is the last context timestep with probability ``own_last_share``, else an
    earlier one (as a streaming step with a partly filled window publishes). Measured: 0.75 stalls
    motion learning (the other target is then often the last timestep, which needs no motion from
    the Gaussians that explain it), 1.0 does not. ``other_target`` "both" draws two whole-window
    targets instead of one: an earlier context timestep and a following one (where the window has
    both), so that every window is rendered on both sides of its Gaussians' time."""
    if other_target not in OTHER_TARGETS:
        raise ValueError(f"other_target must be one of {OTHER_TARGETS}, not {other_target!r}")
    span = context + future
    if clip.num_steps < span:
        raise ValueError(f"drive has {clip.num_steps} timesteps; a window needs {span}")
    start = int(rng.integers(0, clip.num_steps - span + 1))
    last = start + context - 1
    own = last if context == 1 or rng.uniform() < own_last_share else int(rng.integers(start, last))
    others = [k for k in range(start, last + 1 + future) if k != own]
    targets = [(own, 1)]
    earlier, following = [k for k in others if k < own], [k for k in others if k > last]
    if other_target == "both" and earlier and following:  # both sides of time in every window
        targets += [(int(earlier[rng.integers(0, len(earlier))]), other_scale),
                    (int(following[rng.integers(0, len(following))]), other_scale)]
    elif others:
        targets.append((int(others[rng.integers(0, len(others))]), other_scale))
    anchor_step = start - int(rng.integers(0, min(start, max_anchor_lag) + 1))
    return window_at(clip, start, context, targets, gaussian_stride, anchor_step, device)
