"""Replay a bag onto live ROS 2 topics with rclpy, publishing ``/clock``.

Messages are sent as the bag stores them (serialized CDR bytes, never deserialized), at the
bag's pace scaled by ``rate``. ``/tf_static`` and other latched topics are offered as
transient-local so that late subscribers get them; everything else is reliable with a deep
queue. ``/clock`` follows the bag time, so nodes with ``use_sim_time`` see the recorded stamps.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from .messages import ros_time, set_cdr_header_stamp
from .reader import BagError, open_reader
from . import topics as bag_topics

LATCHED_TOPICS = (bag_topics.TF_STATIC, bag_topics.CLASSES)


def message_class(typename: str):
    """The rclpy message class for 'pkg/msg/Name'."""
    package, kind, name = typename.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as e:
        raise BagError(f"message type {typename} is not available in this ROS 2 environment: {e}") from e


@dataclass
class ReplayStats:
    messages: int = 0
    clock_messages: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0
    loops: int = 0


@functools.lru_cache(maxsize=None)
def _starts_with_header(msgtype: str) -> bool:
    fields = message_class(msgtype).get_fields_and_field_types()
    return next(iter(fields.items()), (None, None)) == ("header", "std_msgs/Header")


def _restamped(raw, conn, now: float) -> bytes:
    """The message with its header stamps set to ``now`` (static transforms keep theirs).

    A message that starts with a std_msgs/Header (images, camera_info) gets its stamp written
    into the CDR bytes in place: decoding and encoding a camera image would delay it by
    milliseconds, which a live camera driver does not.
    """
    from builtin_interfaces.msg import Time
    from rclpy.serialization import deserialize_message, serialize_message

    if conn.topic in LATCHED_TOPICS:
        return bytes(raw)
    when = ros_time(now)
    if _starts_with_header(conn.msgtype):
        return set_cdr_header_stamp(raw, when.sec, when.nanosec)
    msg = deserialize_message(bytes(raw), message_class(conn.msgtype))
    stamp = Time(sec=when.sec, nanosec=when.nanosec)
    if hasattr(msg, "header"):
        msg.header.stamp = stamp
    for ts in getattr(msg, "transforms", []):
        ts.header.stamp = stamp
    return serialize_message(msg)


def _timesteps(reader, conns):
    """The bag's messages grouped by receive timestamp: (timestamp ns, [(connection, raw), ...])."""
    group, current = [], None
    for conn, timestamp, raw in reader.messages(connections=conns):
        if group and timestamp != current:
            yield current, group
            group = []
        current = timestamp
        group.append((conn, bytes(raw)))  # held past the reader's next step
    if group:
        yield current, group


def _wait_for_matches(node, publishers: dict, minimum: float, maximum: float, log,
                      required: tuple[str, ...] = ()) -> None:
    """Wait until every subscriber seen in the graph is matched to our publishers, and stays so.

    Endpoint discovery can take seconds per publisher-subscriber pair; messages published before
    a pair is matched are lost to that subscriber. Waits at least ``minimum`` and at most
    ``maximum`` seconds; the graph must be steady for half a second. Topics in ``required`` must
    have at least one matched subscriber.
    """
    import rclpy

    started = time.monotonic()
    steady_since, last = None, None
    while True:
        rclpy.spin_once(node, timeout_sec=0.05)
        state = tuple((t, node.count_subscribers(t), p.get_subscription_count()) for t, p in publishers.items())
        now = time.monotonic()
        if state != last:
            steady_since, last = now, state
        matched = all(seen <= ours for _, seen, ours in state) and all(
            publishers[t].get_subscription_count() > 0 for t in required if t in publishers)
        if now - started >= minimum and matched and now - steady_since >= 0.5:
            return
        if now - started >= maximum:
            missing = [t for t, seen, ours in state if ours < seen or (t in required and ours == 0)]
            log(f"starting with unmatched subscribers on {missing} after {maximum:.0f} s")
            return


