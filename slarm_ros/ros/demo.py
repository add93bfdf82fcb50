"""``slarm demo``: the node on a synthetic drive, as a user would run it, summarised.

Makes a synthetic driving bag if there is none, starts slarm_node (through ``ros2 launch`` where
the environment has it) with sim time, a recorder of the node's outputs and a bag replay with
/clock as separate processes, sets the query, and when the replay is over prints a summary and
draws bird's-eye pictures of what the node published, under out/demo/.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..bag.reader import open_reader
from .processes import ProcessFailed, ProcessSet

ROOT = Path(__file__).resolve().parents[2]
NODE = "/slarm_node"
OUTPUT_TOPICS = [f"{NODE}/points", f"{NODE}/scene_flow", f"{NODE}/semantic_occupancy",
                 f"{NODE}/semantic_occupancy_grid", "/diagnostics"]


def node_command(*overrides: str, use_launch: bool = False) -> list[str]:
    """slarm_node with config/driving.yaml and parameter overrides ("name:=value"), launched or direct."""
    if use_launch:
        return ["ros2", "launch", "slarm_ros", "driving.launch.py", *overrides]
    command = [sys.executable, "-m", "slarm_ros.ros.node", "--ros-args", "--params-file",
               str(ROOT / "config" / "driving.yaml")]
    for override in overrides:
        command += ["-p", override]
    return command


def input_topics(params_file: Path = ROOT / "config" / "driving.yaml") -> list[str]:
    """The topics slarm_node subscribes to with these parameters: every camera's image and
    camera_info, and /tf (/tf_static is latched, so its first message cannot be missed)."""
    import yaml

    params = yaml.safe_load(params_file.read_text())["slarm_node"]["ros__parameters"]
    topics = []
    for camera in params["cameras"]:
        topics += [params["image_topic"].format(camera=camera), params["camera_info_topic"].format(camera=camera)]
    return topics + ["/tf"]


def replay_wait_arguments() -> list[str]:
    """``slarm replay`` arguments that hold the replay until the node matched every input topic:
    a message sent before its subscription is matched is lost, and a first timestep without its
    camera_info or one of its images is skipped."""
    return [arg for topic in input_topics() for arg in ("--wait-topic", topic)]


def _set_query(queries: list[str], slarm_node: subprocess.Popen, log: Path, timeout: float = 90.0) -> str:
    """Set the node's queries through its service, once the node is up; fails at once where the
    node's process exits first (a bad checkpoint or parameter), pointing at its log."""
    import rclpy
    from slarm_msgs.srv import SetQueries

    rclpy.init()
    node = rclpy.create_node("slarm_demo")
    try:
        client = node.create_client(SetQueries, f"{NODE}/query")
        deadline = time.monotonic() + timeout
        while not client.wait_for_service(timeout_sec=0.5):
            if slarm_node.poll() is not None:
                raise ProcessFailed(f"slarm_node exited with code {slarm_node.returncode} at start; see {log}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{NODE}/query did not come up within {timeout:.0f} s; see {log}")
        future = client.call_async(SetQueries.Request(queries=queries, threshold=float("nan")))
        rclpy.spin_until_future_complete(node, future, timeout_sec=30)
        response = future.result()
        return f"{'ok' if response.success else 'rejected'}: {response.message}"
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def run_demo(out: str | Path = "out/demo", bag: str | Path = "out/bags/demo", seconds: float = 10.0,
             queries: tuple[str, ...] = ("car",), rate: float = 1.0) -> dict:
    from ..world.config import WorldConfig
    from ..world.make import make_world_bag

    out, bag = Path(out), Path(bag)
    out.mkdir(parents=True, exist_ok=True)
    if not bag.exists():
        print(f"making a synthetic drive: {bag} ({seconds:.0f} s, 3 cameras)")
        make_world_bag(WorldConfig(seed=7, seconds=seconds), bag)
    recorded = out / "outputs"
    if recorded.exists():
        shutil.rmtree(recorded)
    use_launch = shutil.which("ros2") is not None and _has_launch()
    procs = ProcessSet()
    procs.env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    logs = {name: open(out / f"{name}.log", "w") for name in ("node", "recorder", "replay")}
    try:
        print(f"starting slarm_node ({'ros2 launch' if use_launch else 'directly: no ros2 launch here'}), "
              "a recorder and, once the node is up, the replay")
        node = procs.start(node_command("use_sim_time:=true", use_launch=use_launch), stdout=logs["node"],
                           stderr=logs["node"])
        procs.python("-m", "slarm_ros.cli", "record", "--out", recorded, "--topics", *OUTPUT_TOPICS,
                     stdout=logs["recorder"], stderr=logs["recorder"])
        print(f"query {list(queries)} -> {_set_query(list(queries), node, out / 'node.log')}")
        started = time.monotonic()
        replay = procs.python("-m", "slarm_ros.cli", "replay", bag, "--rate", rate, "--delay", "1",
                              *replay_wait_arguments(), stdout=logs["replay"],
                              stderr=logs["replay"])
        replay.wait()
        time.sleep(3.0)  # the last timesteps leave the engine
        if node.poll() is not None:
            raise ProcessFailed(f"slarm_node exited with code {node.returncode}; see {out / 'node.log'}")
        wall = time.monotonic() - started
    finally:
        procs.stop(grace=10.0)
        for f in logs.values():
            f.close()
    summary = summarise(recorded, out, wall)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary, out)
    return summary


