"""top_clusters(book, n) is top(find_clusters(book), n), cluster for cluster."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estimator import ClusterRule, build_book, find_clusters, top, top_clusters
from tests.conftest import scaled
from tests.estimator.strategies import candle_series, model_params


@settings(max_examples=scaled(300, minimum=100), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(c=candle_series(max_len=120), p=model_params(), n=st.integers(1, 6),
       hot=st.sampled_from([0.0, 1.0, 3.0]), merge=st.sampled_from([0.0, 0.5, 2.0]))
def test_top_clusters_equal_top_of_all_clusters(c, p, n, hot, merge):
    book = build_book(c, p)
    rule = ClusterRule(hot_multiple=hot, merge_pct=merge)
    assert top_clusters(book, n, rule) == top(find_clusters(book, rule), n)
