"""Write stereo recordings to rosbag2 (mcap or sqlite3) with ``rosbags``, and repair bags
left behind by a killed recorder.

The writer stores CDR-serialised ROS messages with the standard rosbag2 metadata, so ``ros2
bag play``, ``ros2 bag info`` and Foxglove read the result. Images may be stored raw
(``sensor_msgs/msg/Image``) or compressed (``sensor_msgs/msg/CompressedImage`` on
``<topic>/compressed``, the image_transport convention).

Durability: rosbags writes mcap data in chunks and the summary and ``metadata.yaml`` only on
close. :class:`StereoBagWriter` flushes the open chunk to the OS at least every
``flush_period_s``, so after ``kill -9`` everything up to the last flush is on disk;
:func:`repair_bag` then closes the truncated mcap (or sqlite3) file and writes the metadata,
the equivalent of ``ros2 bag reindex``.
"""
from __future__ import annotations

import errno
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["StereoBagWriter", "BagWriteError", "BagStats", "repair_bag", "STORAGES",
           "MCAP_MAGIC"]

#: Storage plugins rosbags can write.
STORAGES = ("mcap", "sqlite3")
#: MCAP file magic (MCAP spec, "Magic").
MCAP_MAGIC = b"\x89MCAP0\r\n"
#: MCAP record opcodes used here (MCAP spec, "Records").
_OP_HEADER, _OP_FOOTER, _OP_DATA_END = 0x01, 0x02, 0x0F
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, length


class BagWriteError(RuntimeError):
    """The bag cannot be opened or written (unwritable path, disk full, ...)."""


@dataclass
class BagStats:
    """Counters of one open bag."""

    path: Path
    messages: int = 0
    pairs: int = 0
    bytes_written: int = 0
    first_stamp_ns: int = 0
    last_stamp_ns: int = 0
    opened_at_s: float = 0.0


class StereoBagWriter:
    """A rosbag2 writer for serialised ROS messages.

    Args:
        path: bag folder to create (must not exist; its parent is created).
        storage: "mcap" (default) or "sqlite3".
        flush_period_s: longest time between flushes of written data to the OS.

    Raises:
        ValueError: unknown storage.
        BagWriteError: the folder exists or cannot be created.
    """

    def __init__(self, path: str | Path, storage: str = "mcap",
                 flush_period_s: float = 1.0) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {list(STORAGES)}, got {storage!r}")
        if not flush_period_s > 0:
            raise ValueError(f"flush_period_s must be > 0, got {flush_period_s}")
        self.path = Path(path)
        self.storage = storage
        self.flush_period_s = float(flush_period_s)
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BagWriteError(f"cannot create the output folder {parent}: {exc}") from exc
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BagWriteError(f"output folder {parent} is not writable")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagWriteError(f"cannot create bag {self.path}: {exc}") from exc
        self._connections: dict[str, Any] = {}
        self._typestore = None
        self._last_flush = time.monotonic()
        self._flushed_messages = 0
        self.stats = BagStats(path=self.path, opened_at_s=time.monotonic())
        self.closed = False

    # ------------------------------------------------------------------ writing
    def _connection(self, topic: str, msgtype: str) -> Any:
        conn = self._connections.get(topic)
        if conn is None:
            from rosbags.typesys import Stores, get_typestore

            if self._typestore is None:
                self._typestore = get_typestore(Stores.LATEST)
            conn = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
            self._connections[topic] = conn
        return conn

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """Write one serialised (CDR) message.

        Args:
            topic: full topic name, e.g. "/left/image_rect".
            msgtype: ROS type, e.g. "sensor_msgs/msg/Image".
            stamp_ns: log time, ns (the message header stamp for recordings).
            data: ``rclpy.serialization.serialize_message(msg)``.

        Raises:
            BagWriteError: the write failed (the bag is aborted; run :func:`repair_bag`).
        """
        if self.closed:
            raise BagWriteError(f"bag {self.path} is closed")
        try:
            self._writer.write(self._connection(topic, msgtype), int(stamp_ns), data)
            self._maybe_flush()
        except OSError as exc:
            self.abort()
            reason = "disk full" if exc.errno == errno.ENOSPC else str(exc)
            raise BagWriteError(f"writing {self.path} failed ({reason}); the bag was closed "
                                "without metadata: run repair_bag() on it") from exc
        s = self.stats
        s.messages += 1
        s.bytes_written += len(data)
        s.first_stamp_ns = stamp_ns if s.first_stamp_ns == 0 else min(s.first_stamp_ns,
                                                                      stamp_ns)
        s.last_stamp_ns = max(s.last_stamp_ns, stamp_ns)

    def _maybe_flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (now - self._last_flush < self.flush_period_s
                          or self._flushed_messages == self.stats.messages):
            return
        self._last_flush = now
        self._flushed_messages = self.stats.messages
        st = getattr(self._writer, "storage", None)
        # rosbags internals (0.10/0.11): McapWriter buffers a chunk in memory, Sqlite3Writer
        # keeps one transaction; both are flushed here so a killed process loses at most
        # flush_period_s of data.
        if hasattr(st, "close_chunk") and getattr(getattr(st, "chunk", None), "bio", None):
            if st.chunk.bio.tell():
                st.close_chunk()
            st.bio.flush()
        elif hasattr(st, "conn"):
            st.conn.commit()

    def flush(self) -> None:
        """Push everything written so far to the OS."""
        if not self.closed:
            self._maybe_flush(force=True)

    def flush_if_due(self) -> None:
        """Flush when the last flush is older than ``flush_period_s`` (call when idle)."""
        if not self.closed:
            self._maybe_flush()

    def close(self) -> BagStats:
        """Finish the file and write ``metadata.yaml`` (atomically). Idempotent."""
        if self.closed:
            return self.stats
        self.closed = True
        try:
            self._writer.close()
        except OSError as exc:
            self._abort_quietly()
            raise BagWriteError(f"closing {self.path} failed: {exc}; run repair_bag()") from exc
        return self.stats

    def abort(self) -> None:
        """Close the file without summary or metadata (use after an error)."""
        self.closed = True
        self._abort_quietly()

    def _abort_quietly(self) -> None:
        try:
            self._writer.abort()
        except Exception:  # noqa: BLE001 - already failing; keep the first error
            pass
        tmp = self.path / "metadata.yaml.tmp"
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------------- repair
def _truncate_mcap(path: Path) -> int:
    """Cut a truncated mcap after its last complete record and close it with DataEnd + Footer
    (summary offset 0: readers scan the data section). Returns the number of bytes kept."""
    with path.open("rb") as f:
        data = f.read()
    if not data.startswith(MCAP_MAGIC):
        raise ValueError(f"{path} is not an mcap file (bad magic)")
    if len(data) >= 2 * len(MCAP_MAGIC) and data.endswith(MCAP_MAGIC):
        return len(data)  # already closed
    pos = len(MCAP_MAGIC)
    good = pos
    while pos + _RECORD_HEAD.size <= len(data):
        op, length = _RECORD_HEAD.unpack_from(data, pos)
        end = pos + _RECORD_HEAD.size + length
        if end > len(data) or op in (_OP_FOOTER, _OP_DATA_END):
            break
        pos = good = end
    tail = bytearray()
    tail += _RECORD_HEAD.pack(_OP_DATA_END, 4) + struct.pack("<I", 0)
    tail += _RECORD_HEAD.pack(_OP_FOOTER, 20) + struct.pack("<QQI", 0, 0, 0)
    tail += MCAP_MAGIC
    with path.open("r+b") as f:
        f.truncate(good)
        f.seek(good)
        f.write(tail)
    return good


