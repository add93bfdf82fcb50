"""Approximate-time synchronisation of several streams (one message per stream per set).

The policy of message_filters' ApproximateTime in its simplest form: keep a queue per stream;
whenever every queue has a head, take the newest head as the pivot, drop heads older than
pivot - slop, and emit the heads once all lie within ``slop`` of the pivot. Identical stamps
from several streams match at once. Queues are bounded: the oldest entries are dropped, and
counted, when a stream runs ahead.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApproximateSync:
    streams: tuple[str, ...]
    slop: float = 0.02  # seconds
    queue_size: int = 10
    queues: dict[str, deque] = field(default_factory=dict)
    dropped: int = 0

    def __post_init__(self):
        if not self.streams or len(set(self.streams)) != len(self.streams):
            raise ValueError(f"streams must be distinct and non-empty: {self.streams}")
        self.queues = {s: deque() for s in self.streams}

    def reset(self) -> None:
        for q in self.queues.values():
            q.clear()

    def add(self, stream: str, stamp: float, item: Any) -> list[tuple[float, dict[str, Any]]]:
        """Add one message; returns the sets completed by it as (stamp of the newest, {stream: item})."""
        queue = self.queues[stream]
        if queue and stamp <= queue[-1][0]:
            queue.clear()  # time went backwards or repeated: start this stream afresh
        queue.append((stamp, item))
        while len(queue) > self.queue_size:
            queue.popleft()
            self.dropped += 1
        matched = []
        while all(self.queues.values()):
            pivot = max(q[0][0] for q in self.queues.values())
            stale = False
            for q in self.queues.values():
                while q and q[0][0] < pivot - self.slop:
                    q.popleft()
                    self.dropped += 1
                    stale = True
                if not q:
                    break
            if stale:
                continue
            if all(self.queues.values()):
                matched.append((pivot, {s: self.queues[s].popleft()[1] for s in self.streams}))
        return matched
