"""slarm_node in its own process, fed by a bag replay, recorded by a recorder: real ROS 2 end to end."""
import ast
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from slarm_ros.bag import messages, topics
from slarm_ros.bag.reader import BagReader
from slarm_ros.bag.writer import BagWriter
from slarm_ros.ros.demo import NODE, OUTPUT_TOPICS, cloud_arrays, node_command, read_outputs, replay_wait_arguments
from slarm_ros.stream import Reconstructor, point_products

ROOT = Path(__file__).resolve().parents[1]
CAMERAS = ("front", "front_left", "front_right")


def start_node(procs, *params):
    return procs.start(node_command("device:=cpu", *params))


def replay(procs, bag, *extra):
    """Half real time: counts and comparisons below must not hang on how fast this machine runs the network."""
    proc = procs.start_module("slarm_ros.cli", "replay", str(bag), "--delay", "0.5", "--rate", "0.5",
                              *replay_wait_arguments(), *extra)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def timesteps_ended(diag: dict) -> int:
    """Matched timesteps that ended as published, dropped, failed, skipped or a time jump."""
    from slarm_ros.ros.node import TIMESTEP_ENDS

    return sum(int(diag.get(k, 0)) for k in TIMESTEP_ENDS)


def query(procs, requests, timeout=120):
    return procs.run_json("query_client.py", NODE, json.dumps(requests), timeout=timeout)


def record(procs, out):
    return procs.start_module("slarm_ros.cli", "record", "--out", str(out), "--topics", *OUTPUT_TOPICS,
                              "--duration", "180")


# Set between the two replays of node_run, one atomic request each: (changes, accepted, words of the reason).
PARAMETER_CHANGES = [
    ({"voxel_size": 1.0, "flow_min_speed": 0.25}, True, ""),  # live: used from the next timestep
    ({"window": 8}, False, "read-only"),  # decides what the engine holds: fixed once started
    ({"voxel_size": -1.0}, False, "positive"),
    ({"voxel_size": float("nan")}, False, "positive"),
    ({"voxel_size": 0.001}, False, "occupancy grid"),  # 80,000^2 columns
    ({"occupancy_z_min": 5.0}, False, "z_max above z_min"),
    ({"voxel_size": "big"}, False, "type"),  # refused by ROS itself
    ({"voxel_size": 2.0, "occupancy_z_max": -10.0}, False, "z_max above z_min"),  # all or nothing
]
PARAMETER_REQUESTS = [changes for changes, _, _ in PARAMETER_CHANGES]


@pytest.fixture(scope="module")
def node_run(tiny_world_bag, tmp_path_factory):
    """One node run over the tiny bag: query 'car', replay, query 'building', set parameters, replay again
    (time jumps back)."""
    from ros_processes import RosProcesses

    procs = RosProcesses()
    out = tmp_path_factory.mktemp("node") / "outputs"
    try:
        node = start_node(procs)
        recorder = record(procs, out)
        first = query(procs, [{"queries": ["car"]}])
        replay(procs, tiny_world_bag)
        time.sleep(2.0)
        second = query(procs, [{"queries": ["building", "tree"], "threshold": 0.2}])
        parameters = procs.run_json("param_client.py", NODE, json.dumps(PARAMETER_REQUESTS),
                                    "voxel_size", "flow_min_speed", "window", "occupancy_z_max", timeout=120)
        replay(procs, tiny_world_bag)
        time.sleep(3.0)
        procs.interrupt(recorder)
        recorder.wait(timeout=60)
        diagnostics = procs.run_json("diagnostics_listener.py", "6")  # discovery alone takes ~3 s
        assert node.poll() is None, node.stderr.read()
    finally:
        procs.stop()
    assert procs.survivors() == []
    return {"outputs": read_outputs(out), "queries": (first, second), "parameters": parameters,
            "diagnostics": diagnostics}


def _image_messages(bag):
    from rosbags.rosbag2 import Reader

    from slarm_ros.bag.messages import TYPESTORE

    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == topics.image_topic("front")]
        return [TYPESTORE.deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]


