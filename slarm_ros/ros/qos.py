"""QoS profiles chosen by name in the parameter file (as nvblox does)."""
from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
                       qos_profile_system_default)

PROFILES = {
    "SENSOR_DATA": qos_profile_sensor_data,  # best effort, keep last 5
    "SYSTEM_DEFAULT": qos_profile_system_default,
    "DEFAULT": QoSProfile(depth=10),
    "RELIABLE": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    "BEST_EFFORT": QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT),
    "TRANSIENT_LOCAL": QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST),
}


def qos_from_name(name: str) -> QoSProfile:
    try:
        return PROFILES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown QoS profile '{name}'; choose one of {sorted(PROFILES)}") from None
