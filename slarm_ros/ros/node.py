"""slarm_node: synchronised camera images + TF in; points, scene flow and semantic occupancy out.

Callbacks only enqueue. Images and CameraInfo of all cameras are matched by approximate time;
a matched timestep waits in a bounded queue (the oldest is dropped, and counted, when the engine
is slower than the input); one worker thread converts it, looks the camera poses up in TF at the
image stamp, runs the streaming engine and publishes. Bad input is skipped with a throttled
warning and counted in /diagnostics; nothing a message or a request contains stops the node.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import threading
import time
from collections import Counter, deque

import numpy as np
import rclpy
import torch
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from slarm_msgs.msg import SemanticOccupancy
from slarm_msgs.srv import SetQueries
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ..bag import images
from ..bag.messages import TYPESTORE, cdr_header_stamp, intrinsics
from ..frames import CameraFrame, FrameError, FrameSet
from ..model.checkpoint import CheckpointError
from ..semantics.occupancy import GridSpec, QueryOccupancy, query_occupancy
from ..semantics.scores import QueryScorer
from ..semantics.text_encoder import QueryError, default_text_encoder, validate_query
from ..stream import Reconstructor, point_products
from ..sync import ApproximateSync
from ..tf_buffer import TransformError
from . import conversions
from .params import NodeParams, declare, with_changes
from .qos import qos_from_name
from .transforms import TransformSource

MAX_QUERIES = 16
# Images of a camera that arrive before its first camera_info wait for it (about 1 s at 10 Hz): DDS
# does not order topics, so a bag's or a driver's first image can overtake its camera_info.
MAX_WAITING_FOR_INFO = 10
# Stages of a timestep: queued (matched -> worker), decode (images, camera_info, TF), network (the
# engine step), products (points, query scores), publish (the ~/points message).
STAGES = ("queued", "decode", "network", "products", "publish")
# How a matched timestep ends; each counts it once in /diagnostics, so together they sum to frames_in.
# skipped_no_camera_info and skipped_bad_header count images that never reach matching.
TIMESTEP_ENDS = ("frames_out", "drops", "errors", "time_jumps",
                 "skipped_bad_image", "skipped_size_mismatch", "skipped_tf", "skipped_bad_input")
OUTPUTS = {  # topic (relative to the node) -> type: what the node publishes, for RViz and tests
    "~/points": PointCloud2,
    "~/scene_flow": MarkerArray,
    "~/semantic_occupancy": SemanticOccupancy,
    "~/semantic_occupancy_grid": OccupancyGrid,
}


class StartupError(RuntimeError):
    """The node cannot start; the message says what to do."""


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class SlarmNode(Node):
    def __init__(self, **kwargs):
        super().__init__("slarm_node", **kwargs)
        try:
            self.params: NodeParams = declare(self)
        except ValueError as e:
            raise StartupError(f"invalid parameters: {e}") from e
        p = self.params
        try:
            self.engine = Reconstructor.from_checkpoint(p.checkpoint or None, device=p.device, window=p.window or None)
        except (CheckpointError, RuntimeError, ValueError) as e:
            raise StartupError(f"cannot load the model: {e}. Set the 'checkpoint' parameter to a slarm_ros "
                               ".safetensors file, or leave it empty for the model shipped with the package.") from e
        if self.engine.cfg.num_cameras != len(p.cameras):
            raise StartupError(f"the model takes {self.engine.cfg.num_cameras} cameras, the 'cameras' parameter "
                               f"names {len(p.cameras)}: {p.cameras}")
        self.text = default_text_encoder()
        self.lock = threading.Lock()
        self.queries: list[str] = []
        self.scorer: QueryScorer | None = None  # the active queries, prepared for scoring
        self.threshold = p.score_threshold
        self.last_occupancy: dict[str, QueryOccupancy] = {}
        try:
            self._set_queries([q for q in p.queries if q.strip()], p.score_threshold)
        except QueryError as e:
            raise StartupError(f"invalid 'queries' parameter: {e}") from e

        self.tf = TransformSource(self)
        self.sync = ApproximateSync(tuple(p.cameras), slop=p.sync_slop, queue_size=10)
        self.camera_info: dict[str, CameraInfo] = {}
        # camera -> (stamp, raw image) received before that camera's first camera_info, oldest first
        self.waiting_for_info: dict[str, deque] = {cam: deque() for cam in p.cameras}
        self.pending: deque = deque()
        self.wake = threading.Condition(self.lock)
        self.stats = Counter()
        self.latency_ms: deque = deque(maxlen=200)
        # Where a timestep's time goes, received (matched) -> ~/points published, in ms.
        self.stage_ms: dict[str, deque] = {name: deque(maxlen=200) for name in STAGES}
        self.input_delay_ms: deque = deque(maxlen=200)
        self.done_times: deque = deque(maxlen=50)
        self.last_stamp: float | None = None
        self.reset_requested = False
        self.running = True

        in_qos, out_qos = qos_from_name(p.input_qos), qos_from_name(p.output_qos)
        # camera_info first: when an image and its camera_info are ready together, the executor takes
        # them in this order; an image that arrives before any camera_info waits for it.
        for cam in p.cameras:
            self.create_subscription(CameraInfo, p.camera_info_topic.format(camera=cam),
                                     lambda msg, cam=cam: self._on_camera_info(cam, msg), in_qos)
        for cam in p.cameras:
            # Raw: the callback reads only the stamp; the worker decodes the image off the executor.
            self.create_subscription(Image, p.image_topic.format(camera=cam),
                                     lambda raw, cam=cam: self._on_image(cam, raw), in_qos, raw=True)
        self.pubs = {topic: self.create_publisher(kind, topic, out_qos) for topic, kind in OUTPUTS.items()}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetQueries, "~/query", self._on_query)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # Health runs on the steady clock: with use_sim_time the node clock is a replay's /clock, which
        # stops when the replay pauses or ends, and that is when the counts are read.
        self.create_timer(1.0, self._publish_diagnostics, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.worker = threading.Thread(target=self._work, name="slarm_engine", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"ready: {len(p.cameras)} cameras {p.cameras}, model {self.engine.cfg.name} on {self.engine.device}, "
            f"window {self.engine.window}, TF from {self.tf.backend}, queries {self.queries}")

    # --- input: callbacks only enqueue --------------------------------------------------------
    def _on_camera_info(self, camera: str, info: CameraInfo) -> None:
        first = camera not in self.camera_info
        self.camera_info[camera] = info
        if not first:
            return
        # Release the images that waited for this first camera_info: those of its time or later (within
        # the sync slop) go on to matching, in order; older ones had none of their own and are skipped.
        waiting, info_stamp = self.waiting_for_info[camera], stamp_seconds(info.header.stamp)
        while waiting:
            stamp, raw = waiting.popleft()
            if stamp < info_stamp - self.params.sync_slop:
                self._skip("no_camera_info", f"{camera}: image at {stamp:.3f} s is older than the first "
                                             f"camera_info ({info_stamp:.3f} s); skipped")
            else:
                self._match(camera, stamp, raw, info)

    def _on_image(self, camera: str, raw: bytes) -> None:
        try:
            stamp = cdr_header_stamp(raw)
        except ValueError as e:
            # Per image, before matching: this image never reaches a timestep.
            self._skip("bad_header", f"{camera}: image skipped: {e}")
            return
        info = self.camera_info.get(camera)
        if info is None:
            waiting = self.waiting_for_info[camera]
            waiting.append((stamp, raw))
            if len(waiting) > MAX_WAITING_FOR_INFO:
                waiting.popleft()
                self._skip("no_camera_info", f"{camera}: no camera_info on "
                                             f"{self.params.camera_info_topic.format(camera=camera)} yet; "
                                             f"images wait for it, the oldest skipped")
            return
        self._match(camera, stamp, raw, info)

    def _match(self, camera: str, stamp: float, raw: bytes, info: CameraInfo) -> None:
        """Hand one image to the cameras' synchroniser; a completed timestep goes to the worker."""
        for stamp, matched in self.sync.add(camera, stamp, (raw, info)):
            with self.lock:
                self.stats["frames_in"] += 1
                if len(self.pending) >= self.params.input_queue:
                    self.pending.popleft()
                    self.stats["drops"] += 1
                self.pending.append((stamp, matched, time.perf_counter()))
                # Only meaningful for wall-clock stamps (live cameras): how late a matched set arrives.
                self.input_delay_ms.append((time.time() - stamp) * 1000)
                self.wake.notify()

    # --- the worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.lock:
                while self.running and not self.pending and not self.reset_requested:
                    self.wake.wait(timeout=0.5)
                if not self.running:
                    return
                if self.reset_requested:
                    self.engine.reset()
                    self.last_stamp = None
                    self.reset_requested = False
                if not self.pending:
                    continue
                stamp, matched, received = self.pending.popleft()
            try:
                self._process(stamp, matched, received)
            except Exception as e:  # never let one timestep take the node down
                self.stats["errors"] += 1
                self.get_logger().error(f"timestep at {stamp:.3f} s failed: {type(e).__name__}: {e}",
                                        throttle_duration_sec=5.0)

    def _skip(self, reason: str, message: str) -> None:
        self.stats[f"skipped_{reason}"] += 1
        self.get_logger().warning(message, throttle_duration_sec=5.0)

    def _frame_set(self, stamp: float, matched: dict) -> tuple[FrameSet, Time] | None:
        """The FrameSet of a matched timestep and the exact stamp of its newest image."""
        p = self.params
        cams, newest = [], None
        for cam in p.cameras:
            raw, info = matched[cam]
            try:
                msg = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/Image")
                image = images.to_rgb(msg)
            except images.ImageError as e:
                self._skip("bad_image", f"{cam}: {e}; timestep skipped")
                return None
            except Exception as e:  # malformed bytes
                self._skip("bad_image", f"{cam}: malformed Image message ({type(e).__name__}: {e}); timestep skipped")
                return None
            if (info.width, info.height) != (msg.width, msg.height):
                self._skip("size_mismatch", f"{cam}: image is {msg.width}x{msg.height} but its camera_info says "
                                            f"{info.width}x{info.height}; timestep skipped")
                return None
            cam_stamp = stamp_seconds(msg.header.stamp)
            try:
                pose = self.tf.lookup(p.world_frame, msg.header.frame_id, cam_stamp, timeout=p.tf_timeout)
            except TransformError as e:
                self._skip("tf", f"{cam}: no transform {p.world_frame} <- '{msg.header.frame_id}' at "
                                 f"{cam_stamp:.3f} s ({e}); timestep skipped")
                return None
            cams.append(CameraFrame(cam, image, intrinsics(info), pose, cam_stamp))
            if newest is None or cam_stamp > stamp_seconds(newest):
                newest = Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec)
        return FrameSet(stamp, tuple(cams)), newest

    def _process(self, stamp: float, matched: dict, received: float) -> None:
        p = self.params
        started = time.perf_counter()
        if self.last_stamp is not None and stamp <= self.last_stamp:
            self.get_logger().warning(f"time went back from {self.last_stamp:.3f} s to {stamp:.3f} s (a bag loop?): "
                                   "starting a new sequence")
            self.stats["time_jumps"] += 1
            self.engine.reset()
            if self.tf.backend == "built-in":
                self.tf.clear()
            self.last_stamp = None
            return  # poses of this timestep may still come from the old loop's transforms
        built = self._frame_set(stamp, matched)
        if built is None:
            return
        frame_set, newest = built
        decoded = time.perf_counter()
        try:
            result = self.engine.step(frame_set)
        except FrameError as e:
            self._skip("bad_input", f"timestep at {stamp:.3f} s rejected: {e}")
            return
        self.last_stamp = stamp
        stepped = time.perf_counter()
        with self.lock:
            queries, scorer, threshold = list(self.queries), self.scorer, self.threshold
        points = point_products(result, p.min_opacity)
        label = np.full(points.num, -1, np.int32)
        score = np.zeros(points.num, np.float32)
        scores = None
        if queries and points.num:
            with torch.inference_mode():
                scores = scorer(torch.from_numpy(points.features).to(self.engine.device)).cpu().numpy()
            best = scores.argmax(axis=1)
            score = scores[np.arange(points.num), best]
            label = np.where(score >= threshold, best, -1).astype(np.int32)

        # The points first: they are what most consumers wait for; the other outputs derive from them.
        header = Header(stamp=newest, frame_id=p.world_frame)
        products = time.perf_counter()
        self.pubs["~/points"].publish(conversions.point_cloud(header, points.xyz, points.rgb, label, score,
                                                              points.velocity))
        published = time.perf_counter()
        with self.lock:
            self.stats["frames_out"] += 1
            self.latency_ms.append((published - received) * 1000)
            for name, ms in zip(STAGES, (started - received, decoded - started, result.latency_s,
                                         products - stepped, published - products)):
                self.stage_ms[name].append(ms * 1000)
            self.done_times.append(time.monotonic())

        if self._wanted("~/scene_flow"):
            self.pubs["~/scene_flow"].publish(conversions.flow_markers(
                header, points.xyz, points.velocity, p.flow_stride, p.flow_min_speed, p.flow_arrow_seconds))
        occupancies = []
        if scores is not None:
            centre = frame_set.cameras[0].cam_to_world[:3, 3]
            grid = GridSpec.around(centre, p.occupancy_half_extent, centre[2] + p.occupancy_z_min,
                                   centre[2] + p.occupancy_z_max, p.voxel_size)
            occupancies = [query_occupancy(q, points.xyz, scores[:, i], grid, threshold) for i, q in enumerate(queries)]
        if self._wanted("~/semantic_occupancy"):
            for occ in occupancies:
                self.pubs["~/semantic_occupancy"].publish(conversions.semantic_occupancy(header, occ))
        if occupancies and self._wanted("~/semantic_occupancy_grid"):
            self.pubs["~/semantic_occupancy_grid"].publish(conversions.occupancy_grid(header, _union(occupancies)))
        with self.lock:
            self.last_occupancy = {o.query: o for o in occupancies}

    def _wanted(self, topic: str) -> bool:
        """Whether anyone subscribes to an optional output (as image_pipeline's lazy outputs: no
        subscriber, no work). The occupancy statistics the query service reports are kept regardless."""
        return self.pubs[topic].get_subscription_count() > 0

    # --- services --------------------------------------------------------------------------------
    def _set_queries(self, raw: list, threshold: float) -> None:
        if len(raw) > MAX_QUERIES:
            raise QueryError(f"{len(raw)} queries; at most {MAX_QUERIES}")
        cleaned = list(dict.fromkeys(validate_query(q) for q in raw))
        if not math.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
            raise QueryError(f"threshold {threshold} is not a cosine similarity in [-1, 1]")
        text = self.text.encode(cleaned) if cleaned else torch.zeros(0, self.text.dim)
        scorer = QueryScorer.build(self.engine.model.semantic_projection, text.to(self.engine.device))
        with self.lock:
            self.queries, self.scorer, self.threshold = cleaned, scorer, threshold
            self.last_occupancy = {k: v for k, v in self.last_occupancy.items() if k in cleaned}

    def _on_query(self, request: SetQueries.Request, response: SetQueries.Response) -> SetQueries.Response:
        try:
            if request.clear:
                self._set_queries([], self.threshold)
            else:
                if not request.queries:
                    raise QueryError("no queries given; send clear=true to remove all queries")
                threshold = self.params.score_threshold if math.isnan(request.threshold) else float(request.threshold)
                self._set_queries(list(request.queries), threshold)
            with self.lock:
                queries, threshold, last = list(self.queries), self.threshold, dict(self.last_occupancy)
            response.success = True
            response.message = (f"{len(queries)} active queries (threshold {threshold:.2f}): " + ", ".join(queries)
                                if queries else "no active queries")
            response.stats = [conversions.query_stats(last.get(q), q) for q in queries]
        except QueryError as e:
            self.stats["rejected_queries"] += 1
            response.success, response.message = False, f"rejected: {e}; active queries unchanged"
        except Exception as e:  # an unexpected failure must not take the service down
            self.stats["errors"] += 1
            self.get_logger().error(f"query request failed: {type(e).__name__}: {e}")
            response.success, response.message = False, f"internal error: {type(e).__name__}: {e}"
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self.reset_requested = True
            self.pending.clear()
            self.wake.notify()
        self.sync.reset()
        response.success, response.message = True, "window cleared; the next timestep starts a new sequence"
        return response

    def _on_set_parameters(self, parameters: list) -> SetParametersResult:
        """Run-time changes of the node's LIVE parameters: validated together, then used from the next
        timestep (the worker reads ``self.params`` once per timestep). ROS itself refuses read-only
        ones and wrong types; other parameters (use_sim_time, QoS overrides) are not this node's to judge."""
        names = {f.name for f in dataclasses.fields(NodeParams)}
        changes = {p.name: p.value for p in parameters if p.name in names}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            updated = with_changes(self.params, changes)
        except ValueError as e:
            self.stats["rejected_parameters"] += 1
            return SetParametersResult(successful=False, reason=str(e))
        self.params = updated
        self.sync.slop = updated.sync_slop
        self.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    # --- diagnostics -------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        with self.lock:
            stats = dict(self.stats)
            lat = np.array(self.latency_ms)
            stages = {name: float(np.median(v)) if v else float("nan") for name, v in self.stage_ms.items()}
            input_delay = float(np.median(self.input_delay_ms)) if self.input_delay_ms else float("nan")
            times = list(self.done_times)
            queries = list(self.queries)
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        values = {
            "frames_in": stats.get("frames_in", 0), "frames_out": stats.get("frames_out", 0),
            # drops: matched timesteps never processed (inference slower than input); unmatched: images
            # that found no partner within the slop (a camera missing, or the first ones at start-up)
            "drops": stats.get("drops", 0), "unmatched_images": self.sync.dropped,
            "latency_p50_ms": float(np.median(lat)) if lat.size else float("nan"),
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
            **{f"{name}_p50_ms": ms for name, ms in stages.items()}, "input_delay_p50_ms": input_delay,
            "rate_hz": rate,
            "window_fill": self.engine.window_fill, "window": self.engine.window or 0,
            "device": str(self.engine.device), "tf_backend": self.tf.backend, "queries": ", ".join(queries),
            "tf_rejected": self.tf.rejected,
            # images held until their camera's first camera_info arrives
            "waiting_for_camera_info": sum(len(q) for q in self.waiting_for_info.values()),
        }
        values.update({k: v for k, v in stats.items() if k.startswith(("skipped_", "rejected_", "errors", "time_"))})
        problems = [k for k in values if k.startswith(("skipped_", "errors", "tf_rejected")) and values[k]]
        no_info = [cam for cam, q in self.waiting_for_info.items() if q]
        message = "; ".join(([f"skipping input: {', '.join(problems)}"] if problems else [])
                            + ([f"waiting for camera_info of {', '.join(no_info)}"] if no_info else [])) or "running"
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if problems or no_info or stats.get("drops") else DiagnosticStatus.OK,
            name=f"{self.get_name()}: engine", hardware_id=str(self.engine.device),
            message=message,
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        self.diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                     status=[status]))

    def shutdown(self) -> None:
        with self.lock:
            self.running = False
            self.wake.notify()
        self.worker.join(timeout=5.0)


