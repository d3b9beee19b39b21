"""liqbot's estimator: where leveraged futures positions would be liquidated — a model.

Pure numpy: no network, files, asyncio or chat code. Inputs are candle arrays, outputs are
arrays and small dataclasses. Everything here is an *estimate*, not exchange data.
"""

from estimator.book import Book, Heatmap, book_at, books_at, build_book, build_heatmap
from estimator.calibrate import LadderFit, fit_ladder, predicted_liquidations
from estimator.candles import Candles
from estimator.cascade import MAX_DISTANCE_PCT, Band, Cascade, cascade_path, cumulative_curve
from estimator.clusters import (
    Cluster,
    ClusterRule,
    assign_ids,
    find_clusters,
    top,
    top_clusters,
)
from estimator.grid import PriceGrid
from estimator.levels import LevelModel, level_model
from estimator.params import ModelParams
from estimator.tiers import BINANCE_BTCUSDT, Tier, TierTable, liquidation_price

__all__ = [
    "BINANCE_BTCUSDT",
    "MAX_DISTANCE_PCT",
    "Band",
    "Book",
    "Candles",
    "Cascade",
    "Cluster",
    "ClusterRule",
    "Heatmap",
    "LadderFit",
    "LevelModel",
    "ModelParams",
    "PriceGrid",
    "Tier",
    "TierTable",
    "assign_ids",
    "book_at",
    "books_at",
    "build_book",
    "build_heatmap",
    "cascade_path",
    "cumulative_curve",
    "find_clusters",
    "fit_ladder",
    "level_model",
    "liquidation_price",
    "predicted_liquidations",
    "top",
    "top_clusters",
]
