"""The ROS 2 shell around the engine: messages in, FrameSets to the engine, products out."""
