"""RangeMap: runs of keys mapped to runs of values."""

from hv.xen.rangemap import RangeMap, Run


def test_lookup_inside_and_outside_a_run():
    m = RangeMap()
    m.set(100, 10, 5000, "a")
    assert m.get(100) == (5000, "a")
    assert m.get(109) == (5009, "a")
    assert m.get(110) is None and m.get(99) is None
    assert len(m) == 10


def test_adjacent_runs_with_the_same_tag_and_contiguous_values_merge():
    m = RangeMap()
    m.set(0, 4, 100, "t")
    m.set(4, 4, 104, "t")
    assert m.nr_runs() == 1 and list(m) == [Run(0, 8, 100, "t")]
    m.set(8, 4, 200, "t")          # values not contiguous: stays apart
    m.set(12, 4, 204, "u")         # another tag: stays apart
    assert m.nr_runs() == 3


def test_clearing_the_middle_splits_a_run():
    m = RangeMap()
    m.set(0, 10, 1000, None)
    m.clear(3, 4)
    assert list(m) == [Run(0, 3, 1000, None), Run(7, 3, 1007, None)]
    assert len(m) == 6
    assert m.get(3) is None and m.get(7) == (1007, None)


def test_set_over_existing_runs_replaces_them():
    m = RangeMap()
    m.set(0, 10, 0, "a")
    m.set(20, 10, 20, "a")
    m.set(5, 20, 500, "b")
    assert list(m) == [Run(0, 5, 0, "a"), Run(5, 20, 500, "b"), Run(25, 5, 25, "a")]
    assert len(m) == 30


def test_runs_between_clips_to_the_window():
    m = RangeMap()
    m.set(0, 10, 100, "a")
    m.set(10, 10, None, "b")
    assert list(m.runs(5, 15)) == [Run(5, 5, 105, "a"), Run(10, 5, None, "b")]
    assert m.overlaps(19, 5) and not m.overlaps(20, 5)


def test_valueless_runs_merge_only_with_valueless_runs():
    m = RangeMap()
    m.set(0, 2, None, "x")
    m.set(2, 2, None, "x")
    m.set(4, 2, 7, "x")
    assert [r.length for r in m] == [4, 2]
