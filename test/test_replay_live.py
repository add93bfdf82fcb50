"""Replay onto live topics: every message reaches a subscriber in another process, with /clock."""
from rosbags.rosbag2 import Reader

from slarm_ros.bag.messages import TYPESTORE


def test_replay_delivers_every_message_and_the_clock(ros_processes, tiny_world_bag):
    with Reader(tiny_world_bag) as reader:
        counts = {t: info.msgcount for t, info in reader.topics.items()}
    watched = {
        "/cameras/front/image_raw": "sensor_msgs/msg/Image",
        "/cameras/front_right/camera_info": "sensor_msgs/msg/CameraInfo",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/tf_static": "tf2_msgs/msg/TFMessage",
    }
    specs = [f"{t}={ty}={counts[t]}" for t, ty in watched.items()] + ["/clock=rosgraph_msgs/msg/Clock=6"]
    counter = ros_processes.start("topic_counter.py", "40", *specs)
    player = ros_processes.start_module("slarm_ros.cli", "replay", str(tiny_world_bag), "--rate", "2",
                                        "--delay", "0.5", *[a for t in watched for a in ("--wait-topic", t)])
    out, err = counter.communicate(timeout=90)
    assert counter.returncode == 0, err
    result = __import__("json").loads(out.strip().splitlines()[-1])
    player.wait(timeout=60)
    assert player.returncode == 0, player.stderr.read()
    for topic in watched:
        assert result["counts"][topic] == counts[topic], (topic, result["counts"])
        assert result["hashes"][topic] == TYPESTORE.hash_rihs01(watched[topic])
    assert result["counts"]["/clock"] >= 6
    first, last = result["first_last"]["/clock"]
    image_first, image_last = result["first_last"]["/cameras/front/image_raw"]
    assert first <= image_first and last >= image_last  # the clock follows the bag time
