"""Camera poses from TF: tf2_ros where the environment has it, else the built-in buffer on /tf and /tf_static."""
from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time

from ..bag.messages import transform_matrix
from ..tf_buffer import ExtrapolationError, TransformBuffer, TransformError

try:  # a ROS 2 distribution provides tf2_ros; the PyPI wheels do not
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the environment
    tf2_ros = None

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class TransformSource:
    """``lookup(target, source, stamp)`` -> 4x4 mapping source coordinates to target; TransformError if not."""

    def __init__(self, node: Node, cache_time: float = 10.0, prefer_tf2: bool = True):
        self.node = node
        self.rejected = 0
        if tf2_ros is not None and prefer_tf2:
            self.backend = "tf2_ros"
            self._tf2 = tf2_ros.Buffer(cache_time=Duration(seconds=cache_time))
            self._listener = tf2_ros.TransformListener(self._tf2, node)
        else:
            from tf2_msgs.msg import TFMessage

            self.backend = "built-in"
            self._buffer = TransformBuffer(cache_time=cache_time)
            self._arrived = threading.Condition()
            node.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), TF_QOS)
            node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), TF_STATIC_QOS)

    def _on_tf(self, msg, static: bool) -> None:
        with self._arrived:
            self._insert(msg, static)
            self._arrived.notify_all()

    def _insert(self, msg, static: bool) -> None:
        for ts in msg.transforms:
            try:
                self._buffer.set_transform(ts.header.frame_id, ts.child_frame_id,
                                           ts.header.stamp.sec + ts.header.stamp.nanosec * 1e-9,
                                           transform_matrix(ts), static=static)
            except ValueError as e:
                self.rejected += 1
                self.node.get_logger().warning(f"rejected transform: {e}", throttle_duration_sec=5.0)

    def lookup(self, target: str, source: str, stamp: float, timeout: float = 0.0) -> np.ndarray:
        """Wait up to ``timeout`` seconds for the transform (TF can arrive after the images it poses)."""
        if self.backend == "built-in":
            deadline = time.monotonic() + timeout
            with self._arrived:
                while True:
                    try:
                        return self._buffer.lookup(target, source, stamp)
                    except ExtrapolationError:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or not self._buffer.frames():
                            raise
                        self._arrived.wait(remaining)
        try:
            ts = self._tf2.lookup_transform(target, source, Time(nanoseconds=int(round(stamp * 1e9))),
                                            timeout=Duration(seconds=timeout))
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException, tf2_ros.ExtrapolationException) as e:
            raise TransformError(str(e)) from e
        return transform_matrix(ts)

    def clear(self) -> None:
        if self.backend == "built-in":
            with self._arrived:
                self._buffer.clear()
        else:
            self._tf2.clear()
