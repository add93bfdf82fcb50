"""slarm_msgs and tf2_msgs on the wire, between real rclpy processes."""
from __future__ import annotations

import math

import pytest
from rosbags.typesys import Stores, get_typestore


def test_semantic_occupancy_and_query_service_round_trip(ros_processes):
    server = ros_processes.start("occupancy_server.py")
    result = ros_processes.run_json("occupancy_client.py", timeout=60)
    assert server.poll() is None, "server died"

    occ = result["occupancy"]
    assert occ["stamp"] == [1700000000, 123456789]
    assert occ["frame_id"] == "map"
    assert occ["query"] == "parked car"
    assert occ["voxel_size"] == 0.25
    assert occ["origin"] == [-10.0, -20.5, -1.0]
    assert occ["size"] == [80, 160, 16]
    assert occ["threshold"] == pytest.approx(0.3)
    assert occ["indices"] == [3, 17, 204799]
    assert occ["scores"] == [0.5, 0.75, 1.0]
    assert occ["counts"] == [1, 42, 7]

    resp = result["response"]
    assert resp["success"] is True
    assert resp["message"] == "3 queries, threshold 0.25"
    assert [s[0] for s in resp["stats"]] == ["car", "person walking", "ümlaut"]
    for query, matched, voxels, max_score, mean_score in resp["stats"]:
        assert matched == len(query) and voxels == 2 * len(query)
        assert max_score == pytest.approx(0.25) and mean_score == pytest.approx(-0.25)


def test_tf_message_crosses_processes_with_the_distribution_type_hash(ros_processes):
    ros_processes.start("tf_publisher.py")
    result = ros_processes.run_json("tf_listener.py", timeout=60)

    kilted = get_typestore(Stores.ROS2_KILTED).hash_rihs01("tf2_msgs/msg/TFMessage")
    assert result["type_hashes"] == [kilted]

    first, second = result["transforms"]
    assert first["stamp"] == [42, 500]
    assert (first["parent"], first["child"]) == ("map", "base_link")
    assert first["translation"] == [1.5, -2.0, 0.25]
    assert first["rotation"] == pytest.approx([0.0, 0.0, 0.6, 0.8])
    assert (second["parent"], second["child"]) == ("base_link", "cam_front_optical")
    assert math.isclose(sum(q * q for q in second["rotation"]), 1.0)


def test_each_live_test_has_its_own_domain(ros_processes):
    from ros_processes import RosProcesses

    other = RosProcesses()
    assert other.domain_id != ros_processes.domain_id
    assert 0 < ros_processes.domain_id <= 230
