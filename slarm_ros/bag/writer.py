"""Writing ROS 2 bags with rosbags (mcap by default, sqlite3 on request), Kilted message types."""
from __future__ import annotations

from pathlib import Path

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from .messages import TYPESTORE

_NEVER = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
LATCHED = Qos(history=QosHistory.KEEP_LAST, depth=1, reliability=QosReliability.RELIABLE,
              durability=QosDurability.TRANSIENT_LOCAL, deadline=_NEVER, lifespan=_NEVER,
              liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_NEVER,
              avoid_ros_namespace_conventions=False)


class BagWriter:
    """``with BagWriter(path) as bag: bag.write(topic, stamp_ns, msg)``; connections are made on first use."""

    def __init__(self, path: str | Path, storage: str = "mcap", compress: bool = True):
        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be 'mcap' or 'sqlite3', got '{storage}'")
        self.path = Path(path)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(self.path, version=9, storage_plugin=plugin)
        if compress:
            self.writer.set_compression(CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE,
                                        CompressionFormat.ZSTD)
        self.connections = {}

    def __enter__(self) -> "BagWriter":
        self.writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def write(self, topic: str, stamp: float, msg, latched: bool = False) -> None:
        """Serialize ``msg`` (a rosbags message) and record it at ``stamp`` seconds."""
        self.write_raw(topic, msg.__msgtype__, stamp, TYPESTORE.serialize_cdr(msg, msg.__msgtype__), latched)

    def write_raw(self, topic: str, typename: str, stamp: float, data: bytes, latched: bool = False) -> None:
        """Record already-serialized CDR bytes of type ``typename`` at ``stamp`` seconds."""
        conn = self.connections.get(topic)
        if conn is None:
            conn = self.writer.add_connection(topic, typename, typestore=TYPESTORE,
                                              offered_qos_profiles=[LATCHED] if latched else ())
            self.connections[topic] = conn
        self.writer.write(conn, int(round(stamp * 1e9)), data)
