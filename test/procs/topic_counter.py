"""Counts messages on topics until the expected counts arrive or time runs out; prints JSON.

usage: topic_counter.py TIMEOUT_S TOPIC=pkg/msg/Type=EXPECTED [...]
/tf_static is subscribed transient-local (as tf2 does); everything else reliable, deep queue.
"""
import importlib
import json
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from finish import finish


def main():
    timeout = float(sys.argv[1])
    specs = [arg.split("=") for arg in sys.argv[2:]]
    rclpy.init()
    node = Node("topic_counter")
    counts = {topic: 0 for topic, _, _ in specs}
    stamps = {topic: [] for topic, _, _ in specs}
    for topic, typename, _ in specs:
        package, kind, name = typename.split("/")
        cls = getattr(importlib.import_module(f"{package}.{kind}"), name)
        latched = topic == "/tf_static"
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1 if latched else 1000,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

        def callback(msg, topic=topic):
            counts[topic] += 1
            stamp = getattr(getattr(msg, "header", None), "stamp", None) or getattr(msg, "clock", None)
            if stamp is not None:
                stamps[topic].append(stamp.sec + stamp.nanosec * 1e-9)

        node.create_subscription(cls, topic, callback, qos)
    expected = {topic: int(n) for topic, _, n in specs}
    hashes = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(counts[t] < expected[t] for t in counts):
        rclpy.spin_once(node, timeout_sec=0.05)
        for topic in counts:
            if topic not in hashes:
                infos = node.get_publishers_info_by_topic(topic)
                if infos:
                    hashes[topic] = str(infos[0].topic_type_hash)
    print(json.dumps({"counts": counts, "hashes": hashes,
                      "first_last": {t: [s[0], s[-1]] if s else None for t, s in stamps.items()}}))
    finish(node)


if __name__ == "__main__":
    main()
