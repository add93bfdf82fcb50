"""Receives one TFMessage on /tf and prints it, with the wire type hash, as JSON."""
import json
import sys
import time

import rclpy
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from finish import finish

TIMEOUT_S = 30.0


def main():
    rclpy.init()
    node = Node("tf_listener")
    received = []
    node.create_subscription(TFMessage, "/tf", received.append, 100)
    deadline = time.monotonic() + TIMEOUT_S
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not received:
        sys.exit("no TFMessage received on /tf")
    hashes = sorted({str(info.topic_type_hash) for info in node.get_publishers_info_by_topic("/tf")})
    print(json.dumps({
        "type_hashes": hashes,
        "transforms": [
            {
                "stamp": [t.header.stamp.sec, t.header.stamp.nanosec],
                "parent": t.header.frame_id,
                "child": t.child_frame_id,
                "translation": [t.transform.translation.x, t.transform.translation.y, t.transform.translation.z],
                "rotation": [t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
                             t.transform.rotation.w],
            }
            for t in received[0].transforms
        ],
    }))
    finish(node)


if __name__ == "__main__":
    main()
