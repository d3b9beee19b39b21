"""Cluster extraction, merging, top-n and id stability."""

import numpy as np
import pytest

from estimator import Book, ClusterRule, PriceGrid, assign_ids, find_clusters, top
from estimator.clusters import Cluster, merge_touching

GRID = PriceGrid.relative(0.1)


def synthetic_book(blobs, price=92_500.0, noise=2e6, seed=0):
    """A book over 80k–105k with background noise and (side, centre, width %, USD) blobs."""
    k0, k1 = int(GRID.index(80_000)), int(GRID.index(105_000))
    rng = np.random.default_rng(seed)
    centres = GRID.centre(np.arange(k0, k1))
    sides = {"long": rng.uniform(0, noise, k1 - k0), "short": rng.uniform(0, noise, k1 - k0)}
    sides["long"][centres > price] = 0
    sides["short"][centres < price] = 0
    for side, centre, width_pct, usd in blobs:
        inside = np.abs(centres / centre - 1) * 100 <= width_pct / 2
        sides[side][inside] += usd / inside.sum()
    return Book(GRID, k0, (10,), sides["long"][None, :], sides["short"][None, :], price, 0,
                False)


def test_seed_picture_top_clusters_are_the_1b_shorts_and_641m_longs():
    book = synthetic_book([("short", 94_200, 0.4, 1.0e9), ("long", 91_000, 0.4, 641e6),
                           ("long", 88_000, 0.3, 120e6), ("short", 97_000, 0.3, 150e6)])
    clusters = find_clusters(book)
    best_short, = top(clusters, 1, "short")
    best_long, = top(clusters, 1, "long")
    assert best_short.notional_usd == pytest.approx(1.0e9, rel=0.01)
    assert best_long.notional_usd == pytest.approx(641e6, rel=0.01)
    assert 94_000 <= best_short.price <= 94_400 and best_short.low < 94_100 < best_short.high
    assert 90_800 <= best_long.price <= 91_200
    assert best_short.distance_pct == pytest.approx((best_short.price / 92_500 - 1) * 100)
    assert best_long.distance_pct < 0 < best_short.distance_pct
    # The next ones down are the smaller blobs, not noise.
    assert [round(c.notional_usd / 1e6, -1) for c in top(clusters, 2, "long")] == [640, 120]


def test_runs_within_merge_distance_become_one_cluster():
    book = synthetic_book([("short", 94_000, 0.2, 5e8), ("short", 94_300, 0.1, 5e8)], noise=0)
    merged = find_clusters(book, ClusterRule(merge_pct=0.5))
    assert len([c for c in merged if c.side == "short"]) == 1
    apart = find_clusters(book, ClusterRule(merge_pct=0.05))
    assert len([c for c in apart if c.side == "short"]) == 2


def test_empty_book_has_no_clusters():
    book = Book(GRID, 100, (10,), np.zeros((1, 5)), np.zeros((1, 5)), 100.0, 0, True)
    assert find_clusters(book) == []


def cl(id_, side, low, high, usd):
    return Cluster(id_, side, low, high, (low + high) / 2, usd, 0.0)


def test_ids_follow_overlap_and_new_clusters_keep_fresh_ids():
    prev = [cl("S1", "short", 94_000, 94_400, 1e9), cl("L1", "long", 90_900, 91_100, 6e8)]
    cur = [cl("x", "short", 94_100, 94_600, 1.2e9), cl("y", "long", 95_000, 95_100, 1e8),
           cl("z", "long", 91_000, 91_300, 5e8)]
    got = {c.id for c in assign_ids(prev, cur)}
    assert got == {"S1", "y", "L1"}


def test_one_previous_id_goes_to_the_larger_overlap_on_split():
    prev = [cl("S1", "short", 94_000, 95_000, 1e9)]
    cur = [cl("a", "short", 94_000, 94_200, 3e8), cl("b", "short", 94_300, 95_000, 6e8)]
    assert [c.id for c in assign_ids(prev, cur)] == ["a", "S1"]