def test_every_output_arrives_with_type_frame_and_input_stamps(node_run, tiny_world_bag):
    msgs = node_run["outputs"]
    bag_stamps = {round(fs.stamp, 6) for fs in BagReader(tiny_world_bag, ground_truth=False).frame_sets()}
    for topic in OUTPUT_TOPICS[:4]:
        assert msgs.get(topic), f"nothing on {topic}"
    clouds = [m for _, m in msgs[f"{NODE}/points"]]
    assert len(clouds) >= 8  # 2 replays x 6 timesteps, a first one may wait for its camera_info
    exact = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in _image_messages(tiny_world_bag)}
    for cloud in clouds:
        assert cloud.header.frame_id == "map" and cloud.height == 1 and cloud.point_step == 36
        assert round(cloud.header.stamp.sec + cloud.header.stamp.nanosec * 1e-9, 6) in bag_stamps
        assert (cloud.header.stamp.sec, cloud.header.stamp.nanosec) in exact  # the input stamp, to the nanosecond
        assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
            ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7), ("label", 16, 5), ("score", 20, 7),
            ("vx", 24, 7), ("vy", 28, 7), ("vz", 32, 7)]
        assert cloud.row_step == 36 * cloud.width and len(cloud.data) == cloud.row_step and cloud.is_dense
    for _, markers in msgs[f"{NODE}/scene_flow"]:
        assert markers.markers[0].action == 3  # DELETEALL first: no stale arrows
        assert all(m.header.frame_id == "map" for m in markers.markers)
    for _, grid in msgs[f"{NODE}/semantic_occupancy_grid"]:
        assert grid.header.frame_id == "map" and len(grid.data) == grid.info.width * grid.info.height
        assert set(np.unique(np.array(grid.data))) <= {0, 100}
    for _, occ in msgs[f"{NODE}/semantic_occupancy"]:
        n = occ.size_x * occ.size_y * occ.size_z
        assert occ.header.frame_id == "map" and occ.voxel_size in (0.5, 1.0)  # 1.0 once set live (below)
        assert len(occ.indices) == len(occ.scores) == len(occ.counts)
        assert all(i < n for i in occ.indices) and all(s >= occ.threshold - 1e-6 for s in occ.scores)
        assert list(occ.indices) == sorted(set(occ.indices))


def test_points_are_where_the_engine_puts_them(node_run, tiny_world_bag):
    """Every cloud equals the engine's output for the timesteps the node ran, in the order it ran them.

    Under load the node drops timesteps (its input queue keeps the newest), so the engine here is fed
    exactly the stamps the node published; a stamp that goes back is the second replay, where the
    node started a new sequence.
    """
    clouds = [m for _, m in node_run["outputs"][f"{NODE}/points"]]
    frame_sets = {round(fs.stamp, 6): fs for fs in BagReader(tiny_world_bag, ground_truth=False).frame_sets()}
    engine = Reconstructor.from_checkpoint(None, device="cpu")
    compared, last = 0, None
    for cloud in clouds:
        stamp = round(cloud.header.stamp.sec + cloud.header.stamp.nanosec * 1e-9, 6)
        if last is not None and stamp <= last:
            engine.reset()
        last = stamp
        fs = frame_sets[stamp]
        expected = point_products(engine.step(fs), min_opacity=0.1)
        got = cloud_arrays(cloud)
        np.testing.assert_allclose(got["xyz"], expected.xyz, atol=2e-3)
        np.testing.assert_allclose(got["velocity"], expected.velocity, atol=2e-3)
        np.testing.assert_allclose(got["rgb"], expected.rgb, atol=1 / 255 + 1e-6)
        # in front of the camera that made them, in the world frame given by the bag's TF
        for i, cam in enumerate(fs.cameras):
            pts = got["xyz"][expected.camera == i]
            assert len(pts) > 0
            local = (np.linalg.inv(cam.cam_to_world) @ np.c_[pts, np.ones(len(pts))].T)[:3]
            assert (local[2] > 0.4).all()
        compared += 1
    assert compared >= 8  # 2 replays x 6 timesteps; the first may wait for camera_info, a busy machine drops some


def test_the_query_service_changes_what_the_occupancy_topics_contain(node_run):
    first, second = node_run["queries"]
    assert first[0]["success"] and first[0]["message"].startswith("1 active queries")
    assert second[0]["success"] and [s[0] for s in second[0]["stats"]] == ["building", "tree"]
    queries = [occ.query for _, occ in node_run["outputs"][f"{NODE}/semantic_occupancy"]]
    switch = queries.index("building")
    assert set(queries[:switch]) == {"car"}
    assert set(queries[switch:]) == {"building", "tree"}
    thresholds = {round(occ.threshold, 3) for _, occ in node_run["outputs"][f"{NODE}/semantic_occupancy"][switch:]}
    assert thresholds == {0.2}


