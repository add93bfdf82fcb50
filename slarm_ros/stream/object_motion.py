"""Actors' motion measured by tracking the reconstruction's own objects from timestep to timestep.

The network learns from rendering which surfaces move and which way (its motion points the right
way on moving actors, median cosine 0.75-0.87 on held-out drives), but not how far: it covers
15-36 % of a moving actor's displacement (docs/motion-study.md). Its depth, though, places a
car's points well enough that the car's displacement between two timesteps can be measured.
So, per timestep, after the network:

1. The Gaussians whose language features name a movable class (car, pedestrian) are grouped into
   objects: Gaussians closer than ``object_link_m`` belong to one object.
2. Each object is aligned to the objects of the timestep before that have a point within a
   step's reach (MAX_SPEED) of one of its own, by a translation (trimmed, symmetric
   nearest-neighbour ICP) from several starts: standing still, the centres' offset and the
   network's direction of the object at a few speeds. An alignment beyond reach is dropped. Only
   points the other timestep's cameras covered count: an object entering or leaving the view would
   otherwise slide. The earlier object aligned best is its match; its translation over the time between is
   the measured velocity, filtered along the track against depth noise (``TrackFilter``,
   track_filter.py: velocity, and with ``object_filter_order`` 2 or 3 acceleration and jerk too).
3. An object moves when the network moves it too, at ``object_gate_speed`` or faster on the mean
   over its Gaussians (slower objects are not aligned at all: most objects stand; of the others at
   most ``object_max_aligned`` are, the nearest to the cameras first), within
   acos(``object_gate_cosine``) of the measured motion, and when the translation aligns it better
   than standing still does. Its Gaussians (with ``object_point_gate``, only those the network
   moves) take the object's motion, and so does every other Gaussian within ``object_attach_m``
   of them; every other Gaussian stands still.

All in the world frame, causal, constant time per step (one timestep of state). Off unless the
network's config sets ``object_motion``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from torch import Tensor

from ..gaussians import Gaussians4D
from .track_filter import TrackFilter

MAX_SPEED = 30.0  # m/s: no object moves faster
TRIM_M = 1.0  # m: nearest neighbours farther apart than this are not the same surface
ICP_ITERATIONS = 15
CONVERGED_M = 1e-3  # m: an alignment whose step is shorter has converged
# an object's points and an earlier object's are thinned to at most this many for the alignment: a
# translation needs few, and a near car's thousand Gaussians would cost as many KD-tree queries
ALIGN_POINTS = 300
MIN_OPACITY = 0.1  # fainter Gaussians barely show in a render and place no surface
# m/s: besides standing still and the centres' offset, the alignment also starts this fast along the
# network's own direction of the object: a car's plain side or a partly seen car leaves local
# minima short of its true displacement, and the network's direction is good where its length is not
START_SPEEDS = (5.0, 10.0)


@dataclass(frozen=True)
class Views:
    """The cameras of one timestep: which world points they could see."""

    K: np.ndarray  # (C, 3, 3) at the image size below
    world_to_cam: np.ndarray  # (C, 4, 4)
    height: int
    width: int

    @classmethod
    def of(cls, K: np.ndarray, cam_to_world: np.ndarray, height: int, width: int) -> "Views":
        return cls(np.asarray(K, np.float64), np.linalg.inv(np.asarray(cam_to_world, np.float64)), height, width)

    @property
    def centre(self) -> np.ndarray:
        """(3,) the mean of the cameras' centres, world frame."""
        return np.mean([-T[:3, :3].T @ T[:3, 3] for T in self.world_to_cam], axis=0)

    def sees(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: the point (N, 3) projects inside some camera's image, in front of it."""
        out = np.zeros(len(points), bool)
        for K, T in zip(self.K, self.world_to_cam):
            p = points @ T[:3, :3].T + T[:3, 3]
            z = np.maximum(p[:, 2], 1e-6)
            u = K[0, 0] * p[:, 0] / z + K[0, 2]
            v = K[1, 1] * p[:, 1] / z + K[1, 2]
            out |= (p[:, 2] > 0.5) & (u > 0) & (u < self.width - 1) & (v > 0) & (v < self.height - 1)
        return out


@dataclass(frozen=True)
class Objects:
    """One timestep's movable points grouped into objects."""

    points: np.ndarray  # (N, 3) world metres
    label: np.ndarray  # (N,) object index per point, -1 for points in no object
    centres: np.ndarray  # (M, 3)
    # (M, order, 3): velocity m/s, acceleration m/s^2, jerk m/s^3 (as many as the track filter's
    # order), filtered along the object's track; NaN where not measured yet
    motion: np.ndarray
    views: Views
    stamp: float  # absolute seconds

    def members(self, j: int) -> np.ndarray:
        return self.points[self.label == j]

    @cached_property
    def tree(self) -> cKDTree:
        """A KD-tree of all the points."""
        return cKDTree(self.points)


def group_points(points: np.ndarray, link: float, min_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Single-linkage groups of points (N, 3) closer than ``link`` m: (N,) labels (-1 for groups
    of fewer than ``min_points``) and (M, 3) group centres."""
    if len(points) == 0:
        return np.zeros(0, int), np.zeros((0, 3))
    pairs = cKDTree(points).query_pairs(link, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points),) * 2)
    _, label = connected_components(graph, directed=False)
    counts = np.bincount(label)
    kept = np.flatnonzero(counts >= min_points)
    remap = np.full(len(counts), -1)
    remap[kept] = np.arange(len(kept))
    label = remap[label]
    centres = np.stack([points[label == j].mean(0) for j in range(len(kept))]) if len(kept) else np.zeros((0, 3))
    return label, centres


def align_translation(now: np.ndarray, then: np.ndarray, start: np.ndarray, views_now: Views, views_then: Views,
                      iterations: int = ICP_ITERATIONS, trim: float = TRIM_M,
                      trees: tuple[cKDTree, cKDTree] | None = None) -> tuple[np.ndarray, float]:
    """The translation t (3,) with ``now`` ~ ``then`` + t, from ``start``, and its cost (m).

    The cost is the mean nearest-neighbour distance, capped at ``trim``, over the points of each
    set that the other timestep's cameras could see at their moved place (inf when fewer than
    three are). Each iteration moves t by the mean residual of the pairs closer than ``trim``.
    ``trees``: the KD-trees of ``now`` and ``then``, where the caller aligns the same sets again.
    """
    tree_now, tree_then = trees or (cKDTree(now), cKDTree(then))

    def residuals(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, 3) residuals of the pairs closer than ``trim``, and (Q,) capped distances of the seen points."""
        back, forth = now - t, then + t
        seen_then, seen_now = views_then.sees(back), views_now.sees(forth)
        # neighbours beyond the trim only count as the trim: the trees need not look farther
        d1, i1 = tree_then.query(back, distance_upper_bound=trim)
        d2, i2 = tree_now.query(forth, distance_upper_bound=trim)
        close1, close2 = seen_then & (d1 < trim), seen_now & (d2 < trim)
        r = np.concatenate([back[close1] - then[i1[close1]], now[i2[close2]] - forth[close2]])
        return r, np.minimum(np.concatenate([d1[seen_then], d2[seen_now]]), trim)

    t = np.asarray(start, np.float64).copy()
    for _ in range(iterations):
        r, _ = residuals(t)
        if len(r) < 3:
            return t, np.inf
        step = r.mean(0)
        t += step
        if np.linalg.norm(step) < CONVERGED_M:
            break
    _, d = residuals(t)
    return t, (float(d.mean()) if len(d) >= 3 else np.inf)


@dataclass(frozen=True)
class Measurement:
    """What aligning one object to the timestep before gave."""

    velocity: np.ndarray  # (3,) m/s
    match: int  # index of the earlier object
    gain: float  # m: how much lower the alignment cost is than standing still's


def thinned(points: np.ndarray) -> np.ndarray:
    """Every k-th of the points (N, 3), at most ALIGN_POINTS of them. Gaussians come in pixel order
    (camera, row, column): every k-th of an object's is every k-th pixel along its image rows."""
    if len(points) <= ALIGN_POINTS:
        return points
    return points[:: -(-len(points) // ALIGN_POINTS)]


def objects_within(points: np.ndarray, earlier: Objects, reach: float) -> np.ndarray:
    """Indices of the earlier objects with a point within ``reach`` m of one of ``points`` (N, 3).

    By points, not centres: where objects merge or split from one timestep to the next (a car
    passing a parked one), the centre of what is one car now may lie far from the earlier one's."""
    d, i = earlier.tree.query(points, distance_upper_bound=reach)
    hit = earlier.label[i[np.isfinite(d)]]
    return np.unique(hit[hit >= 0])


def alignment_starts(centre: np.ndarray, earlier_centre: np.ndarray, direction: np.ndarray | None, dt: float) -> list[np.ndarray]:
    """Translations (3,) to start an object's alignment from: standing still, the centres' offset and,
    given the network's motion of the object (3,) m/s, its horizontal direction at START_SPEEDS."""
    starts = [np.zeros(3), centre - earlier_centre]
    if direction is not None:
        flat = np.array([direction[0], direction[1], 0.0])
        norm = np.linalg.norm(flat)
        if norm > 0:
            starts += [flat / norm * speed * dt for speed in START_SPEEDS]
    return starts


def measure(points: np.ndarray, centre: np.ndarray, earlier: Objects, views_now: Views, dt: float,
            direction: np.ndarray | None = None) -> Measurement | None:
    """Align one object's points to each earlier object within reach (both thinned), from each of
    ``alignment_starts``; the best alignment that stays within reach, or None."""
    if len(earlier.centres) == 0:
        return None
    near = objects_within(points, earlier, MAX_SPEED * dt)
    best: tuple[float, np.ndarray, int] | None = None
    still = np.inf
    points = thinned(points)
    tree_now = cKDTree(points)
    for q in near:
        then = thinned(earlier.members(q))
        trees = (tree_now, cKDTree(then))
        _, cost_still = align_translation(points, then, np.zeros(3), views_now, earlier.views, iterations=0, trees=trees)
        still = min(still, cost_still)
        for start in alignment_starts(centre, earlier.centres[q], direction, dt):
            t, cost = align_translation(points, then, start, views_now, earlier.views, trees=trees)
            if np.linalg.norm(t) > MAX_SPEED * dt:
                continue  # drifted onto something no road user reaches in the time
            if best is None or cost < best[0]:
                best = (cost, t, int(q))
    if best is None or not np.isfinite(best[0]):
        return None
    return Measurement(velocity=best[1] / dt, match=best[2], gain=still - best[0])


class ObjectTracker:
    """Object motion for a stream of timesteps (one timestep of state; ``reset`` starts anew).

    ``scorer`` maps Gaussian features (N, F) to scores (N, Q) for Q class names (the engine's:
    cosine similarities to the names' text embeddings); a Gaussian whose best class is one of
    ``movable`` (indices into Q) may belong to an object. The other settings are the config's
    ``object_*`` (model/config.py); ``filter_weight`` is ``1 - TrackFilter.memory``.
    """

    def __init__(self, scorer, movable: list[int], link: float, min_points: int, filter_weight: float,
                 gate_speed: float, gate_cosine: float, point_gate: bool = False, attach_m: float = 0.0,
                 filter_order: int = 1, max_aligned: int = 16):
        if not 0.0 < filter_weight <= 1.0:
            raise ValueError(f"the filter weight of a new measurement must be in (0, 1], got {filter_weight}")
        self.scorer, self.movable = scorer, list(movable)
        self.link, self.min_points = link, min_points
        self.filter = TrackFilter(filter_order, 1.0 - filter_weight)
        self.gate_speed, self.gate_cosine = gate_speed, gate_cosine
        self.point_gate = point_gate
        self.attach_m = attach_m
        self.max_aligned = max_aligned
        self.reset()

    def reset(self) -> None:
        self.previous: Objects | None = None

    def movable_mask(self, g: Gaussians4D) -> Tensor:
        """(N,) bool: the Gaussian is opaque enough, has a finite place and its best class is a movable one."""
        best = self.scorer(g.features).argmax(-1)
        return (torch.isin(best, torch.as_tensor(self.movable, device=best.device)) & (g.opacities >= MIN_OPACITY)
                & torch.isfinite(g.means).all(-1))

    @torch.inference_mode()
    def update(self, g: Gaussians4D, stamp: float, views: Views) -> Gaussians4D:
        """The Gaussians of the timestep at ``stamp`` (world frame, t0 = stamp) with the motion of
        their tracked objects (as many orders as both the filter and ``g`` have; higher ones are
        zero); every Gaussian in no moving object stands still."""
        chosen = self.movable_mask(g).nonzero()[:, 0]
        points = g.means[chosen].double().cpu().numpy()
        network_velocity = g.motion[chosen, 0].double().cpu().numpy() if g.degree else np.zeros_like(points)
        label, centres = group_points(points, self.link, self.min_points)
        tracks = np.full((len(centres), self.filter.order, 3), np.nan)
        moving = np.zeros(len(centres), bool)
        earlier = self.previous
        dt = stamp - earlier.stamp if earlier is not None else 0.0
        aligned = 0
        nearest_first = np.argsort(np.linalg.norm(centres - views.centre, axis=1), kind="stable")
        for j in nearest_first:
            if earlier is None or dt <= 0 or aligned == self.max_aligned:
                break  # beyond the budget, farther objects stand still for this timestep
            centre, mine = centres[j], label == j
            net = network_velocity[mine].mean(0)
            net_speed = np.linalg.norm(net)
            if net_speed < self.gate_speed:
                continue  # it could not move: not worth its alignment (most objects stand), and its track restarts
            m = measure(points[mine], centre, earlier, views, dt, direction=net)
            aligned += 1
            if m is None:
                continue
            before = earlier.motion[m.match]
            tracks[j] = self.filter.start(m.velocity) if np.isnan(before[0, 0]) else self.filter.update(before, m.velocity, dt)
            velocity = tracks[j, 0]
            agrees = net @ velocity > self.gate_cosine * net_speed * np.linalg.norm(velocity)
            moving[j] = m.gain > 0 and agrees
        self.previous = Objects(points, label, centres, tracks, views, stamp)

        motion = torch.zeros_like(g.motion)
        orders = min(self.filter.order, g.degree)
        if orders and moving.any():
            takes = (label >= 0) & moving[np.maximum(label, 0)]
            if self.point_gate:  # a Gaussian the network holds still keeps still
                takes &= np.linalg.norm(network_velocity, axis=1) > 0
            taken = tracks[label[takes], :orders]  # (T, orders, 3)
            index = chosen[torch.as_tensor(takes, device=chosen.device)]
            motion[index, :orders] = torch.as_tensor(taken, dtype=motion.dtype, device=motion.device)
            if self.attach_m > 0 and takes.any():
                others = torch.isfinite(g.means).all(-1)  # a Gaussian with no finite place is near nothing
                others[index] = False
                rest = others.nonzero()[:, 0]
                d, nearest = cKDTree(points[takes]).query(g.means[rest].double().cpu().numpy(),
                                                           distance_upper_bound=self.attach_m)
                near = np.isfinite(d)
                motion[rest[torch.as_tensor(near, device=rest.device)], :orders] = torch.as_tensor(
                    taken[nearest[near]], dtype=motion.dtype, device=motion.device)
        return replace(g, motion=motion)
