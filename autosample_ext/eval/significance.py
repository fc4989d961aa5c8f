"""Paired t-tests against the best baseline (over seeds, or over users)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from autosample_ext.eval.full_ranking import RankingMetrics

Alternative = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True)
class TTestResult:
    """``scipy.stats.ttest_rel(a, b)``: ``statistic`` > 0 when a is larger on average.

    ``significant`` is ``pvalue < alpha``; ``marker`` is ``"*"`` then, else ``""``. A NaN
    p-value (identical samples) is never significant.
    """

    statistic: float
    pvalue: float
    significant: bool
    marker: str
    mean_difference: float
    n: int
    alpha: float


def paired_ttest(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                 alpha: float = 0.05, alternative: Alternative = "two-sided") -> TTestResult:
    """Paired t-test of samples ``a`` and ``b`` (same length >= 2, paired by position)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired_ttest: a and b must be 1-D of equal length, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"paired_ttest: needs at least 2 pairs, got {x.size}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"paired_ttest: alpha must be in (0, 1), got {alpha}")
    from scipy import stats  # imported on first use: 1-2 s, and training never needs it

    res = stats.ttest_rel(x, y, alternative=alternative)
    p = float(res.pvalue)
    sig = bool(np.isfinite(p) and p < alpha)
    return TTestResult(statistic=float(res.statistic), pvalue=p, significant=sig,
                       marker="*" if sig else "", mean_difference=float(np.mean(x - y)),
                       n=int(x.size), alpha=float(alpha))


def best_baseline(results: Mapping[str, Sequence[float]], method: str, *,
                  higher_is_better: bool = True) -> str:
    """Name of the baseline (any entry but ``method``) with the best mean."""
    others = {name: float(np.mean(v)) for name, v in results.items() if name != method}
    if not others:
        raise ValueError(f"best_baseline: no baseline besides {method!r} in {sorted(results)}")
    # Ties: the first in ``results``' order.
    return (max if higher_is_better else min)(others, key=others.__getitem__)


def compare_with_best_baseline(results: Mapping[str, Sequence[float]], method: str, *,
                               higher_is_better: bool = True, alpha: float = 0.05,
                               alternative: Alternative = "two-sided") -> tuple[str, TTestResult]:
    """Paired t-test of ``results[method]`` against the best other entry (by mean).

    ``results`` maps a method name to its per-seed metric values, paired by seed index.
    Returns ``(baseline name, test of method vs baseline)``.
    """
    if method not in results:
        raise ValueError(f"compare_with_best_baseline: {method!r} not in {sorted(results)}")
    base = best_baseline(results, method, higher_is_better=higher_is_better)
    return base, paired_ttest(results[method], results[base], alpha=alpha, alternative=alternative)


def paired_ttest_users(a: RankingMetrics, b: RankingMetrics, metric: str, *, alpha: float = 0.05,
                       alternative: Alternative = "two-sided") -> TTestResult:
    """Per-user paired t-test of one metric of two evaluations (``per_user=True``, same users)."""
    for name, m in (("a", a), ("b", b)):
        if metric not in m.per_user:
            raise ValueError(f"paired_ttest_users: {name} has no per-user {metric!r} "
                             f"(evaluate with per_user=True)")
    if not np.array_equal(a.users, b.users):
        raise ValueError("paired_ttest_users: the two evaluations cover different users")
    return paired_ttest(a.per_user[metric], b.per_user[metric], alpha=alpha, alternative=alternative)