def repair_bag(path: str | Path) -> int:
    """Make a bag left by a killed or failed recorder readable; returns its message count.

    Closes a truncated mcap file after its last complete record (incomplete data after the
    last flush is dropped), then writes ``metadata.yaml`` from the storage file's own index.
    A bag that already has metadata is left alone.

    Raises:
        FileNotFoundError: no bag folder or no storage file in it.
        ValueError: the storage file is not a bag.
    """
    from rosbags.rosbag2.metadata import dump_qos_v9
    from rosbags.rosbag2.storage_mcap import McapReader
    from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader
    from ruamel.yaml import YAML

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no bag folder {path}")
    meta = path / "metadata.yaml"
    if meta.exists():
        from rosbags.rosbag2 import Reader

        with Reader(path) as reader:
            return reader.message_count
    files = sorted(path.glob("*.mcap")) + sorted(path.glob("*.db3"))
    if not files:
        raise FileNotFoundError(f"no .mcap or .db3 file in {path}")
    storage_file = files[0]
    if storage_file.suffix == ".mcap":
        _truncate_mcap(storage_file)
        reader: Any = McapReader(storage_file)
        storage_id = "mcap"
    else:
        reader = Sqlite3Reader(storage_file)
        storage_id = "sqlite3"
    reader.open()
    try:
        conns = list(reader.connections)
        counts = {c.id: 0 for c in conns}
        start, end = 2 ** 63 - 1, 0
        for conn, stamp, _ in reader.messages(conns):
            counts[conn.id] += 1
            start, end = min(start, stamp), max(end, stamp)
    finally:
        reader.close()
    total = sum(counts.values())
    if total == 0:
        start = 0
    duration = max(0, end - start)
    info = {
        "version": 9, "storage_identifier": storage_id,
        "relative_file_paths": [storage_file.name],
        "duration": {"nanoseconds": duration},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": total,
        "topics_with_message_count": [
            {"topic_metadata": {"name": c.topic, "type": c.msgtype,
                                "serialization_format": "cdr",
                                "offered_qos_profiles": dump_qos_v9(
                                    list(getattr(c.ext, "offered_qos_profiles", []))),
                                "type_description_hash": c.digest},
             "message_count": counts[c.id]} for c in conns],
        "compression_format": "", "compression_mode": "",
        "files": [{"path": storage_file.name,
                   "starting_time": {"nanoseconds_since_epoch": start},
                   "duration": {"nanoseconds": duration}, "message_count": total}],
        "custom_data": {"repaired_by": "hand_mesh_ros.bag.repair_bag"},
        "ros_distro": "rosbags",
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    tmp = meta.with_suffix(".yaml.tmp")
    with tmp.open("w") as f:
        yaml.dump({"rosbag2_bagfile_information": info}, f)
    tmp.replace(meta)
    return total
