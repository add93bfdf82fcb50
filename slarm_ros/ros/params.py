"""slarm_node's parameters: one dataclass, declared one-to-one as ROS parameters (config/driving.yaml).

The LIVE ones may be set while the node runs (``ros2 param set``) and apply from the next
timestep; the others decide what the node loads, subscribes to and publishes on, and are declared
read-only, so ROS refuses a change to them with a reason instead of storing a value the node
does not use.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..semantics.occupancy import GridSpec

DESCRIPTIONS = {
    "cameras": "camera names, in the order the model's cameras were trained (front, front_left, front_right)",
    "image_topic": "image topic per camera; {camera} is replaced by its name",
    "camera_info_topic": "CameraInfo topic per camera; {camera} is replaced by its name",
    "world_frame": "frame of every output (REP 105 map by default); camera poses are looked up in it",
    "sync_slop": "seconds within which the images of all cameras count as one timestep",
    "tf_timeout": "seconds to wait for a camera pose that TF has not delivered yet",
    "input_queue": "synchronised timesteps waiting for the engine; the oldest is dropped when full",
    "device": "auto (CUDA where present), cpu or cuda",
    "checkpoint": "model weights (.safetensors); empty: the model shipped with the package",
    "window": "timesteps of the attention window; 0: the model's own",
    "input_qos": "QoS of the image and camera_info subscriptions (SENSOR_DATA, RELIABLE, ...)",
    "output_qos": "QoS of the outputs (SYSTEM_DEFAULT, RELIABLE, BEST_EFFORT, ...)",
    "min_opacity": "Gaussians less opaque than this are not published as points",
    "flow_stride": "one flow arrow per this many moving points",
    "flow_min_speed": "points slower than this (m/s) get no flow arrow",
    "flow_arrow_seconds": "arrow length = velocity x this (s)",
    "voxel_size": "edge of a semantic-occupancy voxel (m)",
    "occupancy_half_extent": "the occupancy grid spans this far (m) around the first camera in x and y",
    "occupancy_z_min": "bottom of the occupancy grid, relative to the first camera's height (m)",
    "occupancy_z_max": "top of the occupancy grid, relative to the first camera's height (m)",
    "queries": "natural-language queries active at start (the ~/query service changes them)",
    "score_threshold": "cosine similarity a point or voxel needs to match a query, at start and for ~/query "
                       "requests that give none (the ~/query service changes it)",
}
LIVE = ("sync_slop", "tf_timeout", "input_queue", "min_opacity", "flow_stride", "flow_min_speed", "flow_arrow_seconds",
        "voxel_size", "occupancy_half_extent", "occupancy_z_min", "occupancy_z_max")
# The occupancy grid's size: SemanticOccupancy numbers voxels with uint32, and the bird's-eye
# OccupancyGrid holds one byte per column.
MAX_VOXELS = 2**32 - 1
MAX_COLUMNS = 4096 * 4096


@dataclass
class NodeParams:
    cameras: list[str] = field(default_factory=lambda: ["front", "front_left", "front_right"])
    image_topic: str = "/cameras/{camera}/image_raw"
    camera_info_topic: str = "/cameras/{camera}/camera_info"
    world_frame: str = "map"
    sync_slop: float = 0.02
    tf_timeout: float = 0.2
    input_queue: int = 2
    device: str = "auto"
    checkpoint: str = ""
    window: int = 0
    input_qos: str = "SENSOR_DATA"
    output_qos: str = "SYSTEM_DEFAULT"
    min_opacity: float = 0.1
    flow_stride: int = 8
    flow_min_speed: float = 0.5
    flow_arrow_seconds: float = 0.5
    voxel_size: float = 0.5
    occupancy_half_extent: float = 40.0
    occupancy_z_min: float = -2.5
    occupancy_z_max: float = 2.0
    queries: list[str] = field(default_factory=lambda: ["car"])
    score_threshold: float = 0.75

    def validate(self) -> None:
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be distinct names, got {self.cameras}")
        for name in ("image_topic", "camera_info_topic"):
            if "{camera}" not in getattr(self, name):
                raise ValueError(f"{name} must contain '{{camera}}', got '{getattr(self, name)}'")
        for name in ("sync_slop", "voxel_size", "occupancy_half_extent", "flow_arrow_seconds"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be positive and finite, got {getattr(self, name)}")
        for name in ("tf_timeout", "flow_min_speed"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {getattr(self, name)}")
        if not 0 <= self.min_opacity <= 1:
            raise ValueError(f"min_opacity must be in [0, 1], got {self.min_opacity}")
        if self.input_queue < 1 or self.flow_stride < 1 or self.window < 0:
            raise ValueError("input_queue and flow_stride must be >= 1, window >= 0")
        if not (math.isfinite(self.occupancy_z_min) and math.isfinite(self.occupancy_z_max)
                and self.occupancy_z_max > self.occupancy_z_min):
            raise ValueError("occupancy_z_min and occupancy_z_max must be finite, z_max above z_min")
        nx, ny, layers = GridSpec.around(np.zeros(3), self.occupancy_half_extent, self.occupancy_z_min,
                                         self.occupancy_z_max, self.voxel_size).shape
        columns = nx * ny
        if columns > MAX_COLUMNS or columns * layers > MAX_VOXELS:
            raise ValueError(f"the occupancy grid would hold {columns} columns of {layers} voxels; at most "
                             f"{MAX_COLUMNS} columns and {MAX_VOXELS} voxels (a larger voxel_size or a smaller "
                             "occupancy_half_extent)")
        if not -1.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [-1, 1], got {self.score_threshold}")


def declare(node: Node) -> NodeParams:
    """Declare every field as a parameter (defaults from the dataclass) and read the values back."""
    defaults = NodeParams()
    values = {}
    for f in dataclasses.fields(NodeParams):
        default = getattr(defaults, f.name)
        descriptor = ParameterDescriptor(description=DESCRIPTIONS[f.name], read_only=f.name not in LIVE)
        if isinstance(default, list):
            param = node.declare_parameter(f.name, Parameter.Type.STRING_ARRAY, descriptor)
            value = param.value if param.value is not None else default
            values[f.name] = list(value)
        else:
            values[f.name] = node.declare_parameter(f.name, default, descriptor).value
    params = NodeParams(**values)
    params.validate()
    return params


def with_changes(params: NodeParams, changes: dict) -> NodeParams:
    """``params`` with run-time ``changes`` (name -> value) applied and validated together.

    Raises ValueError, with the reason, for a name that is not LIVE or for values that do not
    validate; ``params`` itself never changes.
    """
    fixed = sorted(set(changes) - set(LIVE))
    if fixed:
        raise ValueError(f"{fixed} cannot change while the node runs; restart it with the new value")
    updated = dataclasses.replace(params, **changes)
    updated.validate()
    return updated
