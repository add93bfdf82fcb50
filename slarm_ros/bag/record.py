"""Record live topics into a bag: serialized messages as they arrive, never deserialized.

Types are taken from the ROS graph once a publisher appears; a topic's messages are written with
the receive time as the bag time (as ``ros2 bag record`` does). Stops after ``duration`` seconds,
after ``idle`` seconds without messages (once some arrived), or on SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from rosbags.typesys import get_types_from_msg

from .messages import TYPESTORE
from .replay import message_class
from .writer import BagWriter


def register_local_types() -> None:
    """Teach the rosbags type store slarm_msgs' types (from the installed .msg files)."""
    import os

    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(":"):
        folder = Path(prefix) / "share" / "slarm_msgs" / "msg"
        if folder.is_dir():
            types = {}
            for msg in folder.glob("*.msg"):
                types.update(get_types_from_msg(msg.read_text(), f"slarm_msgs/msg/{msg.stem}"))
            TYPESTORE.register(types)
            return


def record(out: str | Path, topics: list[str], duration: float = 0.0, idle: float = 0.0, log=print) -> dict[str, int]:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    register_local_types()
    rclpy.init()
    node = rclpy.create_node("slarm_recorder")
    counts = {t: 0 for t in topics}
    stop = {"now": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.__setitem__("now", True))
    writer = BagWriter(out)
    writer.__enter__()
    subscribed = {}
    last_message = None
    started = time.monotonic()

    def on_message(topic: str, typename: str, data: bytes) -> None:
        nonlocal last_message
        writer.write_raw(topic, typename, time.time(), data)
        counts[topic] += 1
        last_message = time.monotonic()

    try:
        while not stop["now"]:
            known = dict(node.get_topic_names_and_types())
            for topic in topics:
                if topic not in subscribed and topic in known:
                    typename = known[topic][0]
                    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
                    subscribed[topic] = node.create_subscription(
                        message_class(typename), topic, lambda data, t=topic, ty=typename: on_message(t, ty, data),
                        qos, raw=True)
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if duration and now - started > duration:
                break
            if idle and last_message is not None and now - last_message > idle:
                break
    finally:
        writer.__exit__(None, None, None)
        node.destroy_node()
        rclpy.try_shutdown()
    log(f"recorded {sum(counts.values())} messages into {out}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="bag folder to create")
    parser.add_argument("--topics", nargs="+", required=True)
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    parser.add_argument("--idle", type=float, default=0.0, help="stop this long after the last message (0: never)")


def run(args: argparse.Namespace) -> int:
    record(args.out, args.topics, args.duration, args.idle)
    return 0

