"""Approximate-time synchronisation across cameras."""
from slarm_ros.sync import ApproximateSync


def test_identical_stamps_match_at_once():
    sync = ApproximateSync(("a", "b", "c"), slop=0.01)
    assert sync.add("a", 1.0, "a1") == []
    assert sync.add("b", 1.0, "b1") == []
    assert sync.add("c", 1.0, "c1") == [(1.0, {"a": "a1", "b": "b1", "c": "c1"})]


def test_stamps_within_the_slop_match_and_stale_ones_are_dropped():
    sync = ApproximateSync(("a", "b"), slop=0.02)
    sync.add("a", 1.00, "a1")
    sync.add("a", 1.10, "a2")
    assert sync.add("b", 1.105, "b2") == [(1.105, {"a": "a2", "b": "b2"})]
    assert sync.dropped == 1  # a1 had no partner
    assert sync.add("b", 1.3, "b3") == [] and sync.add("a", 1.25, "a3") == []
    assert sync.dropped == 2


def test_queues_are_bounded_and_time_going_back_restarts_a_stream():
    sync = ApproximateSync(("a", "b"), slop=0.01, queue_size=3)
    for k in range(10):
        sync.add("a", float(k), k)
    assert len(sync.queues["a"]) == 3 and sync.dropped == 7
    sync.add("a", 0.5, "back")
    assert list(sync.queues["a"]) == [(0.5, "back")]
