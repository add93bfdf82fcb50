"""A subscriber in its own process: arrival time minus header stamp of ~/points, plus the node's diagnostics.

usage: python -m slarm_ros.eval.latency_probe NODE IDLE_S MAX_S   (prints one JSON line at the end)
"""
from __future__ import annotations

import json
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2

from ..bag.messages import TYPESTORE, cdr_header_stamp


def main() -> int:
    node_name, idle, longest = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("latency_probe")
    latencies, points, diag = [], [], {}
    last = {"t": None}

    def on_points(raw: bytes) -> None:
        now = time.time()  # on arrival: decoding the cloud is the probe's work, not the node's
        latencies.append((now - cdr_header_stamp(raw)) * 1000)
        points.append(int(TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2").width))
        last["t"] = time.monotonic()

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(node_name.strip("/")):
                diag.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(PointCloud2, f"{node_name}/points", on_points,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE), raw=True)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    started = time.monotonic()
    while time.monotonic() - started < longest:
        rclpy.spin_once(node, timeout_sec=0.02)
        if last["t"] is not None and time.monotonic() - last["t"] > idle:
            break
    print(json.dumps({"latency_ms": latencies, "points": points, "diagnostics": diag}))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
