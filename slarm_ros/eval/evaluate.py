"""``slarm eval``: stream a bag through the engine and score it against the bag's ground truth.

Per timestep k, each camera is rendered at the evaluation resolution (the network's input by
default; ground truth is sampled at the same pixel centres):
- from timestep k's Gaussians at time k: depth (vs /gt depth), scene flow (alpha-normalised
  velocity channels, as displacement over one frame interval, vs /gt flow over non-ground pixels
  with valid depth) and semantic classes (features normalised by alpha, assigned to the class
  name with the highest cosine similarity, vs /gt semantic);
- from the window's Gaussians (timesteps up to k) moved to time k+1, with the sky and each
  camera's colour transform: the next images (PSNR, SSIM; PSNR on dynamic pixels). This needs
  no labels, so it also runs on real bags.
Baselines scored the same way: ``zero_motion`` (the same Gaussians without motion) and
``copy_last`` (image k shown as the prediction of k+1; no geometry).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import psutil
import torch

from ..bag.reader import BagReader, Sample
from ..geometry import scale_intrinsics
from ..gaussians import Gaussians4D
from ..render.scene import render_gaussians
from ..resample import area_resize, sample_nearest
from ..semantics.scores import QueryScorer
from ..semantics.text_encoder import default_text_encoder
from ..stream import Reconstructor, StepResult
from ..stream.reconstructor import sky_colors
from ..world.config import CLASSES, GROUND_CLASSES, MOVABLE_CLASSES
from . import metrics

METHODS = ("slarm", "zero_motion", "copy_last")


@dataclass
class Accumulator:
    """Per-method pooled quantities over the whole bag."""

    depth_pred: list = field(default_factory=list)
    depth_gt: list = field(default_factory=list)
    flow_pred: list = field(default_factory=list)
    flow_gt: list = field(default_factory=list)
    flow_foreground: list = field(default_factory=list)  # (N,) bool per flow point: a movable class
    confusion: np.ndarray | None = None
    query_counts: np.ndarray | None = None  # (T, C, 3) single-query threshold counts
    psnr_next: list = field(default_factory=list)
    psnr_next_dynamic: list = field(default_factory=list)
    ssim_next: list = field(default_factory=list)

    def summary(self, names: list[str]) -> dict:
        out = {}
        if self.depth_gt:
            out.update(metrics.depth_errors(np.concatenate(self.depth_pred), np.concatenate(self.depth_gt)))
        if self.flow_gt:
            out.update(metrics.flow_errors(np.concatenate(self.flow_pred), np.concatenate(self.flow_gt),
                                           np.concatenate(self.flow_foreground)))
        if self.confusion is not None:
            out.update(metrics.segmentation_scores(self.confusion, names))
        if self.query_counts is not None:
            out.update(metrics.threshold_scores(self.query_counts, names))
        mean = lambda xs: float(np.mean(xs)) if xs else None
        out.update(psnr_next=mean(self.psnr_next), psnr_next_dynamic=mean(self.psnr_next_dynamic),
                   ssim_next=mean(self.ssim_next))
        return out


class Evaluator:
    def __init__(self, engine: Reconstructor, class_names: list[str], height: int, width: int, dt: float):
        self.engine = engine
        self.names = class_names
        self.height, self.width = height, width
        self.dt = dt
        self.ground = [class_names.index(c) for c in GROUND_CLASSES if c in class_names]
        self.movable = [class_names.index(c) for c in MOVABLE_CLASSES if c in class_names]
        self.class_scorer = QueryScorer.build(engine.model.semantic_projection,
                                              default_text_encoder().encode(class_names).to(engine.device))
        self.acc = {m: Accumulator() for m in METHODS}
        self.panels: list[dict] = []

    def cameras(self, frame_set):
        K = torch.stack([scale_intrinsics(torch.as_tensor(c.K, dtype=torch.float32), self.width / c.image.shape[1],
                                          self.height / c.image.shape[0]) for c in frame_set.cameras])
        poses = torch.as_tensor(np.stack([c.cam_to_world for c in frame_set.cameras]), dtype=torch.float64)
        return K.to(self.engine.device), poses

    def render(self, gaussians: Gaussians4D, time_s: float, frame_set, sky_of: StepResult | None = None,
               affine=None, **kw):
        K, poses = self.cameras(frame_set)
        # Render in a frame centred on the first camera: float32 cannot place world coordinates
        # far from the origin precisely enough for pixel-accurate projection.
        centre = poses[0, :3, 3].clone()
        g = replace(gaussians, means=(gaussians.means.double() - centre.to(gaussians.means.device)).float())
        poses = poses.clone()
        poses[:, :3, 3] -= centre
        sky = sky_colors(self.engine.model, sky_of) if sky_of is not None else None
        return render_gaussians(g, time_s, poses.float().to(self.engine.device), K, self.width, self.height, sky=sky,
                                affine=affine, **kw)

    def frame_flow(self, render) -> np.ndarray:
        """(V, H, W, 3) the rendered scene flow as displacement (m) over one frame interval."""
        alpha = render.alpha[..., 0].clamp_min(1e-6)
        return (render.flow / alpha[..., None]).cpu().numpy() * self.dt

    def truth(self, truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One camera's ground truth at the evaluation pixels: depth (H, W) m (0: none), classes
        (H, W) int64 and flow (H, W, 3) as displacement (m) over one frame interval."""
        depth = sample_nearest(truth["depth"], self.height, self.width)
        semantic = sample_nearest(truth["semantic"], self.height, self.width).astype(np.int64)
        return depth, semantic, sample_nearest(truth["flow"], self.height, self.width) * self.dt

    @torch.inference_mode()
    def score_current(self, result: StepResult, sample: Sample, keep_panel: bool) -> None:
        """Depth, flow and semantics of timestep k's own Gaussians against its ground truth."""
        render = self.render(result.gaussians, result.stamp, sample.frame_set, with_features=True, with_flow=True)
        alpha = render.alpha[..., 0].clamp_min(1e-6)
        flow = self.frame_flow(render)
        features = render.features / alpha[..., None]
        scores = self.class_scorer(features).cpu().numpy()
        uncovered = render.alpha[..., 0].cpu().numpy() < 1e-3
        sky = self.names.index("sky") if "sky" in self.names else 0
        scores[uncovered] = -1.0  # nothing there: only the sky matches
        scores[uncovered, sky] = 1.0
        classes = scores.argmax(-1)
        depth = render.depth[..., 0].cpu().numpy()
        for i, cam in enumerate(sample.frame_set.cameras):
            truth = sample.ground_truth.get(cam.name, {})
            if "depth" not in truth:
                continue
            gt_depth, gt_sem, gt_flow = self.truth(truth)
            valid = gt_depth > 0
            moving_eval = valid & ~np.isin(gt_sem, self.ground)
            zero = np.zeros_like(gt_flow[moving_eval])
            foreground = np.isin(gt_sem[moving_eval], self.movable)
            for method in ("slarm", "zero_motion"):
                acc = self.acc[method]
                acc.depth_pred.append(depth[i][valid])
                acc.depth_gt.append(gt_depth[valid])
                acc.flow_pred.append(flow[i][moving_eval] if method == "slarm" else zero)
                acc.flow_gt.append(gt_flow[moving_eval])
                acc.flow_foreground.append(foreground)
                conf = metrics.confusion(classes[i], gt_sem, len(self.names))
                acc.confusion = conf if acc.confusion is None else acc.confusion + conf
            counts = metrics.threshold_counts(scores[i], gt_sem)
            slarm = self.acc["slarm"]
            slarm.query_counts = counts if slarm.query_counts is None else slarm.query_counts + counts
            copy = self.acc["copy_last"]
            copy.flow_pred.append(zero)
            copy.flow_gt.append(gt_flow[moving_eval])
            copy.flow_foreground.append(foreground)
        if keep_panel:
            self.panels.append({
                "stamp": result.stamp, "names": [c.name for c in sample.frame_set.cameras],
                "input": [area_resize(c.image, self.height, self.width) for c in sample.frame_set.cameras],
                "depth": depth, "classes": classes, "flow": flow / self.dt,
                "gt": {c.name: {k: sample_nearest(v, self.height, self.width) for k, v in
                                sample.ground_truth.get(c.name, {}).items() if k in ("depth", "semantic", "flow")}
                       for c in sample.frame_set.cameras},
            })

    @torch.inference_mode()
    def score_next(self, window: list[StepResult], current: Sample, nxt: Sample) -> None:
        """Render the next timestep from the window's Gaussians and compare with its real images."""
        g = Gaussians4D.cat([r.gaussians for r in window])
        last = window[-1]
        targets = np.stack([area_resize(c.image, self.height, self.width) for c in nxt.frame_set.cameras]) / 255.0
        dynamic = None
        if all("dynamic" in nxt.ground_truth.get(c.name, {}) for c in nxt.frame_set.cameras):
            dynamic = np.stack([sample_nearest(nxt.ground_truth[c.name]["dynamic"], self.height, self.width) > 0
                                for c in nxt.frame_set.cameras])
        still = g.without_motion()
        predictions = {
            "slarm": self.render(g, nxt.frame_set.stamp, nxt.frame_set, last, last.affine),
            "zero_motion": self.render(still, nxt.frame_set.stamp, nxt.frame_set, last, last.affine),
        }
        images = {m: r.rgb.clamp(0, 1).cpu().numpy() for m, r in predictions.items()}
        images["copy_last"] = np.stack([area_resize(c.image, self.height, self.width)
                                        for c in current.frame_set.cameras]) / 255.0
        for method, image in images.items():
            acc = self.acc[method]
            acc.psnr_next.append(metrics.psnr(image, targets))
            acc.ssim_next.append(metrics.ssim(image, targets))
            if dynamic is not None and dynamic.any():
                acc.psnr_next_dynamic.append(metrics.psnr(image, targets, dynamic))
        if self.panels and self.panels[-1]["stamp"] == current.frame_set.stamp:
            self.panels[-1]["render_next"] = images["slarm"]
            self.panels[-1]["target_next"] = targets


