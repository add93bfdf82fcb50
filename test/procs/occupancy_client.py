"""Receives one SemanticOccupancy, calls SetQueries, and prints both as one JSON line."""
import json
import sys
import time

import rclpy
from rclpy.node import Node
from slarm_msgs.msg import SemanticOccupancy
from slarm_msgs.srv import SetQueries

from finish import finish

TIMEOUT_S = 30.0


def main():
    rclpy.init()
    node = Node("occupancy_client")
    received = []
    node.create_subscription(SemanticOccupancy, "semantic_occupancy", received.append, 10)
    deadline = time.monotonic() + TIMEOUT_S
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not received:
        sys.exit("no SemanticOccupancy received")
    msg = received[0]

    client = node.create_client(SetQueries, "query")
    if not client.wait_for_service(timeout_sec=TIMEOUT_S):
        sys.exit("query service not available")
    future = client.call_async(SetQueries.Request(queries=["car", "person walking", "ümlaut"], threshold=0.25))
    rclpy.spin_until_future_complete(node, future, timeout_sec=TIMEOUT_S)
    if not future.done():
        sys.exit("query service did not answer")
    resp = future.result()
    print(json.dumps({
        "occupancy": {
            "stamp": [msg.header.stamp.sec, msg.header.stamp.nanosec],
            "frame_id": msg.header.frame_id,
            "query": msg.query,
            "voxel_size": msg.voxel_size,
            "origin": [msg.origin.x, msg.origin.y, msg.origin.z],
            "size": [msg.size_x, msg.size_y, msg.size_z],
            "threshold": msg.threshold,
            "indices": list(msg.indices),
            "scores": list(msg.scores),
            "counts": list(msg.counts),
        },
        "response": {
            "success": resp.success,
            "message": resp.message,
            "stats": [[s.query, s.matched_points, s.occupied_voxels, s.max_score, s.mean_score]
                      for s in resp.stats],
        },
    }))
    finish(node)


if __name__ == "__main__":
    main()
