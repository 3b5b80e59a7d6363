"""What one resumable connection was sent of one stream: so no push is written to it twice.

A connection starts a stream at a position (its *floor*: live pushes at or below it are not
for it) and is then sent pushes live and by replays, which may leave holes (a gap the process
skipped, filled later by a resume). :class:`Sent` keeps the offsets sent as sorted, disjoint
ranges; a resume or a gap fill sends only the offsets not in them, so asking again for what
was sent costs nothing. Ranges wholly older than one history (``HISTORY_SIZE`` offsets below
the newest) are forgotten: those pushes can no longer be replayed anyway.
"""

from __future__ import annotations

import bisect


class Sent:
    """The offsets of one stream (in one epoch) written to one connection."""

    __slots__ = ("epoch", "floor", "ranges")

    def __init__(self, epoch: str, floor: int):
        self.epoch = epoch
        #: Live pushes at or below it are not sent (they precede the connection's start).
        self.floor = floor
        #: [first, last] offsets sent, sorted, disjoint, not adjacent.
        self.ranges: list[list[int]] = []

    def has(self, offset: int) -> bool:
        """Whether ``offset`` was sent."""
        ranges = self.ranges
        if not ranges or offset > ranges[-1][1]:
            return False
        i = bisect.bisect_right(ranges, [offset, float("inf")]) - 1
        return i >= 0 and ranges[i][0] <= offset <= ranges[i][1]

    def add(self, offset: int, keep: int) -> None:
        """Record ``offset`` as sent; forget ranges more than ``keep`` offsets below it."""
        ranges = self.ranges
        if ranges and ranges[-1][1] + 1 == offset:  # the common case: the next live push
            ranges[-1][1] = offset
        elif not ranges or offset > ranges[-1][1]:
            ranges.append([offset, offset])
        else:
            i = bisect.bisect_right(ranges, [offset, float("inf")])
            if i and ranges[i - 1][1] >= offset:
                return
            ranges.insert(i, [offset, offset])
            if i + 1 < len(ranges) and ranges[i + 1][0] == offset + 1:
                ranges[i][1] = ranges.pop(i + 1)[1]
            if i and ranges[i - 1][1] + 1 == offset:
                ranges[i - 1][1] = ranges.pop(i)[1]
        newest = ranges[-1][1]
        while len(ranges) > 1 and ranges[0][1] < newest - keep:
            ranges.pop(0)
