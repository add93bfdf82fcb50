"""The streaming engine (ROS-free)."""
from .products import PointProducts, point_products
from .reconstructor import DEFAULT_CHECKPOINT, PreparedFrames, Reconstructor, StepResult, resolve_device

__all__ = ["Reconstructor", "StepResult", "PreparedFrames", "PointProducts", "point_products",
           "DEFAULT_CHECKPOINT", "resolve_device"]
