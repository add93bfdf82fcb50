"""Topic and frame names of slarm_ros bags (and the node's default inputs)."""
from __future__ import annotations

MAP = "map"
BASE_LINK = "base_link"
TF = "/tf"
TF_STATIC = "/tf_static"
CLASSES = "/gt/classes"  # std_msgs/String: JSON list of class names, index = class id
GROUND_TRUTH = ("depth", "semantic", "flow", "dynamic", "lidar")
# Camera names of a surround rig, in the order models take them (the first three: the forward rig).
CAMERA_ORDER = ("front", "front_left", "front_right", "side_left", "side_right", "rear")


def image_topic(camera: str) -> str:
    return f"/cameras/{camera}/image_raw"


def info_topic(camera: str) -> str:
    return f"/cameras/{camera}/camera_info"


def gt_topic(camera: str, kind: str) -> str:
    """/gt/<camera>/<kind>: depth (32FC1 m), semantic (mono8 class ids), flow (32FC3 m/s, world frame),
    dynamic (mono8 0/1), lidar (32FC1 sparse depth m, 0 = none)."""
    return f"/gt/{camera}/{kind}"


def optical_frame(camera: str) -> str:
    return f"{camera}_optical_frame"