def evaluate(bag: str | Path, out: str | Path, checkpoint: str | None = None, window: int | None = None,
             offline: bool = False, device: str = "auto", max_steps: int | None = None, panels: int = 3,
             progress: bool = True, offline_attention: str = "full") -> dict:
    """Run the evaluation; writes metrics.json, report.md and figures into ``out``.

    One pass over the bag streams it through the engine and scores each timestep as it comes
    (ground truth is never held for more than two timesteps). With ``offline``, the frame sets
    are first reconstructed in one pass with ``offline_attention`` ('full', SLARM's offline mode, or
    'causal') and those results are scored instead; the streaming pass still runs, for its latency
    and memory.
    """
    from tqdm import tqdm

    from . import figures, report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reader = BagReader(bag)
    engine = Reconstructor.from_checkpoint(checkpoint or None, device=device, window=window)
    if len(reader.cameras) != engine.cfg.num_cameras:
        raise ValueError(f"bag {bag} has {len(reader.cameras)} cameras {reader.cameras}; the model takes "
                         f"{engine.cfg.num_cameras}")
    if not reader.has_ground_truth:
        raise ValueError(f"bag {bag} has no /gt/<camera>/depth topics; only bags with ground truth can be scored")
    names = reader.classes or list(CLASSES)
    total = reader.topics[f"/cameras/{reader.cameras[0]}/image_raw"].msgcount
    total = min(total, max_steps) if max_steps else total
    proc = psutil.Process()

    offline_results, timing = None, {}
    if offline:
        frame_sets = [fs for _, fs in zip(range(total), BagReader(bag, ground_truth=False).frame_sets())]
        started = time.perf_counter()
        offline_results = engine.run_offline(frame_sets, offline_attention)
        timing["offline_total_s"] = time.perf_counter() - started
        timing["offline_per_step_ms"] = timing["offline_total_s"] / len(frame_sets) * 1000
        timing["offline_peak_mem_mb"] = proc.memory_info().rss / 2**20
        del frame_sets

    ev: Evaluator | None = None
    panel_steps = set(np.linspace(0, max(total - 2, 0), panels).round().astype(int).tolist()) if panels else set()
    latency, rss, stream_points = [], [], []
    prev, prev_stamp, scoring_s, steps = None, None, 0.0, 0
    for k, sample in enumerate(tqdm(_limited(reader, max_steps), total=total, desc="evaluating", unit="step",
                                    disable=not progress)):
        if ev is None:
            dt_guess = reader.duration_s / max(total - 1, 1)
            ev = Evaluator(engine, names, engine.cfg.image_height, engine.cfg.image_width, dt_guess)
        t0 = time.perf_counter()
        if prev is not None:  # the window up to k-1 predicts timestep k
            ev.dt = sample.frame_set.stamp - prev_stamp
            window = (offline_results[max(0, k - (engine.window or k)): k] if offline_results is not None
                      else list(engine.window_results))
            ev.score_next(window, prev, sample)
        scoring_s += time.perf_counter() - t0
        result = engine.step(sample.frame_set)
        latency.append(result.latency_s * 1000)
        rss.append(proc.memory_info().rss / 2**20)
        stream_points.append(result)  # a thinned history for the bird's-eye views
        if len(stream_points) > 40:
            stream_points = stream_points[::2]
        t0 = time.perf_counter()
        scored = offline_results[k] if offline_results is not None else result
        ev.score_current(scored, sample, keep_panel=k in panel_steps)
        scoring_s += time.perf_counter() - t0
        prev, prev_stamp, steps = sample, sample.frame_set.stamp, steps + 1
    if steps < 2:
        raise ValueError(f"bag {bag} has {steps} usable timesteps; evaluation needs at least 2 "
                         f"(skipped: {reader.skipped[:5]})")
    timing.update(step_p50_ms=float(np.median(latency)), step_p95_ms=float(np.percentile(latency, 95)),
                  peak_mem_mb=float(max(rss)), latency_ms=latency, rss_mb=rss)

    summary = {m: ev.acc[m].summary(names) for m in METHODS}
    for key in ("depth_absrel", "depth_rmse", "depth_pixels", "miou", "semantic_accuracy", "iou", "query_miou",
                "query_best_threshold", "query_best_miou", "query_best_iou"):
        summary["copy_last"][key] = None  # no geometry, no semantics
    result = dict(summary["slarm"])
    result.update({k: timing[k] for k in ("step_p50_ms", "step_p95_ms", "peak_mem_mb")})
    result["baselines"] = {m: summary[m] for m in ("zero_motion", "copy_last")}
    mode = f"offline, {offline_attention} attention" if offline else f"streaming, window {engine.window}"
    result["run"] = {
        "bag": str(bag), "mode": mode,
        "checkpoint": str(checkpoint or "default"), "device": str(engine.device), "config": engine.cfg.name,
        "window": engine.window, "timesteps": steps, "frame_interval_s": ev.dt,
        "eval_resolution": [ev.height, ev.width], "classes": names, "skipped": reader.skipped,
        "scoring_s_per_step": scoring_s / steps,
        **{k: v for k, v in timing.items() if k.startswith("offline")},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=1, default=_json_default))
    figure_files = figures.write_all(out, ev.panels, names, stream_points, timing)
    report.write(out / "report.md", result, figure_files)
    return result


def _limited(reader: BagReader, max_steps: int | None):
    for i, sample in enumerate(reader):
        if max_steps is not None and i >= max_steps:
            return
        yield sample


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")
