"""Metrics, defined as STORM and SLARM compute them.

- PSNR over a whole image, or only over the pixels of a mask (``dynamic`` variants: the
  ground-truth dynamic mask; frames without dynamic pixels give None and are left out).
- SSIM: the Gaussian-window SSIM (11 px, sigma 1.5, K = 0.01, 0.03) of pytorch-msssim.
- Depth over pixels with valid ground truth (> 0): RMSE (m) and AbsRel = mean(|d - g| / g).
- Scene flow over non-ground pixels with valid depth, on displacements over one frame interval:
  EPE3D = mean L2 error (m); Acc5 = share with error < 0.05 m or relative error < 5 %;
  Acc10 = < 0.1 m or < 10 %; outliers = error > 0.3 m or relative error > 10 %.
- Semantics: per-class IoU, mIoU over the classes present in prediction or ground truth, accuracy.
Each function takes numpy arrays and returns plain floats.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_msssim import ssim as _ssim


def psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float | None:
    """Images (..., H, W, C) in [0, data_range]; mask (..., H, W) bool. None if the mask is empty."""
    err = (np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2
    if mask is not None:
        mask = np.asarray(mask, bool)
        if not mask.any():
            return None
        mse = err[mask].mean()
    else:
        mse = err.mean()
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def ssim(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM of images (H, W, 3) or (N, H, W, 3)."""
    to = lambda x: torch.as_tensor(np.asarray(x, np.float32)).reshape(-1, *np.shape(x)[-3:]).permute(0, 3, 1, 2)
    return float(_ssim(to(pred), to(gt), data_range=data_range, size_average=True))


