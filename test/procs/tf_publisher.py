"""Publishes a known tf2_msgs/TFMessage on /tf at 10 Hz."""
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage


def known_tf() -> TFMessage:
    return TFMessage(transforms=[
        TransformStamped(
            header=Header(stamp=Time(sec=42, nanosec=500), frame_id="map"),
            child_frame_id="base_link",
            transform=Transform(translation=Vector3(x=1.5, y=-2.0, z=0.25),
                                rotation=Quaternion(x=0.0, y=0.0, z=0.6, w=0.8)),
        ),
        TransformStamped(
            header=Header(stamp=Time(sec=42, nanosec=500), frame_id="base_link"),
            child_frame_id="cam_front_optical",
            transform=Transform(translation=Vector3(x=1.0, y=0.0, z=1.6),
                                rotation=Quaternion(x=-0.5, y=0.5, z=-0.5, w=0.5)),
        ),
    ])


def main():
    rclpy.init()
    node = Node("tf_publisher")
    pub = node.create_publisher(TFMessage, "/tf", 100)
    node.create_timer(0.1, lambda: pub.publish(known_tf()))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
