"""rosbags message objects (Kilted type store) for what slarm_ros writes, and back."""
from __future__ import annotations

import struct

import numpy as np
from rosbags.typesys import Stores, get_typestore

from ..tf_buffer import matrix_to_quaternion, quaternion_to_matrix
from . import images

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
T = TYPESTORE.types


def ros_time(stamp: float):
    sec = int(np.floor(stamp))
    nanosec = int(round((stamp - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def cdr_header_stamp(raw: bytes) -> float:
    """Header stamp (s) of a serialized message that starts with std_msgs/Header, without deserializing it.

    CDR: a 4-byte encapsulation header (byte 1: 0 big-endian, 1 little-endian), then the stamp's
    int32 sec and uint32 nanosec.
    """
    if len(raw) < 12 or raw[1] not in (0, 1):
        raise ValueError(f"not a CDR message with a header ({len(raw)} bytes)")
    sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
    return sec + nanosec * 1e-9


def set_cdr_header_stamp(raw: bytes, sec: int, nanosec: int) -> bytes:
    """A copy of a serialized message that starts with std_msgs/Header, with the stamp replaced."""
    cdr_header_stamp(raw)  # checks that it is CDR
    out = bytearray(raw)
    struct.pack_into("<iI" if out[1] == 1 else ">iI", out, 4, sec, nanosec)
    return bytes(out)


def to_seconds(time_msg) -> float:
    return time_msg.sec + time_msg.nanosec * 1e-9


def header(stamp: float, frame_id: str):
    return T["std_msgs/msg/Header"](stamp=ros_time(stamp), frame_id=frame_id)


def image(stamp: float, frame_id: str, array: np.ndarray, encoding: str):
    return T["sensor_msgs/msg/Image"](header=header(stamp, frame_id), **images.encode(array, encoding))


def camera_info(stamp: float, frame_id: str, K: np.ndarray, width: int, height: int):
    K = np.asarray(K, dtype=np.float64)
    P = np.zeros((3, 4))
    P[:, :3] = K
    return T["sensor_msgs/msg/CameraInfo"](
        header=header(stamp, frame_id), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def transform_stamped(stamp: float, parent: str, child: str, M: np.ndarray):
    x, y, z, w = matrix_to_quaternion(M[:3, :3])
    return T["geometry_msgs/msg/TransformStamped"](
        header=header(stamp, parent), child_frame_id=child,
        transform=T["geometry_msgs/msg/Transform"](
            translation=T["geometry_msgs/msg/Vector3"](x=float(M[0, 3]), y=float(M[1, 3]), z=float(M[2, 3])),
            rotation=T["geometry_msgs/msg/Quaternion"](x=float(x), y=float(y), z=float(z), w=float(w))))


def tf_message(stamp: float, transforms: list[tuple[str, str, np.ndarray]]):
    return T["tf2_msgs/msg/TFMessage"](transforms=[transform_stamped(stamp, p, c, M) for p, c, M in transforms])


def transform_matrix(ts) -> np.ndarray:
    """4x4 child-in-parent matrix of a geometry_msgs/TransformStamped (rclpy's or rosbags')."""
    t, q = ts.transform.translation, ts.transform.rotation
    M = np.eye(4)
    M[:3, :3] = quaternion_to_matrix(q.x, q.y, q.z, q.w)
    M[:3, 3] = [t.x, t.y, t.z]
    return M


def string(text: str):
    return T["std_msgs/msg/String"](data=text)


def intrinsics(info) -> np.ndarray:
    """3x3 K of a CameraInfo (rclpy's or rosbags')."""
    return np.array(info.k, dtype=np.float64).reshape(3, 3)
