from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from etl.state import plan_windows

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=180)


def plan(warehouse, partitions, *, window_days=90, min_pieces=1, end=END):
    return plan_windows(
        warehouse, partitions, run_id="r1", backfill_start=START, end=end,
        lookback=timedelta(days=8), window=timedelta(days=window_days),
        min_pieces=min_pieces, force_start=False,
    )  # fmt: skip


def test_a_range_is_cut_into_windows_no_longer_than_window_days(warehouse):
    windows = plan(warehouse, [("p", "prod")])
    assert [(w.from_at, w.to_at) for w in windows] == [
        (START, START + timedelta(days=90)),
        (START + timedelta(days=90), END),
    ]


def test_few_partitions_get_more_windows_that_tile_the_range_exactly(warehouse):
    windows = plan(warehouse, [("p", "prod")], min_pieces=7)
    assert len(windows) == 7
    assert windows[0].from_at == START and windows[-1].to_at == END
    assert all(a.to_at == b.from_at for a, b in pairwise(windows))
    assert all((w.to_at - w.from_at).microseconds == 0 for w in windows)


def test_a_later_run_reads_only_from_the_last_end_minus_the_lookback(warehouse):
    plan(warehouse, [("p", "prod")])
    later = END + timedelta(days=1)
    windows = plan(warehouse, [("p", "prod")], min_pieces=3, end=later)
    resumed = windows[:2]  # the first run never marked its windows done
    fresh = windows[2:]
    assert [w.from_at for w in resumed] == [START, START + timedelta(days=90)]
    assert fresh[0].from_at == END - timedelta(days=8) and fresh[-1].to_at == later
    assert len(fresh) == 3