def test_live_parameters_apply_from_the_next_timestep_and_bad_ones_are_refused(node_run):
    answers = node_run["parameters"]
    for (changes, accepted, reason), answer in zip(PARAMETER_CHANGES, answers["results"]):
        assert answer["successful"] is accepted, (changes, answer)
        assert reason.lower() in answer["reason"].lower(), (changes, answer)
    # the accepted change stands; the refused ones, the atomic request with one bad value among them, did not
    assert answers["values"] == {"voxel_size": 1.0, "flow_min_speed": 0.25, "window": 0, "occupancy_z_max": 2.0}
    grids = [(occ.query, round(occ.voxel_size, 3)) for _, occ in node_run["outputs"][f"{NODE}/semantic_occupancy"]]
    assert {size for query, size in grids if query == "car"} == {0.5}  # the first replay, before the change
    assert {size for query, size in grids if query == "building"} == {1.0}  # the second, after it
    assert int(node_run["diagnostics"]["rejected_parameters"]) == 5  # those the node itself refused


def test_time_going_back_resets_and_is_counted(node_run):
    diag = node_run["diagnostics"]
    assert int(diag["time_jumps"]) == 1
    assert diag["device"] == "cpu" and diag["tf_backend"] in ("built-in", "tf2_ros")
    assert float(diag["latency_p50_ms"]) > 0 and int(diag["frames_out"]) >= 8


def test_on_sim_time_diagnostics_go_on_after_the_clock_stops(ros_processes, tiny_world_bag):
    # With use_sim_time the node's clock is the replay's /clock, which stops with the replay. Health
    # must still be reported then (a paused or finished replay is when one looks), with final counts.
    node = start_node(ros_processes, "use_sim_time:=true")
    replay(ros_processes, tiny_world_bag)
    time.sleep(2.0)
    diag = ros_processes.run_json("diagnostics_listener.py", "6")
    assert node.poll() is None, node.stderr.read()
    assert diag, "no /diagnostics after the replay's /clock stopped"
    assert int(diag["frames_in"]) >= 5  # of the bag's 6 timesteps; the first may miss a partner at start-up
    assert timesteps_ended(diag) == int(diag["frames_in"]), diag


def _first_cameras(world_bag: Path) -> dict:
    """The tiny world's cameras at its first timestep, by name: images, intrinsics and rig poses."""
    samples = list(BagReader(world_bag, ground_truth=False))
    return {c: s for c, s in zip(CAMERAS, samples[0].frame_set.cameras)}


def _write_rig(bag: BagWriter, base: dict) -> None:
    """The cameras' mounting on base_link, latched on /tf_static."""
    bag.write(topics.TF_STATIC, 1.0, messages.tf_message(1.0, [("base_link", f"{c}_optical_frame",
                                                               base[c].cam_to_world) for c in CAMERAS]),
              latched=True)


def _bad_bag(path: Path, world_bag: Path) -> Path:
    """The tiny world's frames, with bad input mixed in at known timesteps."""
    base = _first_cameras(world_bag)
    with BagWriter(path) as bag:
        _write_rig(bag, base)
        for k in range(10):
            stamp = 10.0 + 0.1 * k
            pose = np.eye(4)
            pose[0, 3] = 0.5 * k
            if k == 5:
                pose[1, 3] = float("nan")  # a NaN transform: rejected, the pose interpolated around it
            bag.write(topics.TF, stamp, messages.tf_message(stamp, [("map", "base_link", pose)]))
            for c in CAMERAS:
                cam = base[c]
                frame = f"{c}_optical_frame"
                h, w = cam.image.shape[:2]
                if k >= 3:  # timesteps 0-2 have no camera_info at all
                    bag.write(topics.info_topic(c), stamp, messages.camera_info(stamp, frame, cam.K, w, h))
                image, encoding = cam.image, "rgb8"
                if k == 3 and c == "front":
                    image, encoding = cam.image[..., 0].astype(np.float32), "32FC1"  # not a camera encoding
                if k == 4 and c == "front_left":
                    image = np.zeros((h + 2, w, 3), np.uint8)  # size differs from camera_info
                if k == 6 and c == "front_right":
                    encoding = "bgr8"  # supported: converted
                    image = cam.image[..., ::-1]
                if k == 7 and c == "front":  # cut short: its header stamp cannot be read
                    bag.write_raw(topics.image_topic(c), "sensor_msgs/msg/Image", stamp, b"\x00\x01\x00\x00\x05")
                    continue
                bag.write(topics.image_topic(c), stamp, messages.image(stamp, frame, image, encoding))
    return path


