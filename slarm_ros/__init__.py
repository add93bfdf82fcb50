"""slarm_ros: streaming SLARM reconstruction of dynamic driving scenes.

The engine (``model``, ``render``, ``stream``, ...) knows nothing of ROS; ``slarm_ros.ros``
is the thin ROS 2 shell around it.
"""

__version__ = "0.1.0"
