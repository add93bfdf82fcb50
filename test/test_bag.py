"""Bags: written, read back bit-exact with poses from TF, readable by rclpy, clear errors."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from slarm_ros.bag import messages, topics
from slarm_ros.bag.messages import TYPESTORE
from slarm_ros.bag.reader import BagError, BagReader
from slarm_ros.bag.writer import BagWriter
from slarm_ros.world.config import CLASSES, WorldConfig
from slarm_ros.world.make import EPOCH, make_world_bag
from slarm_ros.world.raycast import render_camera
from slarm_ros.world.scene import build_scene

TINY = WorldConfig(seed=5, seconds=0.6, hz=10, image_height=48, image_width=80)


def test_frame_sets_and_ground_truth_read_back_exactly(tiny_world_bag):
    reader = BagReader(tiny_world_bag)
    assert reader.cameras == ["front", "front_left", "front_right"]
    assert reader.classes == list(CLASSES)
    assert reader.world_config()["seed"] == 5
    scene = build_scene(TINY)
    samples = list(reader)
    assert len(samples) == 6 and reader.skipped == []
    for k, sample in enumerate(samples):
        t = k / TINY.hz
        assert sample.frame_set.stamp == pytest.approx(EPOCH + t, abs=1e-9)
        for cam, frame in zip(scene.cameras, sample.frame_set.cameras):
            truth = render_camera(scene, cam, t)
            assert np.array_equal(frame.image, truth.rgb)
            np.testing.assert_allclose(frame.cam_to_world, truth.cam_to_world, atol=1e-9)
            np.testing.assert_array_equal(frame.K, truth.K)
            gt = sample.ground_truth[cam.name]
            for kind in ("depth", "semantic", "flow", "dynamic", "lidar"):
                assert np.array_equal(gt[kind], getattr(truth, kind)), kind


def test_raw_messages_round_trip_and_rclpy_reads_them(tiny_world_bag):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage

    classes = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CameraInfo": CameraInfo,
               "tf2_msgs/msg/TFMessage": TFMessage}
    checked = 0
    with Reader(tiny_world_bag) as reader:
        for conn, _, raw in reader.messages():
            msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
            assert TYPESTORE.serialize_cdr(msg, conn.msgtype) == bytes(raw)
            if conn.msgtype in classes:
                ros_msg = deserialize_message(bytes(raw), classes[conn.msgtype])
                if conn.msgtype == "sensor_msgs/msg/Image":
                    assert bytes(ros_msg.data) == bytes(msg.data) and ros_msg.encoding == msg.encoding
                checked += 1
    assert checked > 50


def _env_type_hash(typename: str) -> str:
    """The type hash of the environment's rosidl type description (share/<pkg>/msg/<Type>.json)."""
    import os

    package, _, name = typename.split("/")
    for prefix in os.environ["AMENT_PREFIX_PATH"].split(":"):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())["type_hashes"][0]["hash_string"]
    raise AssertionError(f"no type description for {typename}")


