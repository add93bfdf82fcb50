"""Launch slarm_node for a driving rig, optionally with RViz.

  ros2 launch slarm_ros driving.launch.py [config:=FILE] [use_sim_time:=true] [device:=auto|cpu|cuda]
                                          [checkpoint:=FILE] [namespace:=NS] [rviz:=true]
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("slarm_ros")
    config = LaunchConfiguration("config")
    use_sim_time = LaunchConfiguration("use_sim_time")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "driving.yaml"),
                              description="parameter file"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu or cuda"),
        DeclareLaunchArgument("checkpoint", default_value="", description="weights; empty: the shipped model"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("rviz", default_value="false", description="open RViz with rviz/slarm.rviz"),
        # Fast DDS: shared memory + TCP; UDP alone drops large images and clouds. The profile gives
        # shared memory a segment large enough for bursts of images from several cameras.
        SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               os.path.join(share, "config", "fastdds_large_data.xml")),
        Node(
            package="slarm_ros", executable="slarm_node", name="slarm_node",
            namespace=LaunchConfiguration("namespace"), output="screen",
            parameters=[config, {"use_sim_time": use_sim_time, "device": LaunchConfiguration("device"),
                                 "checkpoint": LaunchConfiguration("checkpoint")}],
        ),
        Node(
            package="rviz2", executable="rviz2", name="rviz2", output="screen",
            arguments=["-d", os.path.join(share, "rviz", "slarm.rviz")],
            parameters=[{"use_sim_time": use_sim_time}],
            condition=IfCondition(LaunchConfiguration("rviz")),
        ),
    ])