def _union(occupancies: list[QueryOccupancy]) -> QueryOccupancy:
    """One grid with the voxels of every query (best score), for the bird's-eye OccupancyGrid."""
    first = occupancies[0]
    indices = np.concatenate([o.indices for o in occupancies])
    scores = np.concatenate([o.scores for o in occupancies])
    counts = np.concatenate([o.counts for o in occupancies])
    order = np.lexsort((-scores, indices))
    indices, scores, counts = indices[order], scores[order], counts[order]
    keep = np.ones(len(indices), bool)
    keep[1:] = indices[1:] != indices[:-1]
    return QueryOccupancy(query=" | ".join(o.query for o in occupancies), threshold=first.threshold, grid=first.grid,
                          indices=indices[keep], scores=scores[keep], counts=counts[keep],
                          matched_points=sum(o.matched_points for o in occupancies),
                          max_score=max(o.max_score for o in occupancies),
                          mean_score=float(np.mean([o.mean_score for o in occupancies])))


def main(argv: list[str] | None = None) -> int:
    # The executor thread hands a matched timestep to the worker thread: a short GIL switch interval
    # (5 ms by default) lets the worker start as soon as it is woken.
    sys.setswitchinterval(0.0005)
    rclpy.init(args=argv)
    try:
        node = SlarmNode()
    except StartupError as e:
        print(f"slarm_node: {e}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        # The single-threaded executor on purpose: rclpy 9.1's experimental EventsExecutor left
        # service calls unanswered and did not stop on SIGTERM here.
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
