"""Settings of the hand_mesh_ros nodes (one ROS parameter per field, see ``params.py``).

Defaults are the values in ``config/hand_mesh.yaml``; a test keeps the two in sync.
"""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, setting

__all__ = ["SyncConfig", "RecorderConfig", "StereoNodeConfig", "IMAGE_QOS_CHOICES",
           "STORAGE_CHOICES", "COMPRESSION_CHOICES", "DEVICE_CHOICES", "HANDEDNESS_CHOICES",
           "AUTO_HANDEDNESS", "INPUT_SIZE_FROM_CHECKPOINT"]

#: QoS of the image subscriptions: "sensor_data" (best effort, matches every publisher) or
#: "reliable" (lossless, matches only reliable publishers).
IMAGE_QOS_CHOICES = ("sensor_data", "reliable")
STORAGE_CHOICES = ("mcap", "sqlite3")
COMPRESSION_CHOICES = ("none", "png", "jpeg")
DEVICE_CHOICES = ("cpu", "cuda")
HANDEDNESS_CHOICES = ("left", "right", "auto")
#: The hand reported for handedness "auto" until a handedness classifier exists (the synthetic
#: pretraining data and most single-hand rigs are right-handed).
AUTO_HANDEDNESS = "right"
#: ``input_size`` value meaning "use the checkpoint's input size".
INPUT_SIZE_FROM_CHECKPOINT = 0


@dataclass(frozen=True)
class SyncConfig(ConfigBase):
    """Synchronisation of the left/right images and camera infos (shared by both nodes)."""

    approximate_sync: bool = setting(False, "match stamps within slop_s instead of exactly")
    slop_s: float = setting(0.01, "largest stamp difference accepted by approximate sync",
                            unit="s", gt=0.0, le=1.0)
    queue_size: int = setting(10, "messages kept per input while waiting for a match",
                              ge=1, le=1000)
    image_qos: str = setting("sensor_data", "QoS of the image subscriptions",
                             choices=IMAGE_QOS_CHOICES)


@dataclass(frozen=True)
class RecorderConfig(SyncConfig):
    """The stereo recorder node."""

    output_dir: str = setting("bags", "folder that receives one bag folder per recording")
    storage: str = setting("mcap", "rosbag2 storage plugin", choices=STORAGE_CHOICES)
    compression: str = setting("png", "image storage: raw Image, or CompressedImage on "
                               "<topic>/compressed (png is lossless)",
                               choices=COMPRESSION_CHOICES)
    png_level: int = setting(1, "PNG zlib level (0 none .. 9 smallest, slowest)", ge=0, le=9)
    jpeg_quality: int = setting(95, "JPEG quality", ge=1, le=100)
    rate_hz: float = setting(0.0, "keep at most this many pairs per second (0: all)",
                             unit="Hz", ge=0.0)
    only_with_hand: bool = setting(False, "skip pairs whose left image has no skin blob")
    min_skin_fraction: float = setting(0.002, "skin share of the left image that counts as a "
                                       "hand (only_with_hand)", gt=0.0, lt=1.0)
    max_duration_s: float = setting(0.0, "stop recording after this long (0: no limit)",
                                    unit="s", ge=0.0)
    max_bytes: int = setting(0, "stop recording after this many bytes (0: no limit)",
                             unit="B", ge=0)
    autostart: bool = setting(True, "start recording at launch (else call ~/start)")
    encode_threads: int = setting(2, "parallel image encoders", ge=1, le=16)
    max_pending: int = setting(32, "pairs waiting to be encoded/written before new ones are "
                               "dropped", ge=1, le=1024)
    flush_period_s: float = setting(1.0, "longest time between flushes to disk (data at risk "
                                    "after kill -9)", unit="s", gt=0.0)
    progress_period_s: float = setting(5.0, "period of the progress log line", unit="s",
                                       gt=0.0)


@dataclass(frozen=True)
class StereoNodeConfig(SyncConfig):
    """The hand mesh node."""

    model_path: str = setting("", "checkpoint (.safetensors); empty: the shipped default")
    device: str = setting("cpu", "inference device", choices=DEVICE_CHOICES)
    handedness: str = setting("auto", "hand to expect: left or right; auto means right until "
                              "a handedness classifier exists", choices=HANDEDNESS_CHOICES)
    min_confidence: float = setting(0.3, "results below this confidence count as no hand",
                                    ge=0.0, le=1.0)
    input_size: int = setting(INPUT_SIZE_FROM_CHECKPOINT, "side of the square network input "
                              "crop; 0: the checkpoint's, else it must equal the checkpoint's "
                              "(a mismatch is refused)", unit="px", ge=0, le=1024)
    cpu_threads: int = setting(1, "CPU threads of torch and OpenCV in this process, set at "
                               "start-up (0: the libraries' defaults); 1 avoids the large "
                               "slow-downs of spinning thread pools on a busy machine", ge=0)
    max_process_width_px: int = setting(640, "wider pairs are downscaled (area filter, "
                                        "intrinsics scaled to match) before the hand search and "
                                        "the network; the network sees a small crop, so full "
                                        "HD only costs time (0: never)", unit="px", ge=0)
    track_roi: bool = setting(True, "track the hand: search a window around the last hand "
                              "(a few ms) instead of the whole image (50-100 ms at 640x480); "
                              "search the whole image when the hand is lost and, in the "
                              "background, every redetect_every pairs")
    track_margin_frac: float = setting(0.15, "estimators without find_roi: growth of the "
                                       "tracked box (projected mesh) on each side, as a "
                                       "fraction of its long side (as the ROI finder's "
                                       "margin_frac)", ge=0.0, le=1.0)
    redetect_every: int = setting(30, "with track_roi, search the whole image at least every "
                                  "this many tracked pairs (in a background thread with the "
                                  "model pipeline)", ge=1)
    quick_acquire: bool = setting(True, "with track_roi, find a lost hand with the fast "
                                  "search over the whole image (~5 ms at 640x480, less "
                                  "accurate) and confirm it with a full search in the "
                                  "background, instead of a full search (30-100 ms) on the "
                                  "critical path")
    max_rate_hz: float = setting(0.0, "process at most this many pairs per second (0: as "
                                 "fast as possible)", unit="Hz", ge=0.0)
    max_image_pixels: int = setting(4096 * 4096, "larger images are refused", unit="px", gt=0)
    warn_period_s: float = setting(5.0, "shortest time between two identical warnings",
                                   unit="s", gt=0.0)
    stall_timeout_s: float = setting(1.0, "a camera silent this long while the other "
                                     "publishes is reported as stalled", unit="s", gt=0.0)