HOSTILE = [
    {"queries": []},
    {"queries": ["", "   "]},
    {"queries": ["x" * 10_000]},
    {"queries": ["car\u001b[2Jdoor"]},  # an escape sequence (a NUL never arrives: CDR strings end there)
    {"queries": ["car"] * 100},
    {"queries": ["car"], "threshold": 5.0},
    {"queries": ["car"], "threshold": float("inf")},
    {"queries": ["\ud800broken"]},
    {"queries": ["car", "car", "person walking"]},
    {"clear": True},
    {"queries": ["car"]},
]


def test_bad_input_and_hostile_requests_are_survived_and_counted(ros_processes, tiny_world_bag, tmp_path):
    bag = _bad_bag(tmp_path / "bad", tiny_world_bag)
    node = start_node(ros_processes, "input_qos:=RELIABLE")
    answers = query(ros_processes, HOSTILE)
    replay(ros_processes, bag, "--loops", "2")  # the second loop takes time back
    diag = ros_processes.run_json("diagnostics_listener.py", "6")
    assert node.poll() is None, node.stderr.read()

    rejected = answers[:8]
    for request, answer in zip(HOSTILE, rejected):
        if "client_error" in answer:  # the client library refused to send it (lone surrogate)
            continue
        assert answer["success"] is False and "rejected" in answer["message"], (request, answer)
    assert answers[8]["success"] and [s[0] for s in answers[8]["stats"]] == ["car", "person walking"]
    assert answers[9]["success"] and answers[9]["message"] == "no active queries"
    assert answers[10]["success"]

    assert int(diag["skipped_no_camera_info"]) >= 1
    assert int(diag["skipped_bad_header"]) >= 1
    assert int(diag["skipped_bad_image"]) >= 1
    assert int(diag["skipped_size_mismatch"]) >= 1
    assert int(diag["tf_rejected"]) >= 1
    assert int(diag["time_jumps"]) >= 1
    assert int(diag["frames_out"]) >= 4  # the good timesteps, the bgr8 one among them
    assert int(diag["rejected_queries"]) >= 6
    assert timesteps_ended(diag) == int(diag["frames_in"]), diag  # images skipped before matching are not timesteps


def _late_info_bag(path: Path, world_bag: Path, timesteps: int = 6, late_s: float = 0.05) -> Path:
    """The tiny world's frames, each camera's first camera_info received ``late_s`` after its image."""
    base = _first_cameras(world_bag)
    with BagWriter(path) as bag:
        _write_rig(bag, base)
        for k in range(timesteps):
            stamp = 10.0 + 0.1 * k
            pose = np.eye(4)
            pose[0, 3] = 0.5 * k
            bag.write(topics.TF, stamp, messages.tf_message(stamp, [("map", "base_link", pose)]))
            for c in CAMERAS:
                cam, frame = base[c], f"{c}_optical_frame"
                h, w = cam.image.shape[:2]
                info = messages.camera_info(stamp, frame, cam.K, w, h)  # stamped as its image
                bag.write(topics.image_topic(c), stamp, messages.image(stamp, frame, cam.image, "rgb8"))
                bag.write(topics.info_topic(c), stamp + (late_s if k == 0 else 0.0), info)
    return path


def test_an_image_that_overtakes_its_first_camera_info_waits_for_it(ros_processes, tiny_world_bag, tmp_path):
    # The first image of every camera arrives 0.1 s (at the replay's half rate) before its
    # camera_info: it waits, and its timestep is processed like the others.
    bag = _late_info_bag(tmp_path / "late", tiny_world_bag)
    node = start_node(ros_processes, "input_qos:=RELIABLE")
    replay(ros_processes, bag)
    diag = ros_processes.run_json("diagnostics_listener.py", "6")
    assert node.poll() is None, node.stderr.read()
    assert int(diag.get("skipped_no_camera_info", 0)) == 0, diag
    assert int(diag["waiting_for_camera_info"]) == 0, diag
    assert int(diag["frames_in"]) == 6 and int(diag["unmatched_images"]) == 0, diag
    assert timesteps_ended(diag) == 6, diag


