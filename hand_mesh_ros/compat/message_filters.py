"""Fallback for ROS 2 ``message_filters`` (Python): Subscriber and time synchronizers.

Used only when the real package is not importable (see :mod:`hand_mesh_ros.compat`). The
semantics follow the Python implementation in ros2/message_filters,
``src/message_filters/__init__.py`` (BSD-3, Willow Garage):

* :class:`SimpleFilter` keeps callbacks in registration order; ``registerCallback(cb, *args)``
  calls ``cb(*msgs, *args)``.
* :class:`Subscriber` takes the arguments of ``Node.create_subscription`` without the callback,
  ``qos_profile`` defaulting to 10.
* :class:`TimeSynchronizer` keeps one ``{stamp_ns: msg}`` queue per input, at most
  ``queue_size`` entries each (the oldest stamp is dropped first), and emits every stamp
  present in all queues, oldest first.
* :class:`ApproximateTimeSynchronizer` considers, for the message that just arrived, only
  candidates in the other queues whose stamp differs by at most ``slop`` seconds, tries the
  combinations nearest first and emits the first one whose spread ``max - min`` is strictly
  below ``slop``. Messages without ``header.stamp`` are dropped with a warning unless
  ``allow_headerless`` is true (then they are stamped with the current ROS time).
"""
from __future__ import annotations

import itertools
import threading
from functools import reduce
from typing import Any, Callable, Sequence

__all__ = ["SimpleFilter", "Subscriber", "TimeSynchronizer", "ApproximateTimeSynchronizer"]

#: Default subscription depth of ``message_filters.Subscriber`` (same as upstream).
DEFAULT_QOS_DEPTH = 10
_NS_PER_S = 1_000_000_000


def _stamp_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` or an ``rclpy.time.Time``."""
    if hasattr(stamp, "nanoseconds"):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


class SimpleFilter:
    """Base of all filters: a list of output callbacks."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable[..., Any], tuple]] = {}

    def registerCallback(self, cb: Callable[..., Any], *args: Any) -> int:  # noqa: N802
        """Call ``cb(*msgs, *args)`` on every output. Returns the connection id."""
        conn = len(self.callbacks)
        self.callbacks[conn] = (cb, args)
        return conn

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802
        """Pass ``msg`` to every registered callback."""
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """A ROS 2 subscription as a filter: ``Subscriber(node, msg_type, topic, **kwargs)``.

    Keyword arguments go to ``node.create_subscription`` (``qos_profile`` defaults to 10,
    ``callback_group`` etc. pass through).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        if len(args) < 3:
            raise TypeError("Subscriber(node, msg_type, topic, **kwargs): expected 3 positional "
                            f"arguments, got {len(args)}")
        self.node = args[0]
        self.topic = args[2]
        kwargs.setdefault("qos_profile", DEFAULT_QOS_DEPTH)
        self.sub = self.node.create_subscription(*args[1:], self.callback, **kwargs)

    def callback(self, msg: Any) -> None:
        """Subscription callback: forwards ``msg``."""
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802
        """The topic name as given."""
        return self.topic

    def __getattr__(self, key: str) -> Any:
        if key == "sub":  # not yet constructed
            raise AttributeError(key)
        return getattr(self.sub, key)


class TimeSynchronizer(SimpleFilter):
    """Emits sets of messages whose header stamps are exactly equal.

    Args:
        fs: the input filters (e.g. :class:`Subscriber`).
        queue_size: messages kept per input while waiting for a match.
    """

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int) -> None:
        super().__init__()
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.connectInput(fs)

    def connectInput(self, fs: Sequence[SimpleFilter]) -> None:  # noqa: N802
        """Connect the input filters (one queue each)."""
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, q, i)
                                  for i, (f, q) in enumerate(zip(fs, self.queues))]

    def _trim(self, queue: dict[int, Any]) -> None:
        while len(queue) > self.queue_size:
            del queue[min(queue)]

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Input callback: queue ``msg`` and emit every complete set."""
        with self.lock:
            my_queue[_stamp_ns(msg.header.stamp)] = msg
            self._trim(my_queue)
            common = reduce(set.intersection, [set(q) for q in self.queues])
            for t in sorted(common):
                msgs = [q[t] for q in self.queues]
                self.signalMessage(*msgs)
                for q in self.queues:
                    del q[t]


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emits sets of messages whose stamps lie within ``slop`` seconds of each other.

    Args:
        fs: the input filters.
        queue_size: messages kept per input.
        slop: largest stamp difference, seconds (a set is emitted when its spread is < slop).
        allow_headerless: stamp messages without a header with the current ROS time
            instead of dropping them.
    """

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int, slop: float,
                 allow_headerless: bool = False) -> None:
        if isinstance(slop, bool) or not isinstance(slop, (int, float)) or not slop >= 0:
            raise ValueError(f"slop must be a number of seconds >= 0, got {slop!r}")
        super().__init__(fs, queue_size)
        self.slop_ns = int(round(float(slop) * _NS_PER_S))
        self.allow_headerless = allow_headerless

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Input callback: queue ``msg`` and emit the nearest set within ``slop``."""
        if not hasattr(msg, "header") or not hasattr(msg.header, "stamp"):
            if not self.allow_headerless:
                import rclpy.logging

                rclpy.logging.get_logger("message_filters_approx").warning(
                    "cannot synchronise a message without header.stamp while "
                    "allow_headerless is false; dropped")
                return
            from rclpy.clock import ROSClock

            stamp = ROSClock().now().nanoseconds
        else:
            stamp = _stamp_ns(msg.header.stamp)
        with self.lock:
            my_queue[stamp] = msg
            self._trim(my_queue)
            others = (self.queues if my_queue_index is None
                      else self.queues[:my_queue_index] + self.queues[my_queue_index + 1:])
            candidates = []
            for queue in others:
                # stable sort by distance: ties keep arrival order, as upstream
                near = sorted((s for s in queue if abs(s - stamp) <= self.slop_ns),
                              key=lambda s: abs(s - stamp))
                if not near:
                    return
                candidates.append(near)
            for combo in itertools.product(*candidates):
                stamps = list(combo)
                if my_queue_index is not None:
                    stamps.insert(my_queue_index, stamp)
                pairs = list(zip(self.queues, stamps))
                if (max(stamps) - min(stamps) < self.slop_ns
                        and all(t in q for q, t in pairs)):
                    self.signalMessage(*[q[t] for q, t in pairs])
                    for q, t in pairs:
                        del q[t]
                    break