def test_ids_stable_over_recomputes_of_a_moving_book():
    first = find_clusters(synthetic_book([("short", 94_200, 0.4, 1e9)], seed=1))
    second = assign_ids(first, find_clusters(synthetic_book([("short", 94_250, 0.4, 1.1e9)],
                                                            seed=2)))
    assert top(second, 1, "short")[0].id == top(first, 1, "short")[0].id


def test_top_per_side_sorted_by_notional():
    cs = [cl("a", "long", 1, 2, 5), cl("b", "long", 3, 4, 9), cl("c", "short", 5, 6, 1)]
    assert [c.id for c in top(cs, 5)] == ["b", "a", "c"]
    assert [c.id for c in top(cs, 1, "long")] == ["b"]


def test_dense_book_does_not_chain_into_one_wide_cluster():
    # Hot buckets every 0.3 % over 10 %: each gap is within merge distance, but clusters are
    # capped at max_width_pct of price.
    blobs = [("short", 93_000 * (1 + 0.003 * i), 0.1, 5e7) for i in range(34)]
    clusters = find_clusters(synthetic_book(blobs, noise=0))
    shorts = [c for c in clusters if c.side == "short"]
    assert len(shorts) > 5
    assert all((c.high - c.low) / 92_500 * 100 <= 1.5 + 0.2 for c in shorts)
    assert sum(c.notional_usd for c in shorts) == pytest.approx(34 * 5e7, rel=1e-6)


def test_known_cluster_stays_while_just_under_the_threshold():
    k0 = int(GRID.index(90_000))
    longs = np.ones((1, 400))  # flat background: the hot threshold is ~3 (3 × the mean)
    longs[0, 100] = 4.0
    book = Book(GRID, k0, (10,), longs, np.zeros((1, 400)), 100_000.0, 0, False)
    [first] = find_clusters(book, ClusterRule(min_share=0))
    longs[0, 100] = 2.5  # below the threshold, above keep_ratio × threshold
    assert find_clusters(book, ClusterRule(min_share=0)) == []
    [kept] = find_clusters(book, ClusterRule(min_share=0), previous=[first])
    assert (kept.low, kept.high) == (first.low, first.high)
    longs[0, 100] = 1.2  # gone for real
    assert find_clusters(book, ClusterRule(min_share=0), previous=[first]) == []


def test_touching_clusters_merge_into_one_zone():
    # A 4 %-wide blob: find_clusters cuts it every max_width_pct (1.5 %) into touching pieces.
    book = synthetic_book([("short", 96_000, 4.0, 3.0e9), ("short", 99_000, 0.3, 0.5e9),
                           ("long", 90_000, 0.3, 0.4e9)], noise=1e5)
    clusters = find_clusters(book)
    wide = [c for c in clusters if c.side == "short" and 94_000 < c.price < 98_000]
    assert len(wide) >= 3
    assert all(a.high == b.low for a, b in zip(wide, wide[1:], strict=False))
    zones = merge_touching(clusters)
    assert len(zones) == len(clusters) - len(wide) + 1
    (zone,) = [z for z in zones if z.side == "short" and z.low <= 96_000 <= z.high]
    assert (zone.low, zone.high) == (wide[0].low, wide[-1].high)
    assert zone.notional_usd == pytest.approx(sum(c.notional_usd for c in wide))
    assert zone.id == max(wide, key=lambda c: c.notional_usd).id
    assert zone.low <= zone.price <= zone.high
    assert zone.distance_pct == pytest.approx((zone.price / 92_500 - 1) * 100)
    # Separate clusters stay separate; no two zones of a side touch.
    for side in ("long", "short"):
        mine = [z for z in zones if z.side == side]
        assert all(a.high < b.low for a, b in zip(mine, mine[1:], strict=False))
    assert sum(z.notional_usd for z in zones) == pytest.approx(
        sum(c.notional_usd for c in clusters))