def depth_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """RMSE (m) and AbsRel over pixels with gt > 0 (and a finite prediction)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    valid = (gt > 0) & np.isfinite(pred)
    if not valid.any():
        return {"depth_rmse": float("nan"), "depth_absrel": float("nan"), "depth_pixels": 0}
    d, g = pred[valid], gt[valid]
    return {"depth_rmse": float(np.sqrt(((d - g) ** 2).mean())), "depth_absrel": float((np.abs(d - g) / g).mean()),
            "depth_pixels": int(valid.sum())}


MOVING_M = 0.01  # ground-truth displacement (m) from which a point counts as moving


THREE_WAY = ("flow_epe3d_fg_dynamic", "flow_epe3d_fg_static", "flow_epe3d_background")


def flow_parts(gt: np.ndarray, foreground: np.ndarray) -> dict[str, np.ndarray]:
    """The three-way split of points by true displacement gt (N, 3) m and foreground (N,) bool:
    (N,) masks named as THREE_WAY (foreground moving, foreground standing, background)."""
    moving = np.linalg.norm(gt, axis=1) >= MOVING_M
    return dict(zip(THREE_WAY, (foreground & moving, foreground & ~moving, ~foreground)))


def flow_errors(pred: np.ndarray, gt: np.ndarray, foreground: np.ndarray | None = None) -> dict[str, float]:
    """Scene-flow metrics of displacement vectors (N, 3) in metres, already restricted to the evaluated pixels.

    ``foreground`` (N,) bool marks points of classes that can move (cars, pedestrians). With it, the
    error is also split three ways, as the Argoverse 2 scene-flow benchmark does: foreground points
    that move, foreground points that stand still (parked cars, waiting pedestrians) and the
    background; ``flow_epe3d_threeway`` is the mean of the three, so that the few moving points
    weigh as much as the many static ones.
    """
    pred, gt = np.asarray(pred, np.float64).reshape(-1, 3), np.asarray(gt, np.float64).reshape(-1, 3)
    if foreground is not None:
        foreground = np.asarray(foreground, bool).reshape(-1)
        if len(foreground) != len(gt):
            raise ValueError(f"foreground has {len(foreground)} entries for {len(gt)} points")
    if len(gt) == 0:
        empty = {"flow_epe3d": float("nan"), "flow_epe3d_moving": float("nan"), "flow_epe3d_static": float("nan"),
                 "flow_moving_share": float("nan"), "flow_recovered_moving": float("nan"),
                 "flow_cosine_moving": float("nan"), "flow_acc5": float("nan"), "flow_acc10": float("nan"),
                 "flow_outliers": float("nan"), "flow_points": 0}
        if foreground is not None:
            empty.update({k: float("nan") for k in (*THREE_WAY, "flow_epe3d_threeway")})
        return empty
    err = np.linalg.norm(pred - gt, axis=1)
    speed = np.linalg.norm(gt, axis=1)
    rel = err / np.maximum(speed, 1e-20)
    moving = speed >= MOVING_M
    part = lambda mask: float(err[mask].mean()) if mask.any() else float("nan")
    # on moving points: how much of the true displacement the prediction covers along its direction
    # (1 = all, 0 = none), and whether it points the right way, whatever its length
    along = (pred[moving] * gt[moving]).sum(axis=1) / speed[moving]  # length of the prediction along the truth
    pred_speed = np.linalg.norm(pred[moving], axis=1)
    cosine = along / np.maximum(pred_speed, 1e-20)
    out = {
        "flow_epe3d": float(err.mean()),
        # where the error comes from: surfaces that move, and spurious motion given to static ones
        "flow_epe3d_moving": part(moving), "flow_epe3d_static": part(~moving), "flow_moving_share": float(moving.mean()),
        "flow_recovered_moving": float(along.sum() / speed[moving].sum()) if moving.any() else float("nan"),
        "flow_cosine_moving": float(np.median(cosine[pred_speed > 0])) if (pred_speed > 0).any() else float("nan"),
        "flow_acc5": float(((err < 0.05) | (rel < 0.05)).mean()),
        "flow_acc10": float(((err < 0.1) | (rel < 0.1)).mean()),
        "flow_outliers": float(((err > 0.3) | (rel > 0.1)).mean()),
        "flow_points": int(len(gt)),
    }
    if foreground is not None:
        parts = {name: part(mask) for name, mask in flow_parts(gt, foreground).items()}
        present = [v for v in parts.values() if not np.isnan(v)]  # a part with no points does not count
        out.update(parts, flow_epe3d_threeway=float(np.mean(present)))
    return out


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = ground truth, columns = prediction."""
    pred, gt = np.asarray(pred).reshape(-1), np.asarray(gt).reshape(-1)
    return np.bincount(gt * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def segmentation_scores(conf: np.ndarray, names: list[str]) -> dict:
    """mIoU over classes present in ground truth or prediction, accuracy, and per-class IoU."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    return {"miou": float(np.nanmean(iou)) if present.any() else float("nan"),
            "semantic_accuracy": float(tp.sum() / max(conf.sum(), 1)),
            "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)}}


QUERY_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))  # 0.30 .. 0.95


def threshold_counts(scores: np.ndarray, gt: np.ndarray, thresholds=QUERY_THRESHOLDS) -> np.ndarray:
    """How one query at a time, with a score threshold, finds each class, as the node's queries do.

    scores (..., C) cosine of each pixel to each class name; gt (...) class ids.
    Returns (T, C, 3) counts of true positives, false positives and false negatives.
    """
    scores = scores.reshape(-1, scores.shape[-1])
    truth = np.asarray(gt).reshape(-1)[:, None] == np.arange(scores.shape[1])[None]  # (P, C)
    out = np.zeros((len(thresholds), scores.shape[1], 3), np.int64)
    for t, threshold in enumerate(thresholds):
        hit = scores >= threshold
        out[t, :, 0] = (hit & truth).sum(0)
        out[t, :, 1] = (hit & ~truth).sum(0)
        out[t, :, 2] = (~hit & truth).sum(0)
    return out


def threshold_scores(counts: np.ndarray, names: list[str], thresholds=QUERY_THRESHOLDS) -> dict:
    """Mean IoU over classes present, per threshold, from ``threshold_counts`` sums; and the best one."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    present = (tp + fn)[0] > 0
    iou = tp / np.maximum(tp + fp + fn, 1)
    miou = iou[:, present].mean(1)
    best = int(np.argmax(miou))
    return {"query_miou": {f"{t:.2f}": float(m) for t, m in zip(thresholds, miou)},
            "query_best_threshold": float(thresholds[best]), "query_best_miou": float(miou[best]),
            "query_best_iou": {n: float(v) for n, v, p in zip(names, iou[best], present) if p}}