def test_a_bad_checkpoint_stops_the_node_at_start_with_what_to_do(ros_processes, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    node = start_node(ros_processes, f"checkpoint:={tmp_path / 'bad.safetensors'}")
    out, err = node.communicate(timeout=90)
    assert node.returncode == 2
    assert "not a readable safetensors file" in err and "Set the 'checkpoint' parameter" in err


def test_the_node_benchmark_runs_the_asked_checkpoint_and_reports_every_timestep(ros_processes, tiny_world_bag,
                                                                                  tmp_path):
    from slarm_ros.model.checkpoint import with_config
    from slarm_ros.stream import DEFAULT_CHECKPOINT

    weights = with_config(DEFAULT_CHECKPOINT, tmp_path / "unsmoothed.safetensors", motion_smoothing_radius=0)
    bench = ros_processes.start_module("slarm_ros.cli", "bench", "node", "--bag", str(tiny_world_bag),
                                       "--checkpoint", str(weights), "--out", str(tmp_path / "bench"))
    out, err = bench.communicate(timeout=300)
    assert bench.returncode == 0, err[-3000:]
    report = json.loads((tmp_path / "bench" / "node.json").read_text())
    assert report["checkpoint"] == str(weights.resolve())
    # timesteps in and out: at most the bag's 6 (how many make it through DDS is the other live tests' matter)
    assert 1 <= report["frames"] <= report["frames_in"] <= 6, report
    assert 0 < report["engine_step_p50_ms"] < report["e2e_p50_ms"], report
    assert "e2e_p50_ms:" in out


def test_the_node_benchmark_stops_at_once_with_the_nodes_reason_when_the_node_cannot_start(ros_processes,
                                                                                             tiny_world_bag, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    started = time.monotonic()
    bench = ros_processes.start_module("slarm_ros.cli", "bench", "node", "--bag", str(tiny_world_bag),
                                       "--checkpoint", str(tmp_path / "bad.safetensors"), "--out", str(tmp_path / "bench"))
    out, err = bench.communicate(timeout=110)  # the latency probe alone would wait 120 s for a first cloud
    assert bench.returncode == 1, err[-3000:]
    assert time.monotonic() - started < 100
    assert "error: slarm_node exited with code 2" in err and "not a readable safetensors file" in err, err[-3000:]
    assert "Traceback" not in err
    assert not (tmp_path / "bench" / "node.json").exists()


def test_rviz_and_launch_name_what_the_node_really_publishes():
    from slarm_ros.ros.node import OUTPUTS

    config = yaml.safe_load((ROOT / "rviz" / "slarm.rviz").read_text())
    rviz_topics = {d["Topic"]["Value"] for d in config["Visualization Manager"]["Displays"] if "Topic" in d}
    node_topics = {f"{NODE}/{t[2:]}" for t in OUTPUTS}
    params = yaml.safe_load((ROOT / "config" / "driving.yaml").read_text())["slarm_node"]["ros__parameters"]
    camera_topics = {params["image_topic"].format(camera=c) for c in params["cameras"]}
    flow_grid_points = {f"{NODE}/points", f"{NODE}/scene_flow", f"{NODE}/semantic_occupancy_grid"}
    assert flow_grid_points <= rviz_topics <= node_topics | camera_topics
    assert camera_topics <= rviz_topics

    tree = ast.parse((ROOT / "launch" / "driving.launch.py").read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"slarm_node", "driving.yaml", "slarm.rviz", "FASTDDS_BUILTIN_TRANSPORTS", "use_sim_time", "rviz",
            "checkpoint", "device", "namespace", "config"} <= strings
    setup = (ROOT / "setup.py").read_text()
    assert "slarm_node = slarm_ros.ros.node:main" in setup


def test_every_declared_parameter_is_in_the_shipped_config():
    import dataclasses

    from slarm_ros.ros.params import DESCRIPTIONS, NodeParams

    params = yaml.safe_load((ROOT / "config" / "driving.yaml").read_text())["slarm_node"]["ros__parameters"]
    fields = {f.name for f in dataclasses.fields(NodeParams)}
    assert fields == set(params) == set(DESCRIPTIONS)
    NodeParams(**params).validate()
    assert not math.isnan(params["score_threshold"])
