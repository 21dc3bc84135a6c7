"""Half-open intervals [start, end): pure Python, no Django.

The one place the domain merges, clips, subtracts and intersects intervals: uptime (outages and
maintenance), the maintenance rules (off-peak hours, the annual cap) and the SLA clock (a week's
opening hours, a ticket's pauses) all use these. Bounds are anything ordered: aware datetimes,
integer microseconds, times of day. An empty interval (start >= end) holds nothing and is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T", bound=Any)
Interval = tuple[T, T]


def merge(intervals: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """Sorted, disjoint intervals covering exactly what the given ones cover. Intervals that
    overlap or touch (one ends where the next starts) become one; empty ones are dropped."""
    out: list[tuple[T, T]] = []
    for s, e in sorted(i for i in intervals if i[0] < i[1]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def clip(intervals: Iterable[tuple[T, T]], lo: T, hi: T) -> list[tuple[T, T]]:
    """The parts of the intervals inside [lo, hi), in the given order."""
    return [(max(s, lo), min(e, hi)) for s, e in intervals if s < hi and e > lo]


def subtract(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """Merged intervals `a` minus merged intervals `b` (both sorted and disjoint, as merge gives)."""
    out: list[tuple[T, T]] = []
    j = 0
    for s, e in a:
        cursor = s
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < e:
            out.append((cursor, e))
    return out


def intersect(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """What merged intervals `a` and merged intervals `b` both cover."""
    out: list[tuple[T, T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
