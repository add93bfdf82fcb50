"""ROS 2 bags with rosbags: write, read into FrameSets, replay onto live topics."""
