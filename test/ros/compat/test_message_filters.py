"""The message_filters fallback against hand-made messages (no DDS traffic needed)."""
from __future__ import annotations

import itertools
import random

import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from hand_mesh_ros.compat import message_filters as mf_fallback_or_real  # noqa: F401
from hand_mesh_ros.compat.message_filters import (ApproximateTimeSynchronizer, SimpleFilter,
                                                  Subscriber, TimeSynchronizer)


def _msg(ns: int) -> CameraInfo:
    return CameraInfo(header=Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                                    frame_id=str(ns)))


class _Source(SimpleFilter):
    def push(self, msg):
        self.signalMessage(msg)


def _sync(cls, n_inputs=2, **kw):
    sources = [_Source() for _ in range(n_inputs)]
    sync = cls(sources, **kw)
    out = []
    sync.registerCallback(lambda *m: out.append(tuple(int(x.header.frame_id) for x in m)))
    return sources, sync, out


def test_simple_filter_passes_extra_args_in_order():
    f = SimpleFilter()
    got = []
    f.registerCallback(lambda m, a, b: got.append((m, a, b)), 1, 2)
    f.registerCallback(lambda m: got.append((m,)))
    f.signalMessage("x")
    assert got == [("x", 1, 2), ("x",)]


def test_exact_sync_matches_equal_stamps_only():
    (a, b), _, out = _sync(TimeSynchronizer, queue_size=5)
    a.push(_msg(100))
    b.push(_msg(101))
    assert out == []
    b.push(_msg(100))
    assert out == [(100, 100)]
    a.push(_msg(101))
    assert out == [(100, 100), (101, 101)]


def test_exact_sync_queue_drops_oldest():
    (a, b), sync, out = _sync(TimeSynchronizer, queue_size=2)
    for t in (1, 2, 3):
        a.push(_msg(t))
    assert sorted(sync.queues[0]) == [2, 3]
    b.push(_msg(1))
    assert out == []
    b.push(_msg(3))
    assert out == [(3, 3)]


def test_exact_sync_emits_all_common_oldest_first():
    (a, b, c), _, out = _sync(TimeSynchronizer, n_inputs=3, queue_size=10)
    for t in (5, 3):
        a.push(_msg(t))
        b.push(_msg(t))
    c.push(_msg(5))
    c.push(_msg(3))
    assert out == [(5, 5, 5), (3, 3, 3)]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_queue_size_validation(bad):
    with pytest.raises(ValueError, match="queue_size"):
        TimeSynchronizer([_Source()], bad)


@pytest.mark.parametrize("bad", [-0.1, "0.1", None, True])
def test_slop_validation(bad):
    with pytest.raises(ValueError, match="slop"):
        ApproximateTimeSynchronizer([_Source()], 3, bad)


def test_approx_sync_slop_is_strict():
    ms = 1_000_000
    (a, b), _, out = _sync(ApproximateTimeSynchronizer, queue_size=5, slop=0.010)
    a.push(_msg(1000 * ms))
    b.push(_msg(1010 * ms))  # exactly slop apart: not a match (spread must be < slop)
    assert out == []
    b.push(_msg(1009 * ms))
    assert out == [(1000 * ms, 1009 * ms)]


def test_approx_sync_picks_nearest_candidate():
    ms = 1_000_000
    (a, b), sync, out = _sync(ApproximateTimeSynchronizer, queue_size=5, slop=0.050)
    b.push(_msg(960 * ms))
    b.push(_msg(1020 * ms))
    b.push(_msg(995 * ms))
    a.push(_msg(1000 * ms))
    assert out == [(1000 * ms, 995 * ms)]
    assert sorted(sync.queues[1]) == [960 * ms, 1020 * ms]


def _naive_approx(events, slop_ns, queue_size):
    """Reference: same rule written as a brute-force search over all queue combinations."""
    queues = [dict(), dict()]
    out = []
    for idx, t in events:
        queues[idx][t] = t
        while len(queues[idx]) > queue_size:
            del queues[idx][min(queues[idx])]
        if t not in queues[idx]:  # the new message itself was the oldest: trimmed
            continue
        other = queues[1 - idx]
        near = [s for s in other if abs(s - t) <= slop_ns]
        near.sort(key=lambda s: abs(s - t))
        for s in near:
            if abs(s - t) < slop_ns:
                pair = (t, s) if idx == 0 else (s, t)
                out.append(pair)
                del queues[0][pair[0]]
                del queues[1][pair[1]]
                break
    return out


def test_approx_sync_matches_reference_on_random_streams():
    rng = random.Random(0)
    ms = 1_000_000
    for trial in range(20):
        events = []
        for k in range(30):
            base = k * 33 * ms
            events.append((0, base + rng.randint(-8, 8) * ms))
            events.append((1, base + rng.randint(-8, 8) * ms))
        # arrival order: roughly chronological, shuffled within blocks of 6
        events = [e for i in range(0, len(events), 6)
                  for e in rng.sample(events[i:i + 6], len(events[i:i + 6]))]
        events = list({(i, t): None for i, t in events})  # unique per input
        (a, b), _, out = _sync(ApproximateTimeSynchronizer, queue_size=4, slop=0.010)
        for idx, t in events:
            (a, b)[idx].push(_msg(t))
        assert out == _naive_approx(events, 10 * ms, 4), f"trial {trial}"
        assert all(abs(x - y) < 10 * ms for x, y in out)
        assert len(out) >= 15  # the streams do produce matches


def test_approx_sync_three_inputs():
    ms = 1_000_000
    (a, b, c), _, out = _sync(ApproximateTimeSynchronizer, n_inputs=3, queue_size=5, slop=0.02)
    a.push(_msg(100 * ms))
    c.push(_msg(110 * ms))
    assert out == []
    b.push(_msg(125 * ms))  # within slop of c but spread to a is 25 ms
    assert out == []
    b.push(_msg(105 * ms))
    assert out == [(100 * ms, 105 * ms, 110 * ms)]


def test_approx_sync_headerless_dropped_or_stamped():
    class NoHeader:
        pass

    (a, b), sync, out = _sync(ApproximateTimeSynchronizer, queue_size=3, slop=0.1)
    a.push(NoHeader())
    assert sync.queues[0] == {}
    (a, b), sync, out = _sync(ApproximateTimeSynchronizer, queue_size=3, slop=0.1,
                              allow_headerless=True)
    a.push(NoHeader())
    assert len(sync.queues[0]) == 1


def test_subscriber_wraps_create_subscription():
    calls = []

    class FakeNode:
        def create_subscription(self, *args, **kwargs):
            calls.append((args, kwargs))
            return type("Sub", (), {"topic_name": "/x"})()

    sub = Subscriber(FakeNode(), Header, "x")
    args, kwargs = calls[0]
    assert args[:2] == (Header, "x") and callable(args[2])
    assert kwargs == {"qos_profile": 10}
    assert sub.getTopic() == "x" and sub.topic_name == "/x"
    got = []
    sub.registerCallback(got.append)
    args[2](_msg(5))
    assert [m.header.frame_id for m in got] == ["5"]
    with pytest.raises(TypeError, match="3 positional"):
        Subscriber(FakeNode(), Header)


def test_itertools_product_order_is_nearest_first():
    # guard the assumption the implementation relies on
    assert list(itertools.product([1, 2], [3]))[0] == (1, 3)