def test_type_hashes_match_kilted_and_the_environment(tiny_world_bag):
    meta = yaml.safe_load((Path(tiny_world_bag) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    seen = set()
    for entry in meta["topics_with_message_count"]:
        tm = entry["topic_metadata"]
        expected = TYPESTORE.hash_rihs01(tm["type"])
        assert tm["type_description_hash"] == expected, tm["name"]
        assert _env_type_hash(tm["type"]) == expected, tm["type"]
        seen.add(tm["type"])
    assert {"sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "tf2_msgs/msg/TFMessage",
            "std_msgs/msg/String"} <= seen


def test_sqlite3_storage(tmp_path):
    path = make_world_bag(TINY.replace(seconds=0.2), tmp_path / "sq", storage="sqlite3", progress=False)["bag"]
    assert any(Path(path).glob("*.db3"))
    assert len(list(BagReader(path))) == 2


# --- errors --------------------------------------------------------------------------------------
def test_missing_bag(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nothing")


def test_corrupt_and_truncated_bags(tmp_path, tiny_world_bag):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_world_bag, broken)
    mcap = next(broken.glob("*.mcap"))
    mcap.write_bytes(b"this is not an mcap file" * 100)
    with pytest.raises(BagError, match="cannot be read|damaged"):
        list(BagReader(broken))
    cut = tmp_path / "cut"
    shutil.copytree(tiny_world_bag, cut)
    mcap = next(cut.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match="cannot be read|damaged|truncated"):
        list(BagReader(cut))
    (tmp_path / "nometa").mkdir()
    with pytest.raises(BagError, match="cannot be read"):
        BagReader(tmp_path / "nometa")


def test_missing_camera_topics(tiny_world_bag):
    with pytest.raises(BagError, match=r"lacks topics \['/cameras/rear/image_raw', '/cameras/rear/camera_info'\]"):
        BagReader(tiny_world_bag, cameras=["front", "rear"])


def _bag_with(tmp_path, name, info=True, tf=True):
    path = tmp_path / name
    image = np.zeros((8, 8, 3), np.uint8)
    with BagWriter(path) as bag:
        for k in range(3):
            stamp = 10.0 + k * 0.1
            if tf:
                bag.write(topics.TF, stamp, messages.tf_message(stamp, [("map", "cam_optical_frame", np.eye(4))]))
            if info:
                bag.write(topics.info_topic("cam"), stamp, messages.camera_info(stamp, "cam_optical_frame",
                                                                                np.diag([5.0, 5.0, 1.0]), 8, 8))
            bag.write(topics.image_topic("cam"), stamp, messages.image(stamp, "cam_optical_frame", image, "rgb8"))
    return path


def test_images_without_camera_info_or_tf(tmp_path):
    with pytest.raises(BagError, match="camera_info"):
        BagReader(_bag_with(tmp_path, "noinfo", info=False))
    with pytest.raises(BagError, match="no /tf"):
        BagReader(_bag_with(tmp_path, "notf", tf=False))
    ok = list(BagReader(_bag_with(tmp_path, "ok")))
    assert len(ok) == 3 and ok[0].ground_truth == {}


def test_sets_outside_the_tf_range_are_skipped_and_listed(tmp_path):
    path = tmp_path / "late"
    with BagWriter(path) as bag:
        bag.write(topics.TF, 10.0, messages.tf_message(10.0, [("map", "cam_optical_frame", np.eye(4))]))
        bag.write(topics.TF, 10.1, messages.tf_message(10.1, [("map", "cam_optical_frame", np.eye(4))]))
        for stamp in (10.05, 10.5):
            bag.write(topics.info_topic("cam"), stamp, messages.camera_info(stamp, "cam_optical_frame",
                                                                            np.diag([5.0, 5.0, 1.0]), 8, 8))
            bag.write(topics.image_topic("cam"), stamp,
                      messages.image(stamp, "cam_optical_frame", np.zeros((8, 8, 3), np.uint8), "rgb8"))
    reader = BagReader(path)
    samples = list(reader)
    assert len(samples) == 1 and samples[0].frame_set.stamp == pytest.approx(10.05)
    assert len(reader.skipped) == 1 and "extrapolation into the future" in reader.skipped[0]


def test_header_stamps_are_read_and_rewritten_in_serialized_bytes():
    from slarm_ros.bag.messages import TYPESTORE, cdr_header_stamp, image, set_cdr_header_stamp

    raw = TYPESTORE.serialize_cdr(image(5.25, "front_optical", np.arange(72, dtype=np.uint8).reshape(4, 6, 3), "rgb8"),
                                  "sensor_msgs/msg/Image")
    assert cdr_header_stamp(raw) == pytest.approx(5.25)
    out = set_cdr_header_stamp(raw, 1700000000, 123456789)
    msg = TYPESTORE.deserialize_cdr(out, "sensor_msgs/msg/Image")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1700000000, 123456789)
    assert msg.header.frame_id == "front_optical" and msg.data.tolist() == list(range(72))  # nothing else moved
    for bad in (b"", b"\x00\x07\x00\x00" + bytes(8), b"\x00\x01"):
        with pytest.raises(ValueError):
            set_cdr_header_stamp(bad, 1, 2)


def test_replay_restamps_images_in_place_and_transforms_by_reencoding():
    from types import SimpleNamespace

    from slarm_ros.bag.replay import _restamped

    raw = TYPESTORE.serialize_cdr(messages.image(5.25, "cam", np.zeros((4, 6, 3), np.uint8), "rgb8"),
                                  "sensor_msgs/msg/Image")
    conn = SimpleNamespace(topic=topics.image_topic("front"), msgtype="sensor_msgs/msg/Image")
    stamp = TYPESTORE.deserialize_cdr(_restamped(raw, conn, 1234.999999999999), "sensor_msgs/msg/Image").header.stamp
    assert (stamp.sec, stamp.nanosec) == (1235, 0)  # the nanosecond carry
    raw = TYPESTORE.serialize_cdr(messages.tf_message(5.0, [("map", "base_link", np.eye(4))]), "tf2_msgs/msg/TFMessage")
    conn = SimpleNamespace(topic=topics.TF, msgtype="tf2_msgs/msg/TFMessage")
    stamp = TYPESTORE.deserialize_cdr(_restamped(raw, conn, 77.5), "tf2_msgs/msg/TFMessage").transforms[0].header.stamp
    assert (stamp.sec, stamp.nanosec) == (77, 500_000_000)
