"""Resampling camera images and their per-pixel ground truth to another resolution.

Images are area-averaged (what the engine does to its input); labels are sampled at the new
pixel centres (nearest); sparse depth is averaged over the valid samples of each block.
"""
from __future__ import annotations

import cv2
import numpy as np


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W[, C]) -> (height, width[, C]) by area averaging."""
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def sample_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Values of (H, W, ...) at the pixel centres of an image of height x width over the same field of view."""
    gh, gw = array.shape[:2]
    v = np.clip(np.round((np.arange(height) + 0.5) * gh / height - 0.5).astype(int), 0, gh - 1)
    u = np.clip(np.round((np.arange(width) + 0.5) * gw / width - 0.5).astype(int), 0, gw - 1)
    return array[v[:, None], u[None, :]]


def pool_sparse(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sparse depth (H, W), 0 = no sample -> (height, width): mean of each block's samples, 0 where none.

    H and W must be multiples of height and width (a block per output pixel).
    """
    gh, gw = depth.shape
    if gh % height or gw % width:
        raise ValueError(f"cannot pool {gh}x{gw} to {height}x{width}: not an integer factor")
    blocks = depth.reshape(height, gh // height, width, gw // width).astype(np.float64)
    valid = blocks > 0
    count = valid.sum(axis=(1, 3))
    total = np.where(valid, blocks, 0).sum(axis=(1, 3))
    return np.where(count > 0, total / np.maximum(count, 1), 0).astype(np.float32)
