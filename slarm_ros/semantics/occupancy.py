"""Semantic occupancy: points scored against a query, gathered into a sparse voxel grid.

A voxel is listed when the best score of the points inside it reaches the threshold. The grid is
an axis-aligned box in the world frame; (ix, iy, iz) has the flat index ix + nx * (iy + ny * iz),
as slarm_msgs/SemanticOccupancy documents. A bird's-eye slice (max over z) feeds
nav_msgs/OccupancyGrid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GridSpec:
    """An axis-aligned voxel grid in the world frame."""

    origin: np.ndarray  # (3,) lower corner, metres
    voxel_size: float  # metres
    shape: tuple[int, int, int]  # voxels along x, y, z

    @classmethod
    def around(cls, centre: np.ndarray, half_extent_xy: float, z_min: float, z_max: float, voxel_size: float) -> "GridSpec":
        """A grid centred on ``centre`` in x and y (snapped to the voxel lattice), spanning z_min..z_max."""
        if voxel_size <= 0 or half_extent_xy <= 0 or z_max <= z_min:
            raise ValueError("voxel_size and half extent must be positive and z_max > z_min")
        n_xy = int(np.ceil(2 * half_extent_xy / voxel_size))
        n_z = int(np.ceil((z_max - z_min) / voxel_size))
        lower = np.floor((np.asarray(centre[:2], float) - half_extent_xy) / voxel_size) * voxel_size
        return cls(origin=np.array([lower[0], lower[1], z_min]), voxel_size=float(voxel_size), shape=(n_xy, n_xy, n_z))


@dataclass(frozen=True)
class QueryOccupancy:
    query: str
    threshold: float
    grid: GridSpec
    indices: np.ndarray  # (M,) uint32 flat voxel indices, ascending
    scores: np.ndarray  # (M,) float32 best score per voxel
    counts: np.ndarray  # (M,) uint32 points per voxel (all points, matching or not)
    matched_points: int
    max_score: float
    mean_score: float

    def bev(self) -> np.ndarray:
        """(ny, nx) best score per column over z; NaN where no voxel is listed."""
        nx, ny, _ = self.grid.shape
        out = np.full(nx * ny, np.nan, np.float32)
        cols = self.indices % (nx * ny)
        order = np.argsort(self.scores)  # the highest score per column is written last
        out[cols[order]] = self.scores[order]
        return out.reshape(ny, nx)


def query_occupancy(query: str, xyz: np.ndarray, scores: np.ndarray, grid: GridSpec, threshold: float) -> QueryOccupancy:
    """Voxels whose best point score reaches ``threshold``. xyz (N, 3) metres, scores (N,)."""
    nx, ny, nz = grid.shape
    cell = np.floor((xyz - grid.origin) / grid.voxel_size).astype(np.int64)
    inside = np.all((cell >= 0) & (cell < np.array([nx, ny, nz])), axis=1)
    cell, s = cell[inside], scores[inside].astype(np.float32)
    flat = cell[:, 0] + nx * (cell[:, 1] + ny * cell[:, 2])
    listed = np.zeros(0, np.uint32)
    best = np.zeros(0, np.float32)
    counts = np.zeros(0, np.uint32)
    if len(flat):
        unique, inverse, count = np.unique(flat, return_inverse=True, return_counts=True)
        voxel_best = np.full(len(unique), -np.inf, np.float32)
        np.maximum.at(voxel_best, inverse, s)
        keep = voxel_best >= threshold
        listed, best, counts = unique[keep].astype(np.uint32), voxel_best[keep], count[keep].astype(np.uint32)
    return QueryOccupancy(
        query=query, threshold=threshold, grid=grid, indices=listed, scores=best, counts=counts,
        matched_points=int((scores >= threshold).sum()),
        max_score=float(scores.max()) if len(scores) else float("nan"),
        mean_score=float(scores.mean()) if len(scores) else float("nan"),
    )