def _has_launch() -> bool:
    try:
        import launch_ros  # noqa: F401
    except ImportError:
        return False
    return True


def read_outputs(recorded: Path) -> dict[str, list]:
    """Messages of the recorded outputs bag, deserialized with rclpy, by topic."""
    from rclpy.serialization import deserialize_message

    from ..bag.replay import message_class

    out: dict[str, list] = {}
    reader = open_reader(recorded)
    try:
        for conn, timestamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((timestamp / 1e9, deserialize_message(bytes(raw),
                                                                                      message_class(conn.msgtype))))
    finally:
        reader.close()
    return out


def cloud_arrays(msg) -> dict[str, np.ndarray]:
    """Fields of a slarm_node PointCloud2 as arrays (x, y, z, rgb as (N, 3) floats, label, score, vx, vy, vz)."""
    from .conversions import POINT_DTYPE

    data = np.frombuffer(bytes(msg.data), dtype=POINT_DTYPE, count=msg.width * msg.height)
    packed = data["rgb"].view(np.uint32)
    rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1) / 255.0
    return {"xyz": np.stack([data["x"], data["y"], data["z"]], axis=1), "rgb": rgb, "label": data["label"],
            "score": data["score"], "velocity": np.stack([data["vx"], data["vy"], data["vz"]], axis=1)}


def summarise(recorded: Path, out: Path, wall_s: float) -> dict:
    messages = read_outputs(recorded)
    clouds = [m for _, m in messages.get(f"{NODE}/points", [])]
    diag = {}
    for _, msg in messages.get("/diagnostics", []):
        for status in msg.status:
            if status.name.startswith("slarm_node"):
                diag = {kv.key: kv.value for kv in status.values}
    summary = {
        "wall_s": wall_s,
        "topics": {t: len(v) for t, v in messages.items()},
        "frames_in": int(diag.get("frames_in", 0)), "frames_out": len(clouds),
        "drops": int(diag.get("drops", 0)), "unmatched_images": int(diag.get("unmatched_images", 0)),
        "latency_p50_ms": float(diag.get("latency_p50_ms", "nan")),
        "latency_p95_ms": float(diag.get("latency_p95_ms", "nan")),
        "network_p50_ms": float(diag.get("network_p50_ms", "nan")),
        "points_per_frame": float(np.mean([c.width for c in clouds])) if clouds else 0.0,
        "skipped": {k: int(v) for k, v in diag.items() if k.startswith("skipped_")},
        "queries": diag.get("queries", ""),
    }
    if clouds:
        draw(clouds, messages, out)
    return summary


