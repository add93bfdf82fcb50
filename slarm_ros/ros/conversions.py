"""Engine products -> ROS messages: PointCloud2, MarkerArray, OccupancyGrid, SemanticOccupancy."""
from __future__ import annotations

import array

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from nav_msgs.msg import MapMetaData, OccupancyGrid
from sensor_msgs.msg import PointCloud2, PointField
from slarm_msgs.msg import QueryStats, SemanticOccupancy
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..semantics.occupancy import QueryOccupancy

# x y z rgb label score vx vy vz: the layout sensor_msgs_py, RViz and PCL read (rgb packed in a float32).
POINT_FIELDS = [
    ("x", PointField.FLOAT32), ("y", PointField.FLOAT32), ("z", PointField.FLOAT32), ("rgb", PointField.FLOAT32),
    ("label", PointField.INT32), ("score", PointField.FLOAT32),
    ("vx", PointField.FLOAT32), ("vy", PointField.FLOAT32), ("vz", PointField.FLOAT32),
]
POINT_DTYPE = np.dtype([(name, "<f4" if kind == PointField.FLOAT32 else "<i4") for name, kind in POINT_FIELDS])


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) floats in [0, 1] -> (N,) float32 holding 0x00RRGGBB, as RViz's RGB8 channel expects."""
    c = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint32)
    return ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).view(np.float32)


def point_cloud(header: Header, xyz: np.ndarray, rgb: np.ndarray, label: np.ndarray, score: np.ndarray,
                velocity: np.ndarray) -> PointCloud2:
    """An unorganised cloud (height 1) of N points; label -1 = no active query matched."""
    data = np.empty(len(xyz), POINT_DTYPE)
    data["x"], data["y"], data["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    data["rgb"] = pack_rgb(rgb)
    data["label"], data["score"] = label, score
    data["vx"], data["vy"], data["vz"] = velocity[:, 0], velocity[:, 1], velocity[:, 2]
    fields = [PointField(name=name, offset=POINT_DTYPE.fields[name][1], datatype=kind, count=1)
              for name, kind in POINT_FIELDS]
    return PointCloud2(header=header, height=1, width=len(xyz), fields=fields, is_bigendian=False,
                       point_step=POINT_DTYPE.itemsize, row_step=POINT_DTYPE.itemsize * len(xyz),
                       data=data.tobytes(), is_dense=bool(np.isfinite(xyz).all()))


def _speed_color(speed: float, top: float = 12.0) -> ColorRGBA:
    x = min(max(speed / top, 0.0), 1.0)  # blue (slow) -> yellow -> red (fast)
    return ColorRGBA(r=min(1.0, 2 * x), g=min(1.0, 2 * (1 - x)) if x > 0.5 else 2 * x, b=max(0.0, 1 - 2 * x), a=1.0)


def flow_markers(header: Header, xyz: np.ndarray, velocity: np.ndarray, stride: int, min_speed: float,
                 arrow_seconds: float, namespace: str = "scene_flow") -> MarkerArray:
    """Arrows from moving points along their velocity (length = velocity x arrow_seconds).

    The array starts with DELETEALL, so markers of earlier timesteps never linger.
    """
    markers = [Marker(header=header, ns=namespace, id=0, action=Marker.DELETEALL)]
    speed = np.linalg.norm(velocity, axis=1)
    moving = np.flatnonzero(speed >= min_speed)[:: max(1, stride)]
    for i, k in enumerate(moving):
        start = xyz[k]
        end = start + velocity[k] * arrow_seconds
        markers.append(Marker(
            header=header, ns=namespace, id=i + 1, type=Marker.ARROW, action=Marker.ADD,
            points=[Point(x=float(start[0]), y=float(start[1]), z=float(start[2])),
                    Point(x=float(end[0]), y=float(end[1]), z=float(end[2]))],
            scale=Vector3(x=0.06, y=0.15, z=0.15), color=_speed_color(float(speed[k])),
            pose=Pose(orientation=Quaternion(w=1.0)),
        ))
    return MarkerArray(markers=markers)


def semantic_occupancy(header: Header, occ: QueryOccupancy) -> SemanticOccupancy:
    grid = occ.grid
    return SemanticOccupancy(
        header=header, query=occ.query, voxel_size=float(grid.voxel_size),
        origin=Point(x=float(grid.origin[0]), y=float(grid.origin[1]), z=float(grid.origin[2])),
        size_x=grid.shape[0], size_y=grid.shape[1], size_z=grid.shape[2], threshold=float(occ.threshold),
        indices=occ.indices.astype(np.uint32), scores=occ.scores.astype(np.float32),
        counts=occ.counts.astype(np.uint32),
    )


def occupancy_grid(header: Header, occ: QueryOccupancy) -> OccupancyGrid:
    """Bird's-eye slice: 100 where a column holds a matching voxel, 0 elsewhere."""
    grid = occ.grid
    nx, ny, _ = grid.shape
    bev = occ.bev()
    cells = np.where(np.isnan(bev), 0, 100).astype(np.int8)
    info = MapMetaData(resolution=float(grid.voxel_size), width=nx, height=ny,
                       origin=Pose(position=Point(x=float(grid.origin[0]), y=float(grid.origin[1]),
                                                  z=float(grid.origin[2])),
                                   orientation=Quaternion(w=1.0)))
    info.map_load_time = header.stamp
    grid_msg = OccupancyGrid(header=header, info=info)
    grid_msg.data = array.array("b", cells.reshape(-1).tobytes())  # int8[]: an array, not a list of ints
    return grid_msg


def query_stats(occ: QueryOccupancy | None, query: str) -> QueryStats:
    if occ is None:
        return QueryStats(query=query, matched_points=0, occupied_voxels=0, max_score=float("nan"),
                          mean_score=float("nan"))
    return QueryStats(query=query, matched_points=occ.matched_points, occupied_voxels=len(occ.indices),
                      max_score=occ.max_score, mean_score=occ.mean_score)
