"""Self-supervised training of the SLARM network by differentiable rendering (ROS-free)."""
