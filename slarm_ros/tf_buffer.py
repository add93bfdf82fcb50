"""A transform buffer with tf2's lookup semantics, for where tf2 is not installed (and for bags).

``lookup(target, source, stamp)`` returns the 4x4 transform that maps points in ``source`` into
``target`` at time ``stamp`` (tf2's lookup_transform). Dynamic edges are interpolated (linear
translation, spherical rotation) between the samples around ``stamp``; asking outside them is an
extrapolation error, as in tf2. Static edges hold for all times. ``stamp`` 0 means "the latest
time at which the whole chain is available".
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


class TransformError(LookupError):
    """No transform can be given; the message says why (tf2's wording where there is one)."""


class ConnectivityError(TransformError):
    pass


class ExtrapolationError(TransformError):
    pass


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation from a unit quaternion given as (x, y, z, w), ROS order."""
    q = np.array([w, x, y, z], dtype=float)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"invalid quaternion ({x}, {y}, {z}, {w})")
    w, x, y, z = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(x, y, z, w), ROS order, w >= 0."""
    m = R
    t = np.trace(m)
    if t > 0:
        s = np.sqrt(t + 1.0) * 2
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = np.array([0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s])
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = np.array([(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s])
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = np.array([(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def _slerp(q0: np.ndarray, q1: np.ndarray, w: float) -> np.ndarray:
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + w * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - w) * theta) * q0 + np.sin(w * theta) * q1) / np.sin(theta)


@dataclass
class _Edge:
    """Samples of child-in-parent transforms over time (or one static transform)."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)  # quaternions (x, y, z, w)

    def insert(self, stamp: float, T: np.ndarray, cache_time: float) -> None:
        q = matrix_to_quaternion(T[:3, :3])
        if self.static:
            self.stamps, self.translations, self.rotations = [0.0], [T[:3, 3].copy()], [q]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            self.translations[i], self.rotations[i] = T[:3, 3].copy(), q
        else:
            self.stamps.insert(i, stamp)
            self.translations.insert(i, T[:3, 3].copy())
            self.rotations.insert(i, q)
        # keep cache_time seconds behind the newest sample
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_time)
        if cut > 0:
            del self.stamps[:cut], self.translations[:cut], self.rotations[:cut]

    def at(self, stamp: float, child: str) -> np.ndarray:
        if self.static:
            t, q = self.translations[0], self.rotations[0]
        else:
            first, last = self.stamps[0], self.stamps[-1]
            if stamp > last:
                raise ExtrapolationError(
                    f"Lookup would require extrapolation into the future. Requested time {stamp:.6f} but the latest "
                    f"data is at time {last:.6f}, when looking up transform from frame [{child}] to frame [{self.parent}]")
            if stamp < first:
                raise ExtrapolationError(
                    f"Lookup would require extrapolation into the past. Requested time {stamp:.6f} but the earliest "
                    f"data is at time {first:.6f}, when looking up transform from frame [{child}] to frame [{self.parent}]")
            i = bisect.bisect_left(self.stamps, stamp)
            if self.stamps[i] == stamp:
                t, q = self.translations[i], self.rotations[i]
            else:
                s0, s1 = self.stamps[i - 1], self.stamps[i]
                w = (stamp - s0) / (s1 - s0)
                t = (1 - w) * self.translations[i - 1] + w * self.translations[i]
                q = _slerp(self.rotations[i - 1], self.rotations[i], w)
        T = np.eye(4)
        T[:3, :3] = quaternion_to_matrix(*q)
        T[:3, 3] = t
        return T

    @property
    def latest(self) -> float:
        return float("inf") if self.static else self.stamps[-1]


class TransformBuffer:
    """Frames form a tree (each child has one parent); lookups compose edges through the common ancestor."""

    def __init__(self, cache_time: float = 10.0):
        self.cache_time = cache_time
        self.edges: dict[str, _Edge] = {}

    def set_transform(self, parent: str, child: str, stamp: float, T: np.ndarray, static: bool = False) -> None:
        """Add child-in-parent ``T`` (4x4, maps child coordinates to parent) at ``stamp`` seconds."""
        if not parent or not child or parent == child:
            raise ValueError(f"invalid frames: parent '{parent}', child '{child}'")
        T = np.asarray(T, dtype=float)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"transform {parent} -> {child} is not a finite 4x4 matrix")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
            raise ValueError(f"transform {parent} -> {child} has a rotation that is not orthonormal")
        edge = self.edges.get(child)
        if edge is None or edge.static != static or edge.parent != parent:
            # A new parent or a switch between static and dynamic starts the edge afresh (tf2 re-parents too).
            edge = self.edges[child] = _Edge(parent=parent, static=static)
        edge.insert(float(stamp), T, self.cache_time)

    def clear(self) -> None:
        """Forget dynamic transforms (after time jumps back); static ones stay."""
        self.edges = {k: e for k, e in self.edges.items() if e.static}

    def frames(self) -> set[str]:
        return set(self.edges) | {e.parent for e in self.edges.values()}

    def _chain(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self.edges:
            chain.append(self.edges[chain[-1]].parent)
            if len(chain) > 100:
                raise ConnectivityError(f"frame '{frame}' is in a loop of transforms")
        return chain

    def lookup(self, target: str, source: str, stamp: float = 0.0) -> np.ndarray:
        """4x4 transform mapping points in ``source`` to ``target`` at ``stamp`` (0: latest common time)."""
        if target == source:
            return np.eye(4)
        known = self.frames()
        for frame in (target, source):
            if frame not in known:
                raise ConnectivityError(f'"{frame}" passed to lookupTransform argument is not in the buffer '
                                        f"(known frames: {sorted(known)})")
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise ConnectivityError(f"Could not find a connection between '{target}' and '{source}' because they "
                                    "are not part of the same tree")
        path_s = up_source[: up_source.index(common)]
        path_t = up_target[: up_target.index(common)]
        if stamp == 0:
            stamp = min([self.edges[f].latest for f in path_s + path_t] + [float("inf")])
            if stamp == float("inf"):
                stamp = 0.0
        source_to_common = np.eye(4)
        for frame in path_s:
            source_to_common = self.edges[frame].at(stamp, frame) @ source_to_common
        target_to_common = np.eye(4)
        for frame in path_t:
            target_to_common = self.edges[frame].at(stamp, frame) @ target_to_common
        return np.linalg.inv(target_to_common) @ source_to_common

    def can_transform(self, target: str, source: str, stamp: float = 0.0) -> bool:
        try:
            self.lookup(target, source, stamp)
            return True
        except TransformError:
            return False
