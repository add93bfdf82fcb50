"""The SLARM network (ROS-free)."""
from .config import SlarmConfig, parse_attention
from .network import Prediction, SlarmNet, ViewBatch

__all__ = ["SlarmConfig", "SlarmNet", "ViewBatch", "Prediction", "parse_attention"]