def replay(path: str | Path, rate: float = 1.0, include: list[str] | None = None, exclude_prefixes=("/gt/",),
           clock: bool = True, start_delay: float = 3.0, loops: int = 1, node=None, log=print,
           max_wait: float = 15.0, wait_topics: tuple[str, ...] = (), restamp: bool = False) -> ReplayStats:
    """Publish the bag's messages; returns counts and timing. ``node``: an rclpy Node to publish from.

    ``restamp``: behave like live drivers instead: header stamps (images, camera_info, /tf) become
    the wall-clock time at which the timestep is published, so that end-to-end latency can be
    measured; messages are then deserialized and serialized again, and no /clock is sent.
    """
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from builtin_interfaces.msg import Time

    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    own_node = node is None
    if own_node:
        rclpy.init()
        node = rclpy.create_node("slarm_bag_player")
    stats = ReplayStats()
    try:
        reader = open_reader(path)
        try:
            conns = [c for c in reader.connections
                     if (include is None or c.topic in include) and not any(c.topic.startswith(p) for p in exclude_prefixes)]
            if not conns:
                raise BagError(f"bag {path}: nothing to replay (topics {sorted(reader.topics)})")
            publishers = {}
            for c in conns:
                if c.topic in publishers:
                    continue
                latched = c.topic in LATCHED_TOPICS
                qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1 if latched else 1000,
                                 reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
                publishers[c.topic] = node.create_publisher(message_class(c.msgtype), c.topic, qos)
            clock_pub = node.create_publisher(Clock, "/clock", 100) if clock and not restamp else None
            log(f"replaying {path}: {len(publishers)} topics at rate {rate}")
            _wait_for_matches(node, publishers, start_delay, max_wait, log, tuple(wait_topics))
            started = time.monotonic()
            for loop in range(loops):
                wall0, epoch0 = time.monotonic(), time.time()
                bag0 = None
                last_clock = None
                for timestamp, group in _timesteps(reader, conns):
                    bag0 = timestamp if bag0 is None else bag0
                    scheduled = (timestamp - bag0) / 1e9 / rate
                    if restamp:
                        # one stamp per timestep, as a synchronised rig gives: its scheduled wall time
                        group = [(conn, _restamped(raw, conn, epoch0 + scheduled)) for conn, raw in group]
                    # Everything of a timestep is read and restamped before its due time, then sent
                    # back to back, so that the last camera is not late by the others' decoding.
                    delay = wall0 + scheduled - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    if clock_pub is not None and timestamp != last_clock:
                        clock_pub.publish(Clock(clock=Time(sec=timestamp // 1_000_000_000,
                                                           nanosec=timestamp % 1_000_000_000)))
                        last_clock = timestamp
                        stats.clock_messages += 1
                    for conn, raw in group:
                        publishers[conn.topic].publish(raw)
                    stats.messages += len(group)
                    stats.bag_s = max(stats.bag_s, (timestamp - bag0) / 1e9)
                stats.loops = loop + 1
            stats.wall_s = time.monotonic() - started
            # Reliable messages still in flight die with this process: wait until they are acknowledged.
            for pub in publishers.values():
                pub.wait_for_all_acked(Duration(seconds=10))
        finally:
            reader.close()
    finally:
        if own_node:
            node.destroy_node()
            rclpy.try_shutdown()
    log(f"replayed {stats.messages} messages ({stats.loops} loop(s)) in {stats.wall_s:.1f} s")
    return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag folder")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--topics", nargs="*", help="only these topics")
    parser.add_argument("--with-ground-truth", action="store_true", help="also publish /gt/* topics")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--loops", type=int, default=1, help="play the bag this many times (time jumps back)")
    parser.add_argument("--delay", type=float, default=3.0,
                        help="seconds to wait at least before playing (discovery); then also until every "
                             "subscriber seen is matched")
    parser.add_argument("--restamp", action="store_true",
                        help="stamp messages with the wall-clock time of publishing (live-driver behaviour)")
    parser.add_argument("--wait-topic", action="append", default=[],
                        help="do not start before this topic has a subscriber (repeatable; at most 15 s)")


def run(args: argparse.Namespace) -> int:
    replay(args.bag, rate=args.rate, include=args.topics, exclude_prefixes=() if args.with_ground_truth else ("/gt/",),
           clock=not args.no_clock, start_delay=args.delay, loops=args.loops, wait_topics=tuple(args.wait_topic),
           restamp=args.restamp)
    return 0

