"""Evaluation: full-ranking and sampled metrics (docs/search.md), significance tests."""
from autosample_ext.eval.full_ranking import (
    FULL_RANKING_METRICS,
    RankingMetrics,
    evaluate_full_ranking,
    evaluate_model,
    merge_rows,
    popularity_tables,
)
from autosample_ext.eval.sampled import evaluate_sampled, sampled_ranks
from autosample_ext.eval.significance import (
    TTestResult,
    best_baseline,
    compare_with_best_baseline,
    paired_ttest,
    paired_ttest_users,
)

__all__ = [
    "FULL_RANKING_METRICS",
    "RankingMetrics",
    "evaluate_full_ranking",
    "evaluate_model",
    "merge_rows",
    "popularity_tables",
    "evaluate_sampled",
    "sampled_ranks",
    "TTestResult",
    "best_baseline",
    "compare_with_best_baseline",
    "paired_ttest",
    "paired_ttest_users",
]
