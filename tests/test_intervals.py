"""portal.domain.intervals: tables, and properties against a set of points (pure, no Django)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from portal.domain.intervals import clip, intersect, merge, subtract

T0 = datetime(2026, 11, 3, tzinfo=UTC)
H = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + hours * H


def test_merge_joins_overlapping_and_touching_intervals_and_drops_empty_ones():
    assert merge([(5, 7), (1, 3), (2, 4), (4, 5), (9, 9), (10, 8)]) == [(1, 7)]
    assert merge([(at(2), at(3)), (at(0), at(1))]) == [(at(0), at(1)), (at(2), at(3))]
    assert merge([]) == []


def test_clip_keeps_the_parts_inside_the_bounds():
    assert clip([(0, 5), (6, 8), (9, 12)], 2, 10) == [(2, 5), (6, 8), (9, 10)]
    assert clip([(0, 2), (10, 12)], 2, 10) == []


def test_subtract_and_intersect():
    assert subtract([(0, 10)], [(2, 3), (5, 7)]) == [(0, 2), (3, 5), (7, 10)]
    assert subtract([(0, 4), (6, 10)], [(3, 7)]) == [(0, 3), (7, 10)]
    assert intersect([(0, 4), (6, 10)], [(3, 7)]) == [(3, 4), (6, 7)]
    assert intersect([(at(0), at(4))], [(at(4), at(5))]) == []


def points(intervals) -> set[int]:
    return {p for s, e in intervals for p in range(s, e)}


spans = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=8)


@given(spans, spans, st.integers(0, 60), st.integers(0, 60))
def test_every_operation_is_the_set_operation_on_the_points(a, b, lo, hi):
    ma, mb = merge(a), merge(b)
    assert points(ma) == points(a)
    assert all(s < e for s, e in ma) and all(ma[i][1] < ma[i + 1][0] for i in range(len(ma) - 1))
    assert points(clip(ma, lo, hi)) == {p for p in points(a) if lo <= p < hi}
    assert points(subtract(ma, mb)) == points(a) - points(b)
    assert points(intersect(ma, mb)) == points(a) & points(b)
    assert merge(subtract(ma, mb)) == subtract(ma, mb)
