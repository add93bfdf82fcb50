"""Publishes a known slarm_msgs/SemanticOccupancy and serves slarm_msgs/srv/SetQueries.

The service answers with per-query statistics derived from the request, so that the caller
can check that every field crossed the wire.
"""
import rclpy
from geometry_msgs.msg import Point
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from slarm_msgs.msg import QueryStats, SemanticOccupancy
from slarm_msgs.srv import SetQueries
from std_msgs.msg import Header
from builtin_interfaces.msg import Time


def known_occupancy() -> SemanticOccupancy:
    return SemanticOccupancy(
        header=Header(stamp=Time(sec=1700000000, nanosec=123456789), frame_id="map"),
        query="parked car",
        voxel_size=0.25,
        origin=Point(x=-10.0, y=-20.5, z=-1.0),
        size_x=80,
        size_y=160,
        size_z=16,
        threshold=0.3,
        indices=[3, 17, 204799],
        scores=[0.5, 0.75, 1.0],
        counts=[1, 42, 7],
    )


class Server(Node):
    def __init__(self):
        super().__init__("occupancy_server")
        self.pub = self.create_publisher(SemanticOccupancy, "semantic_occupancy", 10)
        self.srv = self.create_service(SetQueries, "query", self.on_query)
        self.timer = self.create_timer(0.1, lambda: self.pub.publish(known_occupancy()))

    def on_query(self, request, response):
        response.success = not request.clear
        response.message = f"{len(request.queries)} queries, threshold {request.threshold:.2f}"
        response.stats = [
            QueryStats(query=q, matched_points=len(q), occupied_voxels=2 * len(q),
                       max_score=request.threshold, mean_score=-request.threshold)
            for q in request.queries
        ]
        return response


def main():
    rclpy.init()
    try:
        rclpy.spin(Server())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
