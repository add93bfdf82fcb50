"""Prints the last slarm_node diagnostics values as JSON after listening for a while.

usage: diagnostics_listener.py SECONDS
"""
import json
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray

from finish import finish


def main():
    seconds = float(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("diagnostics_listener")
    last = {}

    def on_diag(msg):
        for status in msg.status:
            if "slarm_node" in status.name:
                last.clear()
                last.update({kv.key: kv.value for kv in status.values}, level=int.from_bytes(status.level, "little")
                            if isinstance(status.level, bytes) else int(status.level), message=status.message)

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(last))
    finish(node)


if __name__ == "__main__":
    main()