def draw(clouds: list, messages: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = clouds[:: max(1, len(clouds) // 12)]
    arrays = [cloud_arrays(c) for c in picks]
    xyz = np.concatenate([a["xyz"] for a in arrays])
    rgb = np.concatenate([a["rgb"] for a in arrays])
    label = np.concatenate([a["label"] for a in arrays])
    score = np.concatenate([a["score"] for a in arrays])
    low = xyz[:, 2] < 6.0
    fig, axes = plt.subplots(1, 2, figsize=(15, 6))
    axes[0].scatter(xyz[low, 0], xyz[low, 1], c=rgb[low], s=0.4, linewidths=0)
    axes[0].set_title(f"points coloured by RGB ({len(picks)} of {len(clouds)} frames)")
    sc = axes[1].scatter(xyz[low, 0], xyz[low, 1], c=np.where(label[low] >= 0, score[low], np.nan), s=0.6,
                         cmap="autumn", linewidths=0)
    axes[1].scatter(xyz[low & (label < 0), 0], xyz[low & (label < 0), 1], c="0.85", s=0.3, linewidths=0)
    fig.colorbar(sc, ax=axes[1], label="query score (matching points)")
    axes[1].set_title("points matching the active query")
    for ax in axes:
        ax.set_aspect("equal")
        ax.set(xlabel="x (m)", ylabel="y (m)")
    fig.tight_layout()
    fig.savefig(out / "points_bev.png", dpi=100)
    plt.close(fig)

    last = cloud_arrays(clouds[-1])
    speed = np.linalg.norm(last["velocity"][:, :2], axis=1)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.scatter(last["xyz"][:, 0], last["xyz"][:, 1], c=last["rgb"], s=0.5, linewidths=0)
    moving = np.flatnonzero(speed > 0.5)[::4]
    if len(moving):
        q = ax.quiver(last["xyz"][moving, 0], last["xyz"][moving, 1], last["velocity"][moving, 0],
                      last["velocity"][moving, 1], speed[moving], cmap="plasma", scale=80, width=0.003)
        fig.colorbar(q, ax=ax, label="speed (m/s)")
    ax.set_aspect("equal")
    ax.set_title("scene flow of the last frame (points moving > 0.5 m/s)")
    fig.tight_layout()
    fig.savefig(out / "flow_bev.png", dpi=100)
    plt.close(fig)

    grids = messages.get(f"{NODE}/semantic_occupancy_grid", [])
    if grids:
        grid = grids[-1][1]
        cells = np.array(grid.data, dtype=np.int8).reshape(grid.info.height, grid.info.width)
        x0, y0, res = grid.info.origin.position.x, grid.info.origin.position.y, grid.info.resolution
        fig, ax = plt.subplots(figsize=(7, 7))
        ax.imshow(cells, origin="lower", cmap="Greys", vmin=0, vmax=100,
                  extent=(x0, x0 + res * grid.info.width, y0, y0 + res * grid.info.height))
        ax.set_title("semantic occupancy grid of the last frame (query matches = black)")
        ax.set(xlabel="x (m)", ylabel="y (m)")
        fig.tight_layout()
        fig.savefig(out / "occupancy_grid.png", dpi=100)
        plt.close(fig)


def print_summary(s: dict, out: Path) -> None:
    print("\nslarm demo summary")
    print(f"  frames in / out      {s['frames_in']} / {s['frames_out']}   drops {s['drops']}   "
          f"unmatched images {s['unmatched_images']}   skipped {s['skipped']}")
    print(f"  latency p50 / p95    {s['latency_p50_ms']:.1f} / {s['latency_p95_ms']:.1f} ms "
          f"(network {s['network_p50_ms']:.1f} ms)")
    print(f"  points per frame     {s['points_per_frame']:.0f}")
    print(f"  active queries       {s['queries']}")
    for topic, n in sorted(s["topics"].items()):
        print(f"  {topic:40s} {n} messages")
    print(f"  pictures and summary.json in {out}/")
